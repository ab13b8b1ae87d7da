"""Choosing the loop kind: selector or io_uring proactor, and the fallback
when io_uring is blocked (a seccomp filter in a child process)."""

import asyncio
import os
import socket
import sys
import threading

import pytest

from tests.support import TIMEOUT, run_child


def _uring_ok():
    import ringloop

    try:
        ringloop.ProactorEventLoop().close()
    except ringloop.UringUnavailable as exc:
        return False, str(exc)
    return True, ""


_ok, _why = _uring_ok()
needs_uring = pytest.mark.skipif(not _ok, reason=f"io_uring unavailable here: {_why}")


def test_kind_argument():
    import ringloop

    sel = ringloop.new_event_loop("selector")
    try:
        assert type(sel) is ringloop.SelectorEventLoop
    finally:
        sel.close()
    with pytest.raises(ValueError, match="unknown ringloop loop kind 'kqueue'"):
        ringloop.new_event_loop("kqueue")


@needs_uring
def test_kind_proactor_argument_and_environment(monkeypatch):
    import ringloop

    loop = ringloop.new_event_loop("proactor")
    try:
        assert type(loop) is ringloop.ProactorEventLoop
        assert loop.statistics()["driver"] == "io_uring"
        assert loop.statistics()["fallback"] is None
    finally:
        loop.close()
    monkeypatch.setenv("RINGLOOP_LOOP", "proactor")
    loop = ringloop.new_event_loop()
    try:
        assert type(loop) is ringloop.ProactorEventLoop
    finally:
        loop.close()
    monkeypatch.setenv("RINGLOOP_LOOP", "selector")
    loop = ringloop.new_event_loop()
    try:
        assert type(loop) is ringloop.SelectorEventLoop
    finally:
        loop.close()


def test_default_kind_is_selector(monkeypatch):
    import ringloop

    monkeypatch.delenv("RINGLOOP_LOOP", raising=False)
    loop = ringloop.new_event_loop()
    try:
        assert type(loop) is ringloop.SelectorEventLoop
    finally:
        loop.close()


@needs_uring
def test_proactor_created_in_one_thread_run_in_another_closed_in_a_third():
    import ringloop

    loop = ringloop.ProactorEventLoop()
    results = []

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        try:
            await loop.sock_sendall(a, b"ping")
            results.append(await loop.sock_recv(b, 16))
            await asyncio.sleep(0.01)
        finally:
            a.close()
            b.close()

    t = threading.Thread(target=lambda: loop.run_until_complete(main()))
    t.start()
    t.join(TIMEOUT)
    assert results == [b"ping"]
    # and again from yet another thread, then closed from a third
    t = threading.Thread(target=lambda: loop.run_until_complete(main()))
    t.start()
    t.join(TIMEOUT)
    assert results == [b"ping", b"ping"]
    t = threading.Thread(target=loop.close)
    t.start()
    t.join(TIMEOUT)
    assert loop.is_closed()


@needs_uring
def test_proactor_batches_submissions_per_iteration():
    """Steady state: at most one io_uring_enter per loop iteration."""
    import ringloop

    loop = ringloop.ProactorEventLoop()
    rounds = 300

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)

        async def echo():
            while True:
                data = await loop.sock_recv(b, 4096)
                if not data:
                    return
                await loop.sock_sendall(b, data)

        server = loop.create_task(echo())
        try:
            for _ in range(20):   # warm up
                await loop.sock_sendall(a, b"x" * 64)
                await loop.sock_recv(a, 4096)
            before = loop.statistics()
            for _ in range(rounds):
                await loop.sock_sendall(a, b"x" * 64)
                assert len(await loop.sock_recv(a, 4096)) == 64
            after = loop.statistics()
        finally:
            a.close()
            await server
            b.close()
        return before, after

    try:
        before, after = loop.run_until_complete(main())
    finally:
        loop.close()
    iterations = after["iterations"] - before["iterations"]
    enters = after["enter_calls"] - before["enter_calls"]
    assert iterations > 0
    assert enters <= iterations, (enters, iterations)


