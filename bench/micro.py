"""Event-loop micro-benchmarks: operations per second of loop primitives, loops side by side."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import itertools
import json
import math
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The loop registry and the helpers every bench script shares (re-exported:
# callgrind.py and others read them from here too).
from _common import (  # noqa: F401
    HERE,
    LOOPS,
    OURS_PREFIX,
    PEERS,
    WORKER_SLACK_S,
    add_loop_arguments,
    environment,
    fmt_ops,
    fmt_ratio,
    load_factory,
    median_or_none,
    pin,
    probe,
    resolve_loops,
    rotated,
    spread,
    stamp,
    usable_loops,
    write_outputs,
)
from _common import run_child as _run_script

# Operations per batch. Every benchmark works in batches and checks its
# deadline (or its operation budget) once per batch only.
BATCH = 1000

# How long a benchmark waits, after its last batch, for callbacks still due.
DRAIN_LIMIT_S = 5.0

perf_counter = time.perf_counter


class Tally:
    """A C-level callback that counts its own calls; value() reads the count."""

    __slots__ = ("_count", "_reads", "hit")

    def __init__(self) -> None:
        self._count = itertools.count()
        self._reads = 0
        # The benchmarked callback: itertools.count.__next__ costs next to
        # nothing and cannot be skipped without the count showing it.
        self.hit: Callable[[], int] = self._count.__next__

    def value(self) -> int:
        seen = next(self._count) - self._reads
        self._reads += 1
        return seen


# --------------------------------------------------------------------------
# Benchmarks. Each runs on `loop` (not running) until it has done at least
# `max_ops` operations or perf_counter() has passed `deadline`, checking both
# once per batch, and returns the number of operations it did. The work the
# benchmark measures is the same code on every loop.
# --------------------------------------------------------------------------


def _run_driver(loop: asyncio.AbstractEventLoop, tally: Tally, batch: Callable[[], int],
                max_ops: int, deadline: float) -> int:
    """Run `batch` once per loop iteration until done; stop once all its callbacks ran."""
    call_soon = loop.call_soon
    scheduled = 0
    give_up = math.inf

    def driver() -> None:
        nonlocal scheduled, give_up
        if give_up == math.inf and scheduled < max_ops and perf_counter() < deadline:
            scheduled += batch()
            call_soon(driver)
            return
        # Draining: wait for the last callbacks (timers: up to 2 ms), but a
        # loop that lost some must not keep the run going.
        if give_up == math.inf:
            give_up = perf_counter() + DRAIN_LIMIT_S
        if tally.value() >= scheduled or perf_counter() > give_up:
            loop.stop()
        else:
            call_soon(driver)

    call_soon(driver)
    loop.run_forever()
    ran = tally.value()
    if ran != scheduled:
        raise RuntimeError(f"{scheduled} callbacks scheduled but {ran} ran")
    return ran


def bench_call_soon(loop: asyncio.AbstractEventLoop, max_ops: int, deadline: float) -> int:
    """loop.call_soon(cb) in batches; ops = callbacks run."""
    tally = Tally()
    call_soon, hit = loop.call_soon, tally.hit
    repeat = itertools.repeat

    def batch() -> int:
        deque(map(call_soon, repeat(hit, BATCH)), 0)
        return BATCH

    return _run_driver(loop, tally, batch, max_ops, deadline)


def bench_call_later(loop: asyncio.AbstractEventLoop, max_ops: int, deadline: float) -> int:
    """loop.call_later(0, cb) in batches; ops = timers fired."""
    tally = Tally()
    call_later, hit = loop.call_later, tally.hit
    repeat = itertools.repeat

    def batch() -> int:
        deque(map(call_later, repeat(0, BATCH), repeat(hit, BATCH)), 0)
        return BATCH

    return _run_driver(loop, tally, batch, max_ops, deadline)


def bench_timers(loop: asyncio.AbstractEventLoop, max_ops: int, deadline: float) -> int:
    """loop.call_later(d, cb) with d in 1-2 ms, pipelined; ops = timers fired."""
    tally = Tally()
    call_later, hit = loop.call_later, tally.hit
    repeat = itertools.repeat
    # Distinct positive delays: the timer queue really orders them (some
    # loops turn a zero delay into call_soon). The driver schedules a batch
    # every loop iteration, so the loop never idles while timers are due;
    # only the last ~2 ms, waiting for the final batch, are idle.
    delays = [0.001 + i * (0.001 / BATCH) for i in range(BATCH)]

    def batch() -> int:
        deque(map(call_later, delays, repeat(hit, BATCH)), 0)
        return BATCH

    return _run_driver(loop, tally, batch, max_ops, deadline)


def bench_sleep0(loop: asyncio.AbstractEventLoop, max_ops: int, deadline: float) -> int:
    """await asyncio.sleep(0) in one task; ops = task switches."""
    sleep = asyncio.sleep

    async def main() -> int:
        done = 0
        while done < max_ops and perf_counter() < deadline:
            for _ in range(BATCH):
                await sleep(0)
            done += BATCH
        return done

    return loop.run_until_complete(main())


def bench_create_task(loop: asyncio.AbstractEventLoop, max_ops: int, deadline: float) -> int:
    """await loop.create_task(trivial coroutine); ops = tasks."""
    create_task = loop.create_task

    async def trivial() -> None:
        pass

    async def main() -> int:
        done = 0
        while done < max_ops and perf_counter() < deadline:
            for _ in range(BATCH):
                await create_task(trivial())
            done += BATCH
        return done

    return loop.run_until_complete(main())


def bench_future(loop: asyncio.AbstractEventLoop, max_ops: int, deadline: float) -> int:
    """create_future, call_soon(fut.set_result, None), await fut; ops = round trips."""
    create_future, call_soon = loop.create_future, loop.call_soon

    async def main() -> int:
        done = 0
        while done < max_ops and perf_counter() < deadline:
            for _ in range(BATCH):
                fut = create_future()
                call_soon(fut.set_result, None)
                await fut
            done += BATCH
        return done

    return loop.run_until_complete(main())


def bench_threadsafe(loop: asyncio.AbstractEventLoop, max_ops: int, deadline: float,
                     producer_cpu: int | None = None) -> int:
    """Another thread calls call_soon_threadsafe(cb) in batches; ops = callbacks run."""
    tally = Tally()
    threadsafe, call_soon, hit = loop.call_soon_threadsafe, loop.call_soon, tally.hit
    repeat = itertools.repeat
    scheduled = 0

    def finish() -> None:
        # The producer sends this last; FIFO order means every callback it
        # sent before has run. Poll anyway rather than trust that.
        if tally.value() >= scheduled:
            loop.stop()
        else:
            call_soon(finish)

    def produce() -> None:
        nonlocal scheduled
        try:
            if producer_cpu is not None:
                # Linux: pid 0 is the calling thread, so this pins the producer only.
                os.sched_setaffinity(0, {producer_cpu})
            while scheduled < max_ops and perf_counter() < deadline:
                deque(map(threadsafe, repeat(hit, BATCH)), 0)
                scheduled += BATCH
            threadsafe(finish)
        except BaseException:
            # Nothing can tell the loop to stop now: end this worker process,
            # whose parent reports the error's last line.
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)

    producer = threading.Thread(target=produce, name="threadsafe-producer")
    call_soon(producer.start)
    loop.run_forever()
    producer.join()
    ran = tally.value()
    if ran != scheduled:
        raise RuntimeError(f"{scheduled} callbacks scheduled but {ran} ran")
    return ran


BenchFn = Callable[[asyncio.AbstractEventLoop, int, float], int]

BENCHES: dict[str, BenchFn] = {
    "call_soon": bench_call_soon,
    "call_later": bench_call_later,
    "timers": bench_timers,
    "sleep0": bench_sleep0,
    "create_task": bench_create_task,
    "future": bench_future,
    "call_soon_threadsafe": bench_threadsafe,
}


# --------------------------------------------------------------------------
# Worker: one measurement in this process.
# --------------------------------------------------------------------------


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Run one benchmark on one fresh loop; by time (duration) or by count (ops)."""
    pin(job.get("cpu"))
    fn: BenchFn = BENCHES[job["bench"]]
    if fn is bench_threadsafe and job.get("producer_cpu") is not None:
        fn = functools.partial(bench_threadsafe, producer_cpu=int(job["producer_cpu"]))

    loop = load_factory(job["factory"])()
    try:
        if job.get("ops"):
            # Count mode (callgrind): fixed work, no clock decisions.
            fn(loop, int(job.get("warmup_ops", BATCH)), math.inf)
            t0 = perf_counter()
            ops = fn(loop, int(job["ops"]), math.inf)
        else:
            fn(loop, sys.maxsize, perf_counter() + float(job["warmup"]))
            t0 = perf_counter()
            ops = fn(loop, sys.maxsize, t0 + float(job["duration"]))
        elapsed = perf_counter() - t0
    finally:
        loop.close()
    return {"ops": ops, "seconds": elapsed, "ops_per_s": ops / elapsed}


