"""loop.create_server and the Server object: hosts, dual stack, socket options,
backlog, start_serving, sock=, close/wait_closed/serve_forever, 3.13's
close_clients/abort_clients and keep_alive.

Servers listen on loopback or the wildcard address; clients connect to
loopback only.
"""

import asyncio
import contextvars
import errno
import gc
import os
import select
import socket
import sys
import time
import warnings
from asyncio import trsock

import pytest

from tests.support import TIMEOUT, Accepted, Recorder, close_transport, has_ipv6, run

IPV6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
FAMILIES = [pytest.param(socket.AF_INET, id="ipv4"),
            pytest.param(socket.AF_INET6, id="ipv6", marks=IPV6)]
HOST = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)


def _addr(server, i=0):
    return server.sockets[i].getsockname()[:2]


async def _echo_roundtrip(loop, addr, family=socket.AF_INET, payload=b"hello server"):
    """Connect with a plain socket, send ``payload``, return what is echoed."""
    with socket.socket(family, socket.SOCK_STREAM) as cli:
        cli.setblocking(False)
        await loop.sock_connect(cli, addr)
        await loop.sock_sendall(cli, payload)
        got = b""
        while len(got) < len(payload):
            chunk = await loop.sock_recv(cli, 65536)
            if not chunk:
                break
            got += chunk
        return got


