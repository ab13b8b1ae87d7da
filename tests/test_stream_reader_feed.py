"""A read on asyncio's StreamReaderProtocol: what reaches the reader, on every loop.

ringloop's stream transports run StreamReaderProtocol.data_received() and
the reader's feed_data() / _wakeup_waiter() in C when those are asyncio's
own code (ringloop/_stdlib_streams.py). These cases pin down that nothing a
program can see differs from asyncio's loop: patches on the class or the
instance are called, the waiter, the buffer limit, pause_reading() raising
NotImplementedError, the assert after feed_eof(), a buffer with exports, a
reader that is gone, subclasses, and trace functions seeing the Python
frames.
"""

import asyncio
import fcntl
import socket
import struct
import subprocess
import sys
import termios
import time
import weakref
from unittest import mock

import pytest

from tests.support import TIMEOUT, run


async def until(cond, what):
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


class Pair:
    """open_connection() over one end of a socketpair; the test writes the other."""

    def __init__(self, limit=2 ** 16, protocol_factory=None):
        self.limit = limit
        self.protocol_factory = protocol_factory
        self.errors = []

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda lp, ctx: self.errors.append(ctx))
        self.ours, self.peer = socket.socketpair()
        if self.protocol_factory is None:
            self.reader, self.writer = await asyncio.open_connection(
                sock=self.ours, limit=self.limit)
            self.transport = self.writer.transport
        else:
            self.reader = asyncio.StreamReader(limit=self.limit)
            self.transport, _ = await loop.create_connection(
                lambda: self.protocol_factory(self.reader), sock=self.ours)
            self.writer = None
        self.protocol = self.transport.get_protocol()
        return self

    async def __aexit__(self, *exc):
        self.transport.close()
        self.peer.close()
        await asyncio.sleep(0)
        asyncio.get_running_loop().set_exception_handler(None)

    def send(self, data):
        self.peer.sendall(data)

    def pending(self):
        """Bytes the loop has not read yet from its end."""
        fd = self.transport.get_extra_info("socket").fileno()
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]

    def fatal(self):
        """The one fatal-error report the loop made, as asyncio words it."""
        assert len(self.errors) == 1, self.errors
        ctx = self.errors[0]
        assert ctx["message"] == "Fatal error: protocol.data_received() call failed."
        assert ctx["protocol"] is self.protocol
        return ctx["exception"]


@pytest.mark.ringloop_only
def test_stdlib_stream_functions_recognised():
    # The Pythons CI runs (3.11, 3.12, 3.13) are the ones recorded: the C
    # steps are in use there, so the cases below test them.
    from ringloop import _stdlib_streams

    found = _stdlib_streams.stdlib_stream_functions()
    assert found is not None, _stdlib_streams.fingerprint()
    assert found.protocol_type is asyncio.StreamReaderProtocol
    assert found.reader_type is asyncio.StreamReader
    assert found.feed_data is asyncio.StreamReader.__dict__["feed_data"]
    assert found.asserts is (sys.flags.optimize == 0)


@pytest.mark.ringloop_only
def test_fingerprint_report_for_a_new_version(capsys):
    from ringloop import _stdlib_streams

    _stdlib_streams.report()
    fp = f"0x{_stdlib_streams.fingerprint():08X}"
    assert capsys.readouterr().out.endswith(f": {fp} (recorded: {fp})\n")


