"""Pipe transports: loop.connect_read_pipe / loop.connect_write_pipe on
os.pipe(), FIFOs, PTYs and socket pairs; EOF, close, abort, write_eof,
reading and writing flow control, a closed reader ("the reader trick"),
rejected regular files, and streams over pipes.

Each transport takes ownership of the file object it is given: it closes it
after ``connection_lost``.  The other end of the pipe is driven by hand with
os.read/os.write (through ``add_reader``/``add_writer``) unless the case is
about two transports talking to each other.
"""

import asyncio
import contextlib
import errno
import hashlib
import os
import random
import socket
import stat
import sys
import tty

import pytest

from tests.support import (TIMEOUT, FlowRecorder, Recorder, check_pause_resume_reading,
                           check_write_buffer_limit_rules, no_flow, run)

MiB = 1024 * 1024


# ------------------------------------------------------------- helpers ----

@contextlib.asynccontextmanager
async def pipe_files(read_opener=None, write_opener=None):
    """(read file, write file) of a fresh os.pipe(), unbuffered by default.

    Both are closed on exit (after the live transports ended) unless a
    transport or the test closed them already; tests close an end with
    ``f.close()``, never ``os.close``, so an fd number is never closed twice.
    """
    r, w = os.pipe()
    files = []
    try:
        files.append((read_opener or (lambda fd: open(fd, "rb", buffering=0)))(r))
        files.append((write_opener or (lambda fd: open(fd, "wb", buffering=0)))(w))
    except BaseException:
        for fd in (r, w)[len(files):]:
            os.close(fd)
        for f in files:
            f.close()
        raise
    async with files_closed_after(*files):
        yield files[0], files[1]


def fd_identity(f):
    """(fd, (st_dev, st_ino)) of the open file object ``f``, for assert_fd_closed."""
    fd = f.fileno()
    st = os.fstat(fd)
    return fd, (st.st_dev, st.st_ino)


def assert_fd_closed(identity):
    """The fd of ``identity`` (from fd_identity) no longer refers to the file it
    referred to (the number may have been reused)."""
    fd, file_id = identity
    try:
        st = os.fstat(fd)
    except OSError as exc:
        assert exc.errno == errno.EBADF
        return
    assert (st.st_dev, st.st_ino) != file_id, f"fd {fd} still open"


async def drive_fd(fd, step, *, writable):
    """Call ``step()`` whenever ``fd`` is ready (via add_reader, or add_writer
    if ``writable``) until it returns true; return then.

    ``fd`` is made non-blocking.  BlockingIOError/InterruptedError from
    ``step()`` mean "not yet"; any other OSError is raised here.
    """
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    done = loop.create_future()

    def ready():
        try:
            finished = step()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if not done.done():
                done.set_exception(exc)
            return
        if finished and not done.done():
            done.set_result(None)

    add, remove = ((loop.add_writer, loop.remove_writer) if writable
                   else (loop.add_reader, loop.remove_reader))
    add(fd, ready)
    try:
        await done
    finally:
        remove(fd)


async def read_fd_to_eof(fd, limit=None):
    """Read the non-blocking ``fd`` until EOF (via add_reader); return the bytes.

    ``limit``: stop once that many bytes arrived.
    """
    data = bytearray()

    def read_some():
        chunk = os.read(fd, 1 << 20)
        data.extend(chunk)
        return not chunk or (limit is not None and len(data) >= limit)

    await drive_fd(fd, read_some, writable=False)
    return bytes(data)


async def write_fd_all(fd, data):
    """Write all of ``data`` to the non-blocking ``fd`` (via add_writer)."""
    view = memoryview(data)

    def write_some():
        nonlocal view
        while view:
            n = os.write(fd, view[:1 << 20])
            view = view[n:]
        return True

    await drive_fd(fd, write_some, writable=True)


async def wait_lost(proto, timeout=TIMEOUT):
    return await asyncio.wait_for(asyncio.shield(proto.lost), timeout)


_LIVE = []  # (transport, protocol, is_write) made by connect_read/connect_write


async def connect_read(loop, factory, pipe):
    tr, proto = await loop.connect_read_pipe(factory, pipe)
    _LIVE.append((tr, proto, False))
    return tr, proto


async def connect_write(loop, factory, pipe):
    tr, proto = await loop.connect_write_pipe(factory, pipe)
    _LIVE.append((tr, proto, True))
    return tr, proto


