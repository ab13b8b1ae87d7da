"""Driver-level tests of the io_uring driver (ringloop.drivers.uring).

These construct the driver directly through its `_TestDriver` hook, outside
any event loop: futures come from a plain asyncio loop that is only spun to
run their done callbacks.  Everything is bounded in time and uses loopback.
"""

import asyncio
import errno
import os
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

uring = pytest.importorskip("ringloop.drivers.uring")

if not uring.probe()["available"]:
    pytest.skip(f"io_uring unavailable: {uring.probe()['error']}", allow_module_level=True)

EV_READ, EV_WRITE = 1, 2


# --------------------------------------------------------------------------
# helpers


@pytest.fixture
def aloop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(params=["default", "portable"])
def drv(request):
    # "portable": the fallbacks (no single issuer/defer taskrun, no EXT_ARG
    # timeout, no multishot poll, no SUBMIT_ALL).
    if request.param == "default":
        d = uring._TestDriver()
    else:
        d = uring._TestDriver(disable=("single_issuer", "ext_arg", "multishot_poll",
                                       "submit_all", "coop_taskrun"))
    yield d
    d.close()


def spin(aloop):
    aloop.run_until_complete(asyncio.sleep(0))


def pump(d, aloop, futs, timeout=5.0):
    """Poll the driver until every future in futs is done."""
    if not isinstance(futs, (list, tuple)):
        futs = [futs]
    deadline = time.monotonic() + timeout
    while not all(f.done() for f in futs):
        assert time.monotonic() < deadline, "timed out waiting for completions"
        d.poll(0.05)
        spin(aloop)
    spin(aloop)
    return [f.result() if not f.cancelled() and f.exception() is None else f for f in futs]


def settle(d, aloop, timeout=5.0):
    """Poll until no completion op is in flight."""
    deadline = time.monotonic() + timeout
    while d.info()["ops_in_flight"]:
        assert time.monotonic() < deadline, "ops still in flight"
        spin(aloop)
        d.poll(0.02)
    spin(aloop)


def tcp_pair():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    c = socket.create_connection(lsock.getsockname())
    s, _ = lsock.accept()
    lsock.close()
    for x in (c, s):
        x.setblocking(False)
    return c, s


def open_fds():
    return set(os.listdir("/proc/self/fd"))


# --------------------------------------------------------------------------
# setup / probe


def test_probe_reports_features():
    p = uring.probe()
    assert p["available"] is True
    assert p["features"]["NODROP"]
    assert p["opcodes"]["POLL_ADD"] and p["opcodes"]["ASYNC_CANCEL"]
    assert isinstance(p["setup_flags_accepted"], dict)
    assert "multishot_poll" in p and "pbuf_ring" in p
    p["available"] = False                  # a copy: the cache is untouched
    assert uring.probe()["available"] is True


def test_info_and_setup_flags():
    d = uring._TestDriver()
    try:
        info = d.info()
        assert info["driver"] == "io_uring"
        assert info["ring_fd"] == d.fileno() >= 0
        if uring.probe()["setup_flags_accepted"].get("DEFER_TASKRUN"):
            assert "DEFER_TASKRUN" in info["setup_flags"]
            assert "R_DISABLED" in info["setup_flags"]
    finally:
        d.close()
    assert d.fileno() == -1


def test_bad_disable_name():
    with pytest.raises(ValueError):
        uring._TestDriver(disable=("nope",))


def test_closed_driver_refuses(aloop):
    d = uring._TestDriver()
    d.close()
    d.close()                                # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        d.poll(0)
    with pytest.raises(RuntimeError, match="closed"):
        d.recv(0, 10, aloop.create_future())


# --------------------------------------------------------------------------
# readiness


def test_readiness_level_triggered(drv):
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        drv.set_interest(a.fileno(), EV_READ)
        assert drv.poll(0) == []
        b.send(b"x" * 10)
        assert drv.poll(2) == [(a.fileno(), EV_READ)]
        # Not consumed: reported again, and again.
        assert drv.poll(2) == [(a.fileno(), EV_READ)]
        assert drv.poll(0) == [(a.fileno(), EV_READ)]
        a.recv(100)
        assert drv.poll(0) == []
        assert drv.poll(0.05) == []
        # writer and reader on the same fd: one entry, both bits
        drv.set_interest(a.fileno(), EV_READ | EV_WRITE)
        assert drv.poll(2) == [(a.fileno(), EV_WRITE)]
        b.send(b"y")
        assert drv.poll(2) == [(a.fileno(), EV_READ | EV_WRITE)]
        drv.set_interest(a.fileno(), EV_WRITE)
        assert drv.poll(2) == [(a.fileno(), EV_WRITE)]
        drv.set_interest(a.fileno(), 0)
        assert drv.poll(0.05) == []
        assert drv.info()["in_flight"] == 0 or drv.poll(0.05) == []
    finally:
        drv.set_interest(a.fileno(), 0)
        drv.poll(0)
        a.close()
        b.close()


