"""Subprocesses and pipes: spawns per second and pipe throughput per loop, loops side by side."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from _common import (
    LOOPS,
    WORKER_SLACK_S,
    add_cpu_option,
    add_loop_arguments,
    add_output_options,
    environment,
    load_factory,
    median_or_none,
    pin,
    resolve_loops,
    rotated,
    run_child,
    spread,
    stamp,
    usable_loops,
    write_outputs,
)

perf_counter = time.perf_counter
P = TypeVar("P", bound=asyncio.BaseProtocol)

KiB, MiB = 1024, 1024 * 1024

# The variants, in table order. kind:
#   spawn       asyncio.create_subprocess_exec(*argv) then proc.wait(), or with
#               stdout=PIPE proc.communicate(); `conc` of them in flight at once
#   pipe        one os.pipe(), both ends in the loop: connect_write_pipe on the
#               write end, connect_read_pipe on the read end
#   to_child    the loop writes into a pipe a child (wc -c) reads
#   from_child  a child (dd if=/dev/zero) writes into a pipe the loop reads
BENCHES: dict[str, dict[str, Any]] = {
    "spawn-c1": {"kind": "spawn", "argv": ["/bin/true"], "pipe": False, "conc": 1,
                 "what": "create_subprocess_exec('/bin/true') + wait(), one at a time"},
    "spawn-c10": {"kind": "spawn", "argv": ["/bin/true"], "pipe": False, "conc": 10,
                  "what": "the same, 10 in flight"},
    "spawn-echo-c1": {"kind": "spawn", "argv": ["/bin/echo", "hello"], "pipe": True, "conc": 1,
                      "what": "create_subprocess_exec('/bin/echo', 'hello', stdout=PIPE) + "
                              "communicate(), one at a time"},
    "spawn-echo-c10": {"kind": "spawn", "argv": ["/bin/echo", "hello"], "pipe": True, "conc": 10,
                       "what": "the same, 10 in flight"},
    "pipe-64k": {"kind": "pipe", "chunk": 64 * KiB,
                 "what": "os.pipe() in one loop: connect_write_pipe -> connect_read_pipe, "
                         "64 KiB writes, pause/resume_writing flow control"},
    "pipe-1m": {"kind": "pipe", "chunk": MiB, "what": "the same, 1 MiB writes"},
    "pipe-to-child-64k": {"kind": "to_child", "chunk": 64 * KiB,
                          "what": "connect_write_pipe, 64 KiB writes, into a child "
                                  "`wc -c` (the child reads)"},
    "pipe-to-child-1m": {"kind": "to_child", "chunk": MiB, "what": "the same, 1 MiB writes"},
    "pipe-from-child": {"kind": "from_child", "chunk": 64 * KiB,
                        "what": "connect_read_pipe from a child `dd if=/dev/zero bs=64K` "
                                "(the child writes)"},
}
GROUPS = ("spawn", "pipe")
UNITS = {"spawn": "spawns/s", "pipe": "MiB/s", "to_child": "MiB/s", "from_child": "MiB/s"}

# The defaults, and --quick's (each still overridable).
DEFAULTS = {"reps": 7, "spawns": 500, "spawn_warmup": 20, "mib": 256, "warmup_mib": 16,
            "time_limit": 10.0}
QUICK = {"reps": 3, "spawns": 150, "spawn_warmup": 10, "mib": 128, "warmup_mib": 8,
         "time_limit": 5.0}
# For the time estimate printed first: seconds a run costs beyond its work (a
# fresh interpreter, the loop's import), and typical rates on a 2-core VM
# (uvloop spawns at ~300/s, the others at ~1000/s; pipes 500-3000 MiB/s).
RUN_OVERHEAD_S = 0.3
TYPICAL_SPAWNS_PER_S = 800.0
TYPICAL_MIB_PER_S = 1000.0


# --------------------------------------------------------------------------
# Worker: one measurement on one fresh loop, in a fresh process.
# --------------------------------------------------------------------------


class Sender(asyncio.Protocol):
    """The write end's protocol: flow control as a future to await."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.lost: asyncio.Future[Exception | None] = loop.create_future()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or BrokenPipeError("write pipe closed while paused"))

    async def drain(self) -> None:
        if self.paused:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


