"""gov: governance rule sets, existing violations, compliance reports, store-side locks.

* ``gov templates [NAME]``: ready rule sets (GDPR EU residency, HIPAA-style,
  SEC 17a-4 WORM, sovereignty per country, two regions two vendors);
* ``gov check [--fix] [--locks] [--catalog-only] [--json]``: the catalog's
  files against the rules (forbidden region or store, too few copies or
  regions, missing encryption), then each store's objects
  (omnifs/governance_stores.py: unknown objects where a rule forbids them,
  objects the store reports unencrypted); exit 1 on any violation. ``--fix``
  queues the remediation (copy to an allowed store, verify, then delete from
  the forbidden one) for the daemon or ``omnifs replicate --now``;
* ``gov report --format md|html|json [-o FILE] [--locks] [--catalog-only]``: the
  compliance report, from the same findings as ``gov check``;
* ``gov apply``: the retention rules as the stores' own locks (omnifs/governance_apply.py):
  S3 Object Lock, GCS bucket retention policies for the stores listed in
  ``[governance] bucket_retention``.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..catalog import Catalog
from ..config import load_config
from ..errors import InvalidInput
from ..governance_config import audit_dir
from ..governance_templates import TEMPLATES

ORDER = 60


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gov", help="governance: templates, check, report, apply",
                       description="Governance rules ([[governance.rules]], docs/governance.md).")
    s = p.add_subparsers(dest="gov_command", metavar="STEP", required=True)
    t = s.add_parser("templates", help="ready rule sets to copy into the config")
    t.add_argument("name", nargs="?", choices=sorted(TEMPLATES), help="print this one only")
    t.set_defaults(func=cmd_templates)
    c = s.add_parser("check", help="existing violations in the catalog and stores",
                     description="Exit 0 when every file complies, 1 on a violation.")
    c.add_argument("--fix", action="store_true",
                   help="queue remediation: copy to an allowed store, verify, delete from the "
                        "forbidden one (the daemon or `omnifs replicate --now` runs it)")
    c.add_argument("--locks", action="store_true",
                   help="also read each retained copy's store-side lock (S3 Object Lock) and "
                        "report locks shorter than the rule or impossible (`gov apply` sets them)")
    c.add_argument("--catalog-only", action="store_true",
                   help="skip listing the stores (objects the catalog does not know, and "
                        "each object's encryption as the store reports it)")
    c.add_argument("--json", action="store_true", help="machine-readable")
    c.set_defaults(func=cmd_check)
    r = s.add_parser("report", help="compliance report per rule",
                     description="The findings of `gov check` per rule, with evidence; exit 1 "
                                 "when a store could not be listed (the report says which).")
    r.add_argument("--format", choices=("md", "html", "json"), default="md")
    r.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    r.add_argument("--locks", action="store_true",
                   help="also read each retained copy's store-side lock, as `gov check --locks`")
    r.add_argument("--catalog-only", action="store_true",
                   help="skip listing the stores, as `gov check --catalog-only`")
    r.set_defaults(func=cmd_report)
    a = s.add_parser("apply", help="set the stores' own retention locks to match the rules",
                     description="S3 Object Lock retention on every object under a retention "
                                 "rule, where the bucket supports it; the bucket retention "
                                 "policy of GCS stores listed in [governance] bucket_retention; "
                                 "says where a store cannot (exit 1: only omnifs enforces the "
                                 "rule there).")
    a.add_argument("--dry-run", action="store_true", help="say what would be set")
    a.set_defaults(func=cmd_apply)


def gate(cfg, store: str, keys: list[str], what: str) -> None:
    """Refuse a transfer (before any byte moves) that would put objects where a rule forbids:
    each object and rule on stderr, then one error line (exit 1)."""
    from ..governance_scan import transfer_refusals
    from ..providers.errors import PermissionDenied

    refused = transfer_refusals(cfg, store, keys)
    if not refused:
        return
    for line in refused:
        print(f"omnifs: refused: {line}", file=sys.stderr)
    raise PermissionDenied(f"{what} refused by the governance rules: {len(refused)} object"
                           f"{'s' if len(refused) != 1 else ''} may not be stored on {store} "
                           "(listed above); nothing was transferred")


def cmd_templates(args) -> int:
    for name, (about, text) in TEMPLATES.items():
        if args.name and name != args.name:
            continue
        print(f"# --- {name}: {about}\n{text}")
    return 0


def _open(args):
    cfg = load_config(args.config)
    path = cfg.catalog_target()
    if not isinstance(path, str) and not path.exists():
        raise InvalidInput(f"no catalog at {path}: nothing to check yet (mount once, or run "
                           "`omnifs import`)")
    if not cfg.governance.engine.rules:
        raise InvalidInput(f"no [[governance.rules]] in {cfg.path or 'the config'}")
    return cfg, Catalog(path)


def cmd_check(args) -> int:
    from ..governance_scan import fix
    from ..governance_stores import check_all

    cfg, cat = _open(args)
    try:
        checked = check_all(cat, cfg, stores=not args.catalog_only, locks=args.locks)
        result, stores = checked.result, checked.stores
        queued, impossible = fix(cat, cfg, result) if args.fix else ([], [])
    finally:
        cat.close()
    locks = [f"lock out of line: {line.replace('would lock', 'should be locked')}"
             for line in (checked.locks.lines[:-1] if checked.locks else [])]
    if args.json:
        print(json.dumps({
            "clean": result.clean, "files": result.files, "covered": result.covered,
            "violations": [{"path": f.path, "rule": v.rule.label, "kind": v.kind,
                            "store": v.store, "detail": v.detail}
                           for f in result.findings for v in f.violations],
            "locks": locks, "queued": [q.__dict__ for q in queued],
            "listed": stores.listed, "unreadable": stores.unreadable,
            "unknown_objects": [f.__dict__ for f in stores.findings],
            "impossible": [q.__dict__ for q in impossible]}, indent=2, sort_keys=True))
    else:
        for f in result.findings:
            for v in f.violations:
                print(f"{f.path}: {v.rule.label}: {v.detail}")
        for line in locks:
            print(line)
        for sf in stores.findings:
            print(f"{sf.store}:{sf.path}: {sf.rule}: {sf.detail} (not in the catalog: "
                  "reported only, `omnifs import` it to have --fix move it)")
        for line in stores.unreadable:
            print(f"cannot list: {line}", file=sys.stderr)
        for q in queued:
            print(f"queued: {q.path}: {q.action}")
        for q in impossible:
            print(f"cannot fix: {q.path}: {q.action}", file=sys.stderr)
        if not args.catalog_only:
            print(f"stores: {sum(stores.listed.values())} objects listed in "
                  f"{len(stores.listed)} stores, {len(stores.findings)} violation(s) by objects "
                  "the catalog does not know")
        n = len(result.findings)
        print(f"{result.files} files, {len(cfg.governance.engine.rules)} rules: "
              + ("compliant" if not n else f"{n} file{'s' if n != 1 else ''} in violation")
              + (f"; {len(queued)} remediation step(s) queued (the daemon or `omnifs "
                 "replicate --now` runs them)" if args.fix else ""))
    return 0 if checked.clean else 1


def cmd_report(args) -> int:
    from ..governance_report import build, read_back
    from ..governance_stores import check_all
    from ..report.output import emit

    cfg, cat = _open(args)
    try:
        checked = check_all(cat, cfg, stores=not args.catalog_only, locks=args.locks)
    finally:
        cat.close()
    report = build(cfg, checked, audit_dir(cfg.catalog_file()), read_back(cfg))
    emit(report, args.format, args.output)
    for line in checked.stores.unreadable:
        print(f"omnifs: cannot list: {line} (the report says so)", file=sys.stderr)
    return 1 if checked.stores.unreadable else 0


def cmd_apply(args) -> int:
    from ..governance_apply import apply

    cfg, cat = _open(args)
    try:
        outcome = apply(cat, cfg, dry_run=args.dry_run)
    finally:
        cat.close()
    for line in outcome.lines:
        print(line)
    return 1 if outcome.failed else 0