def test_rearmed_poll_reuses_its_request(drv):
    # A one-shot poll whose completion came in is re-armed with the same
    # request object (no allocation per readable event).
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        drv.set_interest(a.fileno(), EV_READ)
        b.send(b"x")
        before = drv.info()["poll_requests_reused"]
        for _ in range(5):
            assert drv.poll(2) == [(a.fileno(), EV_READ)]
        assert drv.info()["poll_requests_reused"] >= before + 4
    finally:
        drv.set_interest(a.fileno(), 0)
        drv.poll(0)
        a.close()
        b.close()


def test_readiness_matches_the_kernel_under_random_interest_changes(drv):
    # Interest set, changed and dropped at random points - while a poll
    # request is in flight, right after its completion, between two polls -
    # with data coming and going: every poll() must report exactly what the
    # kernel's own poll says is ready among what is wanted.  Reused and
    # removed requests must never mix up (a stale remove hitting a re-armed
    # request would lose events; a stale completion would invent them).
    rng = random.Random(1234)
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    # A small send buffer, so that "writable" comes and goes too.
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fd = a.fileno()
    want = 0
    try:
        for step in range(1500):
            action = rng.randrange(7)
            if action == 0:
                want = rng.choice((0, EV_READ, EV_WRITE, EV_READ | EV_WRITE))
                drv.set_interest(fd, want)
            elif action == 1:
                b.send(b"d" * rng.randrange(1, 3000))
            elif action == 2:
                try:
                    a.recv(rng.randrange(1, 5000))
                except BlockingIOError:
                    pass
            elif action == 3:
                try:
                    a.send(b"w" * rng.randrange(1, 20000))
                except BlockingIOError:
                    pass
            elif action == 4:
                try:
                    b.recv(65536)
                except BlockingIOError:
                    pass
            # (5, 6: poll twice in a row with nothing changed)
            p = select.poll()
            p.register(fd, select.POLLIN | select.POLLOUT)
            kernel = dict(p.poll(0)).get(fd, 0)
            expect = ((EV_READ if kernel & select.POLLIN else 0)
                      | (EV_WRITE if kernel & select.POLLOUT else 0)) & want
            got = drv.poll(0.5 if expect else 0)
            assert got == ([(fd, expect)] if expect else []), (step, want, kernel)
        info = drv.info()
        assert info["poll_requests_reused"] > 0
    finally:
        drv.set_interest(fd, 0)
        drv.poll(0)
        a.close()
        b.close()
    deadline = time.monotonic() + 5
    while drv.info()["in_flight"] and time.monotonic() < deadline:
        drv.poll(0.01)
    assert drv.info()["in_flight"] == 0


@pytest.mark.parametrize("internal", [True, False], ids=["multishot", "one-shot"])
def test_dropping_a_busy_poll_releases_the_socket(drv, internal):
    # A wake-up whose completion the kernel has not run yet makes a poll
    # request busy; a POLL_REMOVE then fails (EALREADY) and the request may
    # live on, holding the socket's file: closing the fd would send no FIN.
    # A multishot request always would; a one-shot one (a user's
    # add_reader) does when its completion, run later, finds the socket no
    # longer readable (the data was read meanwhile): it re-arms.  pyzmq's
    # ZMQStream met the one-shot case (closing the loop then waited out its
    # 2 s drain).  The peer must see EOF, and nothing may stay in flight.
    for _ in range(3):
        a, b = tcp_pair()
        try:
            drv.set_interest(a.fileno(), EV_READ, internal=internal)
            assert drv.poll(0) == []
            b.send(b"wake")                         # a wake-up, not yet run
            assert a.recv(100) == b"wake"           # (unread data would be a RST)
            drv.set_interest(a.fileno(), 0)
            drv.poll(0)
            a.close()
            b.settimeout(0.05)
            deadline = time.monotonic() + 5
            while True:
                drv.poll(0)
                try:
                    chunk = b.recv(100)
                except TimeoutError:
                    assert time.monotonic() < deadline, "the closed socket sent no FIN"
                    continue
                assert chunk == b""
                break
        finally:
            a.close()
            b.close()
    deadline = time.monotonic() + 5
    while drv.info()["in_flight"] and time.monotonic() < deadline:
        drv.poll(0.01)
    assert drv.info()["in_flight"] == 0