def _refused(addr, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        return s.connect_ex(addr) == errno.ECONNREFUSED


async def _cancelled(task, timeout=2.0):
    """Wait (bounded) for ``task`` to end; True if it ended cancelled."""
    await asyncio.wait([task], timeout=timeout)
    return task.done() and task.cancelled()


async def _closed(server):
    server.close()
    await asyncio.wait_for(server.wait_closed(), TIMEOUT)


# ------------------------------------------------------------ basics ----

@pytest.mark.parametrize("family", FAMILIES)
def test_server_echo(loop, family):
    async def main():
        accepted = Accepted(echo=True)
        server = await loop.create_server(accepted, HOST[family], 0)
        try:
            assert server.get_loop() is loop
            assert server.is_serving()
            [sock] = server.sockets
            assert sock.family == family
            assert sock.type == socket.SOCK_STREAM
            assert sock.getsockname()[0] == HOST[family]
            assert await _echo_roundtrip(loop, _addr(server), family) == b"hello server"
            proto = await accepted.wait(1)
            await asyncio.wait_for(proto.lost, TIMEOUT)  # the client closed
            assert proto.events == ["connection_made", "data_received", "eof_received",
                                    "connection_lost"]
            assert proto.lost.result() is None
        finally:
            await _closed(server)

    run(loop, main())


CONN_VAR = contextvars.ContextVar("conn_var", default=None)


@pytest.mark.xfail_uvloop("uvloop sets every accepted connection up in the server's one context")
@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_each_accepted_connection_has_its_own_context(loop, kind, tmp_path):
    # asyncio sets each connection up in a Task of its own: what a protocol
    # factory sets in a context variable belongs to that connection (its
    # callbacks see it), and the next connection starts from the server's
    # context again.
    seen = []

    class P(asyncio.Protocol):
        def __init__(self):
            self.n = len(seen)
            seen.append(["factory", CONN_VAR.get()])
            CONN_VAR.set(f"conn{self.n}")

        def connection_made(self, transport):
            seen[self.n].append(CONN_VAR.get())

        def data_received(self, data):
            seen[self.n].append(CONN_VAR.get())

        def connection_lost(self, exc):
            seen[self.n].append(CONN_VAR.get())

    async def main():
        CONN_VAR.set("server")
        if kind == "tcp":
            server = await loop.create_server(P, "127.0.0.1", 0)
            connect = lambda: asyncio.open_connection(*_addr(server))
        else:
            path = str(tmp_path / "s")
            server = await loop.create_unix_server(P, path)
            connect = lambda: asyncio.open_unix_connection(path)
        try:
            for _ in range(3):
                reader, writer = await connect()
                writer.write(b"x")
                await writer.drain()
                writer.close()
                await writer.wait_closed()
            for _ in range(200):
                if len(seen) == 3 and all(len(s) == 5 for s in seen):
                    break
                await asyncio.sleep(0.01)
        finally:
            await _closed(server)

    run(loop, main())
    assert seen == [["factory", "server"] + [f"conn{i}"] * 3 for i in range(3)]


@pytest.mark.xfail_uvloop("Server.sockets are uvloop PseudoSocket objects")
def test_server_sockets_are_transport_sockets(loop):
    async def main():
        server = await loop.create_server(Recorder, "127.0.0.1", 0)
        try:
            assert isinstance(server.sockets, tuple)
            assert all(isinstance(s, trsock.TransportSocket) for s in server.sockets)
        finally:
            await _closed(server)

    run(loop, main())


def test_server_accepted_transport_addresses(loop):
    async def main():
        accepted = Accepted()
        server = await loop.create_server(accepted, "127.0.0.1", 0)
        try:
            with socket.socket() as cli:
                cli.setblocking(False)
                await loop.sock_connect(cli, _addr(server))
                proto = await accepted.wait(1)
                tr = proto.transport
                assert tr.get_extra_info("peername") == cli.getsockname()
                assert tr.get_extra_info("sockname") == cli.getpeername()
                await close_transport(tr, proto)
                assert await loop.sock_recv(cli, 10) == b""  # server closed: EOF
        finally:
            await _closed(server)

    run(loop, main())


@pytest.mark.parametrize("family", FAMILIES)
def test_accepted_socket_is_a_plain_socket_of_the_listeners_kind(loop, family):
    # What sock.accept() would return: a socket.socket with the listener's
    # family and type (as enums), non-blocking, TCP_NODELAY set.
    async def main():
        accepted = Accepted()
        server = await loop.create_server(accepted, HOST[family], 0)
        try:
            with socket.socket(family) as cli:
                cli.setblocking(False)
                await loop.sock_connect(cli, _addr(server))
                proto = await accepted.wait(1)
                sock = proto.transport.get_extra_info("socket")
                assert sock.family is family
                assert sock.type is socket.SOCK_STREAM
                assert sock.proto in (0, socket.IPPROTO_TCP)
                assert sock.gettimeout() == 0
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                await close_transport(proto.transport, proto)
        finally:
            await _closed(server)

    run(loop, main())


@pytest.mark.xfail_uvloop("uvloop accepts on the fd, not through the socket object")
def test_server_socket_subclass_overriding_accept_is_called(loop):
    # As asyncio's loop: a listening socket whose class overrides accept()
    # has its accept() called for each connection.
    calls = []

    class CountingSocket(socket.socket):
        def accept(self):
            conn, addr = super().accept()
            calls.append(addr)
            return conn, addr

    async def main():
        lsock = CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        accepted = Accepted(echo=True)
        server = await loop.create_server(accepted, sock=lsock)
        try:
            assert await _echo_roundtrip(loop, lsock.getsockname()) == b"hello server"
            await accepted.wait(1)
            assert len(calls) == 1
        finally:
            await _closed(server)

    run(loop, main())


def test_server_many_hosts(loop):
    async def main():
        server = await loop.create_server(lambda: Recorder(echo=True),
                                          ["127.0.0.1", "127.0.0.2"], 0)
        try:
            hosts = sorted(s.getsockname()[0] for s in server.sockets)
            assert hosts == ["127.0.0.1", "127.0.0.2"]
            for i in range(2):
                assert await _echo_roundtrip(loop, _addr(server, i)) == b"hello server"
        finally:
            await _closed(server)

    run(loop, main())


@IPV6
@pytest.mark.parametrize("host", [None, ""], ids=["None", "empty"])
def test_server_dual_stack(loop, host):
    async def main():
        server = await loop.create_server(lambda: Recorder(echo=True), host, 0)
        try:
            by_family = {s.family: s for s in server.sockets}
            assert set(by_family) == {socket.AF_INET, socket.AF_INET6}
            assert len(server.sockets) == 2
            v4, v6 = by_family[socket.AF_INET], by_family[socket.AF_INET6]
            assert v4.getsockname()[0] == "0.0.0.0"
            assert v6.getsockname()[0] == "::"
            assert v6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
            port4, port6 = v4.getsockname()[1], v6.getsockname()[1]
            assert await _echo_roundtrip(loop, ("127.0.0.1", port4)) == b"hello server"
            assert await _echo_roundtrip(loop, ("::1", port6), socket.AF_INET6) \
                == b"hello server"
        finally:
            await _closed(server)

    run(loop, main())


@pytest.mark.parametrize("family", FAMILIES)
def test_server_family(loop, family):
    async def main():
        server = await loop.create_server(Recorder, "localhost" if family == socket.AF_INET
                                          else "::1", 0, family=family)
        try:
            assert [s.family for s in server.sockets] == [family]
        finally:
            await _closed(server)

    run(loop, main())


# ----------------------------------------------------- socket options ----

@pytest.mark.parametrize("reuse_address, expected", [(None, True), (True, True), (False, False)])
def test_server_reuse_address(loop, reuse_address, expected):
    async def main():
        server = await loop.create_server(Recorder, "127.0.0.1", 0, reuse_address=reuse_address)
        try:
            [sock] = server.sockets
            assert bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)) == expected
        finally:
            await _closed(server)

    run(loop, main())


