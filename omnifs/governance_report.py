"""The compliance report: per rule, the files it covers, its violations and the evidence.

Evidence is what was read back when the report was made: each store's
region and encryption setting as configured, and the audit records of the
rule's denials (the latest ``EXCERPT`` of them). The model is the shared
report module's (omnifs/report/), rendered as Markdown, HTML or JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from .audit.chain import records
from .config import Config
from .governance_scan import Scan, store_views
from .report import Chart, Column, Field, Paragraph, Report, Section, Series, Summary, Table

#: audit records shown per rule
EXCERPT = 20
#: violations listed per rule
SHOWN = 200


def _denials(folder: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    if not folder.exists():
        return out
    for _, _, line in records(folder):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if str(rec.get("result", "")).startswith("denied"):
            for label in str(rec.get("rule", "")).split(","):
                out.setdefault(label, []).append(rec)
    return out


def _chart(cfg: Config, result: Scan) -> Chart:
    labels = [r.label for r in cfg.governance.engine.rules]
    bad: dict[str, set[str]] = {}
    for f in result.findings:
        for v in f.violations:
            bad.setdefault(v.rule.label, set()).add(f.path)
    return Chart("bar", "Files covered and in violation, per rule", "rule", "files", (
        Series("covered", tuple((x, float(result.covered.get(x, 0))) for x in labels)),
        Series("in violation", tuple((x, float(len(bad.get(x, ())))) for x in labels))),
        y_unit="count")


def read_back(cfg: Config) -> dict[str, str]:
    """Each store's governance settings as it reports them (one line each)."""
    from .providers import OmnifsError, open_provider
    from .providers.retention import read_settings

    out = {}
    for name, settings in cfg.providers.items():
        try:
            p = open_provider(settings)
            try:
                got = read_settings(p)
            finally:
                p.close()
            out[name] = ", ".join(f"{k}: {v}" for k, v in got.items())
        except OmnifsError as e:
            out[name] = f"unreadable: {e}"
    return out


def build(cfg: Config, result: Scan, audit_folder: Path,
          evidence: dict[str, str] | None = None) -> Report:
    """``evidence``: each store's settings read back (:func:`read_back`)."""
    gov = cfg.governance.engine
    denials = _denials(audit_folder)
    total = len(result.findings)
    sections = [Section("Summary", (Summary((
        Field("Checked at", result.time, "time"),
        Field("Files checked", result.files, "count"),
        Field("Rules", len(gov.rules), "count"),
        Field("Files with violations", total, "count"),
        Field("Verdict", "compliant" if result.clean else "violations found"))),
        _chart(cfg, result)))]
    stores = store_views(cfg)
    evidence = evidence or {}
    sections.append(Section("Stores (evidence)", (Table(
        (Column("Store"), Column("Region"), Column("Encryption (config)"),
         Column("Read back from the store")),
        tuple((s.name, s.region or "unknown",
               str(cfg.provider_tables[s.name].get("encryption", "none")),
               evidence.get(s.name, "not read"))
              for s in stores.values())),)))
    for rule in gov.rules:
        found = [(f.path, v) for f in result.findings for v in f.violations
                 if v.rule.index == rule.index]
        wants = []
        if rule.paths:
            wants.append("paths " + ", ".join(rule.paths))
        if rule.classification:
            wants.append(f"class {rule.classification}")
        blocks: list = [Summary((
            Field("Applies to", "; ".join(wants)),
            Field("Files covered", result.covered.get(rule.label, 0), "count"),
            Field("Violations", len(found), "count"),
            Field("Denials in the audit log", len(denials.get(rule.label, [])), "count")))]
        if found:
            blocks.append(Table((Column("Path"), Column("Kind"), Column("Store"),
                                 Column("Detail")),
                                tuple((p, v.kind, v.store or "", v.detail)
                                      for p, v in found[:SHOWN]),
                                title="Violations",
                                note=f"and {len(found) - SHOWN} more" if len(found) > SHOWN
                                else ""))
        else:
            blocks.append(Paragraph("No violation found."))
        recent = denials.get(rule.label, [])[-EXCERPT:]
        if recent:
            blocks.append(Table((Column("Time"), Column("Who"), Column("Operation"),
                                 Column("Path"), Column("Result")),
                                tuple((r.get("time", ""), f"uid {r.get('uid')} "
                                       f"{r.get('comm', '?')}[{r.get('pid')}]", r.get("op", ""),
                                       r.get("path", ""), r.get("result", ""))
                                      for r in recent),
                                title="Audit excerpt (latest denials)"))
        sections.append(Section(f"Rule: {rule.label}", tuple(blocks)))
    return Report("Governance compliance report", tuple(sections), kind="governance",
                  subtitle=str(cfg.path or ""), meta=(f"{len(gov.rules)} rules",))