def test_readiness_hup_reported(drv):
    a, b = socket.socketpair()
    try:
        drv.set_interest(a.fileno(), EV_READ)
        b.close()
        assert drv.poll(2) == [(a.fileno(), EV_READ)]
    finally:
        drv.set_interest(a.fileno(), 0)
        drv.poll(0)
        a.close()


def test_multishot_internal_watch(drv):
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        drv.set_interest(efd, EV_READ, internal=True)
        for _ in range(5):
            assert drv.poll(0.01) == []
            os.eventfd_write(efd, 1)
            assert drv.poll(2) == [(efd, EV_READ)]
            os.eventfd_read(efd)
        if "multishot_poll" not in drv.info() or drv.info()["multishot_poll"]:
            # one POLL_ADD for all five wake-ups
            assert drv.info()["poll_rearms"] == 0
    finally:
        drv.set_interest(efd, 0)
        drv.poll(0)
        os.close(efd)


def test_wakeup_from_another_thread(drv):
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        drv.set_interest(efd, EV_READ, internal=True)
        assert drv.poll(0) == []
        t = threading.Timer(0.2, os.eventfd_write, (efd, 1))
        t0 = time.monotonic()
        t.start()
        got = drv.poll(10)
        dt = time.monotonic() - t0
        t.join()
        assert got == [(efd, EV_READ)]
        assert 0.1 < dt < 5
    finally:
        drv.set_interest(efd, 0)
        drv.poll(0)
        os.close(efd)


@pytest.mark.parametrize("timeout", [0.05, 0.2])
def test_poll_timeout(drv, timeout):
    drv.poll(0)
    t0 = time.monotonic()
    assert drv.poll(timeout) == []
    dt = time.monotonic() - t0
    assert timeout * 0.9 <= dt < timeout + 1.0
    # a second timed wait (fallback: the earlier TIMEOUT SQE is removed)
    t0 = time.monotonic()
    assert drv.poll(timeout) == []
    assert time.monotonic() - t0 >= timeout * 0.9


def test_one_enter_per_poll(drv):
    a, b = socket.socketpair()
    try:
        drv.set_interest(a.fileno(), EV_READ)
        drv.poll(0.01)
        before = drv.info()["enter_calls"]
        for _ in range(10):
            b.send(b"z")
            assert drv.poll(1) == [(a.fileno(), EV_READ)]
            a.recv(10)
        # at most ONE io_uring_enter per poll (none when completions were
        # already posted and nothing needs submitting)
        assert 5 <= drv.info()["enter_calls"] - before <= 10
    finally:
        drv.set_interest(a.fileno(), 0)
        drv.poll(0)
        a.close()
        b.close()


def test_poll_eintr_runs_signal_handlers(drv):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals need the main thread")
    hits = []
    old = signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
    try:
        drv.poll(0)
        t = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
        t0 = time.monotonic()
        t.start()
        assert drv.poll(5) == []
        t.join()
        assert time.monotonic() - t0 < 4
        assert hits == [1]
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_poll_signal_handler_exception_propagates(drv):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals need the main thread")

    def boom(*a):
        raise ZeroDivisionError

    old = signal.signal(signal.SIGUSR1, boom)
    try:
        drv.poll(0)
        t = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
        t.start()
        with pytest.raises(ZeroDivisionError):
            drv.poll(5)
        t.join()
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_closed_fd_goes_silent(drv):
    a, b = socket.socketpair()
    fd = a.fileno()
    drv.set_interest(fd, EV_WRITE)
    assert drv.poll(1) == [(fd, EV_WRITE)]
    a.close()            # closed without removing interest: like epoll, silence
    b.close()
    for _ in range(3):
        assert drv.poll(0.01) == []
    drv.set_interest(fd, 0)
    drv.poll(0)


# --------------------------------------------------------------------------
# completion ops


