"""add_reader / add_writer / remove_reader / remove_writer on sockets and pipes."""

import asyncio
import errno
import os
import socket

import pytest

from tests.support import pipe, run, socketpair


def _run_until(loop, predicate, timeout=5.0):
    async def wait():
        while not predicate():
            await asyncio.sleep(0.001)

    run(loop, wait(), timeout=timeout)


def test_add_reader_called_with_args(loop):
    with socketpair() as (a, b):
        got = []

        def on_read(x, y):
            got.append((x, y, a.recv(100)))

        loop.add_reader(a.fileno(), on_read, 1, "two")
        b.send(b"hello")
        _run_until(loop, lambda: got)
        assert got == [(1, "two", b"hello")]
        loop.remove_reader(a.fileno())
        b.send(b"not seen")
        run(loop, asyncio.sleep(0.01))
        assert len(got) == 1


@pytest.mark.xfail_uvloop("remove_reader/remove_writer return None, not True/False")
def test_add_remove_return_values(loop):
    with socketpair() as (a, b), pipe() as (r, w):
        for fd in (a, a.fileno(), r):
            assert loop.add_reader(fd, lambda: None) is None
            assert loop.remove_reader(fd) is True
            assert loop.remove_reader(fd) is False
            assert loop.remove_writer(fd) is False
        for fd in (a, b.fileno(), w):
            assert loop.add_writer(fd, lambda: None) is None
            assert loop.remove_writer(fd) is True
            assert loop.remove_writer(fd) is False
            assert loop.remove_reader(fd) is False
        # replacing keeps one registration
        loop.add_reader(a, lambda: None)
        loop.add_reader(a, lambda: None)
        assert loop.remove_reader(a) is True
        assert loop.remove_reader(a) is False
        # reader and writer on one fd are separate
        loop.add_reader(a, lambda: None)
        loop.add_writer(a, lambda: None)
        assert loop.remove_writer(a) is True
        assert loop.remove_reader(a) is True
        assert loop.remove_reader(a) is False
        # after close: False
        loop.add_reader(a, lambda: None)
        loop.close()
        assert loop.remove_reader(a) is False
        assert loop.remove_writer(a) is False


def test_remove_never_added_is_harmless(loop):
    with socketpair() as (a, b):
        assert not loop.remove_reader(a.fileno())
        assert not loop.remove_writer(a.fileno())
        assert not loop.remove_reader(a)
        assert not loop.remove_writer(a)
        got = []
        loop.add_reader(a, lambda: (got.append(a.recv(10)), loop.remove_reader(a)))
        b.send(b"x")
        _run_until(loop, lambda: got)
        assert got == [b"x"]


def test_add_writer_called_and_removed(loop):
    with socketpair() as (a, b):
        got = []

        def on_write():
            got.append(a.send(b"x"))
            loop.remove_writer(a)

        assert loop.add_writer(a, on_write) is None
        _run_until(loop, lambda: got)
        assert got == [1]
        assert b.recv(10) == b"x"
        run(loop, asyncio.sleep(0.01))
        assert got == [1]


def test_file_object_and_fd_are_the_same_key(loop):
    with socketpair() as (a, b):
        calls = []
        loop.add_reader(a, calls.append, "r")
        loop.remove_reader(a.fileno())
        loop.add_writer(a.fileno(), calls.append, "w")
        loop.remove_writer(a)
        b.send(b"x")
        run(loop, asyncio.sleep(0.01))
        assert calls == []
        # replacing through the other spelling replaces, not duplicates
        loop.add_reader(a, calls.append, "first")
        loop.add_reader(a.fileno(), lambda: (calls.append("second"), loop.remove_reader(a)))
        _run_until(loop, lambda: calls)
        run(loop, asyncio.sleep(0.01))
        assert calls == ["second"]


def test_reader_is_level_triggered(loop):
    # Data left unread makes the reader fire again on every iteration.
    with socketpair() as (a, b):
        count = [0]

        def on_read():
            count[0] += 1
            if count[0] == 3:
                loop.remove_reader(a)

        loop.add_reader(a, on_read)
        b.send(b"unread")
        _run_until(loop, lambda: count[0] >= 3)
        run(loop, asyncio.sleep(0.01))
        assert count[0] == 3
        assert a.recv(100) == b"unread"


