"""HTTP/1.1 keep-alive server (httptools on asyncio.Protocol) per loop, loaded with wrk
and with the suite's native load generator (bench/loadgen.c -H)."""

# Not named http.py: bench/ is the first entry of sys.path of every script
# here, and a module named http would shadow the standard library's package.

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.util
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    HERE,
    LOOPS,
    add_loop_arguments,
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
from echo import (
    READY_TIMEOUT_S,
    SERVER_SLACK_S,
    STDERR_TAIL,
    backlog,
    build_loadgen,
    cpu_seconds,
    error_reporters,
    last_line,
    listening_socket,
    read_line,
    set_nodelay,
    stop,
    tail,
)

RESPONSE_BODY = b"Hello, World!"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(RESPONSE_BODY)).encode() + b"\r\n\r\n" + RESPONSE_BODY)
RESPONSE_CLOSE = RESPONSE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

# wrk is given this much beyond its duration before it is killed.
CLIENT_SLACK_S = 20.0
# Seconds a run costs beyond warm-up + duration, for the time estimate.
RUN_OVERHEAD_S = 0.4
WRK_HINT = "apt-get install -y wrk; bench/run.sh does it when it runs as root with apt-get"
# The load generators, in the order they run in each repetition.
CLIENTS = ("wrk", "native")


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


def http_protocol(report: Any) -> type[asyncio.Protocol]:
    """The benchmark's protocol class; ``report(what, exc)`` hears of its errors.

    Shared with bench/callgrind_echo.py's ``http`` mode, so the counted
    server is the timed one.
    """
    import httptools

    class HttpProtocol(asyncio.Protocol):
        """HTTP/1.1 with httptools' parser: one fixed answer per request, keep-alive."""

        transport: asyncio.Transport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]
            self.parser = httptools.HttpRequestParser(self)
            set_nodelay(transport)

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                report("parser", exc)
                self.transport.write(BAD_REQUEST)
                self.transport.close()

        # httptools calls this at the end of each request (pipelined ones included).
        def on_message_complete(self) -> None:
            if self.parser.should_keep_alive():
                self.transport.write(RESPONSE)
            else:
                self.transport.write(RESPONSE_CLOSE)
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if exc is not None and not isinstance(exc, ConnectionError):
                report("connection_lost", exc)

    return HttpProtocol


def serve(job: dict[str, Any]) -> int:
    """Answer every request on 127.0.0.1 with RESPONSE, keep-alive, until killed."""
    pin(job.get("cpu"))
    report, on_loop_error = error_reporters("http server")

    try:
        HttpProtocol = http_protocol(report)  # imports httptools
        loop = load_factory(job["factory"])()
    except Exception as exc:  # noqa: BLE001 - said, not raised: the parent reads it
        report("start", exc)
        return 1

    loop.set_exception_handler(on_loop_error)

    listener = listening_socket(int(job.get("conns", 0)))
    port = listener.getsockname()[1]  # before a loop takes the socket over
    try:
        server = loop.run_until_complete(loop.create_server(
            HttpProtocol, sock=listener, backlog=backlog(int(job.get("conns", 0)))))
    except Exception as exc:  # noqa: BLE001
        report("start", exc)
        return 1
    loop.call_later(float(job["lifetime"]), loop.stop)
    print(json.dumps({"port": port, "pid": os.getpid(),
                      "class": f"{type(loop).__module__}.{type(loop).__qualname__}"}), flush=True)
    loop.run_forever()
    server.close()
    return 0


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def parse_wrk(text: str) -> dict[str, Any]:
    """wrk --latency's report: req/s, requests, latency percentiles (us), errors."""
    out: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    if m:
        out["requests"] = int(m.group(1))
        out["window_s"] = float(m.group(2)) * UNITS_US[m.group(3)] / 1e6
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text,
                                       re.MULTILINE):
        out[f"p{pct}_us"] = float(value) * UNITS_US[unit]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = ({k: int(v) for k, v in zip(("connect", "read", "write", "timeout"),
                                                        m.groups(), strict=True)} if m else {})
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    return out


