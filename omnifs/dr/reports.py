"""Reports of disaster-recovery runs other than drills (omnifs/report/ model)."""

from __future__ import annotations

from omnifs.report import Column, Field, Paragraph, Report, Section, Summary, Table

from .failover import FailedOver


def failover_report(done: FailedOver, copies: int) -> Report:
    fields = (Field("Store declared lost", done.lost), Field("Files re-homed", done.files,
                                                             "count"),
              Field("Copies from surviving replicas", done.from_replicas, "count"),
              Field("Copies from backups", done.from_backup, "count"),
              Field("Short of copies", len(done.short), "count"),
              Field("Lost (no copy, no backup)", len(done.gone), "count"),
              Field("Copies wanted", copies, "count"), Field("Took", done.seconds, "seconds"))
    sections = [Section("Outcome", (Summary(fields),))]
    if done.gone:
        sections.append(Section("Lost files", (
            Paragraph("No store and no backup holds these files' current version.", note=True),
            Table((Column("path"),), tuple((p,) for p in done.gone)))))
    if done.short:
        sections.append(Section("Short of copies", (Table(
            (Column("path"), Column("why")), tuple(sorted(done.short.items()))),)))
    return Report("Failover", tuple(sections), kind="dr-failover", meta=(f"from {done.lost}",))
