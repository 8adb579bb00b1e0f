"""The compliance report: per rule, the files it covers, its violations and the evidence.

The findings are ``gov check``'s own (:func:`omnifs.governance_stores.check_all`):
the catalog's files against the rules, then each store's listing (objects the
catalog does not know where a rule forbids them, objects the store reports
unencrypted) and, with ``locks``, each retained copy's store-side lock.
Evidence is what was read back when the report was made: each store's
region and encryption setting as configured, its Object Lock and default
encryption as the store reports them, whether the store or only omnifs
enforces each retention rule there, and the audit records of the rule's
denials (the latest ``EXCERPT`` of them). The model is the shared report
module's (omnifs/report/), rendered as Markdown, HTML or JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .audit.chain import records
from .config import Config
from .governance_scan import Scan, store_views
from .governance_stores import Checked
from .policy.governance import GovRule
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


@dataclass
class StoreEvidence:
    """A store's governance settings as it reports them."""

    #: one line: "object_lock: enabled, encryption: AES256", or why it cannot be read
    settings: str
    #: why the store holds no retention lock (only omnifs enforces retention there), or None
    no_lock: str | None


def read_back(cfg: Config) -> dict[str, StoreEvidence]:
    """Each store's governance settings as it reports them."""
    from .providers import OmnifsError, open_provider
    from .providers.retention import read_settings, unsupported

    out = {}
    for name, settings in cfg.providers.items():
        try:
            p = open_provider(settings)
            try:
                why = unsupported(p)
                got = read_settings(p)
            finally:
                p.close()
            lock = got.get("object_lock", "enabled")
            if why is None and lock != "enabled":
                why = f"Object Lock is {lock} on the bucket"
            if name in cfg.governance.bucket_retention:
                why = None  # its bucket's retention policy (`gov apply` keeps it)
            out[name] = StoreEvidence(", ".join(f"{k}: {v}" for k, v in got.items()), why)
        except OmnifsError as e:
            out[name] = StoreEvidence(f"unreadable: {e}", f"unreadable: {e}")
    return out


def _store_checks(checked: Checked) -> str:
    if not checked.listed:
        return "catalog only (stores not listed)"
    listed = checked.stores.listed
    out = (f"{sum(listed.values())} objects listed in {len(listed)} stores; encryption read "
           "back on S3 and MinIO")
    out += ("; locks read back" if checked.locks is not None
            else "; locks not read (give --locks)")
    if checked.stores.unreadable:
        out += "; UNREADABLE: " + "; ".join(checked.stores.unreadable)
    return out


def _enforcement(rule: GovRule, evidence: dict[str, StoreEvidence],
                 checked: Checked) -> str:
    """Who enforces a retention or legal-hold rule on each store."""
    by_store = [n for n, e in evidence.items() if e.no_lock is None]
    only = {n: e.no_lock for n, e in evidence.items() if e.no_lock is not None}
    if checked.locks is not None:  # narrowed to the stores that hold the rule's files
        only = {n: why for n, why in only.items()
                if n in checked.locks.omnifs_only.get(rule.label, ())}
    parts = []
    if by_store:
        parts.append("store-enforced (locks set by `gov apply`) on " + ", ".join(by_store))
    parts.extend(f"omnifs-enforced on {n} ({why})" for n, why in only.items())
    return "; ".join(parts) or "omnifs-enforced (no store holds its files)"


def build(cfg: Config, checked: Checked, audit_folder: Path,
          evidence: dict[str, StoreEvidence] | None = None) -> Report:
    """``evidence``: each store's settings read back (:func:`read_back`)."""
    gov = cfg.governance.engine
    result = checked.result
    denials = _denials(audit_folder)
    total = len(result.findings)
    sections = [Section("Summary", (Summary((
        Field("Checked at", result.time, "time"),
        Field("Files checked", result.files, "count"),
        Field("Rules", len(gov.rules), "count"),
        Field("Files with violations", total, "count"),
        Field("Objects the catalog does not know, out of line", len(checked.stores.findings),
              "count"),
        Field("Store checks", _store_checks(checked)),
        Field("Verdict", "compliant" if checked.clean else "violations found"))),
        _chart(cfg, result)))]
    stores = store_views(cfg)
    evidence = evidence or {}
    sections.append(Section("Stores (evidence)", (Table(
        (Column("Store"), Column("Region"), Column("Encryption (config)"),
         Column("Read back from the store"), Column("Objects listed", align="right")),
        tuple((s.name, s.region or "unknown",
               str(cfg.provider_tables[s.name].get("encryption", "none")),
               evidence[s.name].settings if s.name in evidence else "not read",
               checked.stores.listed.get(s.name, "not listed"))
              for s in stores.values())),)))
    for rule in gov.rules:
        sections.append(Section(f"Rule: {rule.label}",
                                _rule_blocks(rule, checked, denials, evidence)))
    return Report("Governance compliance report", tuple(sections), kind="governance",
                  subtitle=str(cfg.path or ""), meta=(f"{len(gov.rules)} rules",))


def _rule_blocks(rule: GovRule, checked: Checked, denials: dict[str, list[dict]],
                 evidence: dict[str, StoreEvidence]) -> tuple:
    result = checked.result
    found = [(f.path, v) for f in result.findings for v in f.violations
             if v.rule.index == rule.index]
    unknown = [sf for sf in checked.stores.findings if sf.rule == rule.label]
    gaps = [g for g in checked.locks.gaps if g.rule == rule.label] if checked.locks else []
    wants = []
    if rule.paths:
        wants.append("paths " + ", ".join(rule.paths))
    if rule.classification:
        wants.append(f"class {rule.classification}")
    fields = [Field("Applies to", "; ".join(wants)),
              Field("Files covered", result.covered.get(rule.label, 0), "count"),
              Field("Violations", len(found), "count"),
              Field("Objects the catalog does not know, out of line", len(unknown), "count")]
    if rule.protects:
        fields.append(Field("Retention enforced", _enforcement(rule, evidence, checked)))
        fields.append(Field("Store locks out of line", len(gaps) if checked.locks else
                            "not read (give --locks)", "count" if checked.locks else ""))
    fields.append(Field("Denials in the audit log", len(denials.get(rule.label, [])), "count"))
    blocks: list = [Summary(tuple(fields))]
    if found:
        blocks.append(_capped((Column("Path"), Column("Kind"), Column("Store"), Column("Detail")),
                              [(p, v.kind, v.store or "", v.detail) for p, v in found],
                              "Violations"))
    if unknown:
        blocks.append(_capped((Column("Store"), Column("Object"), Column("Kind"),
                               Column("Detail")),
                              [(sf.store, sf.path, sf.kind, sf.detail) for sf in unknown],
                              "Objects the catalog does not know (reported only; "
                              "`omnifs import` them to have `gov check --fix` move them)"))
    if gaps:
        blocks.append(_capped((Column("Path"), Column("Store"), Column("Lock wanted")),
                              [(g.path, g.store, g.detail) for g in gaps],
                              "Store-side locks out of line (`omnifs gov apply` sets them)"))
    if not (found or unknown or gaps):
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
    return tuple(blocks)


def _capped(columns: tuple[Column, ...], rows: list[tuple], title: str) -> Table:
    return Table(columns, tuple(rows[:SHOWN]), title=title,
                 note=f"and {len(rows) - SHOWN} more" if len(rows) > SHOWN else "")
