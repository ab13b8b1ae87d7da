"""User-space instructions per echo request (callgrind): the low-noise figure.

For each loop and mode, an echo server (the same code as bench/echo.py's
protocol and streams servers) runs under ``valgrind --tool=callgrind`` twice:
once serving N1 requests, once N2, over ``--conns`` connections in
ping-pong driven by a plain blocking client in this process.  The server
stops once every connection has closed, so start-up, imports, the loop's
creation and the connections' set-up cost the same in both runs and cancel:

    instructions per request = (Ir(N2) - Ir(N1)) / (N2 - N1)

Kernel time is not counted (a system call is a few instructions here): read
these next to the timed tables of bench/echo.py.

    python bench/callgrind_echo.py --loops uvloop,ringloop,ringloop-proactor
    python bench/callgrind_echo.py --mode streams --size 102400
    python bench/callgrind_echo.py --mode http
    python bench/callgrind_echo.py --idle-thread   # a server with an idle thread
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LOOPS, load_factory  # noqa: E402
from httpbench import RESPONSE, http_protocol  # noqa: E402


def report_and_exit(what: str, exc: BaseException) -> None:
    """The http server's error report: a counted run must not go on after one."""
    print(f"http server: {what}: {exc!r}", file=sys.stderr, flush=True)
    os._exit(1)


def serve(loop_name: str, mode: str, conns: int, idle_thread: bool) -> None:
    """The server: echo until `conns` connections have come and gone."""
    loop = load_factory(LOOPS[loop_name])()
    if idle_thread:
        # As in a server that has used the default executor once (a DNS
        # lookup): its worker threads stay, idle.  A loop that hands the GIL
        # over only while other threads exist pays for it here.
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    asyncio.set_event_loop(loop)
    done = loop.create_future()
    closed = 0

    def one_closed() -> None:
        nonlocal closed
        closed += 1
        if closed == conns and not done.done():
            done.set_result(None)

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

        def connection_lost(self, exc):
            one_closed()

    async def handle(reader, writer):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()
        one_closed()

    class Http(http_protocol(report_and_exit)):  # type: ignore[misc]
        def connection_lost(self, exc):
            super().connection_lost(exc)
            one_closed()

    async def main() -> None:
        if mode == "protocol":
            server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=1024)
        elif mode == "http":
            server = await loop.create_server(Http, "127.0.0.1", 0, backlog=1024)
        else:
            server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        await done
        server.close()

    loop.run_until_complete(main())
    loop.close()


def drive(port: int, conns: int, size: int, n: int, mode: str) -> None:
    """Blocking client: n round trips spread over `conns` connections.

    In http mode each round trip is a keep-alive GET (as wrk sends it) and
    the server's fixed answer; ``size`` does not apply.
    """
    if mode == "http":
        payload = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        size = len(RESPONSE)
    else:
        payload = os.urandom(size)
    per_conn = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]

    def one(count: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(count):
                s.sendall(payload)
                got = 0
                while got < size:
                    chunk = s.recv(size - got)
                    if not chunk:
                        raise ConnectionError("server closed early")
                    got += len(chunk)

    with ThreadPoolExecutor(conns) as pool:
        list(pool.map(one, per_conn))


def measure(loop_name: str, mode: str, conns: int, size: int, n: int,
            timeout: float, idle_thread: bool = False) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               sys.executable, str(Path(__file__).resolve()), "--serve",
               loop_name, mode, str(conns), str(int(idle_thread))]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server did not start: {proc.stderr.read()[-2000:]}")
            port = json.loads(line)["port"]
            drive(port, conns, size, n, mode)
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = out.read_text(errors="replace")
        m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
        if not m:
            raise RuntimeError("no instruction total in the callgrind output")
        return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", default="uvloop,ringloop,ringloop-proactor")
    ap.add_argument("--mode", default="protocol,streams",
                    help="comma-separated: protocol, streams, http (bench/httpbench.py's server)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--n1", type=int, default=2000)
    ap.add_argument("--n2", type=int, default=12000)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", default=None, metavar="PATH")
    ap.add_argument("--idle-thread", action="store_true",
                    help="keep one idle thread alive in the server (as the "
                         "default executor's workers stay after a DNS lookup)")
    args = ap.parse_args()
    loops = [name for name in args.loops.split(",") if name]
    modes = [m for m in args.mode.split(",") if m]
    for name in loops:
        if name not in LOOPS:
            ap.error(f"unknown loop {name!r}; known: {', '.join(LOOPS)}")
    results = []
    print("| mode | size | conns | loop | instructions/request | vs uvloop |")
    print("|---|---|---|---|---|---|")
    for mode in modes:
        base = None
        size = "-" if mode == "http" else args.size
        for name in loops:
            t0 = time.monotonic()
            try:
                ir1 = measure(name, mode, args.conns, args.size, args.n1, args.timeout,
                              args.idle_thread)
                ir2 = measure(name, mode, args.conns, args.size, args.n2, args.timeout,
                              args.idle_thread)
            except Exception as exc:  # a loop that fails gets a row saying so
                print(f"| {mode} | {size} | {args.conns} | {name} | failed: {exc} | |")
                continue
            per = (ir2 - ir1) / (args.n2 - args.n1)
            if name == "uvloop":
                base = per
            ratio = f"{per / base:.2f}x" if base else ""
            print(f"| {mode} | {size} | {args.conns} | {name} | {per:,.0f} | {ratio} |",
                  flush=True)
            results.append({"mode": mode, "size": None if mode == "http" else args.size,
                            "conns": args.conns, "idle_thread": args.idle_thread,
                            "loop": name, "ir_n1": ir1, "ir_n2": ir2,
                            "n1": args.n1, "n2": args.n2, "per_request": per,
                            "seconds": round(time.monotonic() - t0, 1)})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
    else:
        main()