# --------------------------------------------------------------------------
# Parent: fresh subprocess per measurement, interleaved repetitions, table.
# --------------------------------------------------------------------------


def run_child(mode: str, payload: dict[str, Any] | str, timeout: float) -> dict[str, Any]:
    """Run this file in a fresh interpreter; return its JSON answer or {'error': ...}."""
    return _run_script(Path(__file__), mode, payload, timeout)


def medians(results: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float | None]]:
    return {
        bench: {loop: median_or_none(vals) for loop, vals in per_loop.items()}
        for bench, per_loop in results.items()
    }


def markdown_table(benches: Sequence[str], loops: Sequence[str],
                   results: dict[str, dict[str, list[float]]]) -> str:
    """Medians in ops/s, then each ringloop variant against uvloop and the best peer."""
    med = medians(results)
    ours = [name for name in loops if name.startswith(OURS_PREFIX)]
    peers = [name for name in PEERS if name in loops]
    header = ["benchmark"] + list(loops)
    if "uvloop" in loops:
        header += [f"{name}/uvloop" for name in ours]
    if peers:
        header += [f"{name}/best({','.join(peers)})" for name in ours]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for bench in benches:
        row = med[bench]
        cells = [bench] + [fmt_ops(row[name]) for name in loops]
        if "uvloop" in loops:
            cells += [fmt_ratio(row[name], row["uvloop"]) for name in ours]
        if peers:
            known = [v for p in peers if (v := row[p])]
            best = max(known) if known else None
            cells += [fmt_ratio(row[name], best) for name in ours]
        lines.append("| " + " | ".join(cells) + " |")
    reps = max((len(v) for r in results.values() for v in r.values()), default=0)
    note = f"Median of {reps} repetitions, ops/s (higher is better)."
    spreads = [
        (value, bench, name)
        for bench in benches
        for name in loops
        if (value := spread(results[bench][name])) is not None
    ]
    if spreads:
        widest, bench, name = max(spreads)
        note += f" Widest spread (max-min)/median: {widest * 100:.1f}% ({bench}, {name})."
    lines += ["", note]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5, help="repetitions per cell (default 5)")
    parser.add_argument("--bench", default=",".join(BENCHES),
                        help=f"comma-separated subset of: {','.join(BENCHES)}")
    add_loop_arguments(parser)
    parser.add_argument("--duration", type=float, default=0.5,
                        help="measured seconds per run, after the warm-up (default 0.5)")
    parser.add_argument("--warmup", type=float, default=0.1,
                        help="warm-up seconds per run, same loop, not measured (default 0.1)")
    parser.add_argument("--cpu", type=int, default=0,
                        help="CPU the worker process is pinned to; -1: no pinning (default 0)")
    parser.add_argument("--producer-cpu", type=int, default=None,
                        help="pin the call_soon_threadsafe producer thread to this CPU "
                             "(default: it inherits the worker's CPU)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="JSON results path (default bench/results/micro-<time>.json)")
    parser.add_argument("--markdown", default=None, metavar="PATH",
                        help="also write the markdown table to PATH")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    resolve_loops(parser, args)
    args.bench = [b for b in args.bench.split(",") if b]
    unknown = [b for b in args.bench if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {list(BENCHES)}")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    loops, loop_info = usable_loops(args.loops)
    if not loops:
        print("no loop could be created; nothing to measure", file=sys.stderr)
        return 1
    results: dict[str, dict[str, list[float]]] = {b: {n: [] for n in loops} for b in args.bench}
    failures: list[dict[str, Any]] = []
    timeout = args.warmup + args.duration + WORKER_SLACK_S
    started = time.time()
    for rep in range(args.reps):
        # Interleaved: every loop once per repetition, the order rotated so
        # no loop always runs first or last.
        order = rotated(loops, rep)
        for bench in args.bench:
            shown = []
            for name in order:
                job = {"bench": bench, "factory": LOOPS[name], "duration": args.duration,
                       "warmup": args.warmup, "cpu": args.cpu, "producer_cpu": args.producer_cpu}
                answer = run_child("--worker", job, timeout)
                if "error" in answer:
                    failures.append({"rep": rep, "bench": bench, "loop": name, "error": answer["error"]})
                    shown.append(f"{name} FAILED ({answer['error']})")
                else:
                    results[bench][name].append(answer["ops_per_s"])
                    shown.append(f"{name} {fmt_ops(answer['ops_per_s'])}")
            print(f"rep {rep + 1}/{args.reps} {bench}: " + ", ".join(shown), file=sys.stderr)

    table = markdown_table(args.bench, loops, results)
    print(table)
    if failures:
        print(f"\n{len(failures)} measurement(s) failed; see the JSON file.", file=sys.stderr)

    med = medians(results)
    document = {
        "kind": "ringloop-micro",
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - started, 1),
        **environment(),
        "settings": {"reps": args.reps, "duration": args.duration, "warmup": args.warmup,
                     "cpu": args.cpu, "producer_cpu": args.producer_cpu, "batch": BATCH},
        "loops": loop_info,
        "results": {
            bench: {name: {"median_ops_per_s": med[bench][name], "ops_per_s": results[bench][name]}
                    for name in loops}
            for bench in args.bench
        },
        "failures": failures,
        "markdown": table,
    }
    when = datetime.datetime.fromtimestamp(started)
    write_outputs(document, args.json, f"micro-{stamp(when)}.json", args.markdown, table)
    return 1 if failures and not any(v for r in results.values() for v in r.values()) else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(measure(json.loads(sys.argv[2]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "--probe":
        print(json.dumps(probe(sys.argv[2])))
    else:
        sys.exit(main(sys.argv[1:]))
