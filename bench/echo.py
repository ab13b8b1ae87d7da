"""TCP echo over loop.sock_*: requests/s and round-trip latency per loop, native load generator."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from _common import (
    HERE,
    LOOPS,
    OURS_PREFIX,
    PEERS,
    add_loop_arguments,
    environment,
    fmt_ops,
    fmt_ratio,
    load_factory,
    median_or_none,
    pin,
    resolve_loops,
    rotated,
    spread,
    stamp,
    usable_loops,
    write_outputs,
)

LOADGEN_SRC = HERE / "loadgen.c"
# bench/build/ is gitignored (the repository's "build/" pattern).
LOADGEN_BIN = HERE / "build" / "loadgen"
CFLAGS = ["-O2", "-Wall"]

# The most one sock_recv asks for.
RECV_SIZE = 65536
# How long a server may take to start listening, and to go after SIGTERM.
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
# A server ends itself this long after its load should have ended, in case
# the parent is gone; the load generator has its own deadline too.
SERVER_SLACK_S = 60.0
CLIENT_SLACK_S = 20.0
# --syscalls counts every system call (raw_syscalls:sys_enter) and every
# failed one (raw_syscalls:sys_exit, ret < 0), and breaks them down over the
# calls named here; the rest show as "(other)". Not all ~360 syscalls:*
# tracepoints: perf takes ~40 ms to close each one, 15 s per run.
PERF_CALLS = ("read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
              "recvmmsg", "sendmmsg", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl",
              "poll", "ppoll", "select", "pselect6", "io_uring_enter", "io_uring_register",
              "accept", "accept4", "connect", "close", "shutdown", "ioctl", "fcntl", "setsockopt",
              "getsockopt", "getsockname", "getpeername", "futex", "brk", "mmap", "munmap",
              "mremap", "madvise", "mprotect", "eventfd2", "rt_sigprocmask", "getpid", "gettid",
              "clock_gettime", "sched_yield")
# Of those, the ones whose failures are counted one by one.
PERF_FAILURES = ("read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
                 "accept4", "connect", "epoll_ctl", "io_uring_enter")
# How long a system call counter may take to write its summary and go.
COUNTER_GRACE_S = 30.0
# Server stderr kept in the results, per failed run.
STDERR_TAIL = 4000


# --------------------------------------------------------------------------
# Server: one process per run, one loop, one task per connection.
# --------------------------------------------------------------------------


def serve(job: dict[str, Any]) -> int:
    """Echo with sock_accept/sock_recv/sock_sendall on 127.0.0.1 until killed or the lifetime ends."""
    pin(job.get("cpu"))
    loop = load_factory(job["factory"])()
    reported: set[str] = set()

    def report(where: str, exc: BaseException) -> None:
        # Each kind of failure once, with its traceback: 100 connections
        # failing the same way should not bury the first one.
        key = f"{where}:{type(exc).__name__}:{exc}"
        if key in reported:
            return
        reported.add(key)
        print(f"echo server ({where}): {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()

    def on_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if exc is not None:
            report(f"loop: {context.get('message', '')}", exc)
        else:
            print(f"echo server (loop): {context.get('message')}", file=sys.stderr, flush=True)

    loop.set_exception_handler(on_loop_error)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    # Room for every connection of the burst (the kernel caps it at
    # net.core.somaxconn): with a full accept queue the kernel drops
    # handshakes, and a connection then waits for a retransmit, 1 s or more.
    listener.listen(max(1024, int(job.get("conns", 0))))
    listener.setblocking(False)

    async def handle(conn: socket.socket) -> None:
        recv, sendall = loop.sock_recv, loop.sock_sendall
        try:
            while True:
                data = await recv(conn, RECV_SIZE)
                if not data:
                    break
                await sendall(conn, data)
        except ConnectionError:
            pass  # the client went away: its business
        except Exception as exc:  # noqa: BLE001 - any other failure is a finding
            report("connection", exc)
        finally:
            conn.close()

    async def accept_forever() -> None:
        try:
            while True:
                conn, _ = await loop.sock_accept(listener)
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                loop.create_task(handle(conn))
        except BaseException as exc:
            report("accept", exc)
            loop.stop()
            raise

    loop.call_later(float(job["lifetime"]), loop.stop)
    acceptor = loop.create_task(accept_forever())
    ready = {"port": listener.getsockname()[1], "pid": os.getpid(),
             "class": f"{type(loop).__module__}.{type(loop).__qualname__}"}
    print(json.dumps(ready), flush=True)
    loop.run_forever()
    return 1 if acceptor.done() else 0  # the acceptor ends only by failing


# --------------------------------------------------------------------------
# Parent: build the load generator, one server + client pair per run.
# --------------------------------------------------------------------------


def build_loadgen() -> Path:
    """Compile bench/loadgen.c into bench/build/ unless the binary is up to date."""
    stamp_file = LOADGEN_BIN.with_suffix(".flags")
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("echo.py: no C compiler (cc or gcc, or $CC) to build bench/loadgen.c")
    flags = " ".join([cc, *CFLAGS])
    if (LOADGEN_BIN.exists() and stamp_file.exists() and stamp_file.read_text() == flags
            and LOADGEN_BIN.stat().st_mtime >= LOADGEN_SRC.stat().st_mtime):
        return LOADGEN_BIN
    LOADGEN_BIN.parent.mkdir(parents=True, exist_ok=True)
    tmp = LOADGEN_BIN.with_suffix(f".tmp{os.getpid()}")
    proc = subprocess.run([cc, *CFLAGS, "-o", str(tmp), str(LOADGEN_SRC)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SystemExit(f"echo.py: building {LOADGEN_SRC} failed:\n{proc.stderr}")
    tmp.replace(LOADGEN_BIN)
    stamp_file.write_text(flags)
    print(f"built {LOADGEN_BIN} ({flags})", file=sys.stderr)
    return LOADGEN_BIN


def read_line(stream: IO[bytes], timeout: float) -> bytes | None:
    """One line from a pipe within `timeout` seconds, else None (EOF included)."""
    fd, data, deadline = stream.fileno(), b"", time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    return data.split(b"\n", 1)[0]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
         grace: float = STOP_TIMEOUT_S) -> int | None:
    """End a child we started (its own process group): `sig`, then SIGKILL after `grace` s."""
    for signum, wait in ((sig, grace), (signal.SIGKILL, STOP_TIMEOUT_S)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, signum)
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    if proc.poll() is None:
        print(f"echo.py: process {proc.pid} did not end after SIGKILL", file=sys.stderr)
    return proc.returncode


def tail(stream: IO[bytes], limit: int = STDERR_TAIL) -> str:
    stream.seek(0)
    text = stream.read().decode(errors="replace")
    return text[-limit:]


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def traced(pid: int) -> bool:
    """Whether every thread of `pid` has a tracer attached (strace is in)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/status") as status:
                for line in status:
                    if line.startswith("TracerPid:"):
                        if int(line.split()[1]) == 0:
                            return False
                        break
        return bool(tasks)
    except OSError:
        return False