def test_tcp_ops(drv, aloop):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.setblocking(False)
    c = socket.socket()
    c.setblocking(False)
    conn = None
    try:
        fa = aloop.create_future()
        fc = aloop.create_future()
        drv.accept(lsock.fileno(), fa)
        drv.connect(c.fileno(), socket.AF_INET, lsock.getsockname(), fc)
        (conn_fd, addr), none = pump(drv, aloop, [fa, fc])
        assert none is None
        conn = socket.socket(fileno=conn_fd)
        assert addr == c.getsockname() == conn.getpeername()
        assert not os.get_inheritable(conn_fd)
        # send / recv
        f1, f2 = aloop.create_future(), aloop.create_future()
        drv.recv(conn_fd, 100, f1)
        drv.send(c.fileno(), b"hello", f2)
        data, n = pump(drv, aloop, [f1, f2])
        assert (data, n) == (b"hello", 5)
        # sendall of a big payload / recv_into loop
        payload = os.urandom(3 * 1024 * 1024)
        fs = aloop.create_future()
        drv.sendall(c.fileno(), memoryview(payload), fs)
        got = bytearray()
        buf = bytearray(65536)
        while len(got) < len(payload):
            fr = aloop.create_future()
            drv.recv_into(conn_fd, buf, 0, fr)
            (n,) = pump(drv, aloop, [fr])
            assert n > 0
            got += buf[:n]
        pump(drv, aloop, [fs])
        assert fs.result() is None
        assert bytes(got) == payload
        # recvfrom on a stream socket: address None, like socket.recvfrom
        fr, fw = aloop.create_future(), aloop.create_future()
        drv.recvfrom(conn_fd, 10, fr)
        drv.send(c.fileno(), b"abc", fw)
        pump(drv, aloop, [fr, fw])
        assert fr.result() == (b"abc", None)
        # EOF
        fr = aloop.create_future()
        drv.recv(conn_fd, 10, fr)
        c.shutdown(socket.SHUT_WR)
        assert pump(drv, aloop, [fr]) == [b""]
        assert drv.info()["ops_in_flight"] == 0
    finally:
        for s in (lsock, c, conn):
            if s is not None:
                s.close()


def test_connect_refused(drv, aloop):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    addr = s.getsockname()
    s.close()                                   # nothing listens there
    c = socket.socket()
    c.setblocking(False)
    try:
        f = aloop.create_future()
        drv.connect(c.fileno(), socket.AF_INET, addr, f)
        pump(drv, aloop, [f])
        exc = f.exception()
        assert isinstance(exc, ConnectionRefusedError)
        assert exc.errno == errno.ECONNREFUSED
        assert str(addr) in str(exc)
    finally:
        c.close()


def test_recv_reset_error(drv, aloop):
    c, s = tcp_pair()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        f = aloop.create_future()
        drv.recv(c.fileno(), 10, f)
        s.close()                               # RST
        pump(drv, aloop, [f])
        assert isinstance(f.exception(), ConnectionResetError)
    finally:
        c.close()


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_udp_ops(drv, aloop, family):
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    a = socket.socket(family, socket.SOCK_DGRAM)
    b = socket.socket(family, socket.SOCK_DGRAM)
    try:
        try:
            a.bind((host, 0))
        except OSError:
            pytest.skip("no IPv6 loopback")
        b.bind((host, 0))
        a.setblocking(False)
        b.setblocking(False)
        f1, f2 = aloop.create_future(), aloop.create_future()
        drv.recvfrom(b.fileno(), 100, f1)
        drv.sendto(a.fileno(), b"dgram", family, b.getsockname(), f2)
        (data, addr), n = pump(drv, aloop, [f1, f2])
        assert (data, n) == (b"dgram", 5)
        assert addr == a.getsockname()
        # recvfrom_into and truncation like the socket module
        buf = bytearray(b"\xaa" * 16)
        f1, f2 = aloop.create_future(), aloop.create_future()
        drv.recvfrom_into(b.fileno(), buf, 4, f1)
        drv.sendto(a.fileno(), b"0123456789", family, b.getsockname()[:2], f2)
        (n, addr), _ = pump(drv, aloop, [f1, f2])
        assert n == 4 and addr == a.getsockname()
        assert buf == b"0123" + b"\xaa" * 12
    finally:
        a.close()
        b.close()


