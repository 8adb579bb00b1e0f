"""A drill: prove a backup restores, and how fast.

Restores a backup (or a sample of its files) into a scratch directory,
reads every restored file back and checks it against the manifest's
SHA-256, and times the whole: finding the backup, fetching its manifest,
restoring, verifying. That time is the measured RTO (for a sample,
extrapolated by bytes to the whole backup) and is compared with ``[dr]
rto``. Any content that fails its checksum, any store error, or an RTO
over the target fails the drill. The outcome goes to the catalog (``omnifs
status`` shows the last one) and, when asked, to a report (Markdown, HTML
or JSON through omnifs/report/).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from omnifs.catalog import Catalog
from omnifs.errors import OmnifsError
from omnifs.report import Chart, Column, Field, Paragraph, Report, Section, Series, Summary, Table

from . import state
from .config import BackupSpec
from .manifest import Entry, Manifest
from .restore import load_manifest, restore, verify_tree
from .when import fmt, parse_time, pick


@dataclass
class DrillOutcome:
    ok: bool
    line: str
    backup_id: str = ""
    files: int = 0
    bytes: int = 0
    #: measured seconds of this drill, and the whole backup's RTO estimated from it
    seconds: float = 0.0
    rto_estimate: float = 0.0
    throughput: float = 0.0
    rto_target: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def sample_entries(manifest: Manifest, percent: float) -> list[Entry]:
    """Every directory and ``percent`` % of the files (at least one), chosen by the backup's
    id so the same drill picks the same files."""
    if percent >= 100:
        return list(manifest.entries)
    files = manifest.files
    n = max(1, round(len(files) * percent / 100)) if files else 0
    chosen = {id(e) for e in random.Random(manifest.id).sample(files, n)}
    return [e for e in manifest.entries if e.kind == "dir" or id(e) in chosen]


def run_drill(cfg, spec: BackupSpec, *, at: str = "latest", sample: float = 100.0,
              scratch: Path | None = None, report_path: Path | None = None) -> DrillOutcome:
    start = time.monotonic()
    target = state.open_target(spec)
    own = scratch is None
    where = scratch if scratch is not None else Path(
        tempfile.mkdtemp(prefix=".dr-drill-", dir=cfg.cache_dir.parent))
    outcome = DrillOutcome(False, "", rto_target=cfg.dr.rto)
    try:
        chosen = pick(target.backups(), parse_time(at))
        outcome.backup_id = chosen.id
        manifest = load_manifest(target, chosen.id)
        outcome.phases["find and read the manifest"] = time.monotonic() - start
        entries = sample_entries(manifest, sample)
        t = time.monotonic()
        try:
            done = restore(manifest, target, where, entries=entries)
            outcome.failed.update(done.failed)
        except OmnifsError as e:
            outcome.failed["/"] = str(e).splitlines()[0]
        outcome.phases["restore"] = time.monotonic() - t
        t = time.monotonic()
        files = [e for e in entries if e.kind == "file" and e.path not in outcome.failed]
        outcome.failed.update(verify_tree(files, where))
        outcome.phases["verify every checksum"] = time.monotonic() - t
    finally:
        target.provider.close()
        if own:
            shutil.rmtree(where, ignore_errors=True)
    outcome.seconds = time.monotonic() - start
    picked = [e for e in entries if e.kind == "file"]
    outcome.files, outcome.bytes = len(picked), sum(e.size for e in picked)
    whole = manifest.bytes_total
    outcome.rto_estimate = (outcome.seconds * whole / outcome.bytes
                            if outcome.bytes and whole > outcome.bytes else outcome.seconds)
    outcome.throughput = outcome.bytes / outcome.phases["restore"] \
        if outcome.phases.get("restore") else 0.0
    over = outcome.rto_target is not None and outcome.rto_estimate > outcome.rto_target
    outcome.ok = not outcome.failed and not over
    outcome.line = _line(outcome, chosen.at, sample, over)
    cat = Catalog(cfg.catalog_target())
    try:
        state.record(cat, state.DRILL_PREFIX, spec.name,
                     {"at": time.time(), "ok": outcome.ok, "backup": outcome.backup_id,
                      "rto": outcome.rto_estimate, "throughput": outcome.throughput,
                      "files": outcome.files, "failed": len(outcome.failed)})
    finally:
        cat.close()
    if report_path is not None:
        from omnifs.report.output import write

        fmt_name = report_path.suffix.lstrip(".").lower() or "md"
        write(report(outcome, spec, chosen.at, sample), fmt_name, report_path)
    return outcome


def _line(o: DrillOutcome, at: float, sample: float, over: bool) -> str:
    what = f"{o.files} files ({o.bytes} bytes)" + (f", a {sample:g} % sample" if sample < 100
                                                   else "")
    if o.failed:
        return (f"DRILL FAILED: {len(o.failed)} of {what} from backup {o.backup_id} "
                f"({fmt(at)}) did not restore intact")
    rto = f"RTO {o.rto_estimate:.1f} s" + (
        f" (target {o.rto_target:g} s)" if o.rto_target is not None else "")
    if over:
        return f"DRILL FAILED: {rto} is over the target; restored {what} from {o.backup_id}"
    return (f"drill passed: restored {what} from backup {o.backup_id} ({fmt(at)}), every "
            f"checksum verified; {rto}, {o.throughput / 1e6:.1f} MB/s")


def report(o: DrillOutcome, spec: BackupSpec, at: float, sample: float) -> Report:
    fields = (
        Field("Verdict", "passed" if o.ok else "FAILED"),
        Field("Backup", o.backup_id), Field("Backup taken", at, "time"),
        Field("Target", spec.name),
        Field("Files restored", o.files, "count"), Field("Bytes restored", o.bytes, "bytes"),
        Field("Sample", sample, "percent"),
        Field("Drill took", o.seconds, "seconds"),
        Field("Measured RTO (whole backup)", o.rto_estimate, "seconds"),
        Field("RTO target", o.rto_target, "seconds"),
        Field("Restore throughput", o.throughput, "bytes/s"),
        Field("Files that failed", len(o.failed), "count"),
    )
    blocks: list = [Summary(fields)]
    if o.failed:
        blocks.append(Paragraph("The backup did not restore intact: the files below failed "
                                "their checksum or could not be read.", note=True))
    phases = Chart("bar", "Where the time went", "phase", "seconds",
                   (Series("seconds", tuple(o.phases.items())),), y_unit="seconds")
    sections = [Section("Outcome", tuple(blocks)), Section("Timing", (phases,))]
    if o.failed:
        rows = tuple((p, why) for p, why in sorted(o.failed.items())[:1000])
        sections.append(Section("Failures", (Table((Column("path"), Column("what failed")),
                                                   rows),)))
    return Report("Disaster recovery drill", tuple(sections), kind="dr-drill",
                  meta=(f"backup {o.backup_id}", f"target {spec.name}"))