async def end_live_transports():
    """Abort (write side) or close (read side) the transports whose
    connection_lost has not run, and wait for it.

    Runs before a case closes its files, so that a failing case never closes
    a file under a live transport (uvloop aborts the process then).
    """
    live = [(tr, proto, is_write) for tr, proto, is_write in _LIVE
            if getattr(proto, "lost", None) is not None and not proto.lost.done()]
    _LIVE.clear()
    for tr, proto, is_write in live:
        if is_write:
            tr.abort()
        else:
            tr.close()
    for tr, proto, is_write in live:
        await wait_lost(proto)


@contextlib.asynccontextmanager
async def files_closed_after(*files):
    """Close ``files`` on exit, after the live transports ended."""
    try:
        yield files
    finally:
        try:
            await end_live_transports()
        finally:
            for f in files:
                f.close()


async def drain_transport(tr, proto, fd):
    """Read what ``tr`` writes into the pipe until it has flushed its buffer."""
    got = bytearray()
    os.set_blocking(fd, False)
    for _ in range(10000):
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            chunk = None
        if chunk:
            got += chunk
        elif tr.get_write_buffer_size() == 0:
            return bytes(got)
        else:
            await asyncio.sleep(0.001)
    raise AssertionError("write buffer never drained")


def with_each_opener(mode):
    """Parametrize ``opener`` over the ways of making the file object a pipe
    transport takes from a pipe fd, opened with ``mode`` ("rb" or "wb")."""
    openers = {
        f"open-{mode}-unbuffered": lambda fd: open(fd, mode, buffering=0),
        f"fdopen-{mode}": lambda fd: os.fdopen(fd, mode),
    }
    return pytest.mark.parametrize("opener", list(openers.values()), ids=list(openers))


def assert_fresh_transport(tr, proto, pipe):
    """What holds right after connect_read_pipe/connect_write_pipe(..., pipe)."""
    assert proto.made.done() and proto.transport is tr
    assert tr.get_extra_info("pipe") is pipe
    assert tr.get_protocol() is proto


# ----------------------------------------------------------- read pipe ----

@with_each_opener("rb")
def test_read_pipe_eof(loop, opener):
    async def main():
        async with pipe_files(read_opener=opener) as (rf, wf):
            ident = fd_identity(rf)
            tr, proto = await connect_read(loop, Recorder, rf)
            assert_fresh_transport(tr, proto, rf)
            assert not tr.is_closing()
            wf.write(b"hello ")
            assert await proto.received(6) == b"hello "
            wf.write(b"world")
            wf.close()
            assert await wait_lost(proto) is None
            assert proto.data == b"hello world"
            assert proto.events == ["connection_made", "data_received", "eof_received",
                                    "connection_lost"]
            assert tr.is_closing()
            assert rf.closed
            assert_fd_closed(ident)

    run(loop, main())


@pytest.mark.xfail_uvloop("eof_received() returning True keeps the read pipe open")
def test_read_pipe_eof_received_true_still_closes(loop):
    # A pipe cannot be half-closed: eof_received()'s return value is ignored.
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_read(loop, lambda: Recorder(keep_open=True), rf)
            wf.close()
            assert await wait_lost(proto, 2) is None
            assert proto.events == ["connection_made", "eof_received", "connection_lost"]
            assert rf.closed

    run(loop, main())


@pytest.mark.xfail_uvloop("uvloop names its handle's callback differently")
def test_read_pipe_callback_error_names_read_ready(loop):
    # A read pipe does not catch its protocol's errors: they reach the
    # exception handler from the I/O handle, named as asyncio names it
    # ("Exception in callback _UnixReadPipeTransport._read_ready()").
    class Raises(Recorder):
        def data_received(self, data):
            super().data_received(data)
            raise ZeroDivisionError("from data_received")

    async def main():
        contexts = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_read(loop, Raises, rf)
            wf.write(b"x")
            await proto.received(1)
            for _ in range(10):
                if contexts:
                    break
                await asyncio.sleep(0.01)
            assert len(contexts) == 1, contexts
            ctx = contexts[0]
            name = f"{type(tr).__name__}._read_ready"
            assert ctx["message"] == f"Exception in callback {name}()"
            assert isinstance(ctx["exception"], ZeroDivisionError)
            handle = ctx["handle"]
            assert handle._callback.__qualname__ == name
            assert handle._callback.__self__ is tr
            assert f"{name}()" in repr(handle)
            wf.close()
            await wait_lost(proto)

    run(loop, main())