def cpu_seconds(pid: int) -> tuple[float, float | None] | None:
    """(CPU time, time runnable but waiting for a CPU) of a process's live threads, kernel
    io threads included: the scheduler's nanosecond figures (/proc/PID/task/*/schedstat),
    else the tick-sampled utime+stime and no waiting time."""
    try:
        run = delay = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                fields = f.read().split()
            run, delay = run + int(fields[0]), delay + int(fields[1])
        return run / 1e9, delay / 1e9
    except (OSError, IndexError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), None
    except (OSError, IndexError, ValueError):
        return None


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident set (VmHWM), KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def thread_names(pid: int) -> list[str]:
    """The names of a process's threads (io_uring workers show as iou-wrk-*)."""
    names = []
    try:
        for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.append(f.read().strip())
    except OSError:
        pass
    return names


def perf_events_open(perf_pid: int) -> int:
    """How many perf events a perf process has open (its perf_event file descriptors)."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{perf_pid}/fd"):
            try:
                if os.readlink(f"/proc/{perf_pid}/fd/{fd}") == "anon_inode:[perf_event]":
                    count += 1
            except OSError:
                pass
    except OSError:
        pass
    return count


def parse_perf(text: str) -> dict[str, dict[str, int]]:
    """perf stat -x, of counter_command's events: syscall -> {calls, errors}, the calls
    not broken down as "(other)"."""
    calls: dict[str, dict[str, int]] = {}
    total = total_errors = None
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or not fields[0].isdigit():
            continue  # comments, <not counted>, <not supported>
        event, value = fields[2], int(fields[0])
        if event == "raw_syscalls:sys_enter":
            total = value
        elif event == "raw_syscalls:sys_exit":
            total_errors = value
        else:
            for prefix, key in (("syscalls:sys_enter_", "calls"), ("syscalls:sys_exit_", "errors")):
                if event.startswith(prefix):
                    entry = calls.setdefault(event[len(prefix):], {"calls": 0, "errors": 0})
                    entry[key] += value
    calls = {name: c for name, c in calls.items() if c["calls"]}
    if total is not None:
        other = total - sum(c["calls"] for c in calls.values())
        other_errors = (total_errors or 0) - sum(c["errors"] for c in calls.values())
        if other > 0:
            calls["(other)"] = {"calls": other, "errors": max(other_errors, 0)}
    return calls


def parse_strace(text: str) -> dict[str, dict[str, int]]:
    """strace -c's table: syscall -> {calls, errors}."""
    calls: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) not in (5, 6) or not re.fullmatch(r"[0-9.]+", fields[0]):
            continue
        name = fields[-1]
        if name == "total":
            continue
        calls[name] = {"calls": int(fields[3]),
                       "errors": int(fields[4]) if len(fields) == 6 else 0}
    return calls