@pytest.mark.parametrize("family", FAMILIES)
def test_server_reuse_port(loop, family):
    async def main():
        first = await loop.create_server(lambda: Recorder(echo=True), HOST[family], 0,
                                         reuse_port=True)
        try:
            [sock] = first.sockets
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            port = _addr(first)[1]
            second = await loop.create_server(lambda: Recorder(echo=True), HOST[family], port,
                                              reuse_port=True)
            try:
                assert _addr(second) == _addr(first)
                assert await _echo_roundtrip(loop, _addr(first), family) == b"hello server"
            finally:
                await _closed(second)
            # Without SO_REUSEPORT the port is taken.
            with pytest.raises(OSError) as info:
                await loop.create_server(Recorder, HOST[family], port)
            assert info.value.errno == errno.EADDRINUSE
        finally:
            await _closed(first)

    run(loop, main())


def test_server_address_in_use(loop):
    async def main():
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            with pytest.raises(OSError) as info:
                await loop.create_server(Recorder, *taken.getsockname())
            assert info.value.errno == errno.EADDRINUSE

    run(loop, main())


@pytest.mark.parametrize("backlog", [1, 3])
def test_server_backlog(loop, backlog):
    # While the loop does not run, nobody accepts: Linux completes
    # backlog + 1 handshakes into the accept queue and leaves the rest
    # waiting (their SYNs are dropped).
    async def main():
        accepted = Accepted()
        server = await loop.create_server(accepted, "127.0.0.1", 0, backlog=backlog)
        clients = []
        try:
            for _ in range(backlog + 4):
                c = socket.socket()
                clients.append(c)
                c.setblocking(False)
                assert c.connect_ex(_addr(server)) in (0, errno.EINPROGRESS)
            time.sleep(0.3)  # blocks the loop on purpose
            _, writable, _ = select.select([], clients, [], 0)
            assert len(writable) == backlog + 1
            for c in clients:  # drop the waiting ones before they retry
                if c not in writable:
                    c.close()
            # Once the loop runs, the server accepts the queued ones.
            await asyncio.wait_for(accepted.wait(backlog + 1), TIMEOUT)
            for proto in accepted.protocols:
                await close_transport(proto.transport, proto)
        finally:
            for c in clients:
                c.close()
            await _closed(server)

    run(loop, main())


@pytest.mark.skipif(not PY313, reason="keep_alive is new in 3.13")
@pytest.mark.xfail_uvloop("create_server has no keep_alive")
@pytest.mark.parametrize("keep_alive", [True, False])
def test_server_keep_alive(loop, keep_alive):
    async def main():
        accepted = Accepted()
        server = await loop.create_server(accepted, "127.0.0.1", 0, keep_alive=keep_alive)
        try:
            with socket.socket() as cli:
                cli.setblocking(False)
                await loop.sock_connect(cli, _addr(server))
                proto = await accepted.wait(1)
                sock = proto.transport.get_extra_info("socket")
                assert bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)) == keep_alive
                await close_transport(proto.transport, proto)
        finally:
            await _closed(server)

    run(loop, main())


# ------------------------------------------------------- start_serving ----