@pytest.mark.xfail_uvloop("pipe transports are not asyncio.ReadTransport/WriteTransport instances")
def test_pipe_transports_are_asyncio_transports(loop):
    async def main():
        async with pipe_files() as (rf, wf):
            rtr, rproto = await connect_read(loop, Recorder, rf)
            wtr, wproto = await connect_write(loop, Recorder, wf)
            assert isinstance(rtr, asyncio.ReadTransport)
            assert isinstance(wtr, asyncio.WriteTransport)

    run(loop, main())


def test_read_pipe_close(loop):
    async def main():
        async with pipe_files() as (rf, wf):
            ident = fd_identity(rf)
            tr, proto = await connect_read(loop, Recorder, rf)
            wf.write(b"unread")
            tr.close()
            assert tr.is_closing()
            assert not tr.is_reading()
            tr.close()  # again: no-op
            assert await wait_lost(proto) is None
            await asyncio.sleep(0.01)
            assert proto.events == ["connection_made", "connection_lost"]
            assert proto.data == b""
            assert rf.closed
            assert_fd_closed(ident)
            # the read end is gone: the writer gets EPIPE
            with pytest.raises(BrokenPipeError):
                wf.write(b"x")

    run(loop, main())


def test_read_pipe_pause_resume(loop):
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_read(loop, Recorder, rf)
            await check_pause_resume_reading(tr, proto, wf.write, wf.close)
            assert await wait_lost(proto) is None
            assert proto.events == ["connection_made", "data_received", "eof_received",
                                    "connection_lost"]
            assert not tr.is_reading()
            tr.pause_reading()  # after close: no error
            tr.resume_reading()
            assert not tr.is_reading()

    run(loop, main())


def test_read_pipe_set_protocol(loop):
    async def main():
        async with pipe_files() as (rf, wf):
            tr, first = await connect_read(loop, Recorder, rf)
            wf.write(b"one")
            await first.received(3)
            second = Recorder()
            tr.set_protocol(second)
            assert tr.get_protocol() is second
            wf.write(b"two")
            wf.close()
            assert await wait_lost(second) is None
            assert second.data == b"two"
            assert second.events == ["data_received", "eof_received", "connection_lost"]
            assert first.data == b"one" and not first.lost.done()
            first.lost.set_result(None)  # replaced: no cleanup to wait for

    run(loop, main())


def test_read_pipe_large_in_order(loop):
    async def main():
        payload = os.urandom(8 * MiB)
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_read(loop, Recorder, rf)
            await write_fd_all(wf.fileno(), payload)
            wf.close()
            assert await wait_lost(proto, 30) is None
            assert len(proto.data) == len(payload)
            assert hashlib.sha256(proto.data).digest() == hashlib.sha256(payload).digest()

    run(loop, main(), timeout=60)


def test_read_pipe_made_non_blocking(loop):
    # A pipe handed over in blocking mode is switched to non-blocking.
    async def main():
        async with pipe_files() as (rf, wf):
            os.set_blocking(rf.fileno(), True)
            tr, proto = await connect_read(loop, Recorder, rf)
            assert not os.get_blocking(rf.fileno())
            wf.close()
            assert await wait_lost(proto) is None

    run(loop, main())


# ---------------------------------------------------------- write pipe ----

@with_each_opener("wb")
def test_write_pipe_basic(loop, opener):
    async def main():
        async with pipe_files(write_opener=opener) as (rf, wf):
            ident = fd_identity(wf)
            tr, proto = await connect_write(loop, Recorder, wf)
            assert_fresh_transport(tr, proto, wf)
            assert tr.can_write_eof() is True
            assert not os.get_blocking(wf.fileno())
            tr.write(b"bytes|")
            tr.write(bytearray(b"bytearray|"))
            tr.write(memoryview(b"xxmemoryview|yy")[2:-2])
            tr.write(b"")
            tr.writelines([b"lines:", bytearray(b"ba,"), memoryview(b"mv,"), b"end"])
            assert tr.get_write_buffer_size() == 0  # all went into the pipe
            tr.close()
            assert tr.is_closing()
            assert await wait_lost(proto) is None
            assert await read_fd_to_eof(rf.fileno()) == b"bytes|bytearray|memoryview|lines:ba,mv,end"
            assert wf.closed
            assert_fd_closed(ident)
            assert no_flow(proto.events) == ["connection_made", "connection_lost"]

    run(loop, main())


