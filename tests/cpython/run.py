"""Command line: run CPython's test_asyncio modules against a loop and report.

    python -m tests.cpython.run --loop ringloop [--compare asyncio]
        [--modules test_tasks test_locks ...] [--json out.json]

Run from the repository root. Each module runs in its own worker process
(see harness.py); the report has one row per module: passed, failed, errors,
skipped by our skip list, skipped by the suite itself, and how many tests
actually built a loop of the loop under test. With ``--compare`` the same
table is printed for the baseline loop, then every test that passes on the
baseline but not on the target and is not in the skip list.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any, Sequence

from .harness import (
    DEFAULT_MODULES,
    REQUIRED_MODULES,
    Comparison,
    ModuleResult,
    compare,
    run_modules,
)
from .presets import PRESETS, LoopSpec, parse_loop

COLUMNS = (
    ("passed", "passed"),
    ("failed", "failed"),
    ("errors", "errors"),
    ("skip_list", "skip(list)"),
    ("skip_suite", "skip(suite)"),
    ("used", "used loop"),
)


def format_table(spec: LoopSpec, results: dict[str, ModuleResult]) -> str:
    """The per-module table for one loop."""
    width = max([len(m) for m in results] + [len("TOTAL")]) + 2
    head = "module".ljust(width) + "".join(f"{t:>12}" for _, t in COLUMNS) + f"{'time':>9}"
    lines = [f"loop: {spec.describe()}", head, "-" * len(head)]
    total = dict.fromkeys([k for k, _ in COLUMNS], 0)
    seconds = 0.0
    for module, res in results.items():
        seconds += res.duration
        if res.status != "ok":
            lines.append(f"{module.ljust(width)}  {res.status}: {res.reason}"[:160])
            continue
        counts = res.counts()
        for key in total:
            total[key] += counts[key]
        restarts = f" ({res.workers - 1} restarts)" if res.workers > 1 else ""
        lines.append(
            module.ljust(width)
            + "".join(f"{counts[k]:>12}" for k, _ in COLUMNS)
            + f"{res.duration:>8.1f}s{restarts}"
        )
    lines.append("-" * len(head))
    lines.append(
        "TOTAL".ljust(width) + "".join(f"{total[k]:>12}" for k, _ in COLUMNS)
        + f"{seconds:>8.1f}s"
    )
    return "\n".join(lines)


def format_failures(results: dict[str, ModuleResult], limit: int) -> str:
    """Failed and erroring tests of one loop with their key lines."""
    lines: list[str] = []
    for res in results.values():
        for tid, rec in sorted(res.tests.items()):
            if rec.category in ("failed", "errors"):
                lines.append(f"  {tid}  [{rec.outcome}] {rec.detail}"[:300])
    if limit and len(lines) > limit:
        lines = lines[:limit] + [f"  ... and {len(lines) - limit} more"]
    return "\n".join(lines)


def format_comparison(
    target: LoopSpec, baseline: LoopSpec, comps: dict[str, Comparison]
) -> str:
    """Tests passing on the baseline but not on the target, and other diffs."""
    out: list[str] = []

    def section(title: str, rows: list[str]) -> None:
        out.append(f"\n{title}: {len(rows)}")
        out.extend(f"  {row}"[:300] for row in rows)

    regressions = [
        f"{tid}  [{rec.outcome}] {rec.detail}"
        for comp in comps.values()
        for tid, rec in comp.regressions.items()
    ]
    section(
        f"Pass on {baseline.name}, fail on {target.name} (not in the skip list)",
        regressions,
    )
    skipped = [
        f"{tid}  [suite skip] {rec.detail}"
        for comp in comps.values()
        for tid, rec in comp.suite_skipped.items()
    ]
    if skipped:
        section(f"Pass on {baseline.name}, skipped by the suite on {target.name}", skipped)
    unrouted = [tid for comp in comps.values() for tid in comp.unrouted]
    if unrouted:
        section(
            f"Used the loop on {baseline.name} but not on {target.name} (binding hole)",
            unrouted,
        )
    missing = [tid for comp in comps.values() for tid in comp.missing]
    if missing:
        section(f"Pass on {baseline.name}, never ran on {target.name}", missing)
    stale = [tid for comp in comps.values() for tid in comp.stale_skips]
    if stale:
        section("Stale skip-list entries (the test passes now)", stale)
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cpython.run",
        description="Run CPython's installed test.test_asyncio against an event loop.",
    )
    parser.add_argument(
        "--loop", default="ringloop",
        help=f"preset ({', '.join(PRESETS)}) or 'module:callable[+selector]'",
    )
    parser.add_argument(
        "--selector", choices=("select", "poll", "epoll", "devpoll", "kqueue"),
        help="pass a selectors.<Kind>Selector() to the loop under test",
    )
    parser.add_argument("--compare", metavar="LOOP", help="baseline loop, e.g. asyncio")
    parser.add_argument(
        "--modules", nargs="+", metavar="MODULE",
        help="test modules (default: all covered ones; 'required' for the "
        "must-pass list)",
    )
    parser.add_argument("--json", metavar="PATH", help="write full results as JSON")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per test")
    parser.add_argument(
        "--listed-timeout", type=float, default=20.0,
        help="seconds per skip-listed test (they run, to find stale entries)",
    )
    parser.add_argument(
        "--skip-mode", choices=("run", "skip"), default="run",
        help="run skip-listed tests and file them under skip(list) (default), "
        "or do not run them",
    )
    parser.add_argument("--jobs", "-j", type=int, default=1, help="modules run at once")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter whose test suite is run")
    parser.add_argument("--failures", type=int, default=50, metavar="N",
                        help="list up to N failing tests per loop (0: all)")
    parser.add_argument("--logs", metavar="DIR", help="keep worker logs in DIR")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a test passes on the baseline but not "
                        "on the target (needs --compare)")
    args = parser.parse_args(argv)
    if args.modules == ["required"]:
        args.modules = list(REQUIRED_MODULES)
    elif not args.modules:
        args.modules = list(DEFAULT_MODULES)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(argv)
    target = parse_loop(args.loop, args.selector)
    baseline = parse_loop(args.compare) if args.compare else None
    if args.logs:
        import os

        os.makedirs(args.logs, exist_ok=True)
    options: dict[str, Any] = dict(
        python=args.python,
        timeout=args.timeout,
        listed_timeout=args.listed_timeout,
        skip_mode=args.skip_mode,
        jobs=args.jobs,
        log_dir=args.logs,
    )

    def progress(res: ModuleResult) -> None:
        print(f"  [{res.loop}] {res.module}: {res.status} {res.counts()} "
              f"{res.duration:.1f}s", file=sys.stderr, flush=True)

    version = _python_version(args.python)
    print(f"CPython test.test_asyncio from Python {version} on {platform.platform()}")
    started = time.monotonic()
    results = run_modules(target, args.modules, progress=progress, **options)
    base_results = (
        run_modules(baseline, args.modules, progress=progress, **options)
        if baseline else None
    )
    elapsed = time.monotonic() - started

    print()
    print(format_table(target, results))
    notes = sorted({n for r in results.values() for n in r.notes if n and len(n) < 300})
    for note in notes:
        print(f"note: {note}")
    failures = format_failures(results, args.failures)
    if failures and not baseline:
        print(f"\nFailing on {target.name}:\n{failures}")
    comps: dict[str, Comparison] = {}
    if baseline and base_results:
        print()
        print(format_table(baseline, base_results))
        comps = {m: compare(base_results[m], results[m]) for m in args.modules}
        print(format_comparison(target, baseline, comps))
    print(f"\nwall time: {elapsed:.1f}s")

    if args.json:
        data: dict[str, Any] = {
            "python": version,
            "platform": platform.platform(),
            "elapsed": round(elapsed, 1),
            "loops": {
                target.name: {
                    "spec": target.to_json(),
                    "modules": {m: r.to_json() for m, r in results.items()},
                }
            },
        }
        if baseline and base_results:
            data["loops"][baseline.name] = {
                "spec": baseline.to_json(),
                "modules": {m: r.to_json() for m, r in base_results.items()},
            }
            data["comparison"] = {
                "target": target.name,
                "baseline": baseline.name,
                "modules": {m: c.to_json() for m, c in comps.items()},
            }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)
    if args.check and any(c.regressions for c in comps.values()):
        return 1
    return 0


def _python_version(python: str) -> str:
    if python == sys.executable:
        return platform.python_version()
    import subprocess

    out = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=False,
    )
    return out.stdout.strip() or python


if __name__ == "__main__":
    sys.exit(main())
