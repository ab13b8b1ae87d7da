"""loop.create_connection: addresses, sock=, local_addr, family, Happy Eyeballs,
all_errors, TLS, and TCP_NODELAY on every kind of TCP stream socket.

Only loopback addresses are ever connected to.  Names with several
addresses come from a fake ``socket.getaddrinfo`` (``fake_resolver``): the
loop must resolve through ``socket.getaddrinfo`` as asyncio does.
"""

import asyncio
import errno
import os
import socket
import ssl
import sys
import sysconfig
import time
from asyncio import sslproto

import pytest

from tests.support import (TIMEOUT, Recorder, close_transport, has_ipv6, refusing_address,
                           run, tcp_listener, tcp_pair)

IPV6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
FAMILIES = [pytest.param(socket.AF_INET, id="ipv4"),
            pytest.param(socket.AF_INET6, id="ipv6", marks=IPV6)]
HOST = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}

FAKE_HOST = "dual.ringloop.invalid"


def _nodelay(transport):
    sock = transport.get_extra_info("socket")
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.fixture
def fake_resolver(loop_impl, monkeypatch):
    """Make ``socket.getaddrinfo(FAKE_HOST, ...)`` answer the (family, sockaddr)
    pairs the test appends to the returned list, in that order."""
    if loop_impl.kind == "uvloop":
        # Running the test would send a DNS query for FAKE_HOST.
        pytest.xfail("uvloop: resolves names with libuv, not socket.getaddrinfo")
    answers = []
    real = socket.getaddrinfo

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if host in (FAKE_HOST, FAKE_HOST.encode()):
            found = [(fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", addr)
                     for fam, addr in answers if family in (0, fam)]
            if not found:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return found
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return answers


class _HangingListener:
    """A listener whose accept queue is full: new connects to it hang
    (the kernel drops their SYNs) instead of completing or failing."""

    def __init__(self, family):
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.filler = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind((HOST[family], 0))
        self.listener.listen(0)  # room for exactly one queued connection
        self.filler.settimeout(TIMEOUT)
        self.filler.connect(self.listener.getsockname())
        self.addr = self.listener.getsockname()

    def close(self):
        self.filler.close()
        self.listener.close()


async def _accept_and_check(loop, srv, transport, proto):
    """Accept the server side of ``transport`` and pass data both ways."""
    conn, addr = await loop.sock_accept(srv)
    with conn:
        assert addr[:2] == transport.get_extra_info("sockname")[:2]
        transport.write(b"ping")
        got = b""
        while len(got) < 4:
            chunk = await loop.sock_recv(conn, 4)
            assert chunk
            got += chunk
        assert got == b"ping"
        await loop.sock_sendall(conn, b"pong")
        assert await proto.received(4) == b"pong"


# ------------------------------------------------------------ basics ----

@pytest.mark.parametrize("family", FAMILIES)
def test_connect_host_port(loop, family):
    async def main():
        with tcp_listener(family) as srv:
            host, port = srv.getsockname()[:2]
            made = []

            def factory():
                made.append(Recorder())
                return made[-1]

            tr, proto = await loop.create_connection(factory, host, port)
            try:
                assert made == [proto]
                assert proto.transport is tr
                assert proto.events == ["connection_made"]
                assert tr.get_extra_info("peername")[:2] == (host, port)
                assert tr.get_extra_info("socket").family == family
                await _accept_and_check(loop, srv, tr, proto)
            finally:
                await close_transport(tr, proto)
            assert proto.lost.result() is None

    run(loop, main())


def test_connect_port_as_string_and_name(loop):
    async def main():
        with tcp_listener() as srv:
            port = srv.getsockname()[1]
            tr, proto = await loop.create_connection(Recorder, "localhost", str(port))
            try:
                assert tr.get_extra_info("peername") == ("127.0.0.1", port)
                await _accept_and_check(loop, srv, tr, proto)
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_connect_sock(loop):
    async def main():
        with tcp_listener() as srv:
            sock = socket.socket()
            sock.settimeout(TIMEOUT)
            sock.connect(srv.getsockname())  # a blocking, connected socket
            tr, proto = await loop.create_connection(Recorder, sock=sock)
            try:
                assert sock.getblocking() is False  # made non-blocking by the loop
                assert tr.get_extra_info("sockname") == sock.getsockname()
                assert tr.get_extra_info("peername") == srv.getsockname()
                await _accept_and_check(loop, srv, tr, proto)
            finally:
                await close_transport(tr, proto)
            assert sock.fileno() == -1  # the transport owned and closed it

    run(loop, main())


def test_connect_local_addr(loop):
    async def main():
        with tcp_listener() as srv:
            tr, proto = await loop.create_connection(
                Recorder, *srv.getsockname(), local_addr=("127.0.0.2", 0))
            try:
                assert tr.get_extra_info("sockname")[0] == "127.0.0.2"
                conn, addr = await loop.sock_accept(srv)
                conn.close()
                assert addr[0] == "127.0.0.2"
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_connect_local_addr_in_use(loop):
    async def main():
        with tcp_listener() as srv, tcp_listener() as taken:
            with pytest.raises(OSError) as info:
                await loop.create_connection(Recorder, *srv.getsockname(),
                                             local_addr=taken.getsockname())
            assert info.value.errno == errno.EADDRINUSE

    run(loop, main())


@pytest.mark.parametrize("family", FAMILIES)
def test_connect_family(loop, family):
    async def main():
        with tcp_listener(family) as srv:
            port = srv.getsockname()[1]
            host = "localhost" if family == socket.AF_INET else "::1"
            tr, proto = await loop.create_connection(Recorder, host, port, family=family)
            try:
                assert tr.get_extra_info("socket").family == family
                assert tr.get_extra_info("peername")[:2] == (HOST[family], port)
                await _accept_and_check(loop, srv, tr, proto)
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_connect_family_mismatch_fails(loop):
    # An IPv4 literal has no IPv6 address.
    with pytest.raises(OSError):
        run(loop, loop.create_connection(Recorder, "127.0.0.1", 80,
                                         family=socket.AF_INET6))


@pytest.mark.parametrize("family", FAMILIES)
def test_connect_refused(loop, family):
    async def main():
        with refusing_address(family) as addr:
            with pytest.raises(ConnectionRefusedError) as info:
                await loop.create_connection(Recorder, *addr)
            assert info.value.errno == errno.ECONNREFUSED

    run(loop, main())


def test_connect_bad_arguments(loop):
    async def main():
        with tcp_listener() as srv, socket.socket() as s, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            addr = srv.getsockname()
            with pytest.raises(ValueError, match="host/port and sock can not be specified"):
                await loop.create_connection(Recorder, *addr, sock=s)
            with pytest.raises(ValueError, match="host and port was not specified"):
                await loop.create_connection(Recorder)
            with pytest.raises(ValueError, match="A Stream Socket was expected"):
                await loop.create_connection(Recorder, sock=udp)
            with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
                await loop.create_connection(Recorder, *addr, server_hostname="x")
            with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful"):
                await loop.create_connection(Recorder, *addr, ssl_handshake_timeout=1)
            assert s.fileno() != -1 and udp.fileno() != -1  # not taken over

    run(loop, main())


# ----------------------------------------------------- Happy Eyeballs ----

@pytest.mark.xfail_uvloop("create_connection has no happy_eyeballs_delay/interleave")
def test_happy_eyeballs_arguments_accepted(loop):
    async def main():
        with tcp_listener() as srv:
            tr, proto = await loop.create_connection(
                Recorder, *srv.getsockname(), happy_eyeballs_delay=0.25, interleave=1)
            try:
                await _accept_and_check(loop, srv, tr, proto)
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_multiple_addresses_tried_in_order(loop, fake_resolver):
    async def main():
        with refusing_address() as refused, tcp_listener() as srv:
            fake_resolver[:] = [(socket.AF_INET, refused), (socket.AF_INET, srv.getsockname())]
            tr, proto = await loop.create_connection(Recorder, FAKE_HOST, 0)
            try:
                assert tr.get_extra_info("peername") == srv.getsockname()
                await _accept_and_check(loop, srv, tr, proto)
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_happy_eyeballs_delay_starts_next_attempt(loop, fake_resolver):
    # The first address never answers: without Happy Eyeballs the connect
    # would hang; with it, the second attempt starts after the delay and wins.
    async def main():
        hang = _HangingListener(socket.AF_INET)
        try:
            with tcp_listener() as srv:
                fake_resolver[:] = [(socket.AF_INET, hang.addr),
                                    (socket.AF_INET, srv.getsockname())]
                t0 = time.monotonic()
                tr, proto = await loop.create_connection(
                    Recorder, FAKE_HOST, 0, happy_eyeballs_delay=0.1)
                elapsed = time.monotonic() - t0
                try:
                    assert tr.get_extra_info("peername") == srv.getsockname()
                    assert 0.05 <= elapsed < 3.0
                    await _accept_and_check(loop, srv, tr, proto)
                finally:
                    await close_transport(tr, proto)
        finally:
            hang.close()

    run(loop, main())


@IPV6
@pytest.mark.parametrize("interleave, winner", [(None, "ipv4"), (1, "ipv4"), (0, "ipv6")])
def test_happy_eyeballs_interleave(loop, fake_resolver, interleave, winner):
    # Resolver order: IPv6 (hangs), IPv6 (works), IPv4 (works).  Interleaving
    # by family (the default once happy_eyeballs_delay is given) tries the
    # IPv4 address second; interleave=0 keeps the resolver's order.
    async def main():
        hang = _HangingListener(socket.AF_INET6)
        try:
            with tcp_listener(socket.AF_INET6) as srv6, tcp_listener() as srv4:
                fake_resolver[:] = [(socket.AF_INET6, hang.addr),
                                    (socket.AF_INET6, srv6.getsockname()),
                                    (socket.AF_INET, srv4.getsockname())]
                kwargs = {} if interleave is None else {"interleave": interleave}
                tr, proto = await loop.create_connection(
                    Recorder, FAKE_HOST, 0, happy_eyeballs_delay=0.1, **kwargs)
                try:
                    srv = srv4 if winner == "ipv4" else srv6
                    assert tr.get_extra_info("peername")[:2] == srv.getsockname()[:2]
                    await _accept_and_check(loop, srv, tr, proto)
                finally:
                    await close_transport(tr, proto)
        finally:
            hang.close()

    run(loop, main())


def test_happy_eyeballs_all_refused(loop, fake_resolver):
    async def main():
        with refusing_address() as r1, refusing_address() as r2:
            fake_resolver[:] = [(socket.AF_INET, r1), (socket.AF_INET, r2)]
            with pytest.raises(OSError, match="Multiple exceptions: "):
                await loop.create_connection(Recorder, FAKE_HOST, 0, happy_eyeballs_delay=0.05)

    run(loop, main())


# ---------------------------------------------------------- all_errors ----

def test_several_failures_combined(loop, fake_resolver):
    async def main():
        with refusing_address() as r1, refusing_address() as r2:
            fake_resolver[:] = [(socket.AF_INET, r1), (socket.AF_INET, r2)]
            with pytest.raises(OSError) as info:
                await loop.create_connection(Recorder, FAKE_HOST, 0)
            assert type(info.value) is OSError
            assert str(info.value).startswith("Multiple exceptions: ")
            assert str(r1[1]) in str(info.value) and str(r2[1]) in str(info.value)

    run(loop, main())


ALL_ERRORS = pytest.mark.skipif(sys.version_info < (3, 12), reason="all_errors is new in 3.12")


@ALL_ERRORS
def test_all_errors_exception_group(loop, fake_resolver):
    async def main():
        with refusing_address() as r1, refusing_address() as r2:
            fake_resolver[:] = [(socket.AF_INET, r1), (socket.AF_INET, r2)]
            with pytest.raises(ExceptionGroup) as info:  # noqa: F821 (3.11+)
                await loop.create_connection(Recorder, FAKE_HOST, 0, all_errors=True)
            excs = info.value.exceptions
            assert len(excs) == 2
            assert all(isinstance(e, ConnectionRefusedError) for e in excs)

    run(loop, main())


@ALL_ERRORS
@pytest.mark.xfail_uvloop("create_connection has no all_errors")
def test_all_errors_single_address(loop):
    async def main():
        with refusing_address() as addr:
            with pytest.raises(ExceptionGroup) as info:  # noqa: F821
                await loop.create_connection(Recorder, *addr, all_errors=True)
            [exc] = info.value.exceptions
            assert isinstance(exc, ConnectionRefusedError)
            # Without all_errors the single error is raised as it is.
            with pytest.raises(ConnectionRefusedError):
                await loop.create_connection(Recorder, *addr, all_errors=False)

    run(loop, main())


# ------------------------------------------------------- TCP_NODELAY ----

@pytest.mark.parametrize("family", FAMILIES)
def test_tcp_nodelay_on_client(loop, family):
    async def main():
        with tcp_listener(family) as srv:
            tr, proto = await loop.create_connection(Recorder, *srv.getsockname()[:2])
            try:
                assert _nodelay(tr)
                conn, _ = await loop.sock_accept(srv)
                conn.close()
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_tcp_nodelay_on_user_socket(loop):
    async def main():
        with tcp_listener() as srv:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            sock.setblocking(False)
            await loop.sock_connect(sock, srv.getsockname())
            tr, proto = await loop.create_connection(Recorder, sock=sock)
            try:
                assert _nodelay(tr)
            finally:
                await close_transport(tr, proto)

    run(loop, main())


# asyncio sets TCP_NODELAY only when sock.proto == IPPROTO_TCP
# (base_events._set_nodelay): a socket made with socket.socket() has proto 0
# and keeps Nagle on, as do sockets accepted from such a listener.
@pytest.mark.documented_difference("TCP_NODELAY is set on every TCP stream socket, "
                                   "also user sockets made with proto=0")
@pytest.mark.xfail_uvloop("sets TCP_NODELAY on every TCP stream socket")
@pytest.mark.parametrize("how", ["sock", "connect_accepted_socket"])
def test_tcp_nodelay_untouched_on_proto_0_socket(loop, how):
    async def main():
        with tcp_pair() as (a, b):  # socket.socket(): proto 0
            assert a.proto == 0
            a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            if how == "sock":
                tr, proto = await loop.create_connection(Recorder, sock=a)
            else:
                tr, proto = await loop.connect_accepted_socket(Recorder, a)
            try:
                assert _nodelay(tr) == 0
            finally:
                await close_transport(tr, proto)

    run(loop, main())


@pytest.mark.parametrize("family", FAMILIES)
def test_tcp_nodelay_on_accepted(loop, family):
    async def main():
        accepted = []

        def factory():
            accepted.append(Recorder())
            return accepted[-1]

        server = await loop.create_server(factory, HOST[family], 0)
        try:
            with socket.socket(family) as cli:
                cli.setblocking(False)
                await loop.sock_connect(cli, server.sockets[0].getsockname()[:2])
                await loop.sock_sendall(cli, b"x")
                while not accepted:
                    await asyncio.sleep(0.005)
                proto = accepted[0]
                await proto.made
                assert _nodelay(proto.transport)
                await close_transport(proto.transport, proto)
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


def test_tcp_nodelay_on_connect_accepted_socket(loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as srv, \
                socket.socket() as cli:
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            cli.settimeout(TIMEOUT)
            cli.connect(srv.getsockname())
            srv.settimeout(TIMEOUT)
            conn, _ = srv.accept()  # proto IPPROTO_TCP, like its listener
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            tr, proto = await loop.connect_accepted_socket(Recorder, conn)
            try:
                assert _nodelay(tr)
                cli.sendall(b"accepted")
                assert await proto.received(8) == b"accepted"
            finally:
                await close_transport(tr, proto)

    run(loop, main())


def test_connect_accepted_socket_tcp(loop):
    async def main():
        with tcp_listener() as srv:
            cli = socket.socket()
            cli.setblocking(False)
            with cli:
                await loop.sock_connect(cli, srv.getsockname())
                conn, _ = await loop.sock_accept(srv)
                tr, proto = await loop.connect_accepted_socket(Recorder, conn)
                try:
                    assert proto.events == ["connection_made"]
                    assert tr.get_extra_info("peername") == cli.getsockname()
                    tr.write(b"from-accepted")
                    got = b""
                    while len(got) < 13:
                        got += await loop.sock_recv(cli, 100)
                    assert got == b"from-accepted"
                finally:
                    await close_transport(tr, proto)

    run(loop, main())


def test_connect_accepted_socket_rejects_dgram(loop):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(ValueError, match="A Stream Socket was expected"):
            run(loop, loop.connect_accepted_socket(Recorder, udp))


# ---------------------------------------------------------------- TLS ----

def _cert_file():
    for rel in ("test/certdata/keycert.pem", "test/keycert.pem"):
        path = os.path.join(sysconfig.get_paths()["stdlib"], rel)
        if os.path.exists(path):
            return path
    return None


CERT = _cert_file()


def _tls_contexts():
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(CERT)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


@pytest.mark.skipif(CERT is None, reason="CPython's test certificates are not installed")
def test_tls_echo(loop, loop_impl):
    if loop_impl.is_ringloop:
        pytest.skip("TLS: later issue")

    async def main():
        server_ctx, client_ctx = _tls_contexts()
        server = await loop.create_server(lambda: Recorder(echo=True), "127.0.0.1", 0,
                                          ssl=server_ctx)
        try:
            tr, proto = await loop.create_connection(
                Recorder, *server.sockets[0].getsockname(), ssl=client_ctx,
                server_hostname="localhost")
            try:
                assert tr.get_extra_info("sslcontext") is client_ctx
                assert tr.get_extra_info("ssl_object") is not None
                tr.write(b"secret" * 1000)
                assert await proto.received(6000) == b"secret" * 1000
            finally:
                await close_transport(tr, proto)
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


@pytest.mark.ringloop_only
@pytest.mark.skipif(CERT is None, reason="CPython's test certificates are not installed")
def test_tls_not_yet_on_ringloop(loop):
    # TLS is a later issue: until then ssl= fails clearly.  Delete this
    # test when TLS lands (test_tls_echo then runs on ringloop).
    async def main():
        server_ctx, client_ctx = _tls_contexts()
        with tcp_listener() as srv:
            with pytest.raises(NotImplementedError):
                await loop.create_connection(Recorder, *srv.getsockname(), ssl=client_ctx,
                                             server_hostname="localhost")
        with pytest.raises(NotImplementedError):
            await loop.create_server(Recorder, "127.0.0.1", 0, ssl=server_ctx)

    run(loop, main())


@pytest.mark.xfail_uvloop("uvloop's transports have no _force_close")
def test_force_close_drops_the_queue_and_reports_the_error(loop):
    # asyncio's socket transports have _force_close(exc), and asyncio's own
    # SSLProtocol calls it (a fatal TLS error, a TLS shutdown timing out).
    async def main():
        with tcp_pair() as (a, b):
            tr, proto = await loop.create_connection(Recorder, sock=a)
            try:
                b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                tr.write(b"x" * (4 << 20))          # more than the kernel takes
                assert tr.get_write_buffer_size() > 0
                err = ConnectionError("forced")
                tr._force_close(err)
                assert tr.is_closing()
                assert tr.get_write_buffer_size() == 0
                assert await asyncio.wait_for(proto.lost, TIMEOUT) is err
                tr._force_close(None)              # once lost, nothing more
                await asyncio.sleep(0.01)
                assert proto.events.count("connection_lost") == 1
            finally:
                if not proto.lost.done():
                    tr.abort()
                    await asyncio.wait_for(proto.lost, TIMEOUT)

    run(loop, main())


@pytest.mark.skipif(CERT is None, reason="CPython's test certificates are not installed")
def test_asyncio_sslprotocol_driven_by_hand_over_a_transport(loop):
    # aiosmtpd's STARTTLS puts asyncio's SSLProtocol over a server's plain
    # transport itself.  A client that speaks no TLS makes the handshake
    # fail: the waiter gets the SSLError, and SSLProtocol closes the
    # transport with _force_close(), which nothing else reports.
    server_ctx, _ = _tls_contexts()

    async def main():
        contexts = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        waiters = []

        class Plain(asyncio.Protocol):
            def connection_made(self, transport):
                waiter = loop.create_future()
                waiters.append(waiter)
                tls = sslproto.SSLProtocol(loop, asyncio.Protocol(), server_ctx,
                                           waiter, server_side=True)
                transport.set_protocol(tls)
                tls.connection_made(transport)

        server = await loop.create_server(Plain, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname())
            writer.write(b"NOT TLS\r\n" * 8)
            await asyncio.wait_for(reader.read(), TIMEOUT)    # closed by the server
            writer.close()
            await writer.wait_closed()
            with pytest.raises(ssl.SSLError):
                await asyncio.wait_for(waiters[0], TIMEOUT)
        finally:
            server.close()
            await server.wait_closed()
            loop.set_exception_handler(None)
        assert contexts == []

    run(loop, main())