@pytest.mark.xfail_uvloop("the default low-water mark is 16 bytes, not 16 KiB")
def test_write_pipe_buffer_limits_default(loop):
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            tr.close()
            await wait_lost(proto)

    run(loop, main())


def test_write_pipe_buffer_limits(loop):
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            check_write_buffer_limit_rules(tr)
            tr.close()
            await wait_lost(proto)

    run(loop, main())


def test_write_pipe_flow_control(loop):
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, FlowRecorder, wf)
            tr.set_write_buffer_limits(high=4096, low=1024)
            chunk = os.urandom(1024)
            written = 0
            sent = bytearray()
            while not proto.pauses:
                assert written < 16 * MiB, "pause_writing() never called"
                tr.write(chunk)
                sent += chunk
                written += len(chunk)
            assert proto.pauses == 1 and proto.resumes == 0
            assert proto.sizes == [("pause", tr.get_write_buffer_size())]
            assert tr.get_write_buffer_size() > 4096
            tr.write(chunk)  # still paused: no second pause_writing()
            sent += chunk
            assert proto.pauses == 1
            got = await drain_transport(tr, proto, rf.fileno())
            assert got == bytes(sent)
            await asyncio.sleep(0)
            assert proto.resumes == 1
            assert proto.sizes[1][0] == "resume" and proto.sizes[1][1] <= 1024
            assert tr.get_write_buffer_size() == 0
            tr.close()
            assert await wait_lost(proto) is None
            assert proto.events == ["connection_made", "pause_writing", "resume_writing",
                                    "connection_lost"]

    run(loop, main())


async def _check_close_flushes_buffer(loop, how):
    payload = os.urandom(4 * MiB)  # far more than a pipe holds
    async with pipe_files() as (rf, wf):
        tr, proto = await connect_write(loop, Recorder, wf)
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0
        getattr(tr, how)()
        if how == "close":
            assert tr.is_closing()
        getattr(tr, how)()  # again: no-op
        await asyncio.sleep(0.02)
        assert not proto.lost.done()  # waits for the buffer to drain
        got = await read_fd_to_eof(rf.fileno())
        assert len(got) == len(payload) and got == payload
        assert await wait_lost(proto) is None
        assert wf.closed
        assert no_flow(proto.events) == ["connection_made", "connection_lost"]


def test_write_pipe_close_flushes_buffer(loop):
    run(loop, _check_close_flushes_buffer(loop, "close"), timeout=30)


@pytest.mark.xfail_uvloop("write_eof() on a pipe fails: connection_lost(OSError ENOTSOCK)")
def test_write_pipe_write_eof_flushes_buffer(loop):
    run(loop, _check_close_flushes_buffer(loop, "write_eof"), timeout=30)


@pytest.mark.xfail_uvloop("is_closing() stays False after write_eof()")
def test_write_pipe_is_closing_after_write_eof(loop):
    # A pipe has no half-close: write_eof() is close() (once flushed).
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            tr.write(b"q" * MiB)
            assert tr.get_write_buffer_size() > 0
            assert not tr.is_closing()
            tr.write_eof()
            assert tr.is_closing()
            await read_fd_to_eof(rf.fileno())
            assert await wait_lost(proto) is None
            assert tr.is_closing()

    run(loop, main())


async def _check_close_empty_buffer(loop, how):
    async with pipe_files() as (rf, wf):
        tr, proto = await connect_write(loop, Recorder, wf)
        assert tr.can_write_eof() is True
        tr.write(b"small")
        getattr(tr, how)()
        assert await wait_lost(proto) is None
        assert await read_fd_to_eof(rf.fileno()) == b"small"
        assert wf.closed
        assert proto.events == ["connection_made", "connection_lost"]


def test_write_pipe_close_empty_buffer(loop):
    run(loop, _check_close_empty_buffer(loop, "close"))


@pytest.mark.xfail_uvloop("write_eof() on a pipe fails: connection_lost(OSError ENOTSOCK)")
def test_write_pipe_write_eof_empty_buffer(loop):
    run(loop, _check_close_empty_buffer(loop, "write_eof"))


