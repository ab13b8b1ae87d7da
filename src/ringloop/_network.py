"""The network API of both loop kinds: servers, connections, datagrams, sendfile.

The cold half is asyncio's own code, run on our loop: address resolution,
happy eyeballs, socket options, argument checks and asyncio's Server object
come from the running Python's ``asyncio.base_events`` and
``asyncio.unix_events`` (looked up on asyncio's loop class at each use,
never copied: see ``_borrowed.py``), so arguments, errors and
messages are those of the running version, and APIs arrive with the version
that has them (``all_errors`` on 3.12, ``keep_alive`` on 3.13...).  The hot
half is ours: the transports and the accept loop (``ringloop.transports``).

Deliberate differences, with their reasons, are in docs/compatibility.md:
Unix server socket files are removed on close on every version (3.13's
behaviour), TCP_NODELAY is set on every TCP stream socket.
"""

from __future__ import annotations

import socket
import sys
import weakref
from asyncio.base_events import Server as _Server
from asyncio.log import logger
from typing import Any, Callable

from ringloop._borrowed import FromAsyncio, asyncio_method, wraps_asyncio
from ringloop._version import __version__
from ringloop.transports.datagram import make_datagram_transport
from ringloop.transports.stream import (
    AcceptCore,
    make_stream_transport,
    unix_socket_inode,
    unlink_unix_socket,
)

__all__ = ["NetworkMixin"]

_PY313 = sys.version_info >= (3, 13)


def _tls_error(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"ringloop {__version__} does not implement TLS yet (loop.{name}() "
        f"with ssl=); it comes in a later release. Use asyncio's own event "
        f"loop (asyncio.new_event_loop()) for TLS connections and servers"
    )


def _borrow(name: str, *, ssl_bool_ok: bool = False,
            takes_connected_sock: bool = False,
            sock_position: int | None = None):
    """asyncio's coroutine method `name` (looked up at each call, see
    _borrowed.py), run with our loop as self; TLS (a true ssl argument)
    raises a clear NotImplementedError until it lands.  Where asyncio
    rejects ssl=True/False with TypeError, it still does.

    takes_connected_sock: the method's sock= is a connected socket the
    caller hands over; sock_position: where sock sits among the positional
    arguments, when it may be passed positionally."""

    @wraps_asyncio(name)
    async def method(self, *args, **kwargs):
        ssl = kwargs.get("ssl")
        if ssl and (ssl_bool_ok or not isinstance(ssl, bool)):
            if takes_connected_sock:
                # The caller handed its connected socket over (asyncio
                # closes it when the TLS connection fails): closed here too,
                # or its peer would wait on it forever.
                sock = kwargs.get("sock")
                if sock is None and sock_position is not None and len(args) > sock_position:
                    sock = args[sock_position]
                if isinstance(sock, socket.socket):
                    sock.close()
            raise _tls_error(name)
        return await asyncio_method(self, name)(*args, **kwargs)

    return method