def perf_tracepoints(binary: str) -> set[str]:
    """The syscalls:* tracepoints this kernel has, as perf lists them."""
    try:
        proc = subprocess.run([binary, "list", "syscalls:*"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"syscalls:sys_(?:enter|exit)_\w+", proc.stdout))


def counter_command(tool: str, binary: str, out: Path, pid: int,
                    available: set[str] | None = None) -> list[str]:
    """The command that counts `pid`'s system calls into `out` until SIGINT."""
    if tool == "strace":
        return [binary, "-f", "-c", "-qq", "-o", str(out), "-p", str(pid)]
    cmd = [binary, "stat", "-x,", "-o", str(out), "-p", str(pid),
           "-e", "raw_syscalls:sys_enter", "-e", "raw_syscalls:sys_exit", "--filter", "ret < 0"]
    for call in PERF_CALLS:
        if available is None or f"syscalls:sys_enter_{call}" in available:
            cmd += ["-e", f"syscalls:sys_enter_{call}"]
    for call in PERF_FAILURES:
        if available is None or f"syscalls:sys_exit_{call}" in available:
            cmd += ["-e", f"syscalls:sys_exit_{call}", "--filter", "ret < 0"]
    return cmd


def wait_attached(tool: str, counter: subprocess.Popen[bytes], pid: int, limit: float) -> bool:
    """Wait until the counter watches the server: strace traces every thread, or perf's
    events are all open (their number stops growing)."""
    deadline, seen, steady = time.monotonic() + limit, -1, 0
    while time.monotonic() < deadline and counter.poll() is None:
        if tool == "strace":
            if traced(pid):
                return True
        else:
            now_open = perf_events_open(counter.pid)
            steady = steady + 1 if now_open == seen and now_open > 0 else 0
            seen = now_open
            if steady >= 3:
                return True
        time.sleep(0.05)
    return False