@pytest.mark.ringloop_only
@pytest.mark.parametrize("flag, asserts", [("-O", False), ("-OO", False)])
def test_stdlib_stream_functions_recognised_optimized(flag, asserts):
    out = subprocess.run(
        [sys.executable, flag, "-c",
         "from ringloop._stdlib_streams import stdlib_stream_functions as f; "
         "s = f(); print(s is not None, s is not None and s.asserts)"],
        capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out == ["True", str(asserts)]


@pytest.mark.ringloop_only
def test_changed_stdlib_functions_are_not_mirrored():
    # A streams.py whose functions differ from the recorded code: the C steps
    # are not used (a patch applied before ringloop's import, or another
    # Python's asyncio, look the same here).
    from ringloop import _stdlib_streams

    def feed_data(self, data):
        pass

    with mock.patch.object(asyncio.StreamReader, "feed_data", feed_data):
        assert _stdlib_streams.stdlib_stream_functions() is None
    assert _stdlib_streams.stdlib_stream_functions() is not None


def test_data_reaches_the_reader_and_wakes_it(loop):
    async def main():
        async with Pair() as p:
            reading = asyncio.ensure_future(p.reader.read(100))
            await until(lambda: p.reader._waiter is not None, "the read to wait")
            p.send(b"hello")
            assert await reading == b"hello"
            p.send(b"abc" * 1000)
            assert await p.reader.readexactly(3000) == b"abc" * 1000
            assert not p.errors

    run(loop, main())


def test_feed_data_patched_on_the_class_is_called(loop):
    calls = []
    feed_data = asyncio.StreamReader.feed_data

    def spy(self, data):
        calls.append(bytes(data))
        return feed_data(self, data)

    async def main():
        async with Pair() as p:
            with mock.patch.object(asyncio.StreamReader, "feed_data", spy):
                p.send(b"one")
                assert await p.reader.readexactly(3) == b"one"
            assert calls == [b"one"]
            p.send(b"two")
            assert await p.reader.readexactly(3) == b"two"
            assert calls == [b"one"]

    run(loop, main())


def test_feed_data_set_on_the_instance_is_called(loop):
    calls = []

    async def main():
        async with Pair() as p:
            p.reader.feed_data = calls.append
            p.send(b"kept out")
            await until(lambda: calls, "the instance's feed_data")
            assert calls == [b"kept out"] and not p.reader._buffer
            del p.reader.feed_data
            p.send(b"in")
            assert await p.reader.readexactly(2) == b"in"
            assert calls == [b"kept out"]

    run(loop, main())


def test_wakeup_waiter_patched_on_the_class_is_called(loop):
    calls = []
    wakeup = asyncio.StreamReader._wakeup_waiter

    def spy(self):
        calls.append(self)
        return wakeup(self)

    async def main():
        async with Pair() as p:
            with mock.patch.object(asyncio.StreamReader, "_wakeup_waiter", spy):
                p.send(b"x")
                assert await p.reader.readexactly(1) == b"x"
            assert calls and all(r is p.reader for r in calls)

    run(loop, main())


@pytest.mark.xfail_uvloop("binds protocol.data_received when the protocol is set", run=False)
def test_data_received_patched_on_the_class_is_called(loop):
    calls = []

    def spy(self, data):
        calls.append(bytes(data))

    async def main():
        async with Pair() as p:
            with mock.patch.object(asyncio.StreamReaderProtocol, "data_received", spy):
                p.send(b"elsewhere")
                await until(lambda: calls, "the patched data_received")
            assert calls == [b"elsewhere"] and not p.reader._buffer

    run(loop, main())


@pytest.mark.xfail_uvloop("binds protocol.data_received when the protocol is set", run=False)
def test_data_received_set_on_the_instance_is_called(loop):
    calls = []

    async def main():
        async with Pair() as p:
            p.protocol.data_received = calls.append
            p.send(b"elsewhere")
            await until(lambda: calls, "the instance's data_received")
            assert calls == [b"elsewhere"] and not p.reader._buffer

    run(loop, main())


def test_subclass_of_stream_reader_protocol(loop):
    class Plain(asyncio.StreamReaderProtocol):
        pass

    seen = []

    class Own(asyncio.StreamReaderProtocol):
        def data_received(self, data):
            seen.append(bytes(data))
            super().data_received(data.upper())

    async def main():
        async with Pair(protocol_factory=Plain) as p:
            p.send(b"plain")
            assert await p.reader.readexactly(5) == b"plain"
        async with Pair(protocol_factory=Own) as p:
            p.send(b"own")
            assert await p.reader.readexactly(3) == b"OWN"
            assert seen == [b"own"]

    run(loop, main())


def test_cancelled_waiter_is_dropped_not_set(loop):
    async def main():
        async with Pair() as p:
            waiter = asyncio.get_running_loop().create_future()
            waiter.cancel()
            p.reader._waiter = waiter
            p.send(b"data")
            await until(lambda: p.reader._buffer, "the data")
            assert p.reader._waiter is None and waiter.cancelled()
            assert await p.reader.readexactly(4) == b"data"
            assert not p.errors

    run(loop, main())


@pytest.mark.xfail_uvloop("words it 'Fatal error on transport'")
def test_waiter_already_done_is_a_fatal_error(loop):
    async def main():
        async with Pair() as p:
            waiter = asyncio.get_running_loop().create_future()
            waiter.set_result("earlier")
            p.reader._waiter = waiter
            p.send(b"data")
            await until(lambda: p.errors, "the error")
            assert isinstance(p.fatal(), asyncio.InvalidStateError)
            # The data was appended before the waiter was set, as in asyncio.
            assert bytes(p.reader._buffer) == b"data" and p.reader._waiter is None
            assert p.transport.is_closing()

    run(loop, main())


@pytest.mark.skipif(sys.flags.optimize > 0, reason="-O removes feed_data's assert")
@pytest.mark.xfail_uvloop("words it 'Fatal error on transport'")
def test_data_after_feed_eof_is_the_asserts_fatal_error(loop):
    async def main():
        async with Pair() as p:
            p.reader.feed_eof()
            p.send(b"late")
            await until(lambda: p.errors, "the error")
            exc = p.fatal()
            assert type(exc) is AssertionError and exc.args == ("feed_data after feed_eof",)
            assert not p.reader._buffer and p.transport.is_closing()

    run(loop, main())


@pytest.mark.xfail_uvloop("words it 'Fatal error on transport'")
def test_buffer_with_exports_is_a_fatal_error(loop):
    async def main():
        async with Pair() as p:
            p.send(b"ab")
            await until(lambda: len(p.reader._buffer) == 2, "the data")
            with memoryview(p.reader._buffer):
                p.send(b"cd")
                await until(lambda: p.errors, "the error")
            exc = p.fatal()
            assert type(exc) is BufferError
            assert str(exc) == "Existing exports of data: object cannot be re-sized"
            assert bytes(p.reader._buffer) == b"ab" and p.transport.is_closing()

    run(loop, main())


def test_reader_gone_drops_the_data(loop):
    async def main():
        async with Pair() as p:
            p.protocol._stream_reader_wr = None
            p.send(b"nobody")
            # Then a reader again: what comes after is read; what came
            # while there was none is gone, without an error.
            await until(lambda: p.pending() == 0, "the read")
            p.protocol._stream_reader_wr = weakref.ref(p.reader)
            p.send(b"reader")
            assert await p.reader.readexactly(6) == b"reader"
            assert not p.errors

    run(loop, main())


def test_reader_pauses_the_transport_past_twice_its_limit(loop):
    async def main():
        async with Pair(limit=64) as p:
            p.send(b"x" * 200)
            await until(lambda: len(p.reader._buffer) == 200, "the data")
            assert p.reader._paused and not p.transport.is_reading()
            assert await p.reader.read(200) == b"x" * 200
            assert not p.reader._paused and p.transport.is_reading()
            p.send(b"y" * 100)
            assert await p.reader.readexactly(100) == b"y" * 100

    run(loop, main())


@pytest.mark.parametrize("limit", [2 ** 70, 2.5e9])
def test_reader_limit_beyond_a_c_integer(loop, limit):
    async def main():
        async with Pair(limit=limit) as p:
            p.send(b"z" * 5000)
            assert await p.reader.readexactly(5000) == b"z" * 5000
            assert not p.reader._paused and p.transport.is_reading()

    run(loop, main())


@pytest.mark.xfail_uvloop("its transports have no instance __dict__ to patch")
def test_pause_reading_not_implemented_forgets_the_transport(loop):
    async def main():
        async with Pair(limit=16) as p:
            calls = []

            def pause_reading():
                calls.append(1)
                raise NotImplementedError

            p.transport.pause_reading = pause_reading
            p.send(b"x" * 100)
            await until(lambda: len(p.reader._buffer) == 100, "the data")
            assert calls == [1]
            assert p.reader._transport is None and not p.reader._paused
            assert p.transport.is_reading() and not p.errors

    run(loop, main())


def test_trace_function_sees_the_stream_frames(loop):
    names = []

    def tracer(frame, event, arg):
        if event == "call":
            names.append(frame.f_code.co_name)
        return None

    async def main():
        async with Pair() as p:
            sys.settrace(tracer)
            try:
                p.send(b"traced")
                await until(lambda: p.reader._buffer, "the data")
            finally:
                sys.settrace(None)
            assert await p.reader.readexactly(6) == b"traced"
        assert {"data_received", "feed_data", "_wakeup_waiter"} <= set(names)

    old = sys.gettrace()
    try:
        run(loop, main())
    finally:
        sys.settrace(old)


@pytest.mark.ringloop_only
@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")
def test_monitoring_tools_do_not_see_the_c_steps(loop):
    # The documented difference (docs/compatibility.md), and the proof that
    # the C steps run: a PEP 669 tool (not a trace function) sees no frame
    # of feed_data, while debug mode brings the Python frames back.
    mon = sys.monitoring
    tool = mon.PROFILER_ID
    started = []
    feed_code = asyncio.StreamReader.feed_data.__code__

    def on_start(code, offset):
        if code is feed_code:
            started.append(code)

    async def exchange(p, data):
        p.send(data)
        assert await p.reader.readexactly(len(data)) == data

    async def main():
        async with Pair() as p:
            mon.use_tool_id(tool, "ringloop-test")
            try:
                mon.register_callback(tool, mon.events.PY_START, on_start)
                mon.set_local_events(tool, feed_code, mon.events.PY_START)
                await exchange(p, b"c steps")
                assert started == []
                asyncio.get_running_loop().set_debug(True)
                await exchange(p, b"python")
                assert started == [feed_code]
            finally:
                mon.set_local_events(tool, feed_code, 0)
                mon.register_callback(tool, mon.events.PY_START, None)
                mon.free_tool_id(tool)
                asyncio.get_running_loop().set_debug(False)

    run(loop, main())


@pytest.mark.xfail_uvloop("its transports have no _read_ready()", run=False)
def test_read_nested_in_python_code_of_the_read(loop):
    # A callable in place of the reader's weakref reads the transport again
    # before it answers: the outer read's bytes were taken before it ran,
    # so both reads arrive whole, the inner one first (as on asyncio).
    async def main():
        async with Pair() as p:
            ref = weakref.ref(p.reader)
            calls = []

            def stream_reader_wr():
                calls.append(1)
                if len(calls) == 1:
                    p.send(b"ZZ")
                    p.transport._read_ready()
                return ref()

            p.protocol._stream_reader_wr = stream_reader_wr
            p.send(b"abcdef")
            await until(lambda: len(p.reader._buffer) == 8, "both reads")
            p.protocol._stream_reader_wr = ref
            assert bytes(p.reader._buffer) == b"ZZabcdef" and not p.errors

    run(loop, main())


def test_code_assigned_to_feed_data_is_run(loop):
    # IPython's autoreload and jurigged patch a function by assigning its
    # __code__: the same function object then runs other code.
    def feed_data(self, data):
        self._fed_elsewhere = bytes(data)

    original = asyncio.StreamReader.feed_data.__code__

    async def main():
        async with Pair() as p:
            asyncio.StreamReader.feed_data.__code__ = feed_data.__code__
            try:
                p.send(b"patched")
                await until(lambda: hasattr(p.reader, "_fed_elsewhere"), "the new code")
            finally:
                asyncio.StreamReader.feed_data.__code__ = original
            assert p.reader._fed_elsewhere == b"patched" and not p.reader._buffer
            p.send(b"back")
            assert await p.reader.readexactly(4) == b"back"

    run(loop, main())


@pytest.mark.xfail_uvloop("binds protocol.data_received when the protocol is set", run=False)
def test_failing_lookup_of_data_received_is_the_fatal_error(loop):
    class Boom(Exception):
        pass

    def getattribute(self, name):
        if name == "data_received":
            raise Boom(name)
        return object.__getattribute__(self, name)

    async def main():
        async with Pair() as p:
            with mock.patch.object(asyncio.StreamReaderProtocol, "__getattribute__",
                                   getattribute, create=True):
                p.send(b"x")
                await until(lambda: p.errors, "the error")
            assert type(p.fatal()) is Boom and not p.reader._buffer

    run(loop, main())
