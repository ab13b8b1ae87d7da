"""getaddrinfo / getnameinfo: same answers and same errors as the socket module.

Only names that resolve locally (numeric addresses, /etc/hosts' localhost)
are used: no DNS traffic leaves the machine.
"""

import logging
import socket

import pytest

from tests.support import has_ipv6, run

F, T = socket.AF_INET, socket.SOCK_STREAM

GAI_CASES = [
    pytest.param(("127.0.0.1", 80), {}, id="ipv4"),
    pytest.param(("127.0.0.1", "80"), {}, id="ipv4-str-port"),
    pytest.param(("127.0.0.1", None), {}, id="ipv4-no-port"),
    pytest.param(("127.0.0.1", 0), {"type": socket.SOCK_STREAM}, id="ipv4-stream"),
    pytest.param(("127.0.0.1", 53), {"family": socket.AF_INET, "type": socket.SOCK_DGRAM,
                                     "proto": socket.IPPROTO_UDP}, id="ipv4-udp"),
    pytest.param(("localhost", 8080), {}, id="localhost"),
    pytest.param(("localhost", 8080), {"family": socket.AF_INET}, id="localhost-inet"),
    pytest.param((None, 8080), {"flags": socket.AI_PASSIVE}, id="passive"),
    pytest.param((None, 8080), {"type": socket.SOCK_STREAM}, id="no-host"),
    pytest.param(("127.0.0.1", 80), {"flags": socket.AI_NUMERICHOST | socket.AI_CANONNAME},
                 id="numeric-canonname"),
    pytest.param((b"127.0.0.1", b"80"), {}, id="bytes"),
]

IPV6_CASES = [
    pytest.param(("::1", 443), {}, id="ipv6"),
    pytest.param(("::1", 443), {"family": socket.AF_INET6, "type": socket.SOCK_STREAM},
                 id="ipv6-stream"),
    pytest.param(("::ffff:127.0.0.1", 1), {"family": socket.AF_INET6}, id="v4mapped"),
]


def _same_as_socket(loop, args, kwargs):
    expected = socket.getaddrinfo(*args, **kwargs)
    got = run(loop, loop.getaddrinfo(*args, **kwargs))
    assert got == expected


@pytest.mark.parametrize("args, kwargs", GAI_CASES)
def test_getaddrinfo_matches_socket(loop, args, kwargs):
    _same_as_socket(loop, args, kwargs)


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
@pytest.mark.parametrize("args, kwargs", IPV6_CASES)
def test_getaddrinfo_ipv6_matches_socket(loop, args, kwargs):
    _same_as_socket(loop, args, kwargs)


def _scoped_link_local():
    try:
        idx = socket.if_nametoindex("lo")
        res = socket.getaddrinfo("fe80::1%lo", 80, socket.AF_INET6, socket.SOCK_STREAM)
    except (OSError, AttributeError) as exc:
        return None, f"kernel/libc refuses 'fe80::1%lo': {exc}"
    if res[0][4][3] != idx:
        return None, "libc does not map the scope id"
    return idx, ""


@pytest.mark.xfail_uvloop("drops the scope id when type= is given (its fast path for numeric hosts)")
def test_getaddrinfo_ipv6_scope_id(loop):
    idx, why = _scoped_link_local()
    if idx is None:
        pytest.skip(why)
    _same_as_socket(loop, ("fe80::1%lo", 80), {"family": socket.AF_INET6})
    got = run(loop, loop.getaddrinfo("fe80::1%lo", 80, family=socket.AF_INET6,
                                     type=socket.SOCK_STREAM))
    assert got[0][4] == ("fe80::1", 80, 0, idx)


def test_getaddrinfo_debug_mode_same_result(loop):
    loop.set_debug(True)
    _same_as_socket(loop, ("127.0.0.1", 80), {"type": socket.SOCK_STREAM})


@pytest.mark.xfail_uvloop("uvloop logs no address lookups in debug mode")
def test_getaddrinfo_debug_mode_logs_numeric_queries(loop, caplog):
    # asyncio logs every lookup in debug mode, numeric ones included.
    loop.set_debug(True)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(loop, loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM))
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Get address info 127.0.0.1:80") for m in messages), messages
    assert any(m.startswith("Getting address info 127.0.0.1:80") for m in messages), messages