def run_once(name: str, args: argparse.Namespace, loadgen: Path,
             counter: tuple[str, str, Path] | None = None) -> dict[str, Any]:
    """One server (loop `name`, CPU args.server_cpu) and one loadgen run against it.

    Returns the client's figures, or {'error': ...}: a run counts only when
    every connection kept answering and the server is still alive at the end.
    `counter` = (tool, binary, output file), tool "strace" or "perf": it is
    attached to the server from before the first connection until after the
    last request, and writes its system call counts to the file.
    """
    job = {"factory": LOOPS[name], "cpu": args.server_cpu, "conns": args.conns,
           "lifetime": args.warmup + args.duration + SERVER_SLACK_S}
    outcome: dict[str, Any] = {}
    with tempfile.TemporaryFile() as server_err:
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--server", json.dumps(job)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=server_err, cwd=HERE,
            start_new_session=True)
        tracer: subprocess.Popen[bytes] | None = None
        try:
            assert server.stdout is not None
            line = read_line(server.stdout, READY_TIMEOUT_S)
            if line is None:
                stop(server)
                why = last_line(tail(server_err)) or f"no answer within {READY_TIMEOUT_S:.0f} s"
                return {"error": f"server did not start: {why}", "server_stderr": tail(server_err)}
            try:
                ready = json.loads(line)
                int(ready["port"]), int(ready["pid"])
            except (ValueError, KeyError, TypeError):
                stop(server)
                return {"error": f"server said {line[:200]!r} instead of its port",
                        "server_stderr": tail(server_err)}
            if counter:
                tool, binary, out = counter
                tracer = subprocess.Popen(
                    counter_command(tool, binary, out, ready["pid"], args.perf_tracepoints),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    start_new_session=True)
                if not wait_attached(tool, tracer, ready["pid"], 15.0):
                    stop(tracer, signal.SIGINT)
                    assert tracer.stderr is not None
                    why = last_line(tracer.stderr.read().decode(errors="replace"))
                    stop(server)
                    return {"error": f"{tool} could not attach: {why or 'timed out'}"}
            cmd = [str(loadgen), "-p", str(ready["port"]), "-n", str(args.conns),
                   "-s", str(args.size), "-w", str(args.warmup), "-d", str(args.duration),
                   "-C", str(args.client_cpu), "-S", str(args.stall)]
            cpu0, t0 = cpu_seconds(ready["pid"]), time.monotonic()
            try:
                client = subprocess.run(cmd, capture_output=True, text=True,
                                        timeout=args.warmup + args.duration + CLIENT_SLACK_S)
            except subprocess.TimeoutExpired:
                outcome = {"error": "load generator did not end by its deadline"}
            else:
                if client.returncode != 0 or not client.stdout.strip():
                    why = last_line(client.stderr) or f"exit status {client.returncode}"
                    outcome = {"error": f"load generator failed: {why}"}
                else:
                    outcome = json.loads(client.stdout.strip().splitlines()[-1])
            if "error" in outcome or not outcome.get("alive"):
                # The client gave up early (every connection failed): a server
                # on its way out gets a moment to say so.
                try:
                    server.wait(1.0)
                except subprocess.TimeoutExpired:
                    pass
            server_status = server.poll()
            cpu1, t1 = cpu_seconds(ready["pid"]), time.monotonic()
            threads = thread_names(ready["pid"])
            peak_rss = peak_rss_kib(ready["pid"])
        finally:
            if tracer is not None:
                stop(tracer, signal.SIGINT, COUNTER_GRACE_S)  # it writes its summary on SIGINT
            stop(server)
        stderr_text = tail(server_err)

    outcome["server_class"] = ready.get("class")
    # server_cpu: cores the server used over the whole load (warm-up
    # included); 1.0 when it had CPU 0 to itself and always work, above 1.0
    # if work ran in other threads (kernel io workers included).
    # req_per_cpu_s: requests per second of server CPU time, what a loop does
    # with the CPU it got; steadier than req/s when other processes take CPU 0.
    outcome["server_cpu"] = outcome["req_per_cpu_s"] = outcome["server_cpu_wait"] = None
    if cpu0 is not None and cpu1 is not None and cpu1[0] > cpu0[0]:
        outcome["server_cpu"] = round((cpu1[0] - cpu0[0]) / (t1 - t0), 3)
        if "requests_all" in outcome:
            outcome["req_per_cpu_s"] = round(outcome["requests_all"] / (cpu1[0] - cpu0[0]), 1)
        # Share of the run the server was ready to run but CPU 0 was busy with
        # another process: how much the machine, not the loop, set the pace.
        if cpu0[1] is not None and cpu1[1] is not None:
            outcome["server_cpu_wait"] = round((cpu1[1] - cpu0[1]) / (t1 - t0), 3)
    outcome["server_threads"] = threads
    outcome["server_peak_rss_kib"] = peak_rss
    problems = []
    if server_status is not None:
        problems.append(f"server exited (status {server_status}) during the load")
    if "error" not in outcome:
        if outcome["errors"]:
            problems.append(f"{outcome['errors']} connection error(s), first: {outcome['first_error']}")
        if outcome["requests"] == 0 and outcome["alive"]:
            problems.append("no request completed in the measured window (server stalled)")
        elif outcome["stalled"]:
            problems.append(f"{outcome['stalled']} of {outcome['conns']} connections stalled "
                            f"(longest without an answer: {outcome['worst_idle_s']:.1f} s)")
        if outcome["connected"] < outcome["conns"] - outcome["errors"]:
            problems.append(f"{outcome['conns'] - outcome['connected']} connection(s) never "
                            "established (connect still pending at the end)")
        elif outcome["never_answered"]:
            problems.append(f"{outcome['never_answered']} connection(s) never got an answer")
    if problems or "error" in outcome:
        if "error" in outcome:
            problems.insert(0, outcome["error"])
        first_server_line = next((ln for ln in stderr_text.splitlines()
                                  if ln.startswith("echo server")), "")
        if first_server_line:
            problems.append(f"server said: {first_server_line}")
        outcome["error"] = "; ".join(problems)
        outcome["server_stderr"] = stderr_text
    return outcome


