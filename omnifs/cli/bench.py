"""bench: the same scenarios on every provider, reports and regression checks (docs/bench.md).

* ``bench run``: run scenarios (built-in names or TOML files) on providers (configured
  names or URIs), optionally under a network profile; one JSON result per scenario
  in the history directory. Exit 1 when an operation failed (errors a profile
  injects on purpose excepted), 2 on bad input.
* ``bench report``: results as md, html or json through the shared report module.
* ``bench compare``: a baseline against a current run, with a noise model; exit 1 on
  a regression.
* ``bench scenarios``, ``bench profiles``: what is built in.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from ..bench import compare, cost, netprofile, results, scenario, session
from ..config import load_config
from ..errors import InvalidInput
from ..report.output import FORMATS, emit
from ..units import human_bytes

ORDER = 80


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark providers: the same scenarios on every store",
                       description="Run benchmark scenarios on providers, report the "
                                   "results, compare runs (docs/bench.md).")
    steps = p.add_subparsers(dest="step", metavar="STEP", required=True)

    r = steps.add_parser("run", help="run scenarios on providers and keep the results",
                         description="Every provider runs the same scenario: same data, "
                                     "same order of operations, same warm-up.")
    r.add_argument("--providers", "-p", metavar="A,B,...",
                   help="configured provider names or URIs (default: every configured one)")
    r.add_argument("--scenario", "-s", metavar="NAME|FILE", default="small-object",
                   help="built-in scenario names or TOML files, comma-separated, or 'all' "
                        "(default: %(default)s)")
    r.add_argument("--quick", action="store_true", help="each scenario's short variant")
    r.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run every cell N times (the spread `bench compare` needs)")
    r.add_argument("--profile", metavar="NAME",
                   help=f"network profile ({', '.join(netprofile.PROFILES)}), or "
                        "measure:PROVIDER for the round trip measured to a store (a name or "
                        "URI), played on every provider")
    r.add_argument("-o", "--output", metavar="DIR",
                   help=f"history directory for the results (default: {results.default_history()})")
    r.add_argument("--yes", action="store_true",
                   help="run on non-local stores after printing the cost estimate")
    r.set_defaults(func=cmd_run)

    rep = steps.add_parser("report", help="write results as md, html or json",
                           description="Tables and charts (latency CDFs, throughput per size "
                                       "and per concurrency, provider comparison).")
    rep.add_argument("results", nargs="*", metavar="RESULT|DIR",
                     help="result files or history directories (default: the newest result "
                          "in the default history)")
    rep.add_argument("--format", "-f", choices=FORMATS, default="md", help="(md)")
    rep.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    rep.set_defaults(func=cmd_report)

    c = steps.add_parser("compare", help="flag regressions of CURRENT against BASELINE",
                         description="Each side is a result file or a directory of runs "
                                     "(their repeats give the run-to-run spread). A change "
                                     "counts only beyond both the threshold and the spread. "
                                     "Exit 1 on a regression.")
    c.add_argument("baseline", metavar="BASELINE")
    c.add_argument("current", metavar="CURRENT")
    c.add_argument("--threshold", default="10%", metavar="PCT",
                   help="smallest change that counts (default: %(default)s)")
    c.add_argument("--json", action="store_true", help="the comparison, machine-readable")
    c.set_defaults(func=cmd_compare)

    steps.add_parser("scenarios", help="list the built-in scenarios").set_defaults(
        func=cmd_scenarios)
    steps.add_parser("profiles", help="list the network profiles").set_defaults(
        func=cmd_profiles)


def _scenarios(text: str) -> list[scenario.Scenario]:
    names = scenario.builtin_names() if text == "all" else [t for t in text.split(",") if t]
    if not names:
        raise InvalidInput("--scenario: give a scenario name or file")
    return [scenario.find(n) for n in names]


def cmd_run(args) -> int:
    if args.repeat < 1:
        raise InvalidInput(f"--repeat must be at least 1, got {args.repeat}")
    cfg = load_config(args.config, required=args.providers is None)
    names = args.providers.split(",") if args.providers else list(cfg.providers)
    if not names or any(not n for n in names):
        raise InvalidInput("--providers: give provider names or URIs, comma-separated")
    plans = [s.quick() if args.quick else s for s in _scenarios(args.scenario)]
    profile = _profile(args.profile, cfg) if args.profile else None
    if profile is not None and any(p.kind == "mount" for p in plans):
        print("omnifs: note: network profiles apply to object scenarios only; mount "
              "scenarios run without one", file=sys.stderr)
    out = Path(args.output) if args.output else results.default_history()
    failed = False
    with ExitStack() as stack:
        subjects = session.open_subjects(stack, cfg, names, profile, seed=1)
        remote = [s for s in subjects if not cost.is_local(s)]
        if remote:
            for s in remote:
                for plan in plans:
                    e = cost.estimate(plan, s, cfg, args.repeat)
                    print(f"cost estimate: {plan.name} on {e.provider}: {e.requests:,} requests, "
                          f"{e.egress_bytes / 1e6:,.1f} MB out: {'' if e.exact else 'about '}"
                          f"{e.cost} {e.currency}")
            if not args.yes:
                raise InvalidInput("these stores are not on this machine and the run costs "
                                   "money (estimate above): add --yes to run it")
        for run in session.run(plans, subjects, quick=args.quick, repeats=args.repeat,
                               profile=profile, config_path=cfg.path,
                               progress=lambda line: print(line, file=sys.stderr, flush=True)):
            path = results.save(run, out)
            for row in run["results"]:
                print(_row_line(run["scenario"]["name"], row))
            print(f"result: {path}")
            injected = run["profile"] is not None and run["profile"]["error_rate"] > 0
            if not injected:
                failed |= any(r["errors"] for r in run["results"])
    if failed:
        print("omnifs: some operations failed (see the errors column and error_samples in "
              "the result)", file=sys.stderr)
    return 1 if failed else 0


def _profile(text: str, cfg) -> netprofile.NetProfile:
    """A built-in profile, or ``measure:PROVIDER``: one measured from HEAD round trips."""
    if not text.startswith("measure:"):
        return netprofile.profile(text)
    where = text.removeprefix("measure:")
    with ExitStack() as stack:
        (subject,) = session.open_subjects(stack, cfg, [where], None, seed=1)
        measured = netprofile.measure(subject.store, subject.root + "omnifs-bench-probe")
    print(f"measured profile of {where}: {measured.latency * 1e3:.2f} ms ± "
          f"{measured.jitter * 1e3:.2f} ms per request", file=sys.stderr)
    return measured


def _row_line(name: str, r: dict) -> str:
    lat = r["latency"]
    return (f"{name:<16} {r['provider']:<12} {human_bytes(r['size']):>9}  c={r['concurrency']:<3} "
            f"{r['ops_per_s']:>9.1f} ops/s {r['mb_per_s']:>9.2f} MB/s  "
            f"p50 {lat['p50'] * 1e3:.2f} p95 {lat['p95'] * 1e3:.2f} "
            f"p99 {lat['p99'] * 1e3:.2f} max {lat['max'] * 1e3:.2f} ms  "
            f"errors {r['errors']}  cpu {r['cpu_seconds']:.2f}s  "
            f"rss {human_bytes(r['peak_rss'])}")


def _newest() -> list[Path]:
    files = sorted(results.default_history().glob("*.json"))
    if not files:
        raise InvalidInput(f"no bench results in {results.default_history()}: run `omnifs "
                           "bench run` first, or name result files")
    return [files[-1]]


def cmd_report(args) -> int:
    from ..bench.report import bench_report

    runs = results.load_many([Path(p) for p in args.results] or _newest())
    report = bench_report(runs)
    emit(report, args.format, args.output)
    return 0


def cmd_compare(args) -> int:
    threshold = compare.parse_threshold(args.threshold)
    base = results.load_many([Path(args.baseline)])
    current = results.load_many([Path(args.current)])
    outcome = compare.compare(base, current, threshold)
    if args.json:
        import json

        print(json.dumps(outcome.as_dict(), indent=1, sort_keys=True))
    else:
        for line in outcome.lines():
            print(line)
    return 1 if outcome.regressions else 0


def cmd_scenarios(args) -> int:
    for name in scenario.builtin_names():
        s = scenario.builtin(name)
        print(f"{name:<18} {s.kind:<8} {s.description}")
    return 0


def cmd_profiles(args) -> int:
    for p in netprofile.PROFILES.values():
        cap = f"{p.bandwidth / 1e6:g} MB/s" if p.bandwidth else "no cap"
        print(f"{p.name:<17} {p.latency * 1e3:g} ms ± {p.jitter * 1e3:g} ms, {cap}, "
              f"{p.error_rate * 100:g} % errors: {p.about}")
    return 0