def test_write_pipe_abort_drops_buffer(loop):
    async def main():
        payload = b"x" * (4 * MiB)
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            tr.write(payload)
            assert tr.get_write_buffer_size() > 0
            tr.abort()
            assert tr.is_closing()
            assert await wait_lost(proto) is None
            assert tr.get_write_buffer_size() == 0
            got = await read_fd_to_eof(rf.fileno())
            assert len(got) < len(payload)
            assert wf.closed
            assert no_flow(proto.events) == ["connection_made", "connection_lost"]

    run(loop, main())


@pytest.mark.xfail_uvloop("write() after close() raises RuntimeError (handler is closed)")
def test_write_pipe_writes_after_close_dropped(loop):
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            tr.write(b"before")
            tr.close()
            tr.write(b"after close")  # no error, dropped
            assert await wait_lost(proto) is None
            tr.write(b"after connection_lost")  # no error, dropped
            assert await read_fd_to_eof(rf.fileno()) == b"before"
            assert proto.events == ["connection_made", "connection_lost"]

    run(loop, main())


@pytest.mark.xfail_uvloop("calls eof_received() on the write pipe's protocol")
def test_write_pipe_reader_closed_with_buffered_data(loop):
    # The read end goes away while data waits in the buffer: BrokenPipeError.
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            tr.write(b"y" * (2 * MiB))
            assert tr.get_write_buffer_size() > 0
            rf.close()
            exc = await wait_lost(proto)
            assert isinstance(exc, BrokenPipeError), repr(exc)
            assert tr.get_write_buffer_size() == 0
            assert tr.is_closing()
            assert wf.closed
            assert no_flow(proto.events) == ["connection_made", "connection_lost"]
            tr.write(b"dropped")  # after the loss: no error

    run(loop, main())


@pytest.mark.xfail_uvloop("calls eof_received() on the write pipe's protocol")
def test_write_pipe_reader_closed_idle(loop):
    # Nothing buffered: the transport notices the closed read end by itself
    # (asyncio watches the write end for readability) and closes cleanly.
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            tr.write(b"fits in the pipe")
            assert tr.get_write_buffer_size() == 0
            rf.close()
            assert await wait_lost(proto) is None
            assert proto.events == ["connection_made", "connection_lost"]
            assert tr.is_closing()
            assert wf.closed
            tr.write(b"dropped")  # no error

    run(loop, main())


class BaseRecorder(asyncio.BaseProtocol):
    """Only BaseProtocol's callbacks (no data_received/eof_received): all
    that asyncio asks of a write pipe's protocol (the subprocess stdin
    protocol is one)."""

    def __init__(self):
        self.events = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.events.append("connection_made")

    def connection_lost(self, exc):
        self.events.append("connection_lost")
        self.lost.set_result(exc)

    def pause_writing(self):
        self.events.append("pause_writing")

    def resume_writing(self):
        self.events.append("resume_writing")


def test_write_pipe_base_protocol(loop):
    async def main():
        payload = os.urandom(2 * MiB)
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, BaseRecorder, wf)
            tr.set_write_buffer_limits(high=4096)
            tr.write(payload)
            assert proto.events == ["connection_made", "pause_writing"]
            tr.close()
            assert await read_fd_to_eof(rf.fileno()) == payload
            assert await wait_lost(proto) is None
            assert proto.events == ["connection_made", "pause_writing", "resume_writing",
                                    "connection_lost"]

    run(loop, main())


def test_write_pipe_base_protocol_reader_closed(loop):
    async def main():
        contexts = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, BaseRecorder, wf)
            tr.write(b"fits")
            rf.close()
            assert await wait_lost(proto) is None  # nothing was buffered
            assert proto.events == ["connection_made", "connection_lost"]
            assert wf.closed
        assert contexts == []

    run(loop, main())