def count_syscalls(name: str, args: argparse.Namespace, loadgen: Path, tool: str,
                   binary: str) -> dict[str, Any]:
    """One run with a system call counter (strace or perf) on the server: calls per request."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{tool}.txt"
        result = run_once(name, args, loadgen, (tool, binary, out))
        if "error" in result:
            return result
        try:
            text = out.read_text()
        except OSError as exc:
            return {"error": f"no {tool} summary: {exc}"}
    calls = parse_strace(text) if tool == "strace" else parse_perf(text)
    requests = result["requests_all"]
    if not calls or not requests:
        return {"error": f"{tool} counted nothing" if not calls else "no request completed"}
    total = sum(c["calls"] for c in calls.values())
    return {"requests": requests, "calls": calls, "per_request": total / requests,
            "rps_while_counting": result["rps"], "server_cpu": result.get("server_cpu")}


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def fmt_us(value: float | None) -> str:
    if value is None or value < 0:
        return "-"
    if value >= 10000:
        return f"{value / 1000:.1f} ms"
    return f"{value:.0f} us"


def summarise(loops: Sequence[str], runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per loop: the medians of the runs that counted, and how many did."""
    out: dict[str, dict[str, Any]] = {}
    for name in loops:
        mine = [r["result"] for r in runs if r["loop"] == name]
        good = [r for r in mine if "error" not in r]
        rps = [r["rps"] for r in good]
        out[name] = {
            "runs": len(mine), "counted": len(good),
            "median_rps": median_or_none(rps), "rps": rps,
            "median_p50_us": median_or_none([r["p50_us"] for r in good]),
            "median_p99_us": median_or_none([r["p99_us"] for r in good]),
            "median_client_cpu": median_or_none([r["client_cpu"] for r in good]),
            "median_server_cpu": median_or_none([r["server_cpu"] for r in good
                                                 if r.get("server_cpu") is not None]),
            "median_req_per_cpu_s": median_or_none([r["req_per_cpu_s"] for r in good
                                                    if r.get("req_per_cpu_s") is not None]),
            "median_peak_rss_kib": median_or_none([r["server_peak_rss_kib"] for r in good
                                                   if r.get("server_peak_rss_kib")]),
            "median_server_cpu_wait": median_or_none([r["server_cpu_wait"] for r in good
                                                      if r.get("server_cpu_wait") is not None]),
            "median_client_cpu_wait": median_or_none([r["client_cpu_wait"] for r in good
                                                      if r.get("client_cpu_wait", -1) >= 0]),
            "spread": spread(rps),
            "errors": [r["error"] for r in mine if "error" in r],
        }
    return out