def test_unix_stream_and_abstract(drv, aloop):
    with tempfile.TemporaryDirectory() as tmp:
        for name in (os.path.join(tmp, "s"), b"\0ringloop-test-%d" % os.getpid()):
            ls = socket.socket(socket.AF_UNIX)
            ls.bind(name)
            ls.listen(4)
            ls.setblocking(False)
            c = socket.socket(socket.AF_UNIX)
            c.setblocking(False)
            conn = None
            try:
                fa, fc = aloop.create_future(), aloop.create_future()
                drv.accept(ls.fileno(), fa)
                drv.connect(c.fileno(), socket.AF_UNIX, name, fc)
                (fd, addr), _ = pump(drv, aloop, [fa, fc])
                conn = socket.socket(fileno=fd)
                assert addr == conn.getpeername() == c.getsockname()
                assert conn.getsockname() == ls.getsockname()
            finally:
                for s in (ls, c, conn):
                    if s is not None:
                        s.close()


def test_unix_dgram_addresses(drv, aloop):
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)   # unbound sender
        try:
            a.bind(pa)
            b.bind(pb)
            for sender, expect in ((a, pa), (u, None)):
                f1, f2 = aloop.create_future(), aloop.create_future()
                drv.recvfrom(b.fileno(), 100, f1)
                drv.sendto(sender.fileno(), b"m", socket.AF_UNIX, pb, f2)
                (data, addr), n = pump(drv, aloop, [f1, f2])
                # compare with the socket module itself
                sender.sendto(b"m", pb)
                ref = b.recvfrom(100)
                assert (data, addr) == ref
                if expect is not None:
                    assert addr == expect
        finally:
            a.close()
            b.close()
            u.close()


def test_sockaddr_conversion_matches_socket_module(drv):
    rt = drv.sockaddr_roundtrip
    assert rt(socket.AF_INET, ("127.0.0.1", 80)) == ("127.0.0.1", 80)
    assert rt(socket.AF_INET, ("", 0)) == ("0.0.0.0", 0)
    assert rt(socket.AF_INET, ("<broadcast>", 1)) == ("255.255.255.255", 1)
    assert rt(socket.AF_INET, ("localhost", 5)) == ("127.0.0.1", 5)
    assert rt(socket.AF_INET6, ("::1", 80)) == ("::1", 80, 0, 0)
    assert rt(socket.AF_INET6, ("::1", 80, 5, 7)) == ("::1", 80, 5, 7)
    assert rt(socket.AF_UNIX, "/tmp/x") == "/tmp/x"
    assert rt(socket.AF_UNIX, b"\0abstract") == b"\0abstract"
    with pytest.raises(OverflowError):
        rt(socket.AF_INET, ("127.0.0.1", 70000))
    with pytest.raises(OverflowError):
        rt(socket.AF_INET6, ("::1", 1, 1 << 21))
    with pytest.raises(TypeError):
        rt(socket.AF_INET, ("127.0.0.1",))
    with pytest.raises(TypeError):
        rt(socket.AF_INET, ["127.0.0.1", 1])
    with pytest.raises(OSError, match="too long"):
        rt(socket.AF_UNIX, "x" * 200)


def test_bad_arguments_raise_synchronously(drv, aloop):
    f = aloop.create_future()
    with pytest.raises(TypeError):
        drv.recv_into(0, b"immutable", 0, f)
    with pytest.raises(ValueError):
        drv.recv_into(0, bytearray(4), 10, f)
    with pytest.raises(ValueError):
        drv.recv(0, -1, f)
    with pytest.raises(TypeError):
        drv.sendto(0, b"x", socket.AF_INET, "nope", f)
    assert not f.done()
    assert drv.info()["ops_in_flight"] == 0


def test_sendall_empty_and_cancelled_future(drv, aloop):
    f = aloop.create_future()
    assert drv.sendall(0, b"", f) is None
    assert f.result() is None