def test_writer_is_level_triggered(loop):
    with socketpair() as (a, b):
        count = [0]

        def on_write():
            count[0] += 1
            if count[0] == 5:
                loop.remove_writer(a)

        loop.add_writer(a, on_write)
        _run_until(loop, lambda: count[0] >= 5)
        run(loop, asyncio.sleep(0.01))
        assert count[0] == 5


def test_replacing_reader(loop):
    with socketpair() as (a, b):
        calls = []
        loop.add_reader(a, lambda: calls.append("first"))
        loop.add_reader(a, lambda: (calls.append("second"), a.recv(10)))
        b.send(b"x")
        _run_until(loop, lambda: calls)
        run(loop, asyncio.sleep(0.01))
        assert set(calls) == {"second"}
        loop.remove_reader(a)


def test_replacing_writer(loop):
    with socketpair() as (a, b):
        calls = []
        loop.add_writer(a, calls.append, "first")
        loop.add_writer(a, lambda: (calls.append("second"), loop.remove_writer(a)))
        _run_until(loop, lambda: calls)
        run(loop, asyncio.sleep(0.01))
        assert calls == ["second"]


def test_reader_and_writer_on_same_fd(loop):
    with socketpair() as (a, b):
        events = []

        def on_write():
            events.append("w")
            loop.remove_writer(a)

        def on_read():
            events.append(("r", a.recv(10)))

        loop.add_reader(a, on_read)
        loop.add_writer(a, on_write)
        _run_until(loop, lambda: "w" in events)
        assert events == ["w"]
        b.send(b"data")
        _run_until(loop, lambda: len(events) == 2)
        assert events == ["w", ("r", b"data")]
        loop.remove_reader(a)


def test_remove_writer_keeps_reader(loop):
    with socketpair() as (a, b):
        reads = []
        loop.add_reader(a, lambda: reads.append(a.recv(10)))
        loop.add_writer(a, reads.append, "writer")
        loop.remove_writer(a)
        b.send(b"still")
        _run_until(loop, lambda: reads)
        assert reads == [b"still"]
        loop.remove_reader(a)


def test_removed_reader_not_called_for_pending_event(loop):
    # Both fds are readable in the same poll; whichever callback runs first
    # removes the other's reader: the other must not run afterwards.
    with socketpair() as (a1, b1), socketpair() as (a2, b2):
        calls = []

        def cb(me, other):
            calls.append(me)
            loop.remove_reader(other)
            loop.remove_reader(me)

        loop.add_reader(a1, cb, a1, a2)
        loop.add_reader(a2, cb, a2, a1)
        b1.send(b"x")
        b2.send(b"x")
        _run_until(loop, lambda: calls)
        run(loop, asyncio.sleep(0.02))
        assert len(calls) == 1


def test_reader_on_pipe(loop):
    with pipe() as (r, w):
        got = []

        def on_read():
            data = os.read(r, 100)
            got.append(data)
            if not data:
                loop.remove_reader(r)

        loop.add_reader(r, on_read)
        os.write(w, b"through a pipe")
        _run_until(loop, lambda: got)
        assert got == [b"through a pipe"]
        os.close(w)
        _run_until(loop, lambda: got[-1] == b"")
        assert got == [b"through a pipe", b""]


def test_writer_on_pipe_until_full(loop):
    with pipe() as (r, w):
        total = [0]
        blocked = []

        def on_write():
            try:
                for _ in range(1000):  # a pipe holds far less than 64 MiB
                    total[0] += os.write(w, b"x" * 65536)
            except BlockingIOError:
                blocked.append(True)
                loop.remove_writer(w)

        loop.add_writer(w, on_write)
        _run_until(loop, lambda: blocked)
        assert total[0] > 0
        # Drain: the writer becomes writable again.
        while True:
            try:
                if not os.read(r, 1 << 20):
                    break
            except BlockingIOError:
                break
        resumed = []
        loop.add_writer(w, lambda: (resumed.append(True), loop.remove_writer(w)))
        _run_until(loop, lambda: resumed)
        assert resumed == [True]


