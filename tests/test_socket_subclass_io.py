"""A stream transport over a socket.socket subclass calls the subclass's own
recv/recv_into/send/sendmsg/shutdown, as asyncio's transports do (websockets'
legacy ``test_explicit_socket`` passes such a socket as ``sock=``).

Plain ``socket.socket`` objects keep ringloop's direct system calls; only a
class that overrides one of those methods takes the method-call path.
"""

import asyncio
import socket
import sys

import pytest

from tests.support import TIMEOUT, Recorder, run, tcp_listener

pytestmark = pytest.mark.xfail_uvloop(
    "uvloop's transports read and write the fd without calling the socket's methods")

PY312 = sys.version_info >= (3, 12)


class TrackedSocket(socket.socket):
    """Records which of its I/O methods the transport called; can be told
    to fail the next call of a method with a given exception."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []
        self.fail_next = {}

    def _track(self, name):
        self.calls.append(name)
        exc = self.fail_next.pop(name, None)
        if exc is not None:
            raise exc


def _tracked(name):
    def method(self, *args):
        self._track(name)
        return getattr(super(TrackedSocket, self), name)(*args)
    method.__name__ = name
    return method


for _name in ("recv", "recv_into", "send", "sendmsg", "shutdown"):
    setattr(TrackedSocket, _name, _tracked(_name))


class Boom(Exception):
    pass


def _no_uvloop_wait(loop_impl):
    # On uvloop the subclass's method is never called, so connection_lost
    # would only come at the run's timeout: fail (expectedly) at once.
    if loop_impl.kind == "uvloop":
        pytest.xfail("uvloop never calls the socket's methods")


def _connected_pair():
    """(TrackedSocket, plain peer socket), connected over loopback; the
    tracked one non-blocking, the peer blocking with a timeout."""
    with tcp_listener() as srv:
        tracked = TrackedSocket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tracked.settimeout(TIMEOUT)
            tracked.connect(srv.getsockname())
            srv.settimeout(TIMEOUT)
            peer, _ = srv.accept()
        except BaseException:
            tracked.close()
            raise
    tracked.setblocking(False)
    peer.settimeout(TIMEOUT)
    return tracked, peer


class BufferedRecorder(asyncio.BufferedProtocol):
    def __init__(self):
        self.buf = bytearray(64)
        self.data = bytearray()
        self.got = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.data += self.buf[:nbytes]
        if not self.got.done():
            self.got.set_result(None)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def _converse(loop, factory, body, fail_next=None):
    """Connect a TrackedSocket (as sock=) with a protocol from `factory`, run
    ``await body(transport, protocol, peer)``, close and wait for
    connection_lost; return the calls the socket saw."""
    tracked, peer = _connected_pair()
    tracked.fail_next.update(fail_next or {})

    async def main():
        tr, proto = await loop.create_connection(factory, sock=tracked)
        try:
            await body(tr, proto, peer)
        finally:
            tr.close()
        await proto.lost

    with peer:
        run(loop, main())
    return tracked.calls


async def _peer_read(peer, n=None):
    """n bytes from the blocking peer (None: everything until EOF)."""
    loop = asyncio.get_running_loop()
    got = b""
    while n is None or len(got) < n:
        chunk = await loop.run_in_executor(None, peer.recv, 16 if n is None else n - len(got))
        if not chunk:
            break
        got += chunk
    return got


def test_protocol_transport_calls_the_subclass_recv_and_send(loop):
    async def body(tr, proto, peer):
        tr.write(b"ping")
        assert await _peer_read(peer, 4) == b"ping"
        peer.sendall(b"pong")
        assert await proto.received(4) == b"pong"

    calls = _converse(loop, Recorder, body)
    assert "send" in calls
    assert "recv" in calls
    assert "recv_into" not in calls


def test_buffered_protocol_transport_calls_the_subclass_recv_into(loop):
    async def body(tr, proto, peer):
        peer.sendall(b"data")
        await proto.got
        assert bytes(proto.data) == b"data"

    calls = _converse(loop, BufferedRecorder, body)
    assert "recv_into" in calls
    assert "recv" not in calls


def test_writelines_calls_the_subclass_send_method_of_the_version(loop):
    # asyncio 3.12+ sends writelines()'s buffers with sendmsg(); 3.11 joins
    # them and calls send().
    async def body(tr, proto, peer):
        tr.writelines([b"ab", b"cd", b"ef"])
        assert await _peer_read(peer, 6) == b"abcdef"

    assert ("sendmsg" if PY312 else "send") in _converse(loop, Recorder, body)


def test_exception_from_the_subclass_recv_reaches_connection_lost_as_raised(loop, loop_impl):
    _no_uvloop_wait(loop_impl)
    boom = Boom("recv failed")
    reported = []
    loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))

    async def body(tr, proto, peer):
        peer.sendall(b"x")
        assert await proto.lost is boom

    _converse(loop, Recorder, body, fail_next={"recv": boom})
    # Not an OSError: reported to the exception handler, as asyncio does.
    assert [ctx.get("exception") for ctx in reported] == [boom]
    assert reported[0]["message"] == "Fatal read error on socket transport"


def test_exception_from_the_subclass_send_reaches_connection_lost_as_raised(loop, loop_impl):
    _no_uvloop_wait(loop_impl)
    err = ConnectionResetError(104, "reset by the subclass")

    async def body(tr, proto, peer):
        tr.write(b"data")
        assert await proto.lost is err

    _converse(loop, Recorder, body, fail_next={"send": err})


def test_blocking_io_error_from_the_subclass_send_is_a_try_later(loop):
    # asyncio buffers the data and sends it once the socket is writable.
    async def body(tr, proto, peer):
        tr.write(b"later")
        assert tr.get_write_buffer_size() == 5
        assert await _peer_read(peer, 5) == b"later"
        assert tr.get_write_buffer_size() == 0

    calls = _converse(loop, Recorder, body, fail_next={"send": BlockingIOError()})
    assert calls[0] == "send"


def test_write_eof_calls_the_subclass_shutdown(loop):
    async def body(tr, proto, peer):
        tr.write(b"bye")
        tr.write_eof()
        assert await _peer_read(peer) == b"bye"

    assert "shutdown" in _converse(loop, Recorder, body)