def test_ebadf_result(drv, aloop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    f = aloop.create_future()
    drv.recv(r, 10, f)
    pump(drv, aloop, [f])
    assert isinstance(f.exception(), OSError)
    assert f.exception().errno in (errno.EBADF, errno.ENOTSOCK)


# --------------------------------------------------------------------------
# cancellation


def test_cancel_pending_recv(drv, aloop):
    c, s = tcp_pair()
    try:
        f = aloop.create_future()
        op = drv.recv(c.fileno(), 100, f)
        drv.poll(0)
        f.cancel()
        spin(aloop)                    # the op's done callback sends ASYNC_CANCEL
        settle(drv, aloop)
        assert op.state == "done"
        assert drv.info()["cancels"] >= 1
        # the socket still works, nothing was consumed
        s.send(b"after")
        f = aloop.create_future()
        drv.recv(c.fileno(), 100, f)
        assert pump(drv, aloop, [f]) == [b"after"]
    finally:
        c.close()
        s.close()


def test_forget_fd_cancels_with_ecanceled(drv, aloop):
    c, s = tcp_pair()
    try:
        f1, f2 = aloop.create_future(), aloop.create_future()
        drv.recv(c.fileno(), 100, f1)
        drv.recv(c.fileno(), 100, f2)
        drv.poll(0)
        drv.forget_fd(c.fileno())
        c.close()                       # safe right after forget_fd
        pump(drv, aloop, [f1, f2])
        for f in (f1, f2):
            assert f.exception().errno == errno.ECANCELED
        drv.forget_fd(12345)            # nothing pending: a no-op
    finally:
        s.close()


@pytest.mark.parametrize("into", [False, True])
def test_recv_cancel_race_loses_nothing(drv, aloop, into):
    """Cancel recvs while data is racing in; every byte must still arrive,
    in order, through later recvs (the stash), and canaries stay intact."""
    rnd = random.Random(1234)
    c, s = tcp_pair()
    try:
        sent = bytearray()
        got = bytearray()
        counter = 0
        for i in range(300):
            f = aloop.create_future()
            canary = bytearray(b"\xcc" * 64)
            if into:
                drv.recv_into(c.fileno(), memoryview(canary)[8:40], 0, f)
            else:
                drv.recv(c.fileno(), 32, f)
            if rnd.random() < 0.5:
                drv.poll(0)             # let the recv reach the kernel first
            chunk = bytes((counter + k) % 251 for k in range(rnd.randint(1, 40)))
            counter += len(chunk)
            s.send(chunk)
            sent += chunk
            if rnd.random() < 0.7:
                f.cancel()
                spin(aloop)
            settle(drv, aloop)
            if not f.cancelled():
                r = f.result()
                if into:
                    got += canary[8:8 + r]
                else:
                    got += r
            if into:
                assert canary[:8] == b"\xcc" * 8 and canary[40:] == b"\xcc" * 24
        # drain whatever is left (stash first, then the socket)
        deadline = time.monotonic() + 5
        while len(got) < len(sent):
            assert time.monotonic() < deadline
            f = aloop.create_future()
            drv.recv(c.fileno(), 4096, f)
            (r,) = pump(drv, aloop, [f])
            got += r
        assert bytes(got) == bytes(sent)
        assert not drv.has_stash(c.fileno())
    finally:
        c.close()
        s.close()


def test_stash_take_api(drv, aloop):
    c, s = tcp_pair()
    try:
        f = aloop.create_future()
        drv.recv(c.fileno(), 10, f)
        drv.poll(0)
        f.cancel()                  # its done callback has not run yet ...
        s.send(b"q")
        drv.poll(1)                 # ... when the CQE with the data is reaped
        settle(drv, aloop)
        assert drv.has_stash(c.fileno())
        assert drv.take_recv_stash(c.fileno()) == b"q"
        assert drv.take_recv_stash(c.fileno()) is None
        assert not drv.has_stash(c.fileno())
    finally:
        c.close()
        s.close()


def test_recv_completed_then_cancelled_is_stashed(drv, aloop):
    # Deterministic: the CQE is reaped while the future is already cancelled.
    c, s = tcp_pair()
    try:
        f = aloop.create_future()
        drv.recv(c.fileno(), 10, f)
        drv.poll(0)
        f.cancel()                  # done callback not run yet (no spin)
        s.send(b"late")
        drv.poll(1)                 # CQE reaped while the future is cancelled
        settle(drv, aloop)
        assert drv.has_stash(c.fileno())
        f2 = aloop.create_future()
        assert drv.recv(c.fileno(), 2, f2) is None      # served from the stash
        assert f2.result() == b"la"
        f3 = aloop.create_future()
        drv.recv(c.fileno(), 10, f3)
        assert f3.result() == b"te"
        assert not drv.has_stash(c.fileno())
    finally:
        c.close()
        s.close()


def test_datagram_stash_keeps_boundaries(drv, aloop):
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        futs = []
        for _ in range(2):
            f = aloop.create_future()
            drv.recvfrom(b.fileno(), 100, f)
            futs.append(f)
        drv.poll(0)
        for f in futs:
            f.cancel()
        a.sendto(b"one", b.getsockname())
        a.sendto(b"two", b.getsockname())
        drv.poll(1)
        drv.poll(0.1)
        settle(drv, aloop)
        assert drv.has_stash(b.fileno())
        out = []
        for _ in range(2):
            f = aloop.create_future()
            drv.recvfrom(b.fileno(), 100, f)
            out.append(pump(drv, aloop, [f])[0])
        assert out == [(b"one", a.getsockname()), (b"two", a.getsockname())]
    finally:
        a.close()
        b.close()


def test_accept_cancel_race_stashes_connection(drv, aloop):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.setblocking(False)
    clients = []
    try:
        f = aloop.create_future()
        drv.accept(ls.fileno(), f)
        drv.poll(0)
        f.cancel()                  # before its done callback runs: the accept
        clients.append(socket.create_connection(ls.getsockname()))   # completes
        drv.poll(1)
        settle(drv, aloop)
        assert drv.has_stash(ls.fileno())
        f2 = aloop.create_future()
        assert drv.accept(ls.fileno(), f2) is None
        fd, addr = f2.result()
        assert addr == clients[0].getsockname()
        os.close(fd)
        # forgotten listener: stashed connections are closed
        f = aloop.create_future()
        drv.accept(ls.fileno(), f)
        drv.poll(0)
        f.cancel()
        clients.append(socket.create_connection(ls.getsockname()))
        drv.poll(1)
        settle(drv, aloop)
        before = open_fds()
        drv.forget_fd(ls.fileno())
        assert len(before - open_fds()) == 1
    finally:
        ls.close()
        for c in clients:
            c.close()


def test_sendall_cancelled_midway(drv, aloop):
    c, s = tcp_pair()
    try:
        payload = b"x" * (8 * 1024 * 1024)
        f = aloop.create_future()
        drv.sendall(c.fileno(), payload, f)
        for _ in range(3):
            drv.poll(0.01)
        f.cancel()
        spin(aloop)
        deadline = time.monotonic() + 5
        while drv.info()["ops_in_flight"]:
            assert time.monotonic() < deadline
            s.recv(1 << 20) if _readable(s) else None
            drv.poll(0.01)
            spin(aloop)
        assert f.cancelled()           # like asyncio: CancelledError, partial data sent
    finally:
        c.close()
        s.close()


def _readable(sock):
    import select
    return bool(select.select([sock], [], [], 0)[0])


# --------------------------------------------------------------------------
# close, overflow, threads, fork, unavailable


def test_close_with_ops_in_flight_leaves_no_fd(aloop):
    before = open_fds()
    d = uring._TestDriver()
    c, s = tcp_pair()
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    try:
        futs = [aloop.create_future() for _ in range(4)]
        d.recv(c.fileno(), 100, futs[0])
        d.recv_into(s.fileno(), bytearray(100), 0, futs[1])
        d.accept(ls.fileno(), futs[2])
        d.recvfrom(c.fileno(), 10, futs[3])
        d.set_interest(s.fileno(), EV_READ)
        d.poll(0)
        assert d.info()["ops_in_flight"] == 4
        d.close()
        assert d.info()["in_flight"] == 0
        assert d.info()["orphaned_ops"] == 0
        spin(aloop)
        assert all(f.cancelled() for f in futs)
    finally:
        d.close()
        c.close()
        s.close()
        ls.close()
    assert open_fds() == before


def test_cq_overflow_burst(aloop):
    # SQ of 4, CQ of 8, 64 ops completing at once.
    d = uring._TestDriver(entries=4, cq_entries=8)
    pairs = [tcp_pair() for _ in range(64)]
    try:
        futs = []
        for c, s in pairs:
            f = aloop.create_future()
            d.recv(c.fileno(), 10, f)
            futs.append(f)
        d.poll(0)
        assert d.info()["sq_full_flushes"] > 0
        for i, (c, s) in enumerate(pairs):
            s.send(b"%d" % i)
        time.sleep(0.05)
        res = pump(d, aloop, futs)
        assert res == [b"%d" % i for i in range(64)]
        info = d.info()
        assert info["cq_entries"] == 8
        assert info["cqes_reaped"] >= 64
    finally:
        d.close()
        for c, s in pairs:
            c.close()
            s.close()


def test_thread_switch_rebuilds_ring(aloop):
    d = uring._TestDriver()
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        d.set_interest(efd, EV_READ, internal=True)
        results = []

        def run():
            try:
                os.eventfd_write(efd, 1)
                results.append(d.poll(2))
                os.eventfd_read(efd)
            except BaseException as e:          # pragma: no cover
                results.append(e)

        for _ in range(2):
            t = threading.Thread(target=run)
            t.start()
            t.join(10)
        assert results == [[(efd, EV_READ)], [(efd, EV_READ)]]
        if d.info()["single_issuer"]:
            assert d.info()["thread_migrations"] >= 1
        # and from the main thread again, with an op in flight across the switch
        a, b = socket.socketpair()
        try:
            f = aloop.create_future()
            d.recv(a.fileno(), 10, f)           # queued, not yet submitted
            b.send(b"ok")
            assert pump(d, aloop, [f]) == [b"ok"]
        finally:
            a.close()
            b.close()
    finally:
        d.close()
        os.close(efd)


def test_thread_switch_with_submitted_op(aloop):
    d = uring._TestDriver()
    a, b = socket.socketpair()
    try:
        f = aloop.create_future()
        t = threading.Thread(target=lambda: (d.recv(a.fileno(), 10, f), d.poll(0)))
        t.start()
        t.join(10)
        d.poll(0)                     # another thread: ring rebuilt
        spin(aloop)
        if d.info()["single_issuer"] or d.info()["orphaned_ops"]:
            assert isinstance(f.exception(), RuntimeError)
        b.send(b"x")
        f2 = aloop.create_future()
        d.recv(a.fileno(), 10, f2)
        pump(d, aloop, [f2])
        assert f2.result() == b"x"
        assert not d.info()["single_issuer"] or d.info()["thread_migrations"] == 1
    finally:
        d.close()
        a.close()
        b.close()


def test_close_from_another_thread(aloop):
    d = uring._TestDriver()
    a, b = socket.socketpair()
    try:
        d.set_interest(a.fileno(), EV_READ)
        d.poll(0)
        t = threading.Thread(target=lambda: d.close())
        t.start()
        t.join(10)
        assert d.fileno() == -1
    finally:
        d.close()
        a.close()
        b.close()


def _run_child(code, timeout=60):
    # The child imports ringloop exactly as this process did (installed
    # package in CI, the source tree with an in-place build otherwise).
    import ringloop

    pkg_parent = os.path.dirname(os.path.dirname(ringloop.__file__))
    env = dict(os.environ, PYTHONPATH=pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_fork_child_refuses():
    r = _run_child("""
        import os, sys
        from ringloop.drivers import uring
        d = uring._TestDriver()
        d.poll(0)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                d.poll(0)
            except RuntimeError as e:
                code = 0 if "os.fork()" in str(e) else 2
                print(e)
            d.close()       # must not touch the parent's ring
            os._exit(code)
        _, st = os.waitpid(pid, 0)
        d.poll(0)           # the parent's ring still works
        d.close()
        sys.exit(os.waitstatus_to_exitcode(st))
    """)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "os.fork()" in r.stdout


SECCOMP_CHILD = """
    import ctypes, errno, os, struct, sys
    libc = ctypes.CDLL(None, use_errno=True)
    # BPF: if nr == io_uring_setup (425) -> ERRNO(%d) else ALLOW
    def ins(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)
    prog = b"".join([
        ins(0x20, 0, 0, 0),                       # ld  [0]  (seccomp_data.nr)
        ins(0x15, 0, 1, 425),                     # jeq #425
        ins(0x06, 0, 0, 0x00050000 | %d),         # ret ERRNO
        ins(0x06, 0, 0, 0x7fff0000),              # ret ALLOW
    ])
    buf = ctypes.create_string_buffer(prog)
    class fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fp = fprog(len(prog) // 8, ctypes.addressof(buf))
    assert libc.prctl(38, 1, 0, 0, 0) == 0               # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(fp), 0, 0) == 0, ctypes.get_errno()  # SECCOMP
    from ringloop.drivers import uring
    try:
        uring._TestDriver()
    except uring.UringUnavailable as e:
        assert isinstance(e, OSError) and e.errno == %d, e
        print("MESSAGE:", e)
        p = uring.probe()
        assert p["available"] is False and p["error"], p
        sys.exit(0)
    sys.exit(3)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="BPF filter written for x86_64 syscall numbers")
@pytest.mark.parametrize("err", [errno.EPERM, errno.ENOSYS, errno.ENOMEM, errno.EACCES])
def test_unavailable_under_seccomp(err):
    r = _run_child(SECCOMP_CHILD % (err, err, err))
    assert r.returncode == 0, r.stdout + r.stderr
    msg = r.stdout
    assert errno.errorcode[err] in msg
    assert "SelectorEventLoop" in msg
    if err == errno.EPERM:
        assert "io_uring_disabled" in msg and "seccomp" in msg
    if err == errno.ENOMEM:
        assert "RLIMIT_MEMLOCK" in msg
