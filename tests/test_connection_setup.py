"""Connection set-up done in C: IP-literal resolution (the loop's
_ipaddr_info), non-blocking connect through connect_ex(), the addresses a
transport records (built without the socket module), accept4() in the accept
loop, and the loop's fd -> transport map.  Each is checked against what
asyncio's own code gives for the same input.

Servers listen on loopback; clients connect to loopback only (127.0.0.0/8
is all loopback on Linux: other addresses in it exercise the address
formatting's 1-, 2- and 3-digit octets).
"""

import asyncio
import errno
import gc
import itertools
import os
import socket
import sys
from asyncio import base_events, trsock

import pytest

from tests.support import Accepted, Recorder, close_transport, has_ipv6, run

IPV6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="127.0.0.0/8 beyond 127.0.0.1 is Linux's")


def _outcome(func, *args):
    try:
        result = func(*args)
    except Exception as exc:  # the exception is part of the behaviour compared
        return ("raised", type(exc), str(exc))
    if result is None:
        return None
    # Same values and the same types (asyncio's enums where it gives enums).
    return (result, [type(x) for x in result[:3]],
            [type(x) for x in result[4]])


HOSTS = ["127.0.0.1", "0.0.0.0", "10.20.30.40", "255.255.255.255", "1.2.3",
         "127.0.0.01", " 127.0.0.1", "::1", "::", "fe80::1", "::ffff:1.2.3.4",
         "fe80::1%1", "fe80::1%lo", "localhost", "example.com", "",
         "127.0.0.1\x00", "\u00fc.example", "\ud800", b"127.0.0.1", b"::1",
         bytearray(b"x"), None, 7]
PORTS = [0, 80, 65535, 70000, -1, "80", "http", "", b"", None, True, 2 ** 70,
         8.5]
FAMILIES = [0, socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, int(socket.AF_INET)]
TYPES = [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, 0,
         int(socket.SOCK_STREAM)]
PROTOS = [0, socket.IPPROTO_TCP, socket.IPPROTO_UDP, 1, 2 ** 70, int(socket.IPPROTO_TCP)]


@pytest.mark.ringloop_only
def test_ipaddr_info_matches_asyncios():
    # The loop's _ipaddr_info (a C path for the common case) answers as
    # asyncio's for every combination: the same tuple with the same types,
    # None, or the same exception.
    from ringloop.core.loop import _ipaddr_info
    checked = 0
    for host, port, family, type_, proto in itertools.product(
            HOSTS, PORTS, FAMILIES, TYPES, PROTOS):
        args = (host, port, family, type_, proto)
        assert _outcome(_ipaddr_info, *args) == _outcome(base_events._ipaddr_info, *args), args
        checked += 1
    for extra in [(0, 0), (5, 3)]:
        for host in ["::1", "127.0.0.1"]:
            args = (host, 443, 0, socket.SOCK_STREAM, 0) + extra
            assert _outcome(_ipaddr_info, *args) == _outcome(base_events._ipaddr_info, *args)
    assert checked == len(HOSTS) * len(PORTS) * len(FAMILIES) * len(TYPES) * len(PROTOS)


def test_sock_connect_immediate_error_is_connects(loop, tmp_path):
    # An error the connect() call itself returns (a missing Unix socket
    # file) is raised as socket.connect() raises it.
    path = str(tmp_path / "missing.sock")
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError as exc:
            expected = (type(exc), exc.errno, str(exc))

    async def main():
        with socket.socket(socket.AF_UNIX) as sock:
            sock.setblocking(False)
            with pytest.raises(OSError) as info:
                await loop.sock_connect(sock, path)
            return (type(info.value), info.value.errno, str(info.value))

    assert run(loop, main()) == expected
    assert expected[1] == errno.ENOENT


def test_sock_connect_refused_reports_the_address(loop):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]   # bound, never listening: refused

        async def main():
            with socket.socket() as sock:
                sock.setblocking(False)
                with pytest.raises(ConnectionRefusedError) as info:
                    await loop.sock_connect(sock, ("127.0.0.1", port))
                return info.value

        exc = run(loop, main())
    assert exc.errno == errno.ECONNREFUSED
    assert str(exc) == f"[Errno {errno.ECONNREFUSED}] Connect call failed ('127.0.0.1', {port})"


def test_sock_connect_resolves_names(loop):
    # Not an IP literal: the resolver is asked, as asyncio does.
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            with socket.socket() as sock:
                sock.setblocking(False)
                await loop.sock_connect(sock, ("localhost", port))
                assert sock.getpeername() == ("127.0.0.1", port)
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


def _sources():
    return ["127.0.0.1", "127.0.0.9", "127.10.200.3", "127.255.99.100",
            "127.1.0.0"]


