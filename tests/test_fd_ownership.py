"""Who owns an fd: sock_* calls and readers on a transport's socket, readers
of a socket closed before it was removed, and the debug-mode log lines about
connections (accepted, failed), on every loop.

Cases from a new user's review: each failed on a ringloop kind before it was
fixed (sendfile looped forever on a transport's socket; the proactor's
sock_recv took a transport's bytes; remove_reader raised for a closed socket
and left its registration to shadow the next file with that number; debug
logs lost the exception; the accept log line was missing).
"""

import asyncio
import logging
import socket
import struct
import tempfile

import pytest

from tests.support import TIMEOUT, run, tcp_pair


class Recorder(asyncio.Protocol):
    def __init__(self):
        self.data = b""

    def data_received(self, data):
        self.data += data


def _with_transport(loop, a, b, body):
    """Run body(protocol) while a transport owns socket a (b: its peer)."""
    a.setblocking(False)

    async def main():
        tr, proto = await loop.create_connection(Recorder, sock=a)
        try:
            await body(proto)
        finally:
            tr.close()
            await asyncio.sleep(0)

    try:
        run(loop, main())
    finally:
        b.close()


@pytest.mark.xfail_uvloop("uvloop has no sock_sendfile (NotImplementedError)")
def test_sock_sendfile_on_a_transports_socket_is_refused(loop):
    a, b = socket.socketpair()
    with tempfile.TemporaryFile() as f:
        f.write(b"0123456789" * 10)
        f.flush()
        f.seek(0)

        async def body(proto):
            with pytest.raises(RuntimeError, match="is used by transport"):
                await asyncio.wait_for(loop.sock_sendfile(a, f, 0, 10), 5)

        _with_transport(loop, a, b, body)


@pytest.mark.parametrize("call", ["sock_recv", "sock_recv_into", "sock_sendall",
                                  "sock_recvfrom"])
def test_sock_calls_on_a_transports_socket_are_refused(loop, loop_name, call):
    if loop_name == "uvloop" and call == "sock_recvfrom":
        pytest.xfail("uvloop: its sock_recvfrom does not refuse a transport's socket: "
                     "it waits")
    # Nothing to read, and a full send buffer for sock_sendall: the call
    # would have to wait, which is where asyncio refuses a transport's fd.
    a, b = socket.socketpair()
    big = b"x" * (8 * 1024 * 1024)

    async def body(proto):
        args = {"sock_recv": (a, 100), "sock_recv_into": (a, bytearray(100)),
                "sock_sendall": (a, big), "sock_recvfrom": (a, 100)}[call]
        with pytest.raises(RuntimeError, match="is used by transport"):
            await asyncio.wait_for(getattr(loop, call)(*args), 5)
        # The transport still gets what the peer sends.
        b.send(b"for the protocol")
        for _ in range(int(TIMEOUT / 0.01)):
            if proto.data:
                break
            await asyncio.sleep(0.01)
        assert proto.data == b"for the protocol"

    _with_transport(loop, a, b, body)


@pytest.mark.xfail_uvloop("remove_reader() returns None for a closed socket object")
@pytest.mark.parametrize("which", ["reader", "writer"])
def test_remove_handler_of_a_closed_socket_object(loop, which):
    async def main():
        a, b = socket.socketpair()
        add = loop.add_reader if which == "reader" else loop.add_writer
        remove = loop.remove_reader if which == "reader" else loop.remove_writer
        add(a, lambda: None)
        number = a.fileno()
        a.close()
        b.close()
        # As asyncio (selectors find the key by the object): removed; once
        # removed, the closed object is an invalid file object again.
        assert remove(a) is True
        with pytest.raises(ValueError):
            remove(a)
        # A new file that gets the same number is watched for real.
        pairs = []
        try:
            for _ in range(8):
                c, d = socket.socketpair()
                pairs.append((c, d))
                if number in (c.fileno(), d.fileno()):
                    break
            else:
                pytest.skip("the fd number was not reused")
            x, y = (c, d) if c.fileno() == number else (d, c)
            fired = loop.create_future()
            loop.add_reader(x, lambda: fired.done() or fired.set_result(True))
            y.send(b"!")
            assert await asyncio.wait_for(fired, 5) is True
            loop.remove_reader(x)
        finally:
            for c, d in pairs:
                c.close()
                d.close()

    run(loop, main())


@pytest.mark.xfail_uvloop("remove_reader() returns None for a closed socket object")
def test_a_closed_listener_is_released_once_its_reader_is_removed(loop):
    # Closing a watched socket and then removing its reader (in either
    # order on epoll; remove first or right after on io_uring, whose poll
    # request holds the file: docs/compatibility.md) releases it: the port
    # refuses connections and can be bound again.
    async def main():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.setblocking(False)
        addr = srv.getsockname()
        loop.add_reader(srv, lambda: None)
        await asyncio.sleep(0.01)
        srv.close()
        assert loop.remove_reader(srv) is True
        await asyncio.sleep(0.01)
        cli = socket.socket()
        try:
            with pytest.raises(ConnectionRefusedError):
                cli.connect(addr)
        finally:
            cli.close()
        again = socket.socket()
        try:
            again.bind(addr)
        finally:
            again.close()

    run(loop, main())


def test_remove_reader_bad_objects_still_raise(loop):
    with pytest.raises(ValueError):
        loop.remove_reader(object())
    with pytest.raises(ValueError):
        loop.remove_reader(-1)


@pytest.mark.xfail_uvloop("uvloop does not log fatal read errors in debug mode")
def test_debug_log_of_a_fatal_read_error_carries_the_exception(loop, caplog):
    loop.set_debug(True)

    async def main(c, s):
        tr, proto = await loop.create_connection(Recorder, sock=c)
        lost = loop.create_future()
        proto.connection_lost = lambda exc: lost.done() or lost.set_result(exc)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()       # RST: the client's next read fails with ECONNRESET
        exc = await asyncio.wait_for(lost, 5)
        assert isinstance(exc, ConnectionResetError)

    with caplog.at_level(logging.DEBUG, logger="asyncio"), tcp_pair() as (c, s):
        run(loop, main(c, s))
    records = [r for r in caplog.records if "Fatal read error" in r.getMessage()]
    assert records, [r.getMessage() for r in caplog.records]
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is ConnectionResetError


@pytest.mark.xfail_uvloop("uvloop does not log accepted connections in debug mode",
                         run=False)
def test_debug_logs_each_accepted_connection(loop, caplog):
    loop.set_debug(True)

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        for _ in range(int(TIMEOUT / 0.01)):
            if any("got a new connection" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        tr.close()
        server.close()
        await server.wait_closed()
        return port, tr.get_extra_info("sockname")

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        port, client_addr = run(loop, main())
    lines = [r.getMessage() for r in caplog.records if "got a new connection" in r.getMessage()]
    assert len(lines) == 1, lines
    assert repr(client_addr) in lines[0]
    assert lines[0].startswith("<Server ")
