"""Instructions per operation of the micro-benchmarks, counted by valgrind's callgrind."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _common
import micro

# Python's start-up, imports and loop creation cost the same at both counts,
# so (Ir(N2) - Ir(N1)) / (N2 - N1) is what one operation costs once warm.
DEFAULT_N1 = 2000
DEFAULT_N2 = 12000


def count_ir(valgrind: str, bench: str, factory: str, ops: int, timeout: float,
             workdir: Path) -> dict[str, Any]:
    """Run one count-mode worker under callgrind; return its Ir total and op count."""
    out = Path(tempfile.mkstemp(prefix="callgrind.", suffix=".out", dir=workdir)[1])
    job = {"bench": bench, "factory": factory, "ops": ops, "warmup_ops": micro.BATCH, "cpu": None}
    cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
           sys.executable, str(Path(micro.__file__).resolve()), "--worker", json.dumps(job)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=_common.HERE, env=env)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("==")]
            return {"error": (lines or [f"exit status {proc.returncode}"])[-1]}
        total = None
        for line in out.read_text().splitlines():
            if line.startswith(("totals:", "summary:")):
                total = int(line.split()[1])
        if total is None:
            return {"error": "no totals line in the callgrind output"}
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
        return {"ir": total, "ops": int(answer["ops"])}
    except subprocess.TimeoutExpired:
        return {"error": f"valgrind run timed out after {timeout:.0f} s"}
    except (OSError, ValueError, IndexError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        out.unlink(missing_ok=True)


def ir_per_op(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    for run in (small, large):
        if "error" in run:
            return {"error": run["error"]}
    if large["ops"] <= small["ops"]:
        return {"error": f"op counts {small['ops']} and {large['ops']} do not grow"}
    value = (large["ir"] - small["ir"]) / (large["ops"] - small["ops"])
    return {"ir_per_op": value, "small": small, "large": large}


def fmt_ir(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def markdown_table(benches: Sequence[str], loops: Sequence[str],
                   cells: dict[str, dict[str, float | None]]) -> str:
    """Instructions per op (lower is better); ours against uvloop and the leanest peer."""
    ours = [name for name in loops if name.startswith(_common.OURS_PREFIX)]
    peers = [name for name in _common.PEERS if name in loops]
    header = ["benchmark"] + list(loops)
    if "uvloop" in loops:
        header += [f"{name}/uvloop" for name in ours]
    if peers:
        header += [f"{name}/best({','.join(peers)})" for name in ours]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for bench in benches:
        row = cells[bench]
        out = [bench] + [fmt_ir(row[name]) for name in loops]
        if "uvloop" in loops:
            out += [_common.fmt_ratio(row[name], row["uvloop"]) for name in ours]
        if peers:
            known = [v for p in peers if (v := row[p])]
            best = min(known) if known else None
            out += [_common.fmt_ratio(row[name], best) for name in ours]
        lines.append("| " + " | ".join(out) + " |")
    lines.append("")
    lines.append("Instructions (callgrind Ir) per operation; lower is better; "
                 "a ratio below 1.00x means fewer instructions than the peer.")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", default=",".join(micro.BENCHES),
                        help=f"comma-separated subset of: {','.join(micro.BENCHES)}")
    _common.add_loop_arguments(parser)
    parser.add_argument("--n1", type=int, default=DEFAULT_N1, help=f"small op count (default {DEFAULT_N1})")
    parser.add_argument("--n2", type=int, default=DEFAULT_N2, help=f"large op count (default {DEFAULT_N2})")
    parser.add_argument("--reps", type=int, default=1,
                        help="runs per count; the median Ir/op is reported (default 1)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="valgrind runs at once; counts do not depend on it (default 2)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one valgrind run may take (default 600)")
    parser.add_argument("--valgrind", default=shutil.which("valgrind") or "/usr/bin/valgrind")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="JSON results path (default bench/results/callgrind-<time>.json)")
    parser.add_argument("--markdown", default=None, metavar="PATH",
                        help="also write the markdown table to PATH")
    args = parser.parse_args(argv)
    if not 0 < args.n1 < args.n2:
        parser.error("need 0 < --n1 < --n2")
    if args.n1 % micro.BATCH or args.n2 % micro.BATCH:
        parser.error(f"--n1 and --n2 must be multiples of the batch size {micro.BATCH}")
    if args.reps < 1 or args.jobs < 1:
        parser.error("--reps and --jobs must be at least 1")
    if not Path(args.valgrind).is_file():
        parser.error(f"valgrind not found at {args.valgrind}")
    _common.resolve_loops(parser, args)
    args.bench = [b for b in args.bench.split(",") if b]
    unknown = [b for b in args.bench if b not in micro.BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {list(micro.BENCHES)}")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    loops, loop_info = _common.usable_loops(args.loops)
    if not loops:
        print("no loop could be created; nothing to measure", file=sys.stderr)
        return 1
    started = datetime.datetime.now()
    keys = [(bench, name, rep) for rep in range(args.reps) for bench in args.bench for name in loops]
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ringloop-callgrind-") as tmp, \
            ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            key: (pool.submit(count_ir, args.valgrind, key[0], _common.LOOPS[key[1]], args.n1,
                              args.timeout, Path(tmp)),
                  pool.submit(count_ir, args.valgrind, key[0], _common.LOOPS[key[1]], args.n2,
                              args.timeout, Path(tmp)))
            for key in keys
        }
        for key, (small, large) in futures.items():
            runs[key] = ir_per_op(small.result(), large.result())
            shown = runs[key].get("error") or fmt_ir(runs[key]["ir_per_op"]) + " Ir/op"
            print(f"{key[0]} {key[1]} (rep {key[2] + 1}): {shown}", file=sys.stderr)

    cells: dict[str, dict[str, float | None]] = {}
    for bench in args.bench:
        cells[bench] = {}
        for name in loops:
            values = [runs[(bench, name, rep)]["ir_per_op"] for rep in range(args.reps)
                      if "ir_per_op" in runs[(bench, name, rep)]]
            cells[bench][name] = statistics.median(values) if values else None
    table = markdown_table(args.bench, loops, cells)
    print(table)

    document = {
        "kind": "ringloop-callgrind",
        "started": started.isoformat(timespec="seconds"),
        **_common.environment(),
        "settings": {"n1": args.n1, "n2": args.n2, "reps": args.reps, "batch": micro.BATCH},
        "loops": loop_info,
        "results": {
            bench: {name: {"median_ir_per_op": cells[bench][name],
                           "runs": [runs[(bench, name, rep)] for rep in range(args.reps)]}
                    for name in loops}
            for bench in args.bench
        },
        "markdown": table,
    }
    _common.write_outputs(document, args.json, f"callgrind-{_common.stamp(started)}.json",
                          args.markdown, table)
    failed = [key for key, run in runs.items() if "error" in run]
    return 1 if failed and len(failed) == len(runs) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