def wrk_command(wrk: str, args: argparse.Namespace, port: int, duration: int) -> list[str]:
    cmd = [wrk, "-t1", f"-c{args.conns}", f"-d{duration}s", "--latency",
           f"http://127.0.0.1:{port}/"]
    taskset = shutil.which("taskset")
    if args.client_cpu >= 0 and taskset:
        cmd = [taskset, "-c", str(args.client_cpu), *cmd]
    return cmd


def run_wrk(cmd: list[str], duration: int, cpu: int) -> tuple[subprocess.CompletedProcess[str]
                                                                | None, float | None]:
    """Run wrk; its result and the share of a core it used (None if unknown)."""
    # Without taskset, the pinning is done between fork and exec.
    pre = (None if cmd[0].endswith("taskset") or cpu < 0
           else (lambda: os.sched_setaffinity(0, {cpu})))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pre,
                              timeout=duration + CLIENT_SLACK_S)
    except subprocess.TimeoutExpired:
        return None, None
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, round(used / wall, 3) if wall > 0 else None


def run_native(loadgen: Path, args: argparse.Namespace, port: int
               ) -> tuple[dict[str, Any] | None, float | None, list[str]]:
    """The native client (warm-up included, unmeasured): its JSON, CPU share, problems."""
    cmd = [str(loadgen), "-H", "-p", str(port), "-n", str(args.conns), "-s", str(len(RESPONSE)),
           "-w", str(args.warmup), "-d", str(args.duration), "-C", str(args.client_cpu)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=args.warmup + args.duration + CLIENT_SLACK_S)
    except subprocess.TimeoutExpired:
        return None, None, ["the load generator did not end by its deadline"]
    if proc.returncode != 0 or not proc.stdout.strip():
        why = last_line(proc.stderr) or f"exit status {proc.returncode}"
        return None, None, [f"the load generator failed: {why}"]
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    problems = []
    if said.get("errors"):
        problems.append(f"{said['errors']} connection error(s), first: {said['first_error']}")
    if said.get("stalled"):
        problems.append(f"{said['stalled']} connection(s) stalled")
    if not said.get("requests"):
        problems.append("no request completed")
    outcome = {k: said[k] for k in ("rps", "requests", "window_s", "p50_us", "p90_us",
                                    "p99_us", "client_cpu_wait") if k in said}
    return outcome, said.get("client_cpu"), problems