def markdown_table(loops: Sequence[str], summary: dict[str, dict[str, Any]],
                   args: argparse.Namespace, unavailable: dict[str, str]) -> str:
    """One row per loop asked for; a loop that could not be created says why in a note."""
    peers = [name for name in PEERS if name in loops and summary[name]["median_rps"]]
    best = max((summary[p]["median_rps"] for p in peers), default=None)
    uv = summary["uvloop"]["median_rps"] if "uvloop" in summary else None
    header = ["loop", "req/s", "vs uvloop"]
    if peers:
        header.append(f"vs best({','.join(peers)})")
    header += ["p50", "p99", "spread", "server CPU", "req/CPU-s (vs uvloop)", "peak RSS", "runs"]
    uv_eff = summary["uvloop"]["median_req_per_cpu_s"] if "uvloop" in summary else None
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: list[str] = []
    for name in args.loops:
        if name in unavailable:
            notes.append(f"{name}: not measured, the loop cannot be created here: "
                         f"{unavailable[name]}")
            lines.append(f"| {name} | unavailable (note {len(notes)}) |"
                         + " |" * (len(header) - 2))
            continue
        if name not in summary:
            continue
        cell = summary[name]
        if cell["errors"]:
            # The same failure in every repetition is one note.
            distinct = list(dict.fromkeys(cell["errors"]))
            notes.append(f"{name}: {len(cell['errors'])} of {cell['runs']} run(s) failed: "
                         + " | ".join(distinct))
        rps = cell["median_rps"]
        row = [name, fmt_ops(rps) if rps else f"failed (note {len(notes)})", fmt_ratio(rps, uv)]
        if peers:
            row.append(fmt_ratio(rps, best) if name.startswith(OURS_PREFIX) else "")
        sp = cell["spread"]
        eff, cpu = cell["median_req_per_cpu_s"], cell["median_server_cpu"]
        row += [fmt_us(cell["median_p50_us"]), fmt_us(cell["median_p99_us"]),
                f"{sp * 100:.0f}%" if sp is not None else "-",
                f"{cpu:.2f}" if cpu else "-",
                f"{fmt_ops(eff)} ({fmt_ratio(eff, uv_eff)})" if eff else "-",
                f"{cell['median_peak_rss_kib'] / 1024:.0f} MiB" if cell["median_peak_rss_kib"] else "-",
                f"{cell['counted']}/{cell['runs']}"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"TCP echo with loop.sock_accept/sock_recv/sock_sendall, {args.conns} connections "
              f"x {args.size} B in ping-pong, server on CPU {args.server_cpu}, native client on CPU "
              f"{args.client_cpu}; medians of the runs counted ({args.warmup:g} s warm-up + "
              f"{args.duration:g} s measured each). req/s: higher is better; p50/p99: round trip "
              "of one request. spread: (max-min)/median of req/s; a ratio closer to 1.00x than "
              "that is not a result. server CPU: cores the server used during the load (below "
              "1.00: other processes took CPU 0, or the server waited); req/CPU-s: requests per "
              "second of server CPU time; peak RSS: the server's VmHWM."]
    cpus = [c["median_client_cpu"] for c in summary.values() if c["median_client_cpu"]]
    if cpus and max(cpus) > 0.9:
        lines.append(f"The client used up to {max(cpus) * 100:.0f}% of its core: the fastest "
                     "loops may be held back by the client, not by themselves.")
    waits = [(n, c["median_server_cpu_wait"], c["median_client_cpu_wait"])
             for n, c in summary.items() if c["median_server_cpu_wait"] is not None]
    if waits:
        lines.append("Waiting for a CPU taken by other processes (runnable, not running; "
                     "median share of the run), server / client: "
                     + ", ".join(f"{n} {s * 100:.0f}% / "
                                 + (f"{c * 100:.0f}%" if c is not None else "-")
                                 for n, s, c in waits)
                     + ". Near 0% on a quiet machine; the more, the more the machine set the pace.")
    if notes:
        lines += [""] + [f"{i}. {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines)


COUNTER_NOTES = {
    "perf": "perf stat counting the raw_syscalls:sys_enter tracepoint (and sys_exit with "
            "ret < 0 for the failures) of the server's threads, broken down over the "
            "syscalls:* tracepoints of ~40 common calls (the rest: \"(other)\"), attached from "
            "before the "
            "first connection until after the load generator ended (warm-up included), over "
            "the requests completed meanwhile. Tracepoint counting costs far less than ptrace: "
            "the server keeps its behaviour, so the counts per request are those of the timed "
            "runs (compare req/s while counting with the timed table).",
    "strace": "strace -c -f attached to the server for a whole run (connections, warm-up, "
              "load): its system calls over the requests completed. strace slows the server "
              "several times over, so readiness loops find more data already there, and more "
              "sockets ready per wait, than at full speed: fewer failed reads (and the "
              "epoll_ctl calls that follow them) per request than untraced. Prefer --syscalls "
              "(perf) for rates; strace shows which calls a loop makes.",
}


def syscall_table(tool: str, loops: Sequence[str], counted: dict[str, dict[str, Any]]) -> str:
    lines = [f"| loop | syscalls/request ({tool}) | per request (of which failed) | "
             f"req/s while counting |",
             "|---|---|---|---|"]
    for name in loops:
        res = counted.get(name)
        if res is None:
            continue
        if "error" in res:
            lines.append(f"| {name} | failed: {res['error']} | | |")
            continue
        n = res["requests"]
        parts = []
        for call, c in sorted(res["calls"].items(), key=lambda kv: -kv[1]["calls"]):
            if c["calls"] / n < 0.005:
                continue
            part = f"{call} {c['calls'] / n:.2f}"
            if c["errors"] / n >= 0.005:
                part += f" ({c['errors'] / n:.2f})"
            parts.append(part)
        lines.append(f"| {name} | {res['per_request']:.2f} | {', '.join(parts)} | "
                     f"{fmt_ops(res['rps_while_counting'])} |")
    lines += ["", COUNTER_NOTES[tool] + " Calls under 0.005 per request are left out of the "
              "breakdown but counted in the total."]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=7,
                        help="repetitions per loop, interleaved (default 7); 0 with --syscalls "
                             "or --strace: only count system calls")
    add_loop_arguments(parser)
    parser.add_argument("--conns", type=int, default=100, help="connections (default 100)")
    parser.add_argument("--size", type=int, default=1024, help="message bytes (default 1024)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="measured seconds per run (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of load before the measurement, same server (default 1)")
    parser.add_argument("--stall", type=float, default=1.0,
                        help="a connection without an answer this long at the end has stalled "
                             "and the run fails (default 1 s)")
    parser.add_argument("--server-cpu", type=int, default=0,
                        help="CPU the server is pinned to; -1: no pinning (default 0)")
    parser.add_argument("--client-cpu", type=int, default=1,
                        help="CPU the load generator is pinned to; -1: no pinning (default 1)")
    parser.add_argument("--syscalls", action="store_true",
                        help="after the timed runs, one run per loop with perf stat counting the "
                             "server's system calls per request at full speed (needs perf and "
                             "root or perf_event_paranoid <= -1)")
    parser.add_argument("--strace", action="store_true",
                        help="after the timed runs, one run per loop under strace -c -f: "
                             "system calls per request, server slowed down (needs strace)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="JSON results path (default bench/results/echo-<time>.json)")
    parser.add_argument("--markdown", default=None, metavar="PATH",
                        help="also write the markdown table(s) to PATH")
    args = parser.parse_args(argv)
    if args.reps < 0 or (args.reps == 0 and not (args.strace or args.syscalls)):
        parser.error("--reps must be at least 1 (or 0 with --syscalls or --strace)")
    if args.conns < 1 or args.size < 1:
        parser.error("--conns and --size must be at least 1")
    if args.duration <= 0 or args.warmup < 0 or args.stall <= 0:
        parser.error("--duration and --stall must be positive and --warmup not negative")
    resolve_loops(parser, args)
    args.counters = []
    for tool, wanted, hint in (("perf", args.syscalls, "apt-get install -y linux-perf"),
                               ("strace", args.strace, "apt-get install -y strace")):
        if wanted:
            binary = shutil.which(tool)
            if not binary:
                parser.error(f"--{'syscalls' if tool == 'perf' else tool} needs {tool} ({hint})")
            args.counters.append((tool, binary))
    args.perf_tracepoints = None
    for tool, binary in args.counters:
        if tool == "perf":
            args.perf_tracepoints = perf_tracepoints(binary)
            if "syscalls:sys_enter_read" not in args.perf_tracepoints:
                parser.error(f"--syscalls: '{binary} list syscalls:*' shows no syscall "
                             "tracepoints (run as root, or lower kernel.perf_event_paranoid)")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    loadgen = build_loadgen()
    loops, loop_info = usable_loops(args.loops)
    unavailable = {n: i["error"] for n, i in loop_info.items() if "error" in i}
    if not loops:
        print("no loop could be created; nothing to measure", file=sys.stderr)
        return 1
    started = datetime.datetime.now()
    runs: list[dict[str, Any]] = []
    for rep in range(args.reps):
        shown = []
        for name in rotated(loops, rep):
            result = run_once(name, args, loadgen)
            runs.append({"rep": rep, "loop": name, "result": result})
            if "error" in result:
                shown.append(f"{name} FAILED ({result['error']})")
            else:
                cpu = result.get("server_cpu")
                shown.append(f"{name} {fmt_ops(result['rps'])} "
                             f"(p50 {fmt_us(result['p50_us'])}, p99 {fmt_us(result['p99_us'])}, "
                             f"server CPU {cpu if cpu is not None else '-'})")
        print(f"rep {rep + 1}/{args.reps}: " + ", ".join(shown), file=sys.stderr)

    tables = []
    summary = summarise(loops, runs)
    if args.reps:
        tables.append(markdown_table(loops, summary, args, unavailable))
    syscalls: dict[str, dict[str, dict[str, Any]]] = {}
    for tool, binary in args.counters:
        syscalls[tool] = {}
        for name in loops:
            res = syscalls[tool][name] = count_syscalls(name, args, loadgen, tool, binary)
            said = res.get("error") or f"{res['per_request']:.2f} syscalls/request"
            print(f"{tool} {name}: {said}", file=sys.stderr)
        tables.append(syscall_table(tool, loops, syscalls[tool]))
    table = "\n\n".join(tables)
    print(table)

    document = {
        "kind": "ringloop-echo",
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round((datetime.datetime.now() - started).total_seconds(), 1),
        **environment(),
        "settings": {"reps": args.reps, "conns": args.conns, "size": args.size,
                     "duration": args.duration, "warmup": args.warmup, "stall": args.stall,
                     "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
                     "recv_size": RECV_SIZE, "loadgen": str(loadgen)},
        "loops": loop_info,
        "results": summary,
        "runs": runs,
        "syscalls": syscalls,
        "markdown": table,
    }
    write_outputs(document, args.json, f"echo-{stamp(started)}.json", args.markdown, table)
    measured = any(s["counted"] for s in summary.values()) or any(
        "error" not in r for per_tool in syscalls.values() for r in per_tool.values())
    return 0 if measured else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--server":
        sys.exit(serve(json.loads(sys.argv[2])))
    else:
        sys.exit(main(sys.argv[1:]))