def _error_of(fn):
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("no error raised")


GAI_ERROR_CASES = [
    pytest.param(("not-an-address", 80), {"flags": socket.AI_NUMERICHOST}, id="numeric-host"),
    pytest.param(("127.0.0.1", "no-such-service-xyz"), {}, id="bad-service"),
    pytest.param(("127.0.0.1", 80), {"family": socket.AF_INET6,
                                     "flags": socket.AI_NUMERICHOST}, id="family-mismatch"),
    pytest.param(("127.0.0.1", "80"), {"flags": socket.AI_NUMERICSERV | socket.AI_NUMERICHOST,
                                       "type": socket.SOCK_RAW, "proto": 99999},
                 id="bad-proto"),
    pytest.param(("127.0.0.1", 80), {"flags": -1}, id="bad-flags"),
    pytest.param(("::1", 80), {"flags": 0x40000000}, id="unknown-flag"),
]


@pytest.mark.parametrize("args, kwargs", GAI_ERROR_CASES)
def test_getaddrinfo_errors_match_socket(loop, args, kwargs):
    expected = _error_of(lambda: socket.getaddrinfo(*args, **kwargs))
    got = _error_of(lambda: run(loop, loop.getaddrinfo(*args, **kwargs)))
    assert type(got) is type(expected)
    assert got.args == expected.args
    if isinstance(expected, socket.gaierror):
        assert got.errno == expected.errno


def test_getaddrinfo_no_host_no_port_is_gaierror(loop):
    expected = _error_of(lambda: socket.getaddrinfo(None, None))
    got = _error_of(lambda: run(loop, loop.getaddrinfo(None, None)))
    assert isinstance(got, socket.gaierror)
    assert got.args == expected.args


GNI_CASES = [
    pytest.param((("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV), id="numeric"),
    pytest.param((("127.0.0.1", 80), socket.NI_NUMERICHOST), id="service-name"),
    pytest.param((("127.0.0.1", 80), 0), id="names"),
    pytest.param((("127.0.0.1", 53), socket.NI_DGRAM | socket.NI_NUMERICHOST), id="dgram"),
]


@pytest.mark.parametrize("args", GNI_CASES)
def test_getnameinfo_matches_socket(loop, args):
    expected = socket.getnameinfo(*args)
    got = run(loop, loop.getnameinfo(*args))
    assert got == expected


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
def test_getnameinfo_ipv6(loop):
    args = (("::1", 443, 0, 0), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    assert run(loop, loop.getnameinfo(*args)) == socket.getnameinfo(*args)


def test_getnameinfo_ipv6_scope_id(loop):
    idx, why = _scoped_link_local()
    if idx is None:
        pytest.skip(why)
    args = (("fe80::1", 80, 0, idx), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    expected = socket.getnameinfo(*args)
    assert expected[0] == "fe80::1%lo"
    assert run(loop, loop.getnameinfo(*args)) == expected


GNI_ERROR_CASES = [
    pytest.param((("not-an-address", 80), socket.NI_NUMERICHOST), id="bad-host"),
    pytest.param((("127.0.0.1", 80), socket.NI_NAMEREQD | socket.NI_NUMERICHOST), id="namereqd"),
]


@pytest.mark.parametrize("args", GNI_ERROR_CASES)
def test_getnameinfo_errors_match_socket(loop, args):
    expected = _error_of(lambda: socket.getnameinfo(*args))
    got = _error_of(lambda: run(loop, loop.getnameinfo(*args)))
    assert type(got) is type(expected)
    assert got.args == expected.args


def test_many_concurrent_lookups(loop):
    import asyncio

    async def main():
        return await asyncio.gather(*[
            loop.getaddrinfo("127.0.0.1", p, type=socket.SOCK_STREAM) for p in range(1, 65)])

    results = run(loop, main())
    for p, res in zip(range(1, 65), results):
        assert res == socket.getaddrinfo("127.0.0.1", p, type=socket.SOCK_STREAM)
