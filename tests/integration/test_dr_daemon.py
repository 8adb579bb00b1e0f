"""The daemon's disaster-recovery jobs on real stores: a scheduled backup, versions kept
between backups when files are overwritten or deleted, and a restore to a time between."""

from __future__ import annotations

import hashlib
import time

from omnifs.catalog import Catalog
from omnifs.config import parse_config
from omnifs.dr import state
from omnifs.dr.restore import load_manifest, restore
from omnifs.dr.target import Target
from omnifs.dr.versions import kept_versions, overlay
from omnifs.dr.when import pick
from omnifs.providers import open_provider
from omnifs.work import Delete, enqueue
from tests.integration.test_daemon import FAST_DAEMON, run_daemon_until, table_of, write_file
from tests.servers import catalog_url


def test_scheduled_backup_and_versions_kept_between_backups(make_settings, catalog_target,
                                                            tmp_path):
    """On both catalog engines: the daemon backs up and drills a PostgreSQL catalog too."""
    a, b = make_settings("file", name="a"), make_settings("s3", name="b")
    vault = make_settings("az", name="vault")
    cfg = parse_config({
        "catalog": {"url": catalog_url(catalog_target)},
        "cache": {"dir": str(tmp_path / "cache")},
        "replication": {"copies": 2, "write_quorum": 1},
        "providers": {"a": table_of(a), "b": table_of(b)},
        "daemon": FAST_DAEMON, "metrics": {"port": 0},
        "dr": {"rpo": "1s", "keep_versions_for": "1d", "drill_schedule": "1h",
               "backups": [table_of(vault) | {"name": "vault", "schedule": "1h"}]}})
    cat = Catalog(cfg.catalog_target())
    pa = open_provider(a)
    v1, v2, v3, gone = b"one\n" * 100, b"two\n" * 100, b"three\n" * 100, b"doomed\n"
    write_file(cat, pa, "d/x", v1, ["b"])
    write_file(cat, pa, "d/y", gone, ["b"])

    def backed_up(c: Catalog) -> bool:
        return ("vault" in state.recorded(c, state.BACKUP_PREFIX)
                and "vault" in state.recorded(c, state.DRILL_PREFIX)
                and c.work.pending_count() == 0)

    run_daemon_until(cfg, backed_up)
    first = state.recorded(cat, state.BACKUP_PREFIX)["vault"]
    assert state.recorded(cat, state.DRILL_PREFIX)["vault"]["ok"]  # drilled once backed up
    assert first["files"] in (1, 2)  # the schedule may start before the second file

    write_file(cat, pa, "d/x", v2, ["b"])  # b still holds v1: kept before it is overwritten
    run_daemon_until(cfg, lambda c: c.work.pending_count() == 0)
    between = time.time()
    time.sleep(0.05)
    write_file(cat, pa, "d/x", v3, ["b"])  # b holds v2 now: kept in turn
    ino = cat.ns.resolve("d/y").id
    with cat.transaction():
        for r in cat.replicas.of(ino):
            cat.replicas.drop(ino, r.provider)
            enqueue(cat.work, Delete(provider=r.provider, key=r.key))
        cat.ns.remove_name(cat.ns.resolve("d").id, "y")
        cat.ns.delete(ino)

    def settled_and_alerted(c: Catalog, d) -> bool:
        """The queue is empty and the RPO alert is up: changes older than 1 s are in no
        backup."""
        value = d.metrics.registry.get_sample_value("omnifs_dr_rpo_exceeded")
        return c.work.pending_count() == 0 and value == 1

    time.sleep(1.1)
    _, daemon = run_daemon_until(cfg, settled_and_alerted)
    assert daemon.metrics.registry.get_sample_value("omnifs_dr_recovery_point_seconds") > 1
    # one scheduled backup only: the next is an hour away
    assert state.recorded(cat, state.BACKUP_PREFIX)["vault"]["id"] == first["id"]

    target = Target(open_provider(cfg.dr.backups[0].settings), "")
    kept = kept_versions(target, time.time())
    got = {(v.path, v.reason, v.sha256) for v in kept}
    sha = {d: hashlib.sha256(d).hexdigest() for d in (v1, v2, gone)}
    assert ("/d/x", "overwritten", sha[v1]) in got and ("/d/x", "overwritten", sha[v2]) in got
    assert ("/d/y", "deleted", sha[gone]) in got
    manifest = load_manifest(target, pick(target.backups(), between).id)
    at_between = overlay(manifest, kept, between)
    restore(at_between, target, tmp_path / "between")
    assert (tmp_path / "between/d/x").read_bytes() == v2
    later = overlay(manifest, kept, time.time())
    assert "/d/y" not in {e.path for e in later.entries}
    point = state.recovery_point(cat, ["vault"], time.time(), copies=2)
    assert point["last_backup"] == first["at"] and point["exposed"] > 0
    target.provider.close()
    pa.close()
    cat.close()
