"""TCP echo, protocol/streams/sock_* modes, sizes x connections: req/s and latency per loop."""

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from _common import (
    HERE,
    LOOPS,
    add_cpu_option,
    add_loop_arguments,
    add_output_options,
    environment,
    fmt_ops,
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

# bench/build/ is gitignored (the repository's "build/" pattern).
BUILD = HERE / "build"
LOADGEN_SRC, LOADGEN_BIN = HERE / "loadgen.c", BUILD / "loadgen"
CECHO_SRC, CECHO_BIN = HERE / "cecho.c", BUILD / "cecho"
CFLAGS = ["-O2", "-Wall"]

# The three ways a server is written, the same Python code on every loop:
#   protocol  asyncio.Protocol via loop.create_server, data_received -> transport.write
#   streams   asyncio.start_server, reader.read(64 KiB) / writer.write / await drain()
#   sock      loop.sock_accept / sock_recv(64 KiB) / sock_sendall, one task per connection
MODES = ("protocol", "streams", "sock")
# The single-core C epoll server (cecho.c): one row per (size, connections),
# the limit every mode of every loop is compared with.
C_SERVER = "c-server"
C_LABEL = "C server (limit)"

# The default matrix; --quick's. --quick also sets fewer repetitions and
# shorter runs (see parse_args).
DEFAULT_SIZES = (100, 1024, 10240, 102400)
DEFAULT_CONNS = (10, 100)
QUICK = {"reps": 3, "warmup": 0.2, "duration": 0.5, "sizes": "1024,102400", "conns": "100"}
# Seconds a run costs beyond warm-up + duration (a server starting, stopping,
# connections opening), for the time estimate printed before the run.
RUN_OVERHEAD_S = 0.15

# The most one read asks for (sock_recv, StreamReader.read).
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
# Server: one process per run, one loop, one mode.
# --------------------------------------------------------------------------


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY on a transport's socket. asyncio and uvloop set it themselves; doing it
    again is harmless, and a loop that does not gets the same socket as the others."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass


def listening_socket(conns: int) -> socket.socket:
    """A non-blocking TCP socket listening on 127.0.0.1, ephemeral port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    # Room for every connection of the burst (the kernel caps it at
    # net.core.somaxconn): with a full accept queue the kernel drops
    # handshakes, and a connection then waits for a retransmit, 1 s or more.
    listener.listen(backlog(conns))
    listener.setblocking(False)
    return listener


def backlog(conns: int) -> int:
    return max(1024, conns)


def error_reporters(label: str) -> tuple[
    Callable[[str, BaseException], None],
    Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None],
]:
    """A benchmark server's stderr reporting: report(where, exc) prints each
    kind of failure once, with its traceback (100 connections failing the
    same way should not bury the first one), and a loop exception handler
    that reports through it (a client going away is its business)."""
    reported: set[str] = set()

    def report(where: str, exc: BaseException) -> None:
        key = f"{where}:{type(exc).__name__}:{exc}"
        if key in reported:
            return
        reported.add(key)
        print(f"{label} ({where}): {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()

    def on_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, ConnectionError):
            return
        if exc is not None:
            report(f"loop: {context.get('message', '')}", exc)
        else:
            print(f"{label} (loop): {context.get('message')}", file=sys.stderr, flush=True)

    return report, on_loop_error


def serve(job: dict[str, Any]) -> int:
    """Echo on 127.0.0.1 in job["mode"] until killed or the lifetime ends."""
    pin(job.get("cpu"))
    mode = job.get("mode", "sock")
    report, on_loop_error = error_reporters("echo server")

    try:
        loop = load_factory(job["factory"])()
    except Exception as exc:  # noqa: BLE001 - said, not raised: the parent reads it
        report("creating the loop", exc)
        return 1

    loop.set_exception_handler(on_loop_error)
    listener = listening_socket(int(job.get("conns", 0)))
    # Now: a loop may take the socket over (rloop detaches it from the object).
    port = listener.getsockname()[1]

    class EchoProtocol(asyncio.Protocol):
        """Protocol mode: every chunk received is written straight back."""

        transport: asyncio.Transport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]
            set_nodelay(transport)

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if exc is not None and not isinstance(exc, ConnectionError):
                report("connection_lost", exc)

    async def stream_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Streams mode: read what is there (up to 64 KiB), write it, wait for the drain."""
        set_nodelay(writer.transport)
        try:
            while True:
                data = await reader.read(RECV_SIZE)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        except Exception as exc:  # noqa: BLE001 - any other failure is a finding
            report("connection", exc)
        finally:
            writer.close()

    async def sock_echo(conn: socket.socket) -> None:
        """Sock mode: sock_recv (up to 64 KiB) then sock_sendall, until EOF."""
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
                loop.create_task(sock_echo(conn))
        except BaseException as exc:
            report("accept", exc)
            loop.stop()
            raise

    acceptor: asyncio.Task[None] | None = None
    server: Any = None  # the asyncio.Server, kept alive while the loop runs
    try:
        if mode == "protocol":
            server = loop.run_until_complete(loop.create_server(
                EchoProtocol, sock=listener, backlog=backlog(int(job.get("conns", 0)))))
        elif mode == "streams":
            server = loop.run_until_complete(asyncio.start_server(
                stream_echo, sock=listener, backlog=backlog(int(job.get("conns", 0)))))
        elif mode == "sock":
            acceptor = loop.create_task(accept_forever())
        else:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    except Exception as exc:  # noqa: BLE001 - said, not raised: the parent reads it
        report(f"start, {mode} mode", exc)
        return 1

    loop.call_later(float(job["lifetime"]), loop.stop)
    ready = {"port": port, "pid": os.getpid(),
             "class": f"{type(loop).__module__}.{type(loop).__qualname__}"}
    print(json.dumps(ready), flush=True)
    loop.run_forever()
    if server is not None:
        server.close()
    return 1 if acceptor is not None and acceptor.done() else 0  # it ends only by failing


# --------------------------------------------------------------------------
# Parent: build the native programs, one server + client pair per run.
# --------------------------------------------------------------------------


def build_native(src: Path, binary: Path) -> Path:
    """Compile a bench C program into bench/build/ unless the binary is up to date."""
    stamp_file = binary.with_suffix(".flags")
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit(f"echo.py: no C compiler (cc or gcc, or $CC) to build {src}")
    flags = " ".join([cc, *CFLAGS])
    if (binary.exists() and stamp_file.exists() and stamp_file.read_text() == flags
            and binary.stat().st_mtime >= src.stat().st_mtime):
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(f".tmp{os.getpid()}")
    proc = subprocess.run([cc, *CFLAGS, "-o", str(tmp), str(src)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SystemExit(f"echo.py: building {src} failed:\n{proc.stderr}")
    tmp.replace(binary)
    stamp_file.write_text(flags)
    print(f"built {binary} ({flags})", file=sys.stderr)
    return binary


def build_loadgen() -> Path:
    return build_native(LOADGEN_SRC, LOADGEN_BIN)


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


def server_command(cell: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The command that starts the server of one cell: the C server, or this script."""
    lifetime = args.warmup + args.duration + SERVER_SLACK_S
    if cell["loop"] == C_SERVER:
        return [str(args.cecho), "-C", str(args.server_cpu), "-b", str(backlog(cell["conns"])),
                "-l", f"{lifetime:g}"]
    job = {"factory": LOOPS[cell["loop"]], "mode": cell["mode"], "cpu": args.server_cpu,
           "conns": cell["conns"], "lifetime": lifetime}
    return [sys.executable, str(Path(__file__).resolve()), "--server", json.dumps(job)]


def run_once(cell: dict[str, Any], args: argparse.Namespace, loadgen: Path,
             counter: tuple[str, str, Path] | None = None) -> dict[str, Any]:
    """One server (cell["loop"] in cell["mode"], CPU args.server_cpu) and one loadgen run
    against it, cell["conns"] connections x cell["size"] bytes.

    Returns the client's figures, or {'error': ...}: a run counts only when
    every connection kept answering and the server is still alive at the end.
    `counter` = (tool, binary, output file), tool "strace" or "perf": it is
    attached to the server from before the first connection until after the
    last request, and writes its system call counts to the file.
    """
    outcome: dict[str, Any] = {}
    ready: dict[str, Any] = {}
    with tempfile.TemporaryFile() as server_err:
        server = subprocess.Popen(
            server_command(cell, args),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=server_err, cwd=HERE,
            start_new_session=True)
        tracer: subprocess.Popen[bytes] | None = None
        try:
            assert server.stdout is not None
            line = read_line(server.stdout, READY_TIMEOUT_S)
            if line is None:
                stop(server)
                said = tail(server_err)
                why = (next((ln.strip() for ln in said.splitlines()
                             if ln.startswith(("echo server", "cecho"))), "")
                       or last_line(said) or f"no answer within {READY_TIMEOUT_S:.0f} s")
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
            cmd = [str(loadgen), "-p", str(ready["port"]), "-n", str(cell["conns"]),
                   "-s", str(cell["size"]), "-w", str(args.warmup), "-d", str(args.duration),
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
                                  if ln.startswith(("echo server", "cecho"))), "")
        if first_server_line:
            problems.append(f"server said: {first_server_line}")
        outcome["error"] = "; ".join(problems)
        outcome["server_stderr"] = stderr_text
    return outcome


def count_syscalls(cell: dict[str, Any], args: argparse.Namespace, loadgen: Path, tool: str,
                   binary: str) -> dict[str, Any]:
    """One run with a system call counter (strace or perf) on the server: calls per request."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{tool}.txt"
        result = run_once(cell, args, loadgen, (tool, binary, out))
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




def syscall_table(tool: str, counted: list[dict[str, Any]]) -> str:
    from report import fmt_size
    lines = [(f"| mode | size | conns | loop | syscalls/request ({tool}) | "
              "per request (of which failed) | req/s while counting |"),
             "|---|---|---|---|---|---|---|"]
    for res in counted:
        key = (f"| {res['mode'] or 'C'} | {fmt_size(res['size'])} | {res['conns']} | "
               f"{C_LABEL if res['loop'] == C_SERVER else res['loop']} |")
        if "error" in res:
            lines.append(f"{key} failed: {res['error']} | | |")
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
        lines.append(f"{key} {res['per_request']:.2f} | {', '.join(parts)} | "
                     f"{fmt_ops(res['rps_while_counting'])} |")
    lines += ["", COUNTER_NOTES[tool] + " Calls under 0.005 per request are left out of the "
              "breakdown but counted in the total."]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The matrix and its summary
# --------------------------------------------------------------------------


def cells_of_rep(args: argparse.Namespace, loops: Sequence[str], rep: int) -> list[dict[str, Any]]:
    """Repetition `rep`'s runs, in order: every (size, conns) group, and in each every
    (mode, loop) plus the C server, both orders rotated each repetition. The loops of
    one row run back to back, so they share the machine's mood of that moment."""
    groups = rotated([(s, c) for s in args.sizes for c in args.conns], rep)
    units: list[tuple[str | None, str]] = [(m, name) for m in args.modes for name in loops]
    if args.c_server:
        units.append((None, C_SERVER))
    return [{"mode": m, "size": s, "conns": c, "loop": name}
            for s, c in groups for m, name in rotated(units, rep)]


def same_cell(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in ("mode", "size", "conns", "loop"))


def summarise_cell(cell: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell: the medians of the runs that counted, and how many did."""
    mine = [r["result"] for r in runs if same_cell(r, cell)]
    good = [r for r in mine if "error" not in r]
    rps = [r["rps"] for r in good]

    def med(key: str, keep: Any = lambda v: v is not None) -> float | None:
        return median_or_none([r[key] for r in good if keep(r.get(key))])

    return {
        **{k: cell[k] for k in ("mode", "size", "conns", "loop")},
        "runs": len(mine), "counted": len(good),
        "median_rps": median_or_none(rps), "rps": rps,
        "median_p50_us": med("p50_us"), "median_p99_us": med("p99_us"),
        "median_client_cpu": med("client_cpu"),
        "median_server_cpu": med("server_cpu"),
        "median_req_per_cpu_s": med("req_per_cpu_s"),
        "median_peak_rss_kib": med("server_peak_rss_kib", bool),
        "median_server_cpu_wait": med("server_cpu_wait"),
        "median_client_cpu_wait": med("client_cpu_wait", lambda v: v is not None and v >= 0),
        "spread": spread(rps),
        "errors": [r["error"] for r in mine if "error" in r],
    }


def all_cells(args: argparse.Namespace, loops: Sequence[str]) -> list[dict[str, Any]]:
    """Every cell of the matrix once, in table order."""
    cells = [{"mode": m, "size": s, "conns": c, "loop": name}
             for m in args.modes for s in args.sizes for c in args.conns for name in loops]
    if args.c_server:
        cells += [{"mode": None, "size": s, "conns": c, "loop": C_SERVER}
                  for s in args.sizes for c in args.conns]
    return cells


def progress_line(rep: int, args: argparse.Namespace, done: list[dict[str, Any]],
                  started: float, total_runs: int, runs_so_far: int) -> str:
    """One (size, conns) group of one repetition, for stderr."""
    first = done[0]
    parts = []
    for mode in [*args.modes, None]:
        mine = [d for d in done if d["mode"] == mode]
        if not mine:
            continue
        said = ", ".join(f"{d['loop']} " + ("FAILED" if "error" in d["result"]
                                            else fmt_ops(d["result"]["rps"])) for d in mine)
        parts.append(f"{mode or 'C'}: {said}")
    elapsed = time.monotonic() - started
    left = elapsed / runs_so_far * (total_runs - runs_so_far) if runs_so_far else 0
    return (f"rep {rep + 1}/{args.reps} {first['size']} B x {first['conns']} conns "
            f"[{runs_so_far}/{total_runs} runs, {elapsed / 60:.1f} min, ~{left / 60:.1f} min "
            f"left] " + "; ".join(parts))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: need positive integers, comma-separated")
    return values


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run: {QUICK['reps']} repetitions, {QUICK['warmup']} s + "
                             f"{QUICK['duration']} s, sizes {QUICK['sizes']}, conns "
                             f"{QUICK['conns']} (each still overridable)")
    parser.add_argument("--reps", type=int, default=7,
                        help="repetitions per cell, interleaved (default 7); 0 with --syscalls "
                             "or --strace: only count system calls")
    add_loop_arguments(parser)
    parser.add_argument("--mode", "--modes", dest="modes", default=",".join(MODES),
                        help=f"comma-separated server modes: {', '.join(MODES)} (default all)")
    parser.add_argument("--sizes", "--size", dest="sizes", type=int_list,
                        default=list(DEFAULT_SIZES),
                        help="message sizes in bytes, comma-separated (default "
                             f"{','.join(map(str, DEFAULT_SIZES))})")
    parser.add_argument("--conns", "--conns-list", dest="conns", type=int_list,
                        default=list(DEFAULT_CONNS),
                        help="connection counts, comma-separated (default "
                             f"{','.join(map(str, DEFAULT_CONNS))})")
    parser.add_argument("--no-c-server", dest="c_server", action="store_false",
                        help="leave out the C epoll server's limit row")
    # Short runs, many of them: the default matrix is 3 modes x 4 sizes x 2 connection
    # counts x 5 loops + 8 C server cells = 128 runs per repetition, 896 in 7: ~21 min.
    parser.add_argument("--duration", type=float, default=1.0,
                        help="measured seconds per run (default 1)")
    parser.add_argument("--warmup", type=float, default=0.25,
                        help="seconds of load before the measurement, same server "
                             "(default 0.25)")
    parser.add_argument("--stall", type=float, default=1.0,
                        help="a connection without an answer this long at the end has stalled "
                             "and the run fails (default 1 s)")
    add_cpu_option(parser, "--server-cpu", 0, "the server is pinned to")
    add_cpu_option(parser, "--client-cpu", 1, "the load generator is pinned to")
    parser.add_argument("--syscalls", action="store_true",
                        help="after the timed runs, one run per cell with perf stat counting "
                             "the server's system calls per request at full speed (needs perf "
                             "and root or perf_event_paranoid <= -1)")
    parser.add_argument("--strace", action="store_true",
                        help="after the timed runs, one run per cell under strace -c -f: "
                             "system calls per request, server slowed down (needs strace)")
    add_output_options(parser, "echo", tables="tables",
                       json_note="; the markdown and the chart go next to it (.md, .png)")
    parser.add_argument("--chart", default=None, metavar="PATH",
                        help="chart path (default: the JSON path with .png)")
    parser.add_argument("--no-chart", action="store_true", help="draw no chart")
    if "--quick" in argv:
        parser.set_defaults(reps=QUICK["reps"], warmup=QUICK["warmup"],
                            duration=QUICK["duration"], sizes=int_list(str(QUICK["sizes"])),
                            conns=int_list(str(QUICK["conns"])))
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown or not args.modes:
        parser.error(f"--mode: unknown {unknown}; known: {', '.join(MODES)}")
    if args.reps < 0 or (args.reps == 0 and not (args.strace or args.syscalls)):
        parser.error("--reps must be at least 1 (or 0 with --syscalls or --strace)")
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
    import report  # bench/report.py: tables, targets, chart

    args = parse_args(argv)
    loadgen = build_loadgen()
    args.cecho = build_native(CECHO_SRC, CECHO_BIN) if args.c_server else None
    loops, loop_info = usable_loops(args.loops)
    if not loops and not args.c_server:
        print("no loop could be created; nothing to measure", file=sys.stderr)
        return 1
    per_rep = len(cells_of_rep(args, loops, 0))
    total_runs = per_rep * args.reps
    print(f"echo: {len(args.modes)} mode(s) x {len(args.sizes)} size(s) x {len(args.conns)} "
          f"connection count(s) x {len(loops)} loop(s)"
          + (" + the C server" if args.c_server else "")
          + f" = {per_rep} runs per repetition, x {args.reps} = {total_runs} runs of "
          f"{args.warmup:g} + {args.duration:g} s: about "
          f"{total_runs * (args.warmup + args.duration + RUN_OVERHEAD_S) / 60:.0f} min",
          file=sys.stderr)
    started = datetime.datetime.now()
    t_start = time.monotonic()
    runs: list[dict[str, Any]] = []
    for rep in range(args.reps):
        group: list[dict[str, Any]] = []
        for cell in cells_of_rep(args, loops, rep):
            if group and (group[0]["size"], group[0]["conns"]) != (cell["size"], cell["conns"]):
                print(progress_line(rep, args, group, t_start, total_runs, len(runs)),
                      file=sys.stderr)
                group = []
            result = run_once(cell, args, loadgen)
            record = {"rep": rep, **cell, "result": result}
            runs.append(record)
            group.append(record)
        if group:
            print(progress_line(rep, args, group, t_start, total_runs, len(runs)),
                  file=sys.stderr)

    cells = [summarise_cell(c, runs) for c in all_cells(args, loops)] if args.reps else []
    syscalls: dict[str, list[dict[str, Any]]] = {}
    for tool, binary in args.counters:
        syscalls[tool] = []
        for cell in all_cells(args, loops):
            res = count_syscalls(cell, args, loadgen, tool, binary)
            syscalls[tool].append({**cell, **res})
            said = res.get("error") or f"{res['per_request']:.2f} syscalls/request"
            print(f"{tool} {cell['mode'] or 'C'} {cell['size']} B x {cell['conns']} "
                  f"{cell['loop']}: {said}", file=sys.stderr)

    document: dict[str, Any] = {
        "kind": "ringloop-echo",
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round((datetime.datetime.now() - started).total_seconds(), 1),
        **environment(),
        "settings": {"reps": args.reps, "modes": args.modes, "sizes": args.sizes,
                     "conns": args.conns, "loops": args.loops, "c_server": args.c_server,
                     "duration": args.duration, "warmup": args.warmup, "stall": args.stall,
                     "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
                     "recv_size": RECV_SIZE, "loadgen": str(loadgen),
                     "cecho": str(args.cecho) if args.cecho else None},
        "loops": loop_info,
        "cells": cells,
        "runs": runs,
        "syscalls": syscalls,
    }
    json_path = Path(args.json) if args.json else HERE / "results" / f"echo-{stamp(started)}.json"
    chart_path = None
    if args.reps and not args.no_chart:
        chart_path = Path(args.chart) if args.chart else json_path.with_suffix(".png")
        why_not = report.chart(chart_path, echo=document)
        if why_not:
            print(f"no chart: {why_not}", file=sys.stderr)
            chart_path = None
    summary, details = report.echo_markdown(document) if args.reps else ("", "")
    sections = [s for s in (summary, report.targets_markdown(echo=document) if args.reps else "")
                if s]
    for tool, counted in syscalls.items():
        sections.append(syscall_table(tool, counted))
    shown = "\n\n".join(sections)
    full = "\n\n".join([*sections, details] if details else sections)
    if chart_path:
        full += f"\n\nChart: {chart_path.name}\n"
    document["markdown"] = full
    print(shown)
    write_outputs(document, json_path, json_path.name, args.markdown, full)
    md_path = json_path.with_suffix(".md")
    md_path.write_text(full + "\n")
    print(f"markdown (with per-cell details: server CPU, req/CPU-s, RSS, CPU wait): {md_path}",
          file=sys.stderr)
    if chart_path:
        print(f"chart: {chart_path}", file=sys.stderr)
    measured = any(c["counted"] for c in cells) or any(
        "error" not in r for per_tool in syscalls.values() for r in per_tool)
    return 0 if measured else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--server":
        sys.exit(serve(json.loads(sys.argv[2])))
    else:
        sys.exit(main(sys.argv[1:]))