def test_server_start_serving_false(loop):
    async def main():
        accepted = Accepted(echo=True)
        server = await loop.create_server(accepted, "127.0.0.1", 0, start_serving=False)
        try:
            assert not server.is_serving()
            [sock] = server.sockets
            # Bound, not yet listening: connects are refused.
            assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            assert _refused(_addr(server))
            await server.start_serving()
            assert server.is_serving()
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            assert await _echo_roundtrip(loop, _addr(server)) == b"hello server"
            await server.start_serving()  # again: no-op
            assert len(accepted.protocols) == 1
        finally:
            await _closed(server)

    run(loop, main())


def test_server_serve_forever_starts_serving(loop):
    async def main():
        server = await loop.create_server(lambda: Recorder(echo=True), "127.0.0.1", 0,
                                          start_serving=False)
        task = loop.create_task(server.serve_forever())
        try:
            await asyncio.sleep(0)
            assert server.is_serving()
            assert await _echo_roundtrip(loop, _addr(server)) == b"hello server"
        finally:
            task.cancel()
            assert await _cancelled(task)
        assert not server.is_serving()
        assert server.sockets == () or list(server.sockets) == []

    run(loop, main())


# ----------------------------------------------------------------- sock= ----

@pytest.mark.parametrize("listening", [False, True])
def test_server_sock(loop, listening):
    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        if listening:
            sock.listen(5)
        addr = sock.getsockname()
        server = await loop.create_server(lambda: Recorder(echo=True), sock=sock)
        try:
            [ssock] = server.sockets
            assert ssock.fileno() == sock.fileno()
            assert ssock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            assert await _echo_roundtrip(loop, addr) == b"hello server"
        finally:
            await _closed(server)
        assert sock.fileno() == -1  # the server owned and closed it

    run(loop, main())


def test_server_bad_arguments(loop):
    async def main():
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            with pytest.raises(ValueError, match="host/port and sock can not be specified"):
                await loop.create_server(Recorder, "127.0.0.1", 0, sock=tcp)
            with pytest.raises(ValueError, match="Neither host/port nor sock were specified"):
                await loop.create_server(Recorder)
            with pytest.raises(ValueError, match="A Stream Socket was expected"):
                await loop.create_server(Recorder, sock=udp)
            with pytest.raises(TypeError, match="ssl argument must be an SSLContext or None"):
                await loop.create_server(Recorder, "127.0.0.1", 0, ssl=True)
            with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful"):
                await loop.create_server(Recorder, "127.0.0.1", 0, ssl_handshake_timeout=1)
            assert tcp.fileno() != -1 and udp.fileno() != -1

    run(loop, main())


# ------------------------------------------------------ closing a server ----

def test_server_close(loop):
    async def main():
        accepted = Accepted(echo=True)
        server = await loop.create_server(accepted, "127.0.0.1", 0)
        addr = _addr(server)
        with socket.socket() as cli:
            cli.setblocking(False)
            await loop.sock_connect(cli, addr)
            proto = await accepted.wait(1)
            server.close()
            assert not server.is_serving()
            assert list(server.sockets) == []
            assert _refused(addr)
            server.close()  # idempotent
            # Connections already accepted are not closed by server.close().
            assert not proto.transport.is_closing()
            await loop.sock_sendall(cli, b"still here")
            assert await proto.received(10) == b"still here"
            await close_transport(proto.transport, proto)
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)

    run(loop, main())


def test_server_wait_closed_without_clients(loop):
    async def main():
        server = await loop.create_server(Recorder, "127.0.0.1", 0)
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)  # again

    run(loop, main())


@pytest.mark.skipif(not PY312, reason="before 3.12 wait_closed() returns at once once closed")
@pytest.mark.xfail_uvloop("Server.wait_closed() does not wait for connections (3.11 asyncio)")
def test_server_wait_closed_waits_for_clients(loop):
    async def main():
        accepted = Accepted()
        server = await loop.create_server(accepted, "127.0.0.1", 0)
        with socket.socket() as cli:
            cli.setblocking(False)
            await loop.sock_connect(cli, _addr(server))
            proto = await accepted.wait(1)
            server.close()
            waiter = loop.create_task(server.wait_closed())
            await asyncio.sleep(0.05)
            assert not waiter.done()  # a connection is still open
            await close_transport(proto.transport, proto)
            await asyncio.wait_for(waiter, TIMEOUT)

    run(loop, main())


