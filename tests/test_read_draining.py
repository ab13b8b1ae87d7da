"""Everything already waiting in a stream socket is delivered, whatever makes
a stream transport stop reading before the socket is drained.

The data is sent (and, where it matters, the peer's FIN too) before the
loop gets a chance to read, and the sender then stays silent: no new data
can arrive to announce what is still queued.  A loop that is told about a
socket only when new data arrives (edge-triggered notification) must keep
reading, or come back by itself, when a read stops early: at its per-event
read limit, at a BufferedProtocol's small buffer, at pause_reading(), at a
switch to another protocol, at a KeyboardInterrupt from the protocol, and
at the EOF that follows the data.  asyncio's loop (level-triggered) does
all of this; so must every loop here.
"""

import asyncio
import contextlib
import os
import socket
import time

import pytest

from tests.support import TIMEOUT, Recorder, run

KINDS = ["tcp", "tcp6", "unix"]
BIG_BUFFER = 4 * 1024 * 1024


@contextlib.contextmanager
def stream_pair(kind, bufsize=BIG_BUFFER):
    """(sender, receiver): a blocking sender, a non-blocking receiver,
    with buffers large enough to hold what a case sends before anyone
    reads."""
    if kind == "unix":
        a, b = socket.socketpair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
    else:
        family = socket.AF_INET6 if kind == "tcp6" else socket.AF_INET
        host = "::1" if kind == "tcp6" else "127.0.0.1"
        try:
            srv = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:  # pragma: no cover - no IPv6 here
            pytest.skip(f"no {kind}: {exc}")
        with srv:
            # Set before listen(): the accepted socket inherits it, and the
            # window scale offered in the handshake allows the whole buffer.
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            try:
                srv.bind((host, 0))
            except OSError as exc:  # pragma: no cover - no ::1 here
                pytest.skip(f"no {kind} loopback: {exc}")
            srv.listen(1)
            a = socket.create_connection(srv.getsockname()[:2], timeout=TIMEOUT)
            b, _ = srv.accept()
    try:
        a.settimeout(TIMEOUT)
        b.setblocking(False)
        yield a, b
    finally:
        a.close()
        b.close()


def queued(sock):
    """Bytes waiting in sock's receive queue (SIOCINQ)."""
    import fcntl
    import struct
    import termios
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def wait_queued(sock, n):
    """Until n bytes wait in sock's receive queue (the sender's buffer
    has emptied into it): nothing more is in flight."""
    deadline = time.monotonic() + TIMEOUT
    while queued(sock) < n:
        assert time.monotonic() < deadline, f"only {queued(sock)} of {n} bytes arrived"
        time.sleep(0.005)


def send_waiting(a, b, payload, eof=False):
    """Send payload (and the FIN, if eof) from a, and wait until all of it
    waits in b's receive queue."""
    a.sendall(payload)
    if eof:
        a.shutdown(socket.SHUT_WR)
    wait_queued(b, len(payload))


@contextlib.contextmanager
def data_waiting(kind, payload, eof=False):
    """The receiving socket of a fresh pair, with payload (and the FIN, if
    eof) already waiting in it and the sender silent."""
    with stream_pair(kind) as (a, b):
        send_waiting(a, b, payload, eof)
        yield b


async def until_received(loop, count, n):
    """Until count() reaches n bytes, for at most TIMEOUT seconds."""
    deadline = loop.time() + TIMEOUT
    while count() < n:
        assert loop.time() < deadline, f"{count()} of {n} bytes arrived"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("kind", KINDS)
def test_more_waiting_than_one_event_reads(loop, kind):
    # 2.5 MiB waiting: more than a transport reads per readable event.
    payload = os.urandom(2_500_000)
    with data_waiting(kind, payload) as b:

        async def main():
            tr, proto = await loop.create_connection(Recorder, sock=b)
            try:
                assert await asyncio.wait_for(proto.received(len(payload)), TIMEOUT) == payload
            finally:
                tr.abort()
                await asyncio.wait_for(proto.lost, TIMEOUT)

        run(loop, main())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [3_000, 1_500_000])
def test_data_and_eof_waiting_before_the_transport_exists(loop, kind, size):
    payload = os.urandom(size)
    with data_waiting(kind, payload, eof=True) as b:

        async def main():
            tr, proto = await loop.create_connection(Recorder, sock=b)
            assert await asyncio.wait_for(proto.lost, TIMEOUT) is None
            assert bytes(proto.data) == payload
            assert proto.events == ["connection_made", "data_received", "eof_received",
                                    "connection_lost"]

        run(loop, main())