def test_reader_sees_hangup_of_peer(loop):
    with socketpair() as (a, b):
        got = []

        def on_read():
            got.append(a.recv(10))
            loop.remove_reader(a)

        loop.add_reader(a, on_read)
        b.shutdown(socket.SHUT_WR)
        _run_until(loop, lambda: got)
        assert got == [b""]


def test_readers_survive_loop_close_without_closing_fds(loop):
    with socketpair() as (a, b):
        loop.add_reader(a, lambda: None)
        loop.add_writer(b, lambda: None)
        loop.close()
        # the loop does not own the fds: they are still open and usable
        b.send(b"ok")
        assert a.recv(10) == b"ok"
        assert not loop.remove_reader(a)
        assert not loop.remove_writer(b)


def test_add_reader_on_closed_loop(loop):
    with socketpair() as (a, b):
        loop.close()
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.add_reader(a, lambda: None)
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.add_writer(a, lambda: None)


def test_reregister_after_fd_reuse(loop):
    # A removed fd is closed and its number reused by a new socket: the new
    # socket's registration must work (no stale state kept by fd number).
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(fd, lambda: None)
    loop.remove_reader(fd)
    a.close()
    b.close()
    with socketpair() as (c, d):
        got = []
        loop.add_reader(c, lambda: (got.append(c.recv(10)), loop.remove_reader(c)))
        d.send(b"new")
        _run_until(loop, lambda: got)
        assert got == [b"new"]


def test_many_readers(loop):
    pairs = [socket.socketpair() for _ in range(100)]
    try:
        seen = set()

        def on_read(i, s):
            s.recv(10)
            seen.add(i)
            loop.remove_reader(s)

        for i, (a, b) in enumerate(pairs):
            a.setblocking(False)
            loop.add_reader(a, on_read, i, a)
        for a, b in pairs:
            b.send(b"x")
        _run_until(loop, lambda: len(seen) == len(pairs))
        assert seen == set(range(100))
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@pytest.mark.many_fds
def test_fds_above_1024(loop):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"RLIMIT_NOFILE soft limit {soft} too low")
    # Push fd numbers past 1024 with throwaway fds.
    fillers = []
    try:
        while True:
            r, w = os.pipe()
            fillers += [r, w]
            if w >= 1030:
                break
        with socketpair() as (a, b):
            assert a.fileno() > 1024
            got = []
            loop.add_reader(a, lambda: (got.append(a.recv(10)), loop.remove_reader(a)))
            b.send(b"high")
            _run_until(loop, lambda: got)
            assert got == [b"high"]
    finally:
        for fd in fillers:
            os.close(fd)


def test_reader_callback_exception_reported(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    with socketpair() as (a, b):
        def bad():
            a.recv(10)
            raise ValueError("reader failed")

        loop.add_reader(a, bad)
        b.send(b"x")
        _run_until(loop, lambda: contexts)
        loop.remove_reader(a)
    assert isinstance(contexts[0]["exception"], ValueError)


def test_add_reader_bad_fd_raises(loop, loop_impl):
    # epoll refuses a closed fd at once; every ringloop driver does too
    # (io_uring arms its polls later, so it checks the fd itself).
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        loop.add_reader(r, lambda: None)
    if loop_impl.kind != "uvloop":
        assert info.value.errno == errno.EBADF
    assert not loop.remove_reader(r)


@pytest.mark.xfail_uvloop("uvloop's OverflowError says 'value too large to convert to int'")
@pytest.mark.parametrize("big", [2**31, 2**32, 2**40])
def test_fd_beyond_c_int_is_refused(loop, big):
    # As asyncio (the selector's C int conversion): OverflowError, never a
    # number cut to 32 bits that would watch another fd.
    with pipe() as (r, w):
        with pytest.raises(OverflowError, match="too large to convert to C int"):
            loop.add_reader(big + r, lambda: None)
        with pytest.raises(OverflowError, match="too large to convert to C int"):
            loop.add_writer(big + w, lambda: None)
        assert loop.remove_reader(big + r) is False
        assert loop.remove_writer(big + w) is False
        assert loop.remove_reader(r) is False
