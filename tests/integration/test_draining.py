"""The daemon places no new replica on a draining provider (``omnifs migrate provider``).

Files with one copy and queued copies to the draining store: the daemon
skips those items and its repair puts the second copy on the other store.
"""

from __future__ import annotations

from omnifs.catalog import Catalog
from omnifs.migration.swap import abort, begin
from omnifs.providers import open_provider
from tests.integration.test_daemon import drained, make_config, run_daemon_until, write_many


def test_daemon_places_nothing_on_a_draining_store(make_settings, tmp_path):
    a, b, c = (make_settings(k, name=n) for k, n in (("file", "one"), ("s3", "old"),
                                                      ("file", "three")))
    cfg = make_config(tmp_path, [a, b, c], copies=2)
    cat = Catalog(cfg.catalog_path())
    try:
        files = write_many(cat, open_provider(a), ["old"], 6)  # copies queued to old
        begin(cat, "old", "three")
        assert set(cat.draining()) == {"old"}
        run_daemon_until(cfg, drained(2), timeout=60)
        for path in files:
            ino = cat.ns.resolve(path).id
            synced = {r.provider for r in cat.replicas.of(ino) if r.state == "synced"}
            assert synced == {"one", "three"}, (path, synced)
        assert not any(open_provider(b).list(""))
        assert abort(cat, "old") == 0 and cat.draining() == {}
    finally:
        cat.close()
