"""The completion-based core: CoreLoop over the io_uring driver, with the
sock_* methods as ring operations.

Everything else (callbacks, timers, thread wake-up, executor, DNS, signals,
add_reader/add_writer through POLL_ADD, sock_sendfile through os.sendfile on
readiness, which is already zero-copy) is the shared core, unchanged.
"""

import asyncio
import errno
import socket

from ringloop.core.loop cimport CoreLoop, sock_family, sock_type, sock_proto
from ringloop.includes.net cimport AF_INET, AF_INET6, SOCK_STREAM
from ringloop.drivers.uring cimport UringDriver, UringOp
from ringloop.core.loop import _literal_address

cdef object sock_socket = socket.socket


cdef int _family_of(sock) except -1:
    # The address family for building a sockaddr.  sock.family normally; a
    # socket-like object (a mock, a wrapper) may not carry a real one, so
    # fall back to asking the kernel about its fd.
    family = sock.family
    if isinstance(family, int):
        return family
    probe = sock_socket(fileno=sock.fileno())
    try:
        return probe.family
    finally:
        probe.detach()


def _same_peer(sock, address):
    try:
        peer = sock.getpeername()
    except OSError:
        return False
    if isinstance(address, tuple) and isinstance(peer, tuple):
        return peer[:2] == tuple(address[:2])
    return peer == address


cdef inline bint _has_result(object fut) except -1:
    # The future completed with a result (not cancelled, no exception).
    return fut.done() and not fut.cancelled() and fut.exception() is None


cdef Py_ssize_t _nbytes(object buf):
    # buf's size in bytes; -1 for what is no buffer (the ring op then
    # raises asyncio's error for it).
    try:
        with memoryview(buf) as m:
            return m.nbytes
    except TypeError:
        return -1


cdef bytes _head(object buf, Py_ssize_t n):
    # The first n bytes a receive wrote into buf, as bytes.
    with memoryview(buf) as m, m.cast('B') as b:
        return bytes(b[:n])