@pytest.mark.parametrize("kind", KINDS)
def test_data_and_eof_arriving_together_while_reading(loop, kind):
    # The transport is reading (its poll armed) when data and FIN arrive
    # together, before the loop looks again.
    payload = os.urandom(5_000)
    with stream_pair(kind) as (a, b):
        async def main():
            tr, proto = await loop.create_connection(Recorder, sock=b)
            await asyncio.sleep(0.02)
            send_waiting(a, b, payload, eof=True)    # (blocks the loop meanwhile)
            assert await asyncio.wait_for(proto.lost, TIMEOUT) is None
            assert bytes(proto.data) == payload
            assert "eof_received" in proto.events

        run(loop, main())


class TinyBuffers(asyncio.BufferedProtocol):
    """A BufferedProtocol reading through a small buffer."""

    def __init__(self, size=100):
        loop = asyncio.get_running_loop()
        self.buf = bytearray(size)
        self.data = bytearray()
        self.transport = None
        self.lost = loop.create_future()
        self.eof = False

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.data += self.buf[:nbytes]

    def eof_received(self):
        self.eof = True

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.mark.parametrize("kind", KINDS)
def test_small_buffered_protocol_reads_everything_waiting(loop, kind):
    payload = os.urandom(20_000)
    with data_waiting(kind, payload) as b:

        async def main():
            tr, proto = await loop.create_connection(TinyBuffers, sock=b)
            try:
                await until_received(loop, lambda: len(proto.data), len(payload))
                assert bytes(proto.data) == payload
            finally:
                tr.abort()
                await asyncio.wait_for(proto.lost, TIMEOUT)

        run(loop, main())


@pytest.mark.parametrize("kind", KINDS)
def test_pause_in_data_received_then_resume_later(loop, kind):
    payload = os.urandom(1_000_000)

    class PausesOnce(Recorder):
        paused_at = None

        def data_received(self, data):
            super().data_received(data)
            if self.paused_at is None:
                self.paused_at = len(self.data)
                self.transport.pause_reading()

    with data_waiting(kind, payload) as b:

        async def main():
            tr, proto = await loop.create_connection(PausesOnce, sock=b)
            try:
                await asyncio.sleep(0.05)
                assert proto.paused_at is not None
                assert len(proto.data) == proto.paused_at < len(payload)
                assert not tr.is_reading()
                tr.resume_reading()
                assert await asyncio.wait_for(proto.received(len(payload)), TIMEOUT) == payload
            finally:
                tr.abort()
                await asyncio.wait_for(proto.lost, TIMEOUT)

        run(loop, main())


@pytest.mark.parametrize("kind", KINDS)
def test_switch_to_a_buffered_protocol_with_data_waiting(loop, kind):
    payload = os.urandom(300_000)

    with data_waiting(kind, payload) as b:

        async def main():
            nxt = TinyBuffers(1000)

            class Switches(Recorder):
                def data_received(self, data):
                    super().data_received(data)
                    if self.transport.get_protocol() is self:
                        self.transport.set_protocol(nxt)
                        nxt.connection_made(self.transport)

            tr, first = await loop.create_connection(Switches, sock=b)
            try:
                await until_received(loop, lambda: len(first.data) + len(nxt.data),
                                     len(payload))
                assert bytes(first.data + nxt.data) == payload
            finally:
                tr.abort()
                await asyncio.wait_for(nxt.lost, TIMEOUT)

        run(loop, main())


@pytest.mark.xfail_uvloop("uvloop closes the transport as on a fatal error", run=False)
@pytest.mark.parametrize("kind", KINDS)
def test_keyboard_interrupt_in_data_received_with_the_rest_waiting(loop, kind):
    # KeyboardInterrupt from data_received() leaves the loop; run again,
    # the loop delivers the rest, which was all there already.
    payload = os.urandom(1_000_000)
    made = []

    class Interrupts(Recorder):
        raised = False

        def connection_made(self, transport):
            super().connection_made(transport)
            made.append(self)

        def data_received(self, data):
            super().data_received(data)
            if not Interrupts.raised:
                Interrupts.raised = True
                raise KeyboardInterrupt

    with data_waiting(kind, payload) as b:

        async def start():
            await loop.create_connection(Interrupts, sock=b)
            await asyncio.sleep(TIMEOUT)    # interrupted long before

        task = loop.create_task(start())
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(task)
        task.cancel()
        proto = made[0]
        assert 0 < len(proto.data) < len(payload)
        assert run(loop, proto.received(len(payload))) == payload
        proto.transport.abort()
        run(loop, proto.lost)
