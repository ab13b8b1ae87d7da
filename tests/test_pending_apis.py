"""APIs of later milestones fail clearly: NotImplementedError naming the
method and pointing at asyncio's own loop, never a silent fallback."""

import pytest

from tests.support import run

pytestmark = pytest.mark.ringloop_only

PENDING = [
    ("start_tls", (None, None, None)),
]


@pytest.mark.parametrize("name,args", PENDING, ids=[p[0] for p in PENDING])
def test_pending_api_raises_clear_error(loop, name, args):
    with pytest.raises(NotImplementedError) as info:
        run(loop, getattr(loop, name)(*args))
    text = str(info.value)
    assert f"loop.{name}()" in text
    assert "asyncio.new_event_loop()" in text


# TLS through the network APIs: refused before any socket is made.
TLS = [
    ("create_connection", (None, "127.0.0.1", 1)),
    ("create_server", (None, "127.0.0.1", 0)),
    ("create_unix_connection", (None, "/nonexistent")),
    ("create_unix_server", (None, "/nonexistent")),
    ("connect_accepted_socket", (None, None)),
]


@pytest.mark.parametrize("name,args", TLS, ids=[p[0] for p in TLS])
def test_tls_raises_clear_error(loop, name, args):
    import ssl

    ctx = ssl.create_default_context()
    with pytest.raises(NotImplementedError) as info:
        run(loop, getattr(loop, name)(*args, ssl=ctx))
    text = str(info.value)
    assert f"loop.{name}() with ssl=" in text
    assert "TLS" in text
    assert "asyncio.new_event_loop()" in text


def test_ssl_true_on_create_connection_is_tls(loop):
    # ssl=True asks for a default context: TLS, refused clearly.
    with pytest.raises(NotImplementedError, match="TLS"):
        run(loop, loop.create_connection(None, "127.0.0.1", 1, ssl=True))


def test_ssl_bool_on_create_server_is_asyncio_type_error(loop):
    # asyncio rejects a bool there; so do we (the TLS refusal comes later).
    with pytest.raises(TypeError, match="ssl argument must be an SSLContext or None"):
        run(loop, loop.create_server(None, "127.0.0.1", 0, ssl=True))


@pytest.mark.parametrize("name", ["create_connection", "create_unix_connection",
                                  "connect_accepted_socket"])
def test_tls_refusal_closes_the_connected_socket_it_was_given(loop, name):
    # The caller handed its connected socket over (asyncio closes it when a
    # TLS connection fails): refused, it is closed, and its peer sees EOF
    # instead of waiting for a handshake forever.
    import socket
    import ssl

    ctx = ssl.create_default_context()
    a, b = socket.socketpair()
    with a, b:
        if name == "connect_accepted_socket":
            call = loop.connect_accepted_socket(None, a, ssl=ctx)
        else:
            call = getattr(loop, name)(None, sock=a, ssl=ctx, server_hostname="x")
        with pytest.raises(NotImplementedError, match="TLS"):
            run(loop, call)
        assert a.fileno() == -1
        b.settimeout(5)
        assert b.recv(1) == b""


def test_tls_refusal_leaves_a_listening_socket_to_its_owner(loop):
    # create_server(sock=...) failing leaves the socket open, as asyncio's
    # create_server does when it cannot serve on a socket it was given.
    import socket
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(NotImplementedError, match="TLS"):
            run(loop, loop.create_server(None, sock=s, ssl=ctx))
        assert s.fileno() != -1