class NetworkMixin:
    """Network methods shared by SelectorEventLoop and ProactorEventLoop."""

    # -- asyncio's own logic (cold), looked up at each use -----------------
    create_connection = _borrow(
        "create_connection", ssl_bool_ok=True, takes_connected_sock=True)
    create_server = _borrow("create_server")
    # connect_accepted_socket(protocol_factory, sock, ...): sock is args[1].
    connect_accepted_socket = _borrow(
        "connect_accepted_socket", takes_connected_sock=True, sock_position=1)
    create_unix_connection = _borrow(
        "create_unix_connection", ssl_bool_ok=True, takes_connected_sock=True)
    create_datagram_endpoint = FromAsyncio("create_datagram_endpoint")
    sendfile = FromAsyncio("sendfile")

    _connect_sock = FromAsyncio("_connect_sock")
    _create_connection_transport = FromAsyncio("_create_connection_transport")
    _create_server_getaddrinfo = FromAsyncio("_create_server_getaddrinfo")
    _check_sendfile_params = FromAsyncio("_check_sendfile_params")
    _sendfile_fallback = FromAsyncio("_sendfile_fallback")

    if _PY313:
        create_unix_server = _borrow("create_unix_server")
    else:

        @wraps_asyncio("create_unix_server")
        async def create_unix_server(self, protocol_factory, path=None, *args, **kwargs):
            ssl = kwargs.get("ssl")
            if ssl and not isinstance(ssl, bool):
                raise _tls_error("create_unix_server")
            server = await asyncio_method(self, "create_unix_server")(
                protocol_factory, path, *args, **kwargs)
            # As 3.13 does: remember the socket file, removed on close if it
            # is still ours (same inode).  Only for a path we bound, and
            # only for asyncio's Server (a patched method returns anything).
            if path is not None and isinstance(server, _Server):
                try:
                    for sock in server._sockets:
                        self._remember_unix_socket(sock)
                except BaseException:
                    # (not an OSError: e.g. a test tool's blocking-call
                    # error) the caller gets no server: none is left open.
                    server.close()
                    raise
            return server

    def _remember_unix_socket(self, sock) -> None:
        try:
            name = sock.getsockname()
        except OSError:
            return
        if not name or name[0] in (0, "\x00"):
            return   # abstract names have no file
        ino = unix_socket_inode(name)
        if ino is not None:
            self._unix_server_sockets[sock] = ino
        # else gone already, or not stat-able (EACCES...): not removed on
        # close, as 3.11/3.12's asyncio never removes it; the server, already
        # serving, is not failed for it.

    # -- our transports -----------------------------------------------------

    def _make_socket_transport(self, sock, protocol, waiter=None, *,
                               extra=None, server=None):
        return make_stream_transport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, *args, **kwargs):
        raise _tls_error("create_connection")

    def _make_datagram_transport(self, sock, protocol, address=None,
                                 waiter=None, extra=None):
        return make_datagram_transport(self, sock, protocol, address, waiter, extra)

    async def _sendfile_native(self, transp, file, offset, count):
        fd = transp._sock_fd
        self._transports.pop(fd, None)
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        try:
            return await self.sock_sendfile(transp._sock, file, offset, count,
                                            fallback=False)
        finally:
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()
            self._transports[fd] = transp

    # -- servers ----------------------------------------------------------------

    def _start_serving(self, protocol_factory, sock, sslcontext=None,
                       server=None, backlog=100, *args):
        if sslcontext is not None:
            raise _tls_error("create_server")
        accepting = self._accepting
        core = accepting.get(sock.fileno())
        if core is None:
            core = AcceptCore(self, sock, protocol_factory, server, backlog)
            accepting[sock.fileno()] = core
        core.start()

    def _stop_serving(self, sock) -> None:
        path = None
        unix_sockets = self._unix_server_sockets
        if sock in unix_sockets:
            try:
                path = sock.getsockname()
            except OSError:
                path = None
        core = self._accepting.pop(sock.fileno(), None)
        if core is not None:
            core.stop()
        sock.close()
        if sock in unix_sockets:
            prev_ino = unix_sockets.pop(sock)
            if path:
                try:
                    unlink_unix_socket(path, prev_ino)
                except OSError as err:
                    logger.error("Unable to clean up listening UNIX socket %r: %r",
                                 path, err)

    # Per-loop dicts, made on first use (the public classes' constructors
    # belong to the compiled core).

    def _lazy_dict(self, key: str, factory: Callable[[], Any] = dict) -> Any:
        try:
            return self.__dict__[key]
        except KeyError:
            return self.__dict__.setdefault(key, factory())

    @property
    def _accepting(self) -> dict:
        """fd of a listening socket -> its AcceptCore."""
        return self._lazy_dict("_accepting_cores")

    @property
    def _unix_server_sockets(self) -> weakref.WeakKeyDictionary:
        """Listening Unix socket -> inode of its file (removed on close).
        Weak: the Server owns its sockets, the loop does not keep them."""
        return self._lazy_dict("_unix_sockets", weakref.WeakKeyDictionary)