@LINUX
@pytest.mark.parametrize("source", _sources())
def test_recorded_addresses_equal_the_socket_modules(loop, source):
    # Both ends' sockname/peername, on the client transport and the server's,
    # equal what the socket module returns for the same sockets.
    async def main():
        rec = Recorder()
        accepted = Accepted()
        server = await loop.create_server(accepted, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            tr, _ = await loop.create_connection(
                lambda: rec, "127.0.0.1", port, local_addr=(source, 0))
            str_ = (await accepted.wait(1)).transport
            csock = tr.get_extra_info("socket")
            ssock = str_.get_extra_info("socket")
            assert tr.get_extra_info("sockname") == csock.getsockname() == (source, csock.getsockname()[1])
            assert tr.get_extra_info("peername") == csock.getpeername() == ("127.0.0.1", port)
            assert str_.get_extra_info("sockname") == ssock.getsockname() == ("127.0.0.1", port)
            assert str_.get_extra_info("peername") == ssock.getpeername() == csock.getsockname()
            for t in (tr, str_):
                name = t.get_extra_info("sockname")
                assert type(name) is tuple and type(name[0]) is str and type(name[1]) is int
            tr.close()
            str_.close()
            await asyncio.sleep(0)
            # Recorded at creation: still there once the sockets are closed.
            assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


@pytest.mark.xfail_uvloop("uvloop's 'socket' extra is its PseudoSocket")
def test_socket_extra_is_a_transport_socket_over_the_transports_socket(loop):
    async def main():
        a, b = socket.socketpair()
        rec = Recorder()
        tr, _ = await loop.connect_accepted_socket(lambda: rec, a)
        ts = tr.get_extra_info("socket")
        assert type(ts) is trsock.TransportSocket
        assert ts._sock is a
        assert ts.fileno() == a.fileno()
        assert repr(ts).startswith("<asyncio.TransportSocket fd=")
        await close_transport(tr, rec)
        b.close()

    run(loop, main())


@pytest.mark.xfail_uvloop("uvloop reads the addresses from the fd")
def test_socket_class_overriding_getsockname_is_asked(loop):
    # As asyncio's transports: the addresses come from the socket's own
    # getsockname()/getpeername() when its class overrides them.
    class Named(socket.socket):
        def getsockname(self):
            return ("sockname", 1)

        def getpeername(self):
            return ("peername", 2)

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            sock = Named(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            rec = Recorder()
            tr, _ = await loop.create_connection(lambda: rec, sock=sock)
            assert tr.get_extra_info("sockname") == ("sockname", 1)
            assert tr.get_extra_info("peername") == ("peername", 2)
            await close_transport(tr, rec)
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


@IPV6
def test_recorded_ipv6_addresses_equal_the_socket_modules(loop):
    async def main():
        accepted = Accepted()
        server = await loop.create_server(accepted, "::1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            rec = Recorder()
            tr, _ = await loop.create_connection(lambda: rec, "::1", port)
            str_ = (await accepted.wait(1)).transport
            csock = tr.get_extra_info("socket")
            ssock = str_.get_extra_info("socket")
            assert tr.get_extra_info("sockname") == csock.getsockname()
            assert tr.get_extra_info("peername") == csock.getpeername() == ("::1", port, 0, 0)
            assert str_.get_extra_info("sockname") == ssock.getsockname()
            assert str_.get_extra_info("peername") == ssock.getpeername()
            await close_transport(tr, rec)
            str_.close()
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


def test_accepted_sockets_are_not_inheritable(loop):
    # As socket.accept() makes them (accept4 with SOCK_CLOEXEC).
    async def main():
        accepted = Accepted()
        server = await loop.create_server(accepted, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            socks = []
            for _ in range(5):
                s = socket.socket()
                s.setblocking(False)
                await loop.sock_connect(s, ("127.0.0.1", port))
                socks.append(s)
            for n in range(1, 6):
                await accepted.wait(n)
            for p in accepted.protocols:
                sock = p.transport.get_extra_info("socket")
                assert sock.get_inheritable() is False
                assert os.get_inheritable(sock.fileno()) is False
                p.transport.close()
            for s in socks:
                s.close()
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


@pytest.mark.ringloop_only
def test_transport_map_is_weak_and_refuses_live_fds(loop):
    # loop._transports maps fds to live transports only, weakly, as the
    # WeakValueDictionary asyncio's loops keep.
    async def main():
        a, b = socket.socketpair()
        rec = Recorder()
        tr, _ = await loop.connect_accepted_socket(lambda: rec, a)
        fd = a.fileno()
        assert loop._transports.get(fd) is tr
        assert fd in loop._transports
        assert loop._transports[fd] is tr
        assert dict(loop._transports.items())[fd] is tr
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(fd, lambda: None)
        await close_transport(tr, rec)
        b.close()
        return fd

    fd = run(loop, main())
    gc.collect()   # the transport is gone after this
    assert loop._transports.get(fd) is None
    assert fd not in loop._transports
    assert loop._transports.pop(fd, "absent") == "absent"
    with pytest.raises(KeyError):
        loop._transports[fd]