def test_server_serve_forever_cancel(loop):
    async def main():
        server = await loop.create_server(lambda: Recorder(echo=True), "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving()
        with pytest.raises(RuntimeError, match="already being awaited on serve_forever"):
            await server.serve_forever()
        assert await _echo_roundtrip(loop, _addr(server)) == b"hello server"
        task.cancel()
        assert await _cancelled(task)
        assert not server.is_serving()
        assert list(server.sockets) == []
        with pytest.raises(RuntimeError, match="is closed"):
            await server.serve_forever()

    run(loop, main())


@pytest.mark.xfail_uvloop("Server.close() does not end a running serve_forever()")
def test_server_serve_forever_ends_on_close(loop):
    async def main():
        server = await loop.create_server(Recorder, "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        loop.call_soon(server.close)
        try:
            assert await _cancelled(task, timeout=1.0)
            assert not server.is_serving()
        finally:
            task.cancel()

    run(loop, main())


def test_server_async_with(loop):
    async def main():
        server = await loop.create_server(lambda: Recorder(echo=True), "127.0.0.1", 0)
        async with server as entered:
            assert entered is server
            assert server.is_serving()
            addr = _addr(server)
            assert await _echo_roundtrip(loop, addr) == b"hello server"
        assert not server.is_serving()
        assert list(server.sockets) == []
        assert _refused(addr)

    run(loop, main())


@pytest.mark.skipif(not PY313, reason="close_clients/abort_clients are new in 3.13")
@pytest.mark.xfail_uvloop("Server has no close_clients/abort_clients")
@pytest.mark.parametrize("method", ["close_clients", "abort_clients"])
def test_server_close_or_abort_clients(loop, method):
    async def main():
        accepted = Accepted()
        server = await loop.create_server(accepted, "127.0.0.1", 0)
        clients = [socket.socket() for _ in range(3)]
        try:
            for c in clients:
                c.setblocking(False)
                await loop.sock_connect(c, _addr(server))
            await accepted.wait(3)
            # Unsent data: close() flushes it first, abort() drops it.
            for proto in accepted.protocols:
                proto.transport.write(b"bye")
            server.close()
            getattr(server, method)()
            for proto in accepted.protocols:
                assert proto.transport.is_closing()
                assert await asyncio.wait_for(proto.lost, TIMEOUT) is None
            await asyncio.wait_for(server.wait_closed(), TIMEOUT)
            for c in clients:
                got = b""
                while True:
                    chunk = await loop.sock_recv(c, 100)
                    if not chunk:
                        break
                    got += chunk
                assert got in ((b"bye",) if method == "close_clients" else (b"bye", b""))
        finally:
            for c in clients:
                c.close()
            server.close()

    run(loop, main())


@pytest.mark.parametrize("debug", [
    False,
    pytest.param(True, marks=pytest.mark.xfail_uvloop(
        "uvloop reports it without asyncio's message")),
])
def test_protocol_factory_error_is_reported_in_debug_mode_only(loop, debug):
    # asyncio (3.11-3.13) calls the exception handler only in debug mode.
    # (It also leaves the accepted socket to the garbage collector; ringloop
    # closes it at once.)
    seen = []
    calls = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    loop.set_debug(debug)

    def factory():
        calls.append(1)
        raise ValueError("no protocol today")

    async def main():
        srv = await loop.create_server(factory, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        deadline = loop.time() + TIMEOUT
        while not calls and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for _ in range(5):
            await asyncio.sleep(0)
        w.close()
        srv.close()
        await srv.wait_closed()

    run(loop, main())
    assert calls == [1]
    reports = [c for c in seen
               if c.get("message") == "Error on transport creation for incoming connection"]
    try:
        if debug:
            assert len(reports) == 1
            assert isinstance(reports[0]["exception"], ValueError)
        else:
            assert reports == []
    finally:
        # asyncio's report holds the accepted socket through the traceback.
        seen.clear()
        reports.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@pytest.mark.xfail_uvloop("uvloop reports the closed server's _attach() AssertionError to the exception handler")
def test_server_closed_in_protocol_factory(loop, loop_name):
    # "Serve one connection": the factory closes the server.  asyncio
    # reports nothing outside debug mode; the accept loop must not go on
    # accepting on the socket the factory just closed (EBADF reported), and
    # the connection whose transport could not join the closed server must
    # not detach from it later (an error at garbage collection).
    seen = []
    unraisable = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    made = []

    async def main():
        srv = None

        def factory():
            made.append(1)
            srv.close()
            return asyncio.Protocol()

        srv = await loop.create_server(factory, "127.0.0.1", 0, backlog=8)
        addr = srv.sockets[0].getsockname()
        clients = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(addr)
            except BlockingIOError:
                pass
            clients.append(c)
        deadline = loop.time() + TIMEOUT
        while not made and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.wait_for(srv.wait_closed(), TIMEOUT)
        for _ in range(5):
            await asyncio.sleep(0)
        for c in clients:
            c.close()

    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        run(loop, main())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    finally:
        sys.unraisablehook = old_hook
    assert made                      # asyncio: once per queued client
    assert seen == []
    errors = [u.exc_type for u in unraisable
              if not issubclass(u.exc_type, ResourceWarning)]
    if loop_name == "asyncio" and PY313:
        # asyncio 3.13's own half-built transports fail in __del__ here
        # (TypeError from Server._detach()); ringloop's must not.
        return
    assert errors == []


def test_closed_loop_lets_go_of_an_open_servers_socket(loop):
    # A loop closed with a server still serving: the listening socket
    # belongs to the Server, and is freed (closed) with it, as on asyncio.
    async def main():
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        return srv.sockets[0].fileno(), srv.sockets[0].getsockname()

    fd, addr = run(loop, main())
    loop.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF
    assert _refused(addr)


@pytest.mark.xfail_uvloop("uvloop keeps the port: a connect() to it succeeds")
def test_listener_closed_by_its_owner_frees_its_port(loop, loop_name):
    # create_server(sock=s), then the owner closes s without server.close()
    # (Sanic's serve() does in its error path) while the loop stays open:
    # the port is free again and nothing connects, as on asyncio's loop.
    # (io_uring's readiness poll held the listener's file and its port.)
    if loop_name == "ringloop-select":
        pytest.skip("select() fails with EBADF on a closed fd in its set, as over "
                    "asyncio's SelectorEventLoop(SelectSelector())")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(100)
    addr = s.getsockname()

    async def main():
        await loop.create_server(asyncio.Protocol, sock=s)
        await asyncio.sleep(0.01)
        s.close()
        await asyncio.sleep(0.05)
        return connect_ex(addr)

    def connect_ex(addr):
        with socket.socket() as c:
            c.settimeout(TIMEOUT)
            return c.connect_ex(addr)

    # (server.close() is not called: on asyncio's loop it fails with EBADF
    # once its socket is closed.)
    assert run(loop, main()) == errno.ECONNREFUSED
    again = socket.socket()
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        again.bind(addr)            # EADDRINUSE while the port is held
        again.listen(1)
    finally:
        again.close()


@pytest.mark.xfail_uvloop("uvloop reports no accept error to the exception handler here")
def test_accept_error_names_the_accept_callback(loop):
    # accept() failing with an unexpected error (EINVAL: the listener was
    # shut down through another descriptor of it, as Sanic's main process
    # does) reaches the exception handler naming the accept callback, as
    # asyncio's "Exception in callback BaseSelectorEventLoop._accept_connection(...)".
    contexts = []

    async def main():
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(100)
        other = socket.socket(fileno=os.dup(lsock.fileno()))
        srv = await loop.create_server(asyncio.Protocol, sock=lsock)
        try:
            await asyncio.sleep(0.01)
            other.shutdown(socket.SHUT_RDWR)
            for _ in range(100):
                if contexts:
                    break
                await asyncio.sleep(0.01)
        finally:
            srv.close()
            other.close()
            await srv.wait_closed()

    run(loop, main())
    assert contexts, "no accept error reported"
    ctx = contexts[0]
    assert isinstance(ctx["exception"], OSError)
    assert ctx["message"].startswith("Exception in callback ")
    assert "._accept_connection(" in ctx["message"], ctx["message"]