def test_large_transfer_both_directions(loop):
    # 8 MiB out through one pipe and back through another, in random-sized
    # writes, on one loop: order and completeness, flow control balanced.
    async def main():
        payload = os.urandom(8 * MiB)
        rng = random.Random(1234)
        async with pipe_files() as (a_r, a_w), pipe_files() as (b_r, b_w):
            out_tr, out_proto = await connect_write(loop, Recorder, a_w)
            back_tr, back_proto = await connect_write(loop, Recorder, b_w)

            class Echo(Recorder):
                def data_received(self, data):
                    super().data_received(data)
                    back_tr.write(data)

                def eof_received(self):
                    back_tr.close()  # flushes first
                    return super().eof_received()

            mid_tr, mid_proto = await connect_read(loop, Echo, a_r)
            end_tr, end_proto = await connect_read(loop, Recorder, b_r)

            pos = 0
            while pos < len(payload):
                n = rng.choice([1, 7, 100, 4096, 65536, 300000])
                out_tr.write(payload[pos:pos + n])
                pos += n
                if out_tr.get_write_buffer_size() > 2 * MiB:
                    await asyncio.sleep(0.001)
            out_tr.close()  # flushes first
            assert await wait_lost(out_proto, 30) is None
            assert await wait_lost(mid_proto, 30) is None
            assert await wait_lost(back_proto, 30) is None
            assert await wait_lost(end_proto, 30) is None
            assert len(end_proto.data) == len(payload)
            assert hashlib.sha256(end_proto.data).digest() == hashlib.sha256(payload).digest()
            assert out_proto.pauses == out_proto.resumes
            assert back_proto.pauses == back_proto.resumes

    run(loop, main(), timeout=60)


# ----------------------------------------------------- rejected files ----

def _asyncio_pipe_error(method, file):
    """The ValueError message asyncio's own loop gives for ``file``."""
    ref = asyncio.SelectorEventLoop()
    try:
        with pytest.raises(ValueError) as info:
            ref.run_until_complete(getattr(ref, method)(asyncio.Protocol, file))
    finally:
        ref.close()
    return str(info.value)


@pytest.mark.parametrize("method", ["connect_read_pipe", "connect_write_pipe"])
def test_regular_file_rejected(loop, loop_impl, tmp_path, method):
    if loop_impl.kind == "uvloop":
        pytest.skip("uvloop aborts the whole process (libuv assertion) on a regular file")
    path = tmp_path / "regular"
    path.write_bytes(b"data")
    mode = "rb" if method == "connect_read_pipe" else "wb"
    with open(path, mode, buffering=0) as f:
        expected = _asyncio_pipe_error(method, f)
        if method == "connect_read_pipe":
            assert expected == "Pipe transport is for pipes/sockets only."
        else:
            assert expected == "Pipe transport is only for pipes, sockets and character devices"
        with pytest.raises(ValueError) as info:
            run(loop, getattr(loop, method)(asyncio.Protocol, f))
        assert str(info.value) == expected
        # not taken over: the caller still owns the file
        assert not f.closed
        assert stat.S_ISREG(os.fstat(f.fileno()).st_mode)


# --------------------------------------------------------------- FIFOs ----

def fifo_files(path):
    """(read file, write file) of a new FIFO at ``path``, both non-blocking and
    unbuffered; close them with files_closed_after()."""
    os.mkfifo(path)
    # the reader first: opening a FIFO for writing without one is ENXIO
    rf = open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb", buffering=0)
    wf = open(os.open(path, os.O_WRONLY | os.O_NONBLOCK), "wb", buffering=0)
    return rf, wf


def test_fifo_read_and_write(loop, tmp_path):
    async def main():
        async with files_closed_after(*fifo_files(tmp_path / "fifo")) as (rf, wf):
            rtr, rproto = await connect_read(loop, Recorder, rf)
            wtr, wproto = await connect_write(loop, Recorder, wf)
            assert rtr.get_extra_info("pipe") is rf
            assert wtr.get_extra_info("pipe") is wf
            payload = os.urandom(MiB)
            wtr.write(payload)
            wtr.close()
            assert await wait_lost(wproto) is None
            assert await wait_lost(rproto) is None
            assert rproto.data == payload
            assert rproto.events == ["connection_made", "data_received", "eof_received",
                                     "connection_lost"]
            assert rf.closed and wf.closed

    run(loop, main())


def test_fifo_reader_closed(loop, tmp_path):
    async def main():
        async with files_closed_after(*fifo_files(tmp_path / "fifo")) as (rf, wf):
            wtr, wproto = await connect_write(loop, Recorder, wf)
            wtr.write(b"z" * (2 * MiB))
            rf.close()
            assert isinstance(await wait_lost(wproto), BrokenPipeError)
            assert wf.closed

    run(loop, main())


# ---------------------------------------------------------------- PTYs ----

@contextlib.asynccontextmanager
async def pty_files():
    master, slave = os.openpty()
    tty.setraw(slave)  # no newline translation, no echo
    mf = open(master, "r+b", buffering=0)
    sf = open(slave, "r+b", buffering=0)
    async with files_closed_after(mf, sf):
        yield mf, sf