BLOCKED_CHILD = """
    import ctypes, struct, sys, warnings
    libc = ctypes.CDLL(None, use_errno=True)
    def ins(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)
    prog = b"".join([
        ins(0x20, 0, 0, 0),                       # ld  [0]  (seccomp_data.nr)
        ins(0x15, 0, 1, 425),                     # jeq #425 (io_uring_setup)
        ins(0x06, 0, 0, 0x00050000 | 1),          # ret ERRNO(EPERM)
        ins(0x06, 0, 0, 0x7fff0000),              # ret ALLOW
    ])
    buf = ctypes.create_string_buffer(prog)
    class fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fp = fprog(len(prog) // 8, ctypes.addressof(buf))
    assert libc.prctl(38, 1, 0, 0, 0) == 0               # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(fp), 0, 0) == 0  # SECCOMP_MODE_FILTER

    import asyncio, ringloop
    try:
        ringloop.ProactorEventLoop()
    except ringloop.UringUnavailable as exc:
        print("ERROR:", exc)
    else:
        sys.exit("ProactorEventLoop() did not raise")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loops = [ringloop.new_event_loop() for _ in range(3)]
        async def main():
            await asyncio.sleep(0)
            return asyncio.get_running_loop().statistics()["fallback"]
        print("RUN:", ringloop.run(main()))
    for lp in loops:
        assert type(lp) is ringloop.SelectorEventLoop, lp
        print("FALLBACK:", lp.statistics()["fallback"])
        lp.close()
    mine = [w for w in caught if "ProactorEventLoop cannot run here" in str(w.message)]
    print("WARNINGS:", len(mine), mine[0].category.__name__ if mine else None)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="the seccomp filter is written for x86_64 syscall numbers")
def test_default_proactor_falls_back_when_io_uring_is_blocked():
    r = run_child(BLOCKED_CHILD, env={"RINGLOOP_LOOP": "proactor"}, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "ERROR:" in out and "EPERM" in out and "SelectorEventLoop" in out
    assert out.count("FALLBACK: io_uring unavailable, using epoll") == 3
    assert "RUN: io_uring unavailable, using epoll" in out
    assert "WARNINGS: 1 RuntimeWarning" in out


@needs_uring
def test_proactor_accepts_a_queued_burst_without_an_iteration_each():
    import ringloop

    loop = ringloop.ProactorEventLoop()
    n = 200
    listener = socket.socket()
    clients = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(n + 10)
        listener.setblocking(False)
        for _ in range(n):   # completed handshakes wait in the backlog
            c = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
            clients.append(c)

        async def main():
            before = loop.statistics()["iterations"]
            conns = [await loop.sock_accept(listener) for _ in range(n)]
            after = loop.statistics()["iterations"]
            for conn, _ in conns:
                conn.close()
            return len(conns), after - before

        accepted, iterations = loop.run_until_complete(main())
    finally:
        for c in clients:
            c.close()
        listener.close()
        loop.close()
    assert accepted == n
    assert iterations < n // 4, iterations


def test_out_of_fds_at_creation_says_so_as_asyncio_does():
    # With no fd left, making a loop fails with asyncio's own error
    # ("[Errno 24] Too many open files"), for every kind, and leaks nothing.
    r = run_child("""
        import asyncio, os, resource, selectors, ringloop
        kinds = {"asyncio": asyncio.SelectorEventLoop,
                 "selector": ringloop.SelectorEventLoop,
                 "portable": lambda: ringloop.SelectorEventLoop(selectors.PollSelector()),
                 "proactor": ringloop.ProactorEventLoop}
        before = len(os.listdir("/proc/self/fd")) - 1    # less listdir's own
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (before, hard))
        for name, make in kinds.items():
            try:
                make().close()
                print(name, "MADE")
            except OSError as exc:
                print(name, exc.errno, str(exc))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        print("LEFT", len(os.listdir("/proc/self/fd")) - 1 - before)
    """)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert lines["asyncio"] == "24 [Errno 24] Too many open files", lines
    for name in ("selector", "portable"):
        assert lines[name] == lines["asyncio"], (name, lines)
    if _ok:    # (asyncio has no proactor here: the ring's call is named too)
        assert lines["proactor"].startswith("24 [Errno 24] "), lines
        assert "Too many open files" in lines["proactor"], lines
    assert lines["LEFT"] == "0", lines