def run_once(name: str, client: str, args: argparse.Namespace, wrk: str | None,
             loadgen: Path | None) -> dict[str, Any]:
    """One server of loop `name` under `client`: a warm-up, then the measured run.

    wrk: an unmeasured wrk run, then the measured one; native: the load
    generator's own warm-up, then its measured window.
    """
    job = {"factory": LOOPS[name], "cpu": args.server_cpu, "conns": args.conns,
           "lifetime": args.warmup + args.duration + SERVER_SLACK_S}
    outcome: dict[str, Any] = {}
    with tempfile.TemporaryFile() as server_err:
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--server", json.dumps(job)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=server_err, cwd=HERE,
            start_new_session=True)
        try:
            assert server.stdout is not None
            line = read_line(server.stdout, READY_TIMEOUT_S)
            if line is None:
                stop(server)
                said = tail(server_err)
                why = (next((ln.strip() for ln in said.splitlines()
                             if ln.startswith("http server")), "")
                       or last_line(said) or f"no answer within {READY_TIMEOUT_S:.0f} s")
                return {"error": f"server did not start: {why}", "server_stderr": said}
            ready = json.loads(line)
            proc = native = None
            problems: list[str] = []
            if client == "native":
                assert loadgen is not None
                # The server's CPU share is taken over the warm-up too here.
                cpu0, t0 = cpu_seconds(ready["pid"]), time.monotonic()
                native, client_cpu, problems = run_native(loadgen, args, ready["port"])
            else:
                assert wrk is not None
                if args.warmup:
                    run_wrk(wrk_command(wrk, args, ready["port"], args.warmup), args.warmup,
                            args.client_cpu)
                cpu0, t0 = cpu_seconds(ready["pid"]), time.monotonic()
                proc, client_cpu = run_wrk(wrk_command(wrk, args, ready["port"],
                                                       args.duration),
                                           args.duration, args.client_cpu)
            cpu1, t1 = cpu_seconds(ready["pid"]), time.monotonic()
            server_status = server.poll()
        finally:
            stop(server)
        stderr_text = tail(server_err, STDERR_TAIL)

    if client == "native":
        outcome = native or {}
    elif proc is None:
        problems.append("wrk did not end by its deadline")
    elif proc.returncode != 0:
        problems.append(f"wrk failed: {last_line(proc.stderr) or last_line(proc.stdout) or proc.returncode}")
    else:
        outcome = parse_wrk(proc.stdout)
        outcome["wrk_output"] = proc.stdout
        if "rps" not in outcome or "p50_us" not in outcome:
            problems.append(f"unreadable wrk output: {proc.stdout[-300:]!r}")
        elif not outcome.get("requests"):
            problems.append("no request completed")
        errors = {k: v for k, v in outcome.get("socket_errors", {}).items() if v}
        if errors:
            problems.append("socket errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
        if outcome.get("non_2xx"):
            problems.append(f"{outcome['non_2xx']} non-2xx responses")
    if server_status is not None:
        problems.append(f"server exited (status {server_status}) during the load")
    outcome["client_cpu"] = client_cpu
    outcome["server_cpu"] = None
    if cpu0 is not None and cpu1 is not None and cpu1[0] > cpu0[0]:
        outcome["server_cpu"] = round((cpu1[0] - cpu0[0]) / (t1 - t0), 3)
        if cpu0[1] is not None and cpu1[1] is not None:
            outcome["server_cpu_wait"] = round((cpu1[1] - cpu0[1]) / (t1 - t0), 3)
    if problems:
        first = next((ln for ln in stderr_text.splitlines() if ln.startswith("http server")), "")
        if first:
            problems.append(f"server said: {first}")
        outcome["error"] = "; ".join(problems)
        outcome["server_stderr"] = stderr_text
    return outcome


def summarise(loops: Sequence[str], clients: Sequence[str],
              runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells = []
    for client, name in ((c, n) for c in clients for n in loops):
        mine = [r["result"] for r in runs if r["loop"] == name and r["client"] == client]
        good = [r for r in mine if "error" not in r]
        rps = [r["rps"] for r in good]
        cells.append({
            "loop": name, "client": client, "runs": len(mine), "counted": len(good),
            "median_rps": median_or_none(rps), "rps": rps,
            "median_p50_us": median_or_none([r["p50_us"] for r in good]),
            "median_p99_us": median_or_none([r["p99_us"] for r in good if "p99_us" in r]),
            "median_server_cpu": median_or_none([r["server_cpu"] for r in good
                                                 if r.get("server_cpu") is not None]),
            "median_client_cpu": median_or_none([r["client_cpu"] for r in good
                                                 if r.get("client_cpu") is not None]),
            "median_server_cpu_wait": median_or_none([r["server_cpu_wait"] for r in good
                                                      if r.get("server_cpu_wait") is not None]),
            "spread": spread(rps),
            "errors": [r["error"] for r in mine if "error" in r],
        })
    return cells


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 3 repetitions of 1 s, no warm-up (each overridable)")
    parser.add_argument("--reps", type=int, default=7,
                        help="repetitions per loop, interleaved (default 7)")
    add_loop_arguments(parser)
    parser.add_argument("--clients", default=",".join(CLIENTS),
                        help="comma-separated load generators: wrk (wrk -t1), native (the "
                             "suite's C client, bench/loadgen.c -H; cheaper per request, so "
                             "less often the limit) (default: both)")
    parser.add_argument("--conns", type=int, default=100,
                        help="connections of each client (default 100)")
    parser.add_argument("--duration", type=int, default=3,
                        help="measured seconds per run, whole seconds for wrk (default 3)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="unmeasured seconds of load first, same server; 0: none "
                             "(default 1)")
    parser.add_argument("--server-cpu", type=int, default=0,
                        help="CPU the server is pinned to; -1: no pinning (default 0)")
    parser.add_argument("--client-cpu", type=int, default=1,
                        help="CPU the client is pinned to; -1: no pinning (default 1)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="JSON results path (default bench/results/http-<time>.json)")
    parser.add_argument("--markdown", default=None, metavar="PATH",
                        help="also write the markdown table there")
    if "--quick" in argv:
        parser.set_defaults(reps=3, duration=1, warmup=0)
    args = parser.parse_args(argv)
    if args.reps < 1 or args.duration < 1 or args.warmup < 0 or args.conns < 1:
        parser.error("--reps, --duration and --conns must be at least 1, --warmup at least 0")
    args.clients = list(dict.fromkeys(c for c in args.clients.split(",") if c))
    unknown = [c for c in args.clients if c not in CLIENTS]
    if unknown or not args.clients:
        parser.error(f"--clients: choose from {', '.join(CLIENTS)}")
    resolve_loops(parser, args)
    return args


def main(argv: Sequence[str]) -> int:
    import report  # bench/report.py: tables and targets

    args = parse_args(argv)
    started = datetime.datetime.now()
    document: dict[str, Any] = {
        "kind": "ringloop-http",
        "started": started.isoformat(timespec="seconds"),
        **environment(),
        "settings": {"reps": args.reps, "loops": args.loops, "clients": [],
                     "conns": args.conns,
                     "duration": args.duration, "warmup": args.warmup,
                     "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
                     "threads": 1},
        "loops": {}, "cells": [], "runs": [], "skipped": None, "clients_skipped": {},
    }
    wrk = shutil.which("wrk")
    loadgen: Path | None = None
    clients = []
    for client in args.clients:
        if client == "wrk" and not wrk:
            document["clients_skipped"]["wrk"] = f"wrk is not installed: {WRK_HINT}"
        elif client == "native":
            try:
                loadgen = build_loadgen()
            except SystemExit as exc:  # no C compiler: said, and the other client goes on
                document["clients_skipped"]["native"] = str(exc)
            else:
                clients.append(client)
        else:
            clients.append(client)
    document["settings"]["clients"] = clients
    if importlib.util.find_spec("httptools") is None:
        document["skipped"] = (f"httptools is not installed for {sys.executable}: "
                               "pip install httptools; bench/run.sh installs it")
    elif not clients:
        document["skipped"] = "; ".join(document["clients_skipped"].values())
    if not document["skipped"]:
        loops, document["loops"] = usable_loops(args.loops)
        if wrk and "wrk" in clients:
            document["settings"]["wrk"] = wrk
            version = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
            said = (version.stdout or version.stderr).strip().splitlines()
            document["settings"]["wrk_version"] = said[0] if said else ""
        if loadgen is not None:
            document["settings"]["loadgen"] = str(loadgen)
        total = len(loops) * len(clients) * args.reps
        print(f"http: {len(loops)} loop(s) x {len(clients)} client(s) x {args.reps} "
              f"repetitions = {total} runs of {args.warmup} + {args.duration} s: about "
              f"{total * (args.warmup + args.duration + RUN_OVERHEAD_S) / 60:.1f} min",
              file=sys.stderr)
        runs: list[dict[str, Any]] = []
        for rep in range(args.reps):
            for client in clients:
                shown = []
                for name in rotated(loops, rep):
                    result = run_once(name, client, args, wrk, loadgen)
                    runs.append({"rep": rep, "loop": name, "client": client, "result": result})
                    shown.append(f"{name} FAILED ({result['error'][:160]})" if "error" in result
                                 else f"{name} {fmt_ops(result['rps'])}")
                print(f"rep {rep + 1}/{args.reps} {client}: " + ", ".join(shown),
                      file=sys.stderr)
        document["runs"] = runs
        document["cells"] = summarise(loops, clients, runs)
    else:
        print(f"http: skipped: {document['skipped']}", file=sys.stderr)
    document["wall_seconds"] = round((datetime.datetime.now() - started).total_seconds(), 1)
    table = report.http_markdown(document)
    targets = report.targets_markdown(http=document)
    text = table + ("\n\n" + targets if targets else "")
    document["markdown"] = text
    print(text)
    write_outputs(document, args.json, f"http-{stamp(started)}.json", args.markdown, text)
    if document["skipped"]:
        return 0  # said, not failed: the suite goes on
    return 0 if any(c["counted"] for c in document["cells"]) else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--server":
        sys.exit(serve(json.loads(sys.argv[2])))
    else:
        sys.exit(main(sys.argv[1:]))