def test_pty_read_master_until_slave_closes(loop):
    async def main():
        contexts = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        async with pty_files() as (mf, sf):
            tr, proto = await connect_read(loop, Recorder, mf)
            assert tr.get_extra_info("pipe") is mf
            sf.write(b"line one\n")
            assert await proto.received(9) == b"line one\n"
            sf.write(b"line two\n")
            await proto.received(18)
            sf.close()
            # the master read fails with EIO once the slave is gone: that
            # ends the transport without eof_received and is not reported
            # to the exception handler
            exc = await wait_lost(proto)
            assert isinstance(exc, OSError) and exc.errno == errno.EIO, repr(exc)
            assert proto.data == b"line one\nline two\n"
            assert proto.events == ["connection_made", "data_received", "connection_lost"]
            assert mf.closed
            assert contexts == []

    run(loop, main())


def test_pty_write_master(loop):
    async def main():
        async with pty_files() as (mf, sf):
            tr, proto = await connect_write(loop, Recorder, mf)
            tr.write(b"typed input\n")
            got = await read_fd_to_eof(sf.fileno(), limit=12)
            assert got == b"typed input\n"
            tr.close()
            assert await wait_lost(proto) is None
            assert mf.closed

    run(loop, main())


# ------------------------------------------------ socket pair as pipes ----

def test_socketpair_as_pipes(loop):
    async def main():
        a, b = socket.socketpair()
        async with files_closed_after(a, b):
            rtr, rproto = await connect_read(loop, Recorder, a)
            wtr, wproto = await connect_write(loop, Recorder, b)
            assert rtr.get_extra_info("pipe") is a
            assert wtr.get_extra_info("pipe") is b
            payload = os.urandom(2 * MiB)
            wtr.write(payload)
            wtr.write_eof()  # closes the socket once flushed
            assert await wait_lost(wproto) is None
            assert await wait_lost(rproto) is None
            assert rproto.data == payload
            assert rproto.events == ["connection_made", "data_received", "eof_received",
                                     "connection_lost"]
            assert a.fileno() == -1 and b.fileno() == -1

    run(loop, main(), timeout=30)


def test_socketpair_write_pipe_peer_closed(loop):
    async def main():
        a, b = socket.socketpair()
        async with files_closed_after(a, b):
            wtr, wproto = await connect_write(loop, Recorder, b)
            wtr.write(b"fits")
            a.close()  # nothing buffered: a clean close
            assert await wait_lost(wproto) is None
            assert b.fileno() == -1

    run(loop, main())


# ------------------------------------------------------------ streams ----

def test_stream_reader_over_read_pipe(loop):
    async def main():
        payload = b"".join(b"line %d\n" % i for i in range(50000)) + os.urandom(MiB)
        async with pipe_files() as (rf, wf):
            reader = asyncio.StreamReader()
            tr, proto = await connect_read(loop, 
                lambda: asyncio.StreamReaderProtocol(reader), rf)

            async def feed():
                await write_fd_all(wf.fileno(), payload)
                wf.close()

            feeding = asyncio.ensure_future(feed())
            assert await reader.readline() == b"line 0\n"
            assert await reader.readexactly(7) == b"line 1\n"
            rest = await reader.read()
            await feeding
            assert b"line 0\nline 1\n" + rest == payload
            assert reader.at_eof()
            # (asyncio has closed the transport at EOF already; uvloop keeps
            # it open because StreamReaderProtocol.eof_received() is true)
            tr.close()
            for _ in range(100):
                if rf.closed:
                    break
                await asyncio.sleep(0.001)
            assert rf.closed

    run(loop, main(), timeout=30)


def test_stream_writer_over_write_pipe(loop):
    async def main():
        payload = os.urandom(4 * MiB)
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, 
                lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), wf)
            writer = asyncio.StreamWriter(tr, proto, None, loop)
            reading = asyncio.ensure_future(read_fd_to_eof(rf.fileno()))
            for i in range(0, len(payload), 256 * 1024):
                writer.write(payload[i:i + 256 * 1024])
                await writer.drain()
            assert writer.can_write_eof()
            writer.close()
            await writer.wait_closed()
            assert await reading == payload
            assert wf.closed

    run(loop, main(), timeout=30)


# ------------------------------------------ a writer that keeps it full ----