cdef class ProactorCore(CoreLoop):
    """CoreLoop whose driver is io_uring; sock_* submit ring operations."""

    def __init__(self, *, entries=256, cq_entries=1024):
        # Raises UringUnavailable (an OSError naming the cause and pointing
        # to SelectorEventLoop) where io_uring cannot run.
        drv = UringDriver(entries=entries, cq_entries=cq_entries)
        # Our sock_* coroutines own their futures and cancel their ops when
        # cancelled (see _cancel_op), so ops need not watch the futures.
        drv.caller_cancels = True
        self.uring = drv
        CoreLoop.__init__(self, driver=drv)
        self.sock_waits = {}

    def close(self):
        """Close: cancel the ring operations in flight and wait for their
        final completions, then close the loop and unmap the ring."""
        if self.thread_id is not None or self.closed or self.uring is None:
            CoreLoop.close(self)   # raises / returns as asyncio does
            return
        # First, while the loop still accepts callbacks: in-flight ops are
        # cancelled and their futures finished.
        self.uring.close()
        CoreLoop.close(self)

    # Each sock_* method awaits its private future; if the coroutine is
    # cancelled (or closed) while waiting, it cancels the kernel request: the
    # op keeps its buffers until the kernel is done, and what it brings late
    # goes to the fd's stash for the next operation.
    cdef int _cancel_op(self, op) except -1:
        if op is not None:
            self.uring.op_cancel(<UringOp>op)
        return 0

    cdef bint _taken(self, object sock, int fd, object fut) except -1:
        # The ring op completed and its future holds the result, but the
        # task awaiting it was cancelled (or interrupted) before it resumed:
        # the result must not be lost.  Only while the socket still owns the
        # fd (a closed socket's number may belong to another one by now).
        return _has_result(fut) and sock.fileno() == fd

    cpdef object _take_received(self, int fd):
        # What cancelled receives took on this socket (still the socket
        # that had the fd then: the driver checks), for its new transport.
        if self.uring is None or not self.uring.recv_stash:
            return None
        return self.uring.take_recv_stash_items(fd)

    cdef int _check_sock_free(self, object sock) except -1:
        # The selector loop (as asyncio's) refuses a transport's socket when
        # a sock_* call has to wait; a ring operation always may, so the
        # proactor refuses it at once: a sock_recv must not take the bytes
        # the transport's protocol is waiting for.
        self._check_sock(sock)
        self._ensure_fd_no_transport(sock.fileno())
        return 0

    cdef bint _ring_socket(self, object sock, str method):
        # Ring operations work on the fd: right for socket.socket and for
        # subclasses that keep its I/O method.  Anything else (a subclass
        # overriding recv/send..., a socket-like object, a non-socket) takes
        # the readiness path, which calls the object's own method as
        # asyncio does (and fails as asyncio does).
        cdef type t = type(sock)
        if t is not sock_socket:
            if not isinstance(sock, sock_socket):
                return False
            if getattr(t, method, None) is not getattr(sock_socket, method):
                return False
        # Receives are ring operations on stream sockets only: a datagram a
        # ring receive took for a call cancelled meanwhile could be truncated
        # (the caller's buffer size) and could not go back to the kernel; the
        # readiness path takes nothing before it is wanted.
        return sock_type(sock) == SOCK_STREAM or not method.startswith('recv')

    cdef object _op_future(self):
        self._check_closed()
        return self._new_future()

    async def sock_recv(self, sock, n):
        """Receive up to n bytes (an io_uring RECV)."""
        if not self._ring_socket(sock, 'recv'):
            return await CoreLoop.sock_recv(self, sock, n)
        self._check_sock_free(sock)
        fd = sock.fileno()
        if n == 0 and not self.uring.has_stash(fd):
            # A ring RECV of 0 bytes waits for data; recv(0) on a stream
            # socket returns at once, as in asyncio.
            try:
                return sock.recv(0)
            except (BlockingIOError, InterruptedError):
                pass
        fut = self._op_future()
        op = self.uring.op_recv(fd, n, fut)
        self.uring.set_owner(op, sock)
        try:
            return await fut
        except BaseException:
            if self._taken(sock, fd, fut):
                self.uring.restore_recv(fd, fut.result(), None)
            else:
                self._cancel_op(op)
            raise

    async def sock_recv_into(self, sock, buf):
        """Receive into buf; return the number of bytes received."""
        if not self._ring_socket(sock, 'recv_into'):
            return await CoreLoop.sock_recv_into(self, sock, buf)
        self._check_sock_free(sock)
        fd = sock.fileno()
        if _nbytes(buf) == 0 and not self.uring.has_stash(fd):
            try:
                return sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                pass
        fut = self._op_future()
        op = self.uring.op_recv_into(fd, buf, 0, fut)
        self.uring.set_owner(op, sock)
        try:
            return await fut
        except BaseException:
            if self._taken(sock, fd, fut):
                self.uring.restore_recv(fd, _head(buf, fut.result()), None)
            else:
                self._cancel_op(op)
            raise

    async def sock_recvfrom(self, sock, bufsize):
        """Receive a datagram of up to bufsize bytes: (data, address)."""
        if not self._ring_socket(sock, 'recvfrom'):
            return await CoreLoop.sock_recvfrom(self, sock, bufsize)
        self._check_sock_free(sock)
        fd = sock.fileno()
        fut = self._op_future()
        op = self.uring.op_recvfrom(fd, bufsize, fut)
        self.uring.set_owner(op, sock)
        try:
            return await fut
        except BaseException:
            if self._taken(sock, fd, fut):
                data, address = fut.result()
                self.uring.restore_recv(fd, data, address)
            else:
                self._cancel_op(op)
            raise

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        """Receive a datagram into buf: (nbytes, address)."""
        if not self._ring_socket(sock, 'recvfrom_into'):
            return await CoreLoop.sock_recvfrom_into(self, sock, buf, nbytes)
        self._check_sock_free(sock)
        fd = sock.fileno()
        fut = self._op_future()
        op = self.uring.op_recvfrom_into(fd, buf, nbytes, fut)
        self.uring.set_owner(op, sock)
        try:
            return await fut
        except BaseException:
            if self._taken(sock, fd, fut):
                got, address = fut.result()
                self.uring.restore_recv(fd, _head(buf, got), address)
            else:
                self._cancel_op(op)
            raise

    async def sock_sendall(self, sock, data):
        """Send all of data (SEND ops, resubmitted for the remainder)."""
        if not self._ring_socket(sock, 'send'):
            return await CoreLoop.sock_sendall(self, sock, data)
        self._check_sock_free(sock)
        if not len(data):
            # Nothing to send, but the socket's state still speaks, as in
            # asyncio (an unconnected socket: BrokenPipeError).
            try:
                sock.send(data)
            except (BlockingIOError, InterruptedError):
                pass
            return
        fut = self._op_future()
        op = self.uring.op_sendall(sock.fileno(), data, fut)
        self.uring.set_owner(op, sock)
        try:
            return await fut
        except BaseException:
            self._cancel_op(op)
            raise

    async def sock_sendto(self, sock, data, address):
        """Send a datagram to address; return the number of bytes sent."""
        if not self._ring_socket(sock, 'sendto'):
            return await CoreLoop.sock_sendto(self, sock, data, address)
        self._check_sock_free(sock)
        fut = self._op_future()
        op = self.uring.op_sendto(sock.fileno(), data, _family_of(sock), address, fut)
        self.uring.set_owner(op, sock)
        try:
            return await fut
        except BaseException:
            self._cancel_op(op)
            raise

    async def sock_connect(self, sock, address):
        """Connect sock to address (resolved first for IP families)."""
        if not self._ring_socket(sock, 'connect'):
            return await CoreLoop.sock_connect(self, sock, address)
        self._check_sock_free(sock)
        # (a socket.socket here: ints, without socket.py's enum conversions)
        family = sock_family(sock)
        if family == AF_INET or (socket.has_ipv6 and family == AF_INET6):
            # An IP literal at once (no coroutine), else by getaddrinfo.
            stype = sock_type(sock)
            proto = sock_proto(sock)
            literal = _literal_address(address, family, stype, proto)
            address = (literal if literal is not None else
                       await self._resolve_first(address, family, stype, proto))
        fut = self._op_future()
        op = self.uring.op_connect(sock.fileno(), family, address, fut)
        self.uring.set_owner(op, sock)
        try:
            return await fut
        except OSError as exc:
            # A connect cancelled earlier may still have completed in the
            # kernel: EISCONN then means "connected", as in the non-blocking
            # connect() protocol, if the peer is the address asked for.
            if exc.errno == errno.EISCONN and _same_peer(sock, address):
                return None
            self._cancel_op(op)   # in flight still if the socket was closed
            raise
        except BaseException:
            self._cancel_op(op)
            raise

    async def sock_accept(self, sock):
        """Accept a connection: (conn, address), conn non-blocking.

        Waits for the listener's readiness (a POLL_ADD) and accepts with
        accept(2), as the selector kind does, not with a ring ACCEPT: an
        accept cancelled (a timeout, a task cancelled, a listener closed
        meanwhile) then takes nothing, and a connection it did not get
        stays in the kernel's queue for the next accept, as on asyncio.  (A
        ring ACCEPT that completes in the same instant as its cancellation
        has taken the connection already, and no one may be left to give it
        to.)  Accepting is not on a hot path."""
        if not self._ring_socket(sock, 'accept'):
            return await CoreLoop.sock_accept(self, sock)
        self._check_sock_free(sock)
        fut = self._new_future()
        self._sock_accept(fut, sock)
        if fut.done():
            return fut.result()
        # Waiting on a POLL_ADD, which holds the listener's file: watched
        # for a close meanwhile, as the ring operations are.
        self.sock_waits[fut] = sock
        try:
            return await fut
        finally:
            self.sock_waits.pop(fut, None)