class Receiver(asyncio.Protocol):
    """The read end's protocol: counts bytes; the clock starts once `warm` bytes are in."""

    def __init__(self, loop: asyncio.AbstractEventLoop, warm: int) -> None:
        self.n = 0
        self.warm = warm
        self.t0: float | None = None
        self.n0 = 0
        self.t1: float | None = None
        self.done: asyncio.Future[Exception | None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.n += len(data)
        if self.t0 is None and self.n >= self.warm:
            self.t0 = perf_counter()
            self.n0 = self.n

    def eof_received(self) -> None:
        self.t1 = perf_counter()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.t1 is None:
            self.t1 = perf_counter()
        if not self.done.done():
            self.done.set_result(exc)

    def rate(self) -> tuple[float, int]:
        """(MiB/s after the warm-up, bytes measured)."""
        if self.t0 is None or self.t1 is None or self.t1 <= self.t0 or self.n <= self.n0:
            raise RuntimeError(f"read {self.n} bytes, too few to time (warm-up {self.warm})")
        return (self.n - self.n0) / MiB / (self.t1 - self.t0), self.n - self.n0


async def send(sender: Sender, transport: asyncio.WriteTransport, chunk: bytes, nbytes: int,
               deadline: float) -> int:
    """Write `nbytes` in `chunk`s, awaiting the drain whenever the transport pauses us;
    stop early at `deadline`. Returns the bytes written."""
    write, size, sent = transport.write, len(chunk), 0
    while sent < nbytes and perf_counter() < deadline:
        write(chunk)
        sent += size
        if sender.paused:
            await sender.drain()
    return sent


async def settled(fut: asyncio.Future[Exception | None], what: str,
                  timeout: float = 10.0) -> None:
    """Wait for a protocol's end (`fut`: its connection_lost's exception, or None);
    raise that exception, or say what did not happen in time."""
    try:
        exc = await asyncio.wait_for(asyncio.shield(fut), timeout)
    except TimeoutError:
        raise RuntimeError(f"{what} did not happen within {timeout:g} s") from None
    if exc is not None:
        raise exc


def pipe_bytes(job: dict[str, Any]) -> tuple[int, int]:
    """A pipe run's (warm-up bytes, measured bytes)."""
    return int(job["warmup_mib"]) * MiB, int(job["mib"]) * MiB


def pipe_size(fd: int) -> int | None:
    try:
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None


async def run_spawn(loop: asyncio.AbstractEventLoop, spec: dict[str, Any],
                    job: dict[str, Any]) -> dict[str, Any]:
    """`spawns` subprocesses, `conc` at a time, after `spawn_warmup` unmeasured ones."""
    argv, piped, conc = spec["argv"], spec["pipe"], int(spec["conc"])
    expected = (" ".join(argv[1:]) + "\n").encode()
    create = asyncio.create_subprocess_exec
    pipe = asyncio.subprocess.PIPE

    async def batch(count: int, deadline: float) -> int:
        started = done = 0

        async def one_at_a_time() -> None:
            nonlocal started, done
            while started < count and perf_counter() < deadline:
                started += 1
                if piped:
                    proc = await create(*argv, stdout=pipe)
                    out, _ = await proc.communicate()
                    if out != expected:
                        raise RuntimeError(f"{argv} wrote {out!r}, not {expected!r}")
                else:
                    proc = await create(*argv)
                    await proc.wait()
                if proc.returncode != 0:
                    raise RuntimeError(f"{argv} exited with status {proc.returncode}")
                done += 1

        tasks = [loop.create_task(one_at_a_time()) for _ in range(conc)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return done

    deadline = perf_counter() + float(job["time_limit"])
    await batch(int(job["spawn_warmup"]), deadline)
    t0 = perf_counter()
    done = await batch(int(job["spawns"]), deadline)
    elapsed = perf_counter() - t0
    if not done:
        raise RuntimeError(f"no subprocess finished within --time-limit {job['time_limit']} s")
    return {"value": done / elapsed, "spawns": done, "seconds": elapsed,
            "partial": done < int(job["spawns"])}


async def run_pipe(loop: asyncio.AbstractEventLoop, spec: dict[str, Any],
                   job: dict[str, Any]) -> dict[str, Any]:
    """Both ends in this loop: warm-up bytes, then `mib` MiB, then EOF."""
    chunk = bytes(spec["chunk"])
    warm, total = pipe_bytes(job)
    rfd, wfd = os.pipe()
    size = pipe_size(rfd)
    # Blocking calls in these coroutines (open, Popen) come before the clock starts.
    rfile = open(rfd, "rb", buffering=0)  # noqa: SIM115, ASYNC230 - the transport closes it
    wfile = open(wfd, "wb", buffering=0)  # noqa: SIM115, ASYNC230 - the transport closes it
    rtransport = wtransport = None
    try:
        rtransport, receiver = await loop.connect_read_pipe(lambda: Receiver(loop, warm), rfile)
        wtransport, sender = await loop.connect_write_pipe(lambda: Sender(loop), wfile)
        deadline = perf_counter() + float(job["time_limit"])
        sent = await send(sender, wtransport, chunk, warm + total, deadline)
        wtransport.close()
        await settled(sender.lost, "the write transport's connection_lost after close()")
        await settled(receiver.done, "EOF on the read end after the writer closed")
    finally:
        for tr, f in ((wtransport, wfile), (rtransport, rfile)):
            if tr is not None:
                tr.close()
            elif not f.closed:
                f.close()
    if receiver.n != sent:
        raise RuntimeError(f"wrote {sent} bytes but read {receiver.n}")
    value, measured = receiver.rate()
    return {"value": value, "bytes": measured, "partial": sent < warm + total,
            "pipe_size": size}


@contextlib.asynccontextmanager
async def pipe_with_child(loop: asyncio.AbstractEventLoop, *, loop_writes: bool,
                          protocol_factory: Callable[[], P], argv: list[str],
                          child_cpu: int | None
                          ) -> AsyncIterator[tuple[Any, P, subprocess.Popen[bytes], int | None]]:
    """An os.pipe() between this loop and a child: yields (the loop's transport, its
    protocol, the child, the pipe's size).

    `loop_writes`: the loop has the write end (connect_write_pipe) and the child `argv`
    reads the pipe as its stdin, its stdout piped; otherwise the loop reads
    (connect_read_pipe) what the child writes as its stdout, stdin /dev/null. Its
    stderr is piped. The transport comes first: a loop without pipes says so with no
    child to clean up. The child is moved to `child_cpu`. On exit the transport is
    closed and a child still running killed and reaped.
    """
    rfd, wfd = os.pipe()
    size = pipe_size(rfd)
    ours, theirs = (wfd, rfd) if loop_writes else (rfd, wfd)
    # Blocking calls here (open, Popen) come before the caller starts its clock.
    mode = "wb" if loop_writes else "rb"
    pipe = open(ours, mode, buffering=0)  # noqa: SIM115, ASYNC230 - the transport closes it
    connect = loop.connect_write_pipe if loop_writes else loop.connect_read_pipe
    stdio = ({"stdin": theirs, "stdout": subprocess.PIPE} if loop_writes
             else {"stdin": subprocess.DEVNULL, "stdout": theirs})
    child: subprocess.Popen[bytes] | None = None
    transport = None
    try:
        try:
            transport, protocol = await connect(protocol_factory, pipe)
        except BaseException:
            pipe.close()
            raise
        child = subprocess.Popen(  # noqa: ASYNC220 - before the clock, not the loop's spawn
            argv, stderr=subprocess.PIPE, **stdio)
        place_child(child.pid, child_cpu)
        os.close(theirs)
        theirs = -1
        yield transport, protocol, child, size
    finally:
        if theirs >= 0:
            os.close(theirs)
        if transport is not None:
            transport.close()
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()


async def run_to_child(loop: asyncio.AbstractEventLoop, spec: dict[str, Any],
                       job: dict[str, Any]) -> dict[str, Any]:
    """The loop writes into a pipe `wc -c` reads (on --child-cpu); the clock runs from the
    end of the warm-up to the write transport's connection_lost (all bytes in the pipe)."""
    chunk = bytes(spec["chunk"])
    warm, total = pipe_bytes(job)
    async with pipe_with_child(loop, loop_writes=True, protocol_factory=lambda: Sender(loop),
                               argv=[job["wc"], "-c"], child_cpu=job.get("child_cpu")
                               ) as (wtransport, sender, child, size):
        deadline = perf_counter() + float(job["time_limit"])
        sent = await send(sender, wtransport, chunk, warm, deadline)
        t0 = perf_counter()
        measured = await send(sender, wtransport, chunk, total, deadline)
        wtransport.close()
        await settled(sender.lost, "the write transport's connection_lost after close()",
                      float(job["time_limit"]) + 5.0)
        t1 = perf_counter()
        if not measured:
            raise RuntimeError(f"the warm-up took all of --time-limit {job['time_limit']} s")
        sent += measured
        out, err = child.communicate(timeout=10.0)  # the last <= 64 KiB; not timed
    if child.returncode != 0 or out.split()[:1] != [str(sent).encode()]:
        raise RuntimeError(f"wc -c read {out.decode(errors='replace').strip() or '?'} bytes of "
                           f"{sent} (status {child.returncode}, {err.decode(errors='replace')!r})")
    return {"value": measured / MiB / (t1 - t0), "bytes": measured,
            "partial": measured < total, "pipe_size": size}


async def run_from_child(loop: asyncio.AbstractEventLoop, spec: dict[str, Any],
                         job: dict[str, Any]) -> dict[str, Any]:
    """`dd if=/dev/zero bs=64K` (on --child-cpu) writes into a pipe the loop reads; the
    clock runs from the end of the warm-up bytes to EOF."""
    chunk = int(spec["chunk"])
    warm, total = pipe_bytes(job)
    argv = [job["dd"], "if=/dev/zero", f"bs={chunk}", f"count={(warm + total) // chunk}",
            "status=none"]
    async with pipe_with_child(loop, loop_writes=False,
                               protocol_factory=lambda: Receiver(loop, warm), argv=argv,
                               child_cpu=job.get("child_cpu")) as (_, receiver, child, size):
        done, _ = await asyncio.wait([receiver.done], timeout=float(job["time_limit"]))
        partial = not done
        if partial:
            child.kill()  # bounded: EOF follows, what arrived is timed
        await settled(receiver.done, "EOF on the read end after dd ended")
        _, err = child.communicate(timeout=10.0)
    if not partial and (child.returncode != 0 or receiver.n != warm + total):
        raise RuntimeError(f"read {receiver.n} bytes of {warm + total} (dd status "
                           f"{child.returncode}, {err.decode(errors='replace')!r})")
    value, measured = receiver.rate()
    return {"value": value, "bytes": measured, "partial": partial, "pipe_size": size}


def place_child(pid: int, cpu: int | None) -> None:
    """Move a child we started to its own CPU (it starts on ours, inherited)."""
    if cpu is not None and cpu >= 0 and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(pid, {cpu})
        except OSError:
            pass  # already gone, or that CPU is not ours: it runs where it is


RUNNERS: dict[str, Callable[[asyncio.AbstractEventLoop, dict[str, Any], dict[str, Any]],
                            Awaitable[dict[str, Any]]]] = {
    "spawn": run_spawn, "pipe": run_pipe, "to_child": run_to_child, "from_child": run_from_child,
}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """One variant on one fresh loop. A NotImplementedError anywhere (the loop lacks
    subprocesses or pipes) is {'unsupported': ...}, any other failure {'error': ...}."""
    pin(job.get("cpu"))
    spec = BENCHES[job["bench"]]
    loop = load_factory(job["factory"])()
    asyncio.set_event_loop(loop)  # as asyncio.run() does: some child watchers look for it
    # The work stops itself at time_limit; this bounds a loop that hangs.
    bound = float(job["time_limit"]) + 15.0
    try:
        result = loop.run_until_complete(
            asyncio.wait_for(RUNNERS[spec["kind"]](loop, spec, job), bound))
    except NotImplementedError as exc:
        return {"unsupported": f"NotImplementedError: {exc}"}
    except TimeoutError:
        return {"error": f"the run did not finish within {bound:.0f} s"}
    except Exception as exc:  # noqa: BLE001 - said, not raised: the parent reads it
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        with contextlib.suppress(Exception):  # the result is already decided
            loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()
    return result


# --------------------------------------------------------------------------
# Parent: a fresh process per (variant, loop, repetition), interleaved.
# --------------------------------------------------------------------------


def summarise(benches: Sequence[str], loops: Sequence[str],
              runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells = []
    for bench in benches:
        for name in loops:
            mine = [r["result"] for r in runs if r["bench"] == bench and r["loop"] == name]
            good = [r for r in mine if "value" in r]
            values = [r["value"] for r in good]
            unsupported = next((r["unsupported"] for r in mine if "unsupported" in r), None)
            cells.append({
                "bench": bench, "loop": name, "unit": UNITS[BENCHES[bench]["kind"]],
                "runs": len(mine), "counted": len(good), "partial": sum(
                    1 for r in good if r.get("partial")),
                "median": median_or_none(values), "values": values, "spread": spread(values),
                "unsupported": unsupported,
                "errors": [r["error"] for r in mine if "error" in r],
            })
    return cells


def fmt_value(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def bench_list(text: str) -> list[str]:
    names: list[str] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if item in GROUPS:
            names += [b for b in BENCHES if b.split("-", 1)[0] == item]
        elif item in BENCHES:
            names.append(item)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown benchmark {item!r}; known: {', '.join(GROUPS)} (groups) or "
                f"{', '.join(BENCHES)}")
    return list(dict.fromkeys(names))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    q = QUICK
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run: {q['reps']} repetitions, {q['spawns']} spawns, "
                             f"{q['mib']} MiB per pipe run, {q['time_limit']:g} s bound "
                             "(each still overridable)")
    parser.add_argument("--reps", type=int, default=DEFAULTS["reps"],
                        help="repetitions per cell, interleaved (default 7)")
    parser.add_argument("--bench", type=bench_list, default=list(BENCHES),
                        help="comma-separated variants, or the groups 'spawn' and 'pipe' "
                             f"(default all: {','.join(BENCHES)})")
    add_loop_arguments(parser)
    parser.add_argument("--spawns", type=int, default=DEFAULTS["spawns"],
                        help="subprocesses per spawn run, measured (default 500)")
    parser.add_argument("--spawn-warmup", type=int, default=DEFAULTS["spawn_warmup"],
                        help="subprocesses first, same loop, not measured (default 20)")
    parser.add_argument("--mib", type=int, default=DEFAULTS["mib"],
                        help="MiB through the pipe per pipe run, measured (default 256)")
    parser.add_argument("--warmup-mib", type=int, default=DEFAULTS["warmup_mib"],
                        help="MiB through the same pipe first, not measured (default 16)")
    parser.add_argument("--time-limit", type=float, default=DEFAULTS["time_limit"],
                        help="seconds a run's work (warm-up included) may take; past it the "
                             "run stops and the rate of what it measured counts, marked "
                             "partial (default 10)")
    add_cpu_option(parser, "--cpu", 0, "the loop's process is pinned to (the spawned "
                   "children inherit it)")
    add_cpu_option(parser, "--child-cpu", 1, "the pipe rows' child (wc, dd) is moved to")
    add_output_options(parser, "proc")
    if "--quick" in argv:
        parser.set_defaults(**QUICK)
    args = parser.parse_args(argv)
    if args.reps < 1 or args.spawns < 1 or args.mib < 1 or args.spawn_warmup < 0 \
            or args.warmup_mib < 0 or args.time_limit <= 0:
        parser.error("--reps, --spawns and --mib must be at least 1, --spawn-warmup and "
                     "--warmup-mib not negative, --time-limit positive")
    if not args.bench:
        parser.error("--bench: no benchmark named")
    resolve_loops(parser, args)
    return args


def main(argv: Sequence[str]) -> int:
    import report  # bench/report.py: the table

    args = parse_args(argv)
    started = datetime.datetime.now()
    tools = {"wc": shutil.which("wc"), "dd": shutil.which("dd")}
    missing = {b for b in args.bench for k, tool in (("to_child", "wc"), ("from_child", "dd"))
               if BENCHES[b]["kind"] == k and not tools[tool]}
    loops, loop_info = usable_loops(args.loops)
    if not loops:
        print("no loop could be created; nothing to measure", file=sys.stderr)
        return 1
    per_rep = len(args.bench) * len(loops)
    guess = sum((args.spawns + args.spawn_warmup) / TYPICAL_SPAWNS_PER_S
                if BENCHES[b]["kind"] == "spawn"
                else (args.mib + args.warmup_mib) / TYPICAL_MIB_PER_S
                for b in args.bench) * len(loops)
    print(f"proc: {len(args.bench)} variant(s) x {len(loops)} loop(s) = {per_rep} runs per "
          f"repetition, x {args.reps}; each bounded by {args.time_limit:g} s: about "
          f"{(guess + per_rep * RUN_OVERHEAD_S) * args.reps / 60:.1f} min "
          "at typical rates", file=sys.stderr)
    runs: list[dict[str, Any]] = []
    unsupported: dict[tuple[str, str], str] = {}
    timeout = args.time_limit + 15.0 + WORKER_SLACK_S
    t_start = time.monotonic()
    for rep in range(args.reps):
        for bench in rotated(args.bench, rep):
            shown = []
            for name in rotated(loops, rep):
                if (bench, name) in unsupported:
                    continue  # said once; it will not change within this run
                if bench in missing:
                    tool = "wc" if BENCHES[bench]["kind"] == "to_child" else "dd"
                    result: dict[str, Any] = {"error": f"{tool} is not on PATH"}
                else:
                    job = {"bench": bench, "factory": LOOPS[name], "cpu": args.cpu,
                           "child_cpu": args.child_cpu, "spawns": args.spawns,
                           "spawn_warmup": args.spawn_warmup, "mib": args.mib,
                           "warmup_mib": args.warmup_mib, "time_limit": args.time_limit,
                           **tools}
                    result = run_child(Path(__file__), "--worker", job, timeout)
                runs.append({"rep": rep, "bench": bench, "loop": name, "result": result})
                if "unsupported" in result:
                    unsupported[(bench, name)] = result["unsupported"]
                    shown.append(f"{name} unsupported")
                elif "error" in result:
                    shown.append(f"{name} FAILED ({result['error'][:160]})")
                else:
                    shown.append(f"{name} {fmt_value(result['value'])}"
                                 + (" (partial)" if result.get("partial") else ""))
            elapsed = time.monotonic() - t_start
            print(f"rep {rep + 1}/{args.reps} {bench} [{UNITS[BENCHES[bench]['kind']]}, "
                  f"{elapsed / 60:.1f} min]: " + ", ".join(shown), file=sys.stderr)

    document: dict[str, Any] = {
        "kind": "ringloop-proc",
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round((datetime.datetime.now() - started).total_seconds(), 1),
        **environment(),
        "settings": {"reps": args.reps, "benches": args.bench, "loops": args.loops,
                     "spawns": args.spawns, "spawn_warmup": args.spawn_warmup,
                     "mib": args.mib, "warmup_mib": args.warmup_mib,
                     "time_limit": args.time_limit, "cpu": args.cpu,
                     "child_cpu": args.child_cpu, "tools": tools,
                     "variants": {b: {k: v for k, v in BENCHES[b].items()}
                                  for b in args.bench}},
        "loops": loop_info,
        "cells": summarise(args.bench, loops, runs),
        "runs": runs,
    }
    text = report.proc_markdown(document)
    document["markdown"] = text
    print(text)
    write_outputs(document, args.json, f"proc-{stamp(started)}.json", args.markdown, text)
    measured = any(c["counted"] for c in document["cells"])
    return 0 if measured else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(measure(json.loads(sys.argv[2]))))
    else:
        sys.exit(main(sys.argv[1:]))