def test_pause_reading_in_data_received_with_a_full_pipe(loop):
    """pause_reading() called from data_received() stops delivery at once,
    even while a child keeps the pipe full (ringloop then reads several
    times per readable event); resume_reading() delivers the rest, in order."""
    total = 1 * MiB

    class Pausing(Recorder):
        def __init__(self):
            super().__init__()
            self.chunks_while_paused = 0
            self.paused = False

        def data_received(self, data):
            if self.paused:
                self.chunks_while_paused += 1
            super().data_received(data)
            if not self.paused:
                self.paused = True
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(0.005, self.resume)

        def resume(self):
            self.paused = False
            self.transport.resume_reading()

    async def main():
        r, w = os.pipe()
        # A child that writes as fast as the pipe takes it.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            f"import os; b = bytes(range(256)) * 256\n"
            f"for _ in range({total} // len(b)): os.write(1, b)",
            stdout=w)
        os.close(w)
        tr, proto = await connect_read(loop, Pausing, open(r, "rb", buffering=0))
        await asyncio.wait_for(proto.lost, TIMEOUT * 3)
        assert await proc.wait() == 0
        return proto

    proto = run(loop, main())
    assert proto.chunks_while_paused == 0
    assert len(proto.data) == total
    assert proto.data == (bytes(range(256)) * 256) * (total // 65536)


# ------------------------------------------------- what gets reported ----

def test_epipe_inside_write_is_not_reported_to_the_exception_handler(loop):
    """write() hitting EPIPE (the reader just went away, before the loop
    saw the hang-up) ends the transport with connection_lost(BrokenPipeError)
    and, as asyncio's write pipe does, logs nothing at ERROR level."""
    reported = []
    loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))

    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            rf.close()                       # the reader is gone now
            tr.write(b"x" * 1024)            # EPIPE inside write()
            exc = await asyncio.wait_for(proto.lost, TIMEOUT)
            return exc, tr.is_closing()

    exc, closing = run(loop, main())
    assert isinstance(exc, BrokenPipeError)
    assert closing
    assert reported == []


@pytest.mark.xfail_uvloop("uvloop raises RuntimeError on write() after close()")
def test_writes_after_close_warn_as_asyncio_does(loop, caplog):
    """Writes dropped after close() log 'pipe closed by peer...' from the
    sixth on (asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES counting)."""
    async def main():
        async with pipe_files() as (rf, wf):
            tr, proto = await connect_write(loop, Recorder, wf)
            tr.close()
            with caplog.at_level("WARNING", logger="asyncio"):
                for _ in range(7):
                    tr.write(b"late")
            await asyncio.wait_for(proto.lost, TIMEOUT)

    run(loop, main())
    warnings = [r for r in caplog.records
                if "pipe closed by peer" in r.getMessage()]
    assert len(warnings) == 2


@pytest.mark.xfail_uvloop("uvloop's reprs say closed=/reading=")
def test_pipe_transport_repr_says_what_it_waits_for(loop):
    """As asyncio's: a read pipe says 'polling' while it reads, 'idle' when
    paused; a write pipe says whether it waits to write, and its bufsize."""
    async def main():
        async with pipe_files() as (rf, wf):
            rt, rp = await connect_read(loop, Recorder, rf)
            wt, wp = await connect_write(loop, Recorder, wf)
            await asyncio.sleep(0)
            reading = repr(rt)
            rt.pause_reading()
            paused = repr(rt)
            writing = repr(wt)
            wt.close()
            rt.close()
            await asyncio.wait_for(asyncio.gather(rp.lost, wp.lost), TIMEOUT)
            return reading, paused, writing

    reading, paused, writing = run(loop, main())
    assert "polling" in reading and "idle" not in reading
    assert "idle" in paused
    assert "bufsize=0" in writing


@pytest.mark.xfail_uvloop("uvloop's reprs say closed=/reading=")
def test_closed_pipe_transport_repr_as_asyncio(loop):
    """asyncio's pipe transports say 'closed' twice once closed."""
    async def main():
        async with pipe_files() as (rf, wf):
            rt, rp = await connect_read(loop, Recorder, rf)
            wt, wp = await connect_write(loop, Recorder, wf)
            fds = rf.fileno(), wf.fileno()
            wt.close()
            rt.close()
            await asyncio.wait_for(asyncio.gather(rp.lost, wp.lost), TIMEOUT)
            return [(repr(t), type(t).__name__, fd) for t, fd in zip((rt, wt), fds)]

    for text, name, fd in run(loop, main()):
        assert text == f"<{name} closed fd={fd} closed>"
