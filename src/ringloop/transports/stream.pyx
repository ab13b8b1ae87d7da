"""Stream transports (TCP and Unix sockets) and the servers' accept loop.

One implementation for every driver: a transport asks the loop to call it
when its fd is readable or writable (an IOHandle in the fd's watch, so the
events run in the loop's ready queue exactly where asyncio runs its
transports' callbacks), then reads and writes with recv/send/sendmsg itself.

The public transport is ``StreamTransport``, a Python class deriving from
asyncio's transport classes (isinstance works, and asyncio's sendfile
fallback accepts it); its hot methods ``write``, ``writelines`` and
``is_closing`` are method descriptors of the class built on C functions
(CPython's specialized method calls run them with no lookup beyond the
type's), so a protocol's ``transport.write(data)`` goes straight into C.

What it does as asyncio's _SelectorSocketTransport does: callback order
(connection_made, then reading, then the waiter), eager writes, flow control
with asyncio's limits and messages, EOF and half-close, fatal errors.
Deliberately different (docs/compatibility.md): TCP_NODELAY is set on every
TCP stream socket, including user sockets created with proto=0; bytearray
and memoryview data is copied when it has to be buffered (asyncio 3.12+
keeps a reference, so a caller reusing its buffer changes queued data).
"""

import _socket
import asyncio
import os
import socket
import stat
import sys
import warnings

from asyncio import constants as aio_constants
from asyncio import format_helpers as aio_format_helpers
from asyncio import futures as aio_futures
from asyncio import protocols as aio_protocols
from asyncio import trsock as aio_trsock
from asyncio import transports as aio_transports
from asyncio.log import logger as aio_logger

from ringloop import _stdlib_streams

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.ref cimport PyObject, Py_REFCNT, Py_INCREF, Py_DECREF
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.mem cimport PyMem_RawMalloc, PyMem_RawRealloc
from libc.string cimport memset, memcpy

cdef extern from "Python.h":
    object PyContext_CopyCurrent()
    int PyContext_Enter(object ctx) except -1
    int PyContext_Exit(object ctx) except -1
    void PyObject_GC_UnTrack(object o)

cdef extern from "ringloop_bytes.h":
    void rl_bytes_refill(object b, const char *src, Py_ssize_t n)
    void rl_bytes_set_size(object b, Py_ssize_t n)
    PyObject *rl_bytes_resized(PyObject *b, Py_ssize_t n) except NULL

cdef extern from "ringloop_call.h":
    object rl_call_method1(object obj, object name, object arg)
    # The same call, its result unchecked by Cython: NULL with the error
    # set, for a caller that sorts the error itself.
    PyObject *rl_call_method1_raw "rl_call_method1" (object obj, object name, object arg)
    void rl_decref "Py_DECREF" (PyObject *o)
    int rl_method_is(object obj, object name, object func) except -1
    PyObject *rl_type_attr(object obj, object name)
    bint rl_plain_getattr(object obj)
    bint rl_code_is(object func, object code)
    bint rl_tracing()
    bint PyWeakref_CheckRefExact(object o)

cdef extern from "Python.h":
    bint PyByteArray_CheckExact(object o)
    int PyByteArray_Resize(object ba, Py_ssize_t n) except -1
    char *PyByteArray_AS_STRING(object ba)
    Py_ssize_t PyByteArray_GET_SIZE(object ba)
    bint PyLong_CheckExact(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1

# |limit| up to which 2 * limit is computed in C (no overflow).
cdef long long LIMIT_C = 1LL << 61

cdef extern from *:
    """
    /* Always "failed": Cython then takes the exception already set. */
    static inline int rl_reraise_set(void) { return -1; }
    """
    int rl_reraise_set() except -1

from ringloop.core.handles cimport IOTarget, IOHandle, new_io_handle
from ringloop.core.loop cimport CoreLoop, is_socket, sock_family, sock_type, sock_proto
from ringloop.includes.system cimport read as c_read, write as c_write
from ringloop.includes.net cimport (
    iovec, msghdr, send, recv, sendmsg, writev, setsockopt, shutdown,
    MSG_NOSIGNAL, SHUT_WR, IPPROTO_TCP, TCP_NODELAY, errno, EINTR, EAGAIN, EIO,
    EWOULDBLOCK, IOV_MAX, ECONNABORTED, socklen_t, AF_INET, AF_INET6, SOCK_STREAM,
)
from cpython.exc cimport PyErr_CheckSignals
from posix.stat cimport struct_stat, stat as c_stat, S_ISSOCK as c_S_ISSOCK
from posix.unistd cimport unlink as c_unlink
from ringloop.includes.system cimport ENOENT

cdef extern from "<sys/socket.h>":
    struct sockaddr_storage:
        unsigned short ss_family

cdef extern from "ringloop_sockaddr.h":
    const int RL_HAVE_ACCEPT4
    object rl_inet_name(int fd, int peer)
    object rl_inet_address(const void *addr, socklen_t len)
    int rl_accept_cloexec(int fd, sockaddr_storage *ss, socklen_t *len)

cdef object aio_set_result_unless_cancelled = aio_futures._set_result_unless_cancelled
cdef object aio_extract_stack = aio_format_helpers.extract_stack
cdef object aio_BufferedProtocol = aio_protocols.BufferedProtocol
cdef object aio_TransportSocket = aio_trsock.TransportSocket
cdef object aio_SendfileMode = aio_constants._SendfileMode
cdef object py_socket = socket.socket
cdef object py_socket_accept = socket.socket.accept
cdef object py_socket_raw_accept = _socket.socket._accept
cdef object py_socket_getsockname = _socket.socket.getsockname
cdef object py_socket_getpeername = _socket.socket.getpeername
cdef Py_ssize_t LOG_THRESHOLD_FOR_CONNLOST_WRITES = aio_constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES
cdef bint PY312 = sys.version_info >= (3, 12)
cdef bint PY313 = sys.version_info >= (3, 13)

# asyncio's StreamReaderProtocol.data_received() and what it calls, when
# they are the code _feed_stream_reader() mirrors (ringloop/_stdlib_streams.py).
cdef object SRP_TYPE = None, SR_TYPE = None
cdef object SRP_DATA_RECEIVED = None, SRP_STREAM_READER = None
cdef object SR_FEED_DATA = None, SR_WAKEUP_WAITER = None
cdef bint SR_ASSERTS = True
# Their code objects: assigning a function's __code__ (IPython's autoreload,
# jurigged) keeps the function object and changes what it runs.
cdef object SRP_STREAM_READER_FGET = None
cdef object SRP_DATA_RECEIVED_CODE = None, SRP_STREAM_READER_CODE = None
cdef object SR_FEED_DATA_CODE = None, SR_WAKEUP_WAITER_CODE = None
_stdlib = _stdlib_streams.stdlib_stream_functions()
if _stdlib is not None:
    SRP_TYPE = _stdlib.protocol_type
    SR_TYPE = _stdlib.reader_type
    SRP_DATA_RECEIVED = _stdlib.data_received
    SRP_STREAM_READER = _stdlib.stream_reader
    SR_FEED_DATA = _stdlib.feed_data
    SR_WAKEUP_WAITER = _stdlib.wakeup_waiter
    SR_ASSERTS = _stdlib.asserts
    SRP_STREAM_READER_FGET = SRP_STREAM_READER.fget
    SRP_DATA_RECEIVED_CODE = SRP_DATA_RECEIVED.__code__
    SRP_STREAM_READER_CODE = SRP_STREAM_READER_FGET.__code__
    SR_FEED_DATA_CODE = SR_FEED_DATA.__code__
    SR_WAKEUP_WAITER_CODE = SR_WAKEUP_WAITER.__code__
del _stdlib


cdef inline bint _stdlib_code_unchanged():
    return (rl_code_is(SRP_DATA_RECEIVED, SRP_DATA_RECEIVED_CODE)
            and rl_code_is(SRP_STREAM_READER_FGET, SRP_STREAM_READER_CODE)
            and rl_code_is(SR_FEED_DATA, SR_FEED_DATA_CODE)
            and rl_code_is(SR_WAKEUP_WAITER, SR_WAKEUP_WAITER_CODE))

cdef tuple _IO_METHODS = ('recv', 'recv_into', 'send', 'sendmsg')
cdef tuple _py_socket_io = tuple([getattr(socket.socket, name, None) for name in _IO_METHODS])


cdef bint _overrides_io(object sock) except -1:
    # A socket.socket subclass with its own recv/recv_into/send/sendmsg:
    # asyncio's transports call those methods, so ringloop's do too.
    cdef Py_ssize_t i
    t = type(sock)
    if t is py_socket or not is_socket(sock):
        return False
    for i in range(len(_IO_METHODS)):
        if getattr(t, _IO_METHODS[i], None) is not _py_socket_io[i]:
            return True
    return False


# The sockets are non-blocking: send/recv/sendmsg are called with the GIL
# held (releasing it would cost more than the call).
# Reads go into one buffer per loop (the data is copied into the bytes
# handed to data_received), as large as asyncio's per-read buffer; a socket
# whose reads come in large goes straight into the bytes instead.
# Just below glibc's default mmap threshold (128 KiB, the bytes object's
# header included), so that no read's bytes object is mmap()ed: freeing one
# raises the threshold and the heap's trim threshold with it.
cdef Py_ssize_t READ_SIZE = 128 * 1024 - 256
# iovecs per sendmsg(): IOV_MAX, but never a large stack array.
cdef enum:
    MAX_IOV = 64
    # Reads per readable event while the writer keeps the buffer full (and
    # flushes per writable event while a pipe's reader drains it), and what
    # "full" is for a pipe (Linux's default pipe capacity).
    MAX_IO_PER_EVENT = 8
    PIPE_FULL = 65536
    # A socket read of LARGE_READ bytes or more: the next reads go straight
    # into the bytes object data_received() gets, until one brings less
    # than LARGE_READ_END.
    LARGE_READ = 32768
    LARGE_READ_END = 16384
    # A protocol that pauses reading in data_received() of a read that
    # filled the buffer (asyncpg's, with a slow consumer) gets one read per
    # resume: those reads are as large as asyncio's (its max_size), until
    # one brings less than READ_SIZE.  With reads half that size, asyncpg's
    # copy to a slow sink made twice the sink calls, and took twice as long.
    PAUSED_READ_SIZE = 256 * 1024


cdef Py_ssize_t _nbytes(object data) except -1:
    # The size in bytes of a buffer (a memoryview's len() counts items).
    cdef Py_buffer view
    cdef Py_ssize_t n
    if type(data) is bytes:
        return PyBytes_GET_SIZE(data)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    n = view.len
    PyBuffer_Release(&view)
    return n


cdef inline bint _again(int err) noexcept:
    # Try later: EAGAIN (EWOULDBLOCK, the same value where it is not) or EINTR.
    if err == EAGAIN or err == EINTR:
        return True
    return err == EWOULDBLOCK


cdef object _os_error(int err):
    # OSError picks the subclass (ConnectionResetError, BrokenPipeError...).
    import os
    return OSError(err, os.strerror(err))


cdef int set_nodelay(int fd) except -1:
    # TCP_NODELAY on a TCP stream socket, whatever proto it was made with.
    cdef int one = 1
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
    return 0


# asyncio's TransportSocket(sock) is an object with one slot, _sock, that
# its __init__ sets (3.11-3.13): made here without running that Python
# frame, while __init__ is still only that (else the class is called).
cdef object _object_new = object.__new__
cdef object _ts_set_sock = None
try:
    if (aio_TransportSocket.__slots__ == ('_sock',)
            and aio_TransportSocket.__init__.__code__.co_names == ('_sock',)):
        _ts_set_sock = aio_TransportSocket._sock.__set__
except AttributeError:
    pass


cdef object new_transport_socket(object sock):
    if _ts_set_sock is None:
        return aio_TransportSocket(sock)
    ts = _object_new(aio_TransportSocket)
    _ts_set_sock(ts, sock)
    return ts


cdef class StreamCore(IOTarget):

    def __cinit__(self):
        self.wbuf = []
        self.high_water = self.high_given = 64 * 1024
        self.low_water = self.low_given = 16 * 1024

    # ------------------------------------------------------------------
    # protocol

    cdef int _set_protocol(self, protocol) except -1:
        self.protocol = protocol
        self.protocol_connected = True
        if self.pipe_writer:
            return 0        # a write pipe never reads into its protocol
        # As in asyncio, the protocol's methods are looked up at every call,
        # not bound here: a protocol may rebind data_received (a state
        # machine) on the instance or its class.  Any object is accepted
        # and fails only when called (the same AttributeError, then).
        self.buffered = isinstance(protocol, aio_BufferedProtocol)
        self.stream_reader = (SRP_TYPE is not None and type(protocol) is SRP_TYPE
                              and not self.pipe)
        return 0

    cdef int _feed_stream_reader(self, const char *buf, Py_ssize_t n) except -1:
        # A read of n bytes (at buf, the loop's read buffer) for asyncio's
        # StreamReaderProtocol: 1 when it was handed over here, 0 when the
        # caller is to make the bytes and call data_received() as for any
        # protocol.
        #
        # What StreamReaderProtocol.data_received(data) and the reader's
        # feed_data(data) and _wakeup_waiter() do, step for step and through
        # the same attributes, with the bytes appended to the reader's
        # buffer straight from ours (ringloop/_stdlib_streams.py says when).
        # Until the bytes are out of the loop's buffer nothing here may run
        # Python code of the program's (a __getattribute__, a callable in
        # place of the weakref, an _eof with __bool__...): where something
        # could, it declines, before any step with an effect, and the
        # ordinary call does it all as asyncio does.  (rbuf_lent: a read
        # nested in that window anyway waits; see on_readable.)  A failure
        # is the one data_received() would have raised, sorted as its are.
        cdef CoreLoop loop = self.loop
        proto = self.protocol
        if (loop.debug or rl_tracing() or type(proto) is not SRP_TYPE
                or not rl_plain_getattr(proto) or not _stdlib_code_unchanged()):
            return 0
        loop.rbuf_lent = True
        try:
            return self._feed_stream_reader_steps(proto, buf, n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.data_received() call failed.')
            return 1
        finally:
            loop.rbuf_lent = False

    cdef int _feed_stream_reader_steps(self, proto, const char *buf, Py_ssize_t n) except -1:
        cdef Py_ssize_t size
        cdef long long limit = 0
        cdef int overflow = 0
        cdef bint over, in_c
        # data_received(data): the method is asyncio's, on the class and
        # the instance (a failed lookup is the error the call would raise).
        if not rl_method_is(proto, 'data_received', SRP_DATA_RECEIVED):
            return 0
        #   reader = self._stream_reader   (the property, unshadowable)
        if rl_type_attr(proto, '_stream_reader') != <PyObject *>SRP_STREAM_READER:
            return 0
        wr = proto._stream_reader_wr
        if wr is None:
            return 1
        if not PyWeakref_CheckRefExact(wr):
            return 0
        reader = wr()
        #   if reader is not None: reader.feed_data(data)
        if reader is None:
            return 1
        if (type(reader) is not SR_TYPE or not rl_plain_getattr(reader)
                or not rl_method_is(reader, 'feed_data', SR_FEED_DATA)
                or not rl_method_is(reader, '_wakeup_waiter', SR_WAKEUP_WAITER)):
            return 0
        # feed_data(data):
        #   assert not self._eof, 'feed_data after feed_eof'
        if SR_ASSERTS:
            eof = reader._eof
            if eof is not True and eof is not False:
                return 0
            if eof:
                raise AssertionError('feed_data after feed_eof')
        #   self._buffer.extend(data)
        buffer = reader._buffer
        if not PyByteArray_CheckExact(buffer):
            return 0
        size = PyByteArray_GET_SIZE(buffer)
        PyByteArray_Resize(buffer, size + n)
        memcpy(PyByteArray_AS_STRING(buffer) + size, buf, n)
        self.loop.rbuf_lent = False      # from here Python code may read on
        #   self._wakeup_waiter()
        waiter = reader._waiter
        if waiter is not None:
            reader._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)
        #   if (self._transport is not None and not self._paused and
        #           len(self._buffer) > 2 * self._limit): pause, as asyncio
        transport = reader._transport
        if transport is not None and not reader._paused:
            size = len(reader._buffer)
            limit_obj = reader._limit
            in_c = False
            if PyLong_CheckExact(limit_obj):
                limit = PyLong_AsLongLongAndOverflow(limit_obj, &overflow)
                in_c = overflow == 0 and -LIMIT_C <= limit <= LIMIT_C
            if in_c:
                over = size > 2 * limit
            else:
                over = size > 2 * limit_obj
            if over:
                try:
                    reader._transport.pause_reading()
                except NotImplementedError:
                    reader._transport = None
                else:
                    reader._paused = True
        return 1

    # ------------------------------------------------------------------
    # the system calls: sockets use recv/send/sendmsg (MSG_NOSIGNAL), pipe
    # transports read/write/writev (any fd asyncio accepts as a pipe).
    # They return what the system call does (-1 and errno on failure).  A
    # socket whose class overrides recv/recv_into/send/sendmsg (py_io) has
    # those methods called instead, as asyncio's transports call them.

    cdef inline Py_ssize_t _recv(self, void *buf, Py_ssize_t n) except? -2:
        if self.pipe:
            return c_read(self.fd, buf, n)
        if self.py_io:
            return self._py_recv(buf, n)
        return recv(self.fd, buf, n, 0)

    cdef inline Py_ssize_t _send(self, const void *buf, Py_ssize_t n) except? -2:
        if self.pipe:
            return c_write(self.fd, buf, n)
        if self.py_io:
            return self._py_send(buf, n)
        return send(self.fd, buf, n, MSG_NOSIGNAL)

    cdef inline Py_ssize_t _sendv(self, iovec *iov, Py_ssize_t k) except? -2:
        cdef msghdr msg
        if self.pipe:
            return writev(self.fd, iov, <int>k)
        if self.py_io:
            return self._py_sendv(iov, k)
        memset(&msg, 0, sizeof(msg))
        msg.msg_iov = iov
        msg.msg_iovlen = k
        return sendmsg(self.fd, &msg, MSG_NOSIGNAL)

    # (the py_io calls, kept out of the inline functions above so that the
    # system-call path stays small enough to inline)

    cdef Py_ssize_t _py_recv(self, void *buf, Py_ssize_t n) except? -2:
        # The socket's own recv() is the program's Python code: a read it
        # makes on the loop's transports must not reuse (or grow, freeing
        # it) the buffer its result is copied into.
        cdef CoreLoop loop = self.loop
        cdef bint lent = loop.rbuf_lent
        loop.rbuf_lent = True
        try:
            return self._py_call(self.sock.recv, n, buf, n)
        finally:
            loop.rbuf_lent = lent

    cdef Py_ssize_t _py_send(self, const void *buf, Py_ssize_t n) except? -2:
        return self._py_call(self.sock.send,
                             PyBytes_FromStringAndSize(<const char *>buf, n), NULL, n)

    cdef Py_ssize_t _py_sendv(self, iovec *iov, Py_ssize_t k) except? -2:
        # asyncio 3.12+ sends its buffers with sendmsg(), 3.11 joins them
        # for send().
        cdef Py_ssize_t i
        chunks = [PyBytes_FromStringAndSize(<const char *>iov[i].iov_base,
                                            <Py_ssize_t>iov[i].iov_len)
                  for i in range(k)]
        if PY312:
            return self._py_call(self.sock.sendmsg, chunks, NULL, 0)
        return self._py_call(self.sock.send, b''.join(chunks), NULL, 0)

    cdef Py_ssize_t _py_call(self, method, arg, void *into, Py_ssize_t n) except? -2:
        # method(arg) for a py_io socket, with a system call's result: the
        # count (a recv's bytes copied to `into`, at most n), or -1 with
        # errno EAGAIN for what asyncio takes as "try later"
        # (BlockingIOError, InterruptedError) and EIO for any other
        # exception, kept in py_exc to be reported as it is.
        global errno
        cdef Py_ssize_t count
        try:
            result = method(arg)
            if into != NULL:
                data = result if type(result) is bytes else bytes(result)
                count = PyBytes_GET_SIZE(data)
                if count > n:
                    raise ValueError(f'recv() returned {count} bytes, more than the {n} asked for')
                memcpy(into, PyBytes_AS_STRING(data), count)
                return count
            return result
        except (BlockingIOError, InterruptedError):
            errno = EAGAIN
            return -1
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.py_exc = exc
            errno = EIO
            return -1

    cdef object _io_error(self, int err):
        # The exception for a failed _recv/_send/_sendv: the one a py_io
        # method raised, else an OSError from errno.
        exc = self.py_exc
        if exc is not None:
            self.py_exc = None
            return exc
        return _os_error(err)

    cdef str _what(self):
        return 'pipe' if self.pipe else 'socket'

    # ------------------------------------------------------------------
    # reading

    cdef int _start_reading(self) except -1:
        cdef IOHandle h
        if self.closing or self.paused or self.loop.closed:
            return 0
        h = new_io_handle(self.loop, self, False, self.context)
        if self.loop.debug:
            h.source_traceback = aio_extract_stack()
        self.loop._io_start(self.fd, self.fd, h, False)   # may refuse the fd
        self.rh = h
        return 0

    cdef int _stop_reading(self) except -1:
        self.rh = None
        return self.loop._io_stop(self.fd, False)

    cdef int _start_writing(self) except -1:
        cdef IOHandle h
        h = new_io_handle(self.loop, self, True, self.context)
        if self.loop.debug:
            h.source_traceback = aio_extract_stack()
        self.loop._io_start(self.fd, self.fd, h, True)
        self.wh = h
        return 0

    cdef int _stop_writing(self) except -1:
        self.wh = None
        return self.loop._io_stop(self.fd, True)

    cdef int _drop_queue(self) except -1:
        self.wbuf.clear()
        self.whead = self.woff = self.wsize = 0
        return self._stop_writing()

    cdef int _write_after_lost(self) except -1:
        # As asyncio: writes after the connection is lost are dropped, with
        # a warning once there have been a few.
        # (asyncio's pipes do not count the close itself, as conn_lost does)
        if self.conn_lost - self.pipe >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            if self.pipe:
                aio_logger.warning('pipe closed by peer or os.write(pipe, data) raised exception.')
            else:
                aio_logger.warning('socket.send() raised exception.')
        self.conn_lost += 1
        return 0

    cdef int _detach_server(self, transport) except -1:
        server = self.server
        if server is not None:
            self.server = None
            if PY313:
                server._detach(transport)
            else:
                server._detach()
        return 0

    def _add_reader_cb(self):
        # Scheduled right after connection_made, as asyncio does.
        if self.held is not None:
            self._deliver_held()
        self._start_reading()

    def _deliver_held(self):
        # Bytes taken from the socket's kernel queue before it became this
        # transport's (on ProactorEventLoop, what a cancelled sock_recv had
        # already received): the protocol gets them first, as it would have
        # from the kernel; not while reading is paused.
        if self.held is None or self.paused or self.closing or self.conn_lost:
            return
        data = self.held
        self.held = None
        n = 0
        try:
            if self.buffered:
                view = memoryview(data)
                while view:
                    buf = rl_call_method1(self.protocol, 'get_buffer', len(view))
                    with memoryview(buf) as m, m.cast('B') as b:
                        n = min(len(b), len(view))
                        if n == 0:
                            raise RuntimeError('get_buffer() returned an empty buffer')
                        b[:n] = view[:n]
                    rl_call_method1(self.protocol, 'buffer_updated', n)
                    view = view[n:]
                    if self.closing or self.paused:
                        if view:
                            self.held = bytes(view)
                        return
            else:
                rl_call_method1(self.protocol, 'data_received', data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.data_received() call failed.')

    cdef int _data_received_failed(self) except -1:
        # protocol.data_received() raised (the exception is set): as asyncio,
        # SystemExit and KeyboardInterrupt propagate, anything else is the
        # transport's fatal error.
        try:
            rl_reraise_set()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.data_received() call failed.')
        return 0

    cdef int on_readable(self) except -1:
        cdef CoreLoop loop = self.loop
        cdef PyObject *res
        cdef Py_ssize_t n, spare_cap, size
        cdef char *resized_buf
        cdef int reads = 0, err
        cdef bint fed = False
        cdef Py_ssize_t queued
        cdef PyObject *resized
        if self.conn_lost:
            return 0
        if self.pipe_writer:
            # A write pipe watches its fd for reading only to learn that the
            # reader went away (asyncio's "reader trick").
            if loop.debug:
                aio_logger.info("%r was closed by peer", self.transport)
            return self._force_close(BrokenPipeError() if self.wsize else None)
        if self.buffered:
            return self._read_buffered()
        if loop.rbuf_lent:
            # Called (a transport's _read_ready()) by Python code run while
            # another read's bytes wait in the loop's buffer: reading now
            # would overwrite them.  The data stays in the kernel and is
            # read when the loop sees the fd ready.
            return 0
        if loop.rbuf == NULL:
            loop.rbuf = <char *>PyMem_RawMalloc(READ_SIZE)
            if loop.rbuf == NULL:
                raise MemoryError()
            loop.rbuf_size = READ_SIZE
        while True:
            size = PAUSED_READ_SIZE if self.paused_reads else READ_SIZE
            fed = False
            if self.large_reads:
                # Large reads: the copy out of the loop's buffer would cost
                # more than the allocation it saves (at 100 KiB, ~15% of
                # the server's CPU), so the kernel writes straight into the
                # bytes object: the spare, grown back to the buffer's size
                # if it was cut (a realloc, in place when the tail it gave
                # back is still free: a new allocation each time made the
                # C library grow and trim its heap, a brk() per read), else
                # a new one.
                if loop.spare_bytes is not None and loop.spare_cap >= LARGE_READ_END:
                    if loop.spare_cap == size:
                        data = loop.spare_bytes
                        loop.spare_bytes = None
                    else:
                        resized = <PyObject *>loop.spare_bytes
                        Py_INCREF(loop.spare_bytes)   # handed over
                        loop.spare_bytes = None
                        resized = rl_bytes_resized(resized, size)
                        data = <object>resized
                        Py_DECREF(data)               # (the reference handed back)
                else:
                    data = PyBytes_FromStringAndSize(NULL, size)
                n = self._recv(PyBytes_AS_STRING(data), size)
                if n <= 0:
                    err = errno
                    loop.spare_bytes = data
                    loop.spare_cap = size
                    return self._read_failed(n, err)
                reads += 1
                # Then cut to what came, so that a protocol keeping it
                # wastes at most 1/8: in place, or shrunk by a realloc (no
                # copy either), or, for a small read, copied out as usual
                # (the large object stays the spare) and this mode ends.
                if n >= size - (size >> 3):
                    rl_bytes_set_size(data, n)
                    spare_cap = size
                elif n >= LARGE_READ_END:
                    resized = <PyObject *>data
                    Py_INCREF(data)        # handed over: data's goes below
                    data = None
                    resized = rl_bytes_resized(resized, n)
                    data = <object>resized
                    Py_DECREF(data)        # (the reference handed back)
                    spare_cap = n
                else:
                    self.large_reads = False
                    loop.spare_bytes = data
                    loop.spare_cap = size
                    data = PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), n)
                    spare_cap = n
            else:
                if size > loop.rbuf_size:
                    resized_buf = <char *>PyMem_RawRealloc(loop.rbuf, size)
                    if resized_buf == NULL:
                        raise MemoryError()
                    loop.rbuf = resized_buf
                    loop.rbuf_size = size
                n = self._recv(loop.rbuf, size)
                if n <= 0:
                    return self._read_failed(n, errno)
                reads += 1
                # asyncio's StreamReaderProtocol: the bytes go into its
                # reader's buffer from here, no bytes object made.
                fed = self.stream_reader and self._feed_stream_reader(loop.rbuf, n)
                if not fed:
                    if n >= LARGE_READ and not self.pipe and not self.reads_kept:
                        self.large_reads = True
                    # A read of more than 479 bytes is a libc malloc() and
                    # free() (beyond pymalloc, and from 1,033 beyond glibc's
                    # per-thread cache: ~500 instructions, a fifth of a 1 KiB
                    # echo request).  The bytes object of the previous read,
                    # if the protocol kept no reference to it, is refilled
                    # instead: nobody else can see it, and only one of a
                    # close size is reused (at most 1/8 + 64 bytes larger
                    # than the data), so a kept object wastes little.
                    spare_cap = loop.spare_cap
                    if (loop.spare_bytes is not None and n <= spare_cap
                            and spare_cap - n <= (n >> 3) + 64):
                        data = loop.spare_bytes
                        loop.spare_bytes = None
                        rl_bytes_refill(data, loop.rbuf, n)
                    else:
                        data = PyBytes_FromStringAndSize(loop.rbuf, n)
                        spare_cap = n
            if n < READ_SIZE:
                self.paused_reads = False
            if fed:
                pass
            elif self.pipe:
                # As asyncio's pipe transport: a protocol error is reported
                # (the IOHandle's exception handler call), reading goes on.
                queued = len(loop.ready)
                rl_call_method1(self.protocol, 'data_received', data)
                # A protocol that hands the data on with call_soon (asyncio's
                # subprocess pipes: the process protocol, and a StreamReader
                # pausing in it, get it one callback later) is read once per
                # event, as on asyncio: those callbacks run before the next
                # read, so a pause they make comes in time (8 reads first
                # let ~3x asyncio's data into a reader that had paused).
                if len(loop.ready) > queued:
                    return 0
            else:
                # Not in a try block: its exception-state bookkeeping cost
                # ~25 instructions per read; a failure is sorted apart.
                res = rl_call_method1_raw(self.protocol, 'data_received', data)
                if res == NULL:
                    return self._data_received_failed()
                rl_decref(res)
            # Only this function's reference left (not the shared one-byte
            # singletons, which are never 1): keep it for the next read.
            if fed:
                pass
            elif Py_REFCNT(data) == 1:
                loop.spare_bytes = data
                loop.spare_cap = spare_cap
            elif self.large_reads:
                # The protocol keeps its reads (or a write of them waits in
                # the buffer): this transport's reads are copied into
                # objects of their exact size from now on.  Cut-down 128 KiB
                # objects, kept, leave holes in the C library's heap that
                # keep it from giving the memory back once they are freed.
                self.large_reads = False
                self.reads_kept = True
            # A writer that keeps the buffer full (a full pipe: its default
            # capacity; a socket read that filled our buffer) has likely
            # written more by now: read again at once rather than sleep in
            # the poll and be woken (a cross-CPU wake-up per read), a few
            # times per event.  (EAGAIN ends it, as a try later.)
            if n >= READ_SIZE and self.paused and not self.pipe:
                self.paused_reads = True
            if (n < (PIPE_FULL if self.pipe else size)
                    or reads >= MAX_IO_PER_EVENT or self.conn_lost
                    or self.closing or self.paused or self.buffered):
                return 0

    cdef int _read_buffered(self) except -1:
        cdef Py_buffer view
        cdef Py_ssize_t n
        cdef int err
        try:
            buf = rl_call_method1(self.protocol, 'get_buffer', -1)
            if not len(buf):
                raise RuntimeError('get_buffer() returned an empty buffer')
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.get_buffer() call failed.')
            return 0
        if self.py_io:
            # asyncio hands the protocol's buffer to the socket's recv_into().
            n = self._py_call(self.sock.recv_into, buf, NULL, 0)
            err = errno
        else:
            try:
                PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE | 0x0001)  # PyBUF_WRITABLE
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                # A buffer recv_into() could not write into: asyncio's error
                # (recv_into's own), reported as a read error.
                self._fatal_error(
                    TypeError(f'recv_into() argument 1 must be read-write bytes-like '
                              f'object, not {type(buf).__name__}'),
                    f'Fatal read error on {self._what()} transport')
                return 0
            n = self._recv(view.buf, view.len)
            err = errno
            PyBuffer_Release(&view)
        if n <= 0:
            return self._read_failed(n, err)
        try:
            rl_call_method1(self.protocol, 'buffer_updated', n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.buffer_updated() call failed.')
        return 0

    cdef int _read_failed(self, Py_ssize_t n, int err) except -1:
        # A recv() that brought no data: EOF (0), try later, or fatal.
        if n == 0:
            if self.pipe:
                return self._on_pipe_eof()
            return self._on_eof()
        if not _again(err):
            self._fatal_error(self._io_error(err), f'Fatal read error on {self._what()} transport')
        return 0

    cdef int _on_pipe_eof(self) except -1:
        # asyncio's read pipe: eof_received(), then connection_lost(None),
        # whatever eof_received() returns (a pipe cannot be half-open).
        if self.loop.debug:
            aio_logger.info("%r was closed by peer", self.transport)
        self.closing = True
        self._stop_reading()
        self.conn_lost += 1
        self.loop.call_soon(self.protocol.eof_received)
        self._schedule_connection_lost(None)
        return 0

    cdef int _on_eof(self) except -1:
        if self.loop.debug:
            aio_logger.debug("%r received EOF", self.transport)
        try:
            keep_open = self.protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.eof_received() call failed.')
            return 0
        if keep_open:
            # The protocol may still write; nothing more can be read.
            self._stop_reading()
        else:
            self.close()
        return 0

    def pause_reading(self):
        if self.closing or self.paused:
            return
        self.paused = True
        self._stop_reading()
        if self.loop.debug:
            aio_logger.debug("%r pauses reading", self.transport)

    def resume_reading(self):
        if self.closing or not self.paused:
            return
        self.paused = False
        if self.held is not None:
            self.loop.call_soon(self._deliver_held)
        self._start_reading()
        if self.loop.debug:
            aio_logger.debug("%r resumes reading", self.transport)

    # ------------------------------------------------------------------
    # writing

    def write(self, data):
        return self._write(data)

    cdef object _write(self, object data):
        # transport.write(data): the body of StreamTransport's write
        # descriptor (_front_write), as asyncio's write().
        cdef Py_ssize_t n, m, size
        cdef Py_buffer view
        cdef int err
        cdef bint is_bytes = type(data) is bytes
        if not is_bytes and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f'data argument must be a bytes-like object, '
                            f'not {type(data).__name__!r}')
        if self.pipe:
            # asyncio's write pipe: write_eof() closes; later writes are
            # dropped as after a loss.
            if not data:
                return
            if self.conn_lost or self.closing:
                self._write_after_lost()
                return
        else:
            self._refuse_write('write')
            # (bytes: its size, not the generic truth test)
            if (PyBytes_GET_SIZE(data) == 0) if is_bytes else not data:
                return
            if self.conn_lost:
                self._write_after_lost()
                return
        if self.wsize == 0:
            # Nothing queued: send now, buffer only what the kernel refused.
            if is_bytes:
                size = PyBytes_GET_SIZE(data)
                n = self._send(PyBytes_AS_STRING(data), size)
                err = errno
                if self.pipe and 0 < n < size:
                    # A pipe that took part of it has a reader draining it
                    # right now: a second try often takes the rest, sparing
                    # a poll and a pause_writing() round trip.
                    m = self._send(PyBytes_AS_STRING(data) + n, size - n)
                    if m > 0:
                        n += m
            else:
                PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
                size = view.len
                n = self._send(view.buf, size)
                err = errno
                PyBuffer_Release(&view)
            if n == size:
                return
            if n < 0:
                if not _again(err):
                    self._fatal_error(self._io_error(err), f'Fatal write error on {self._what()} transport')
                    return
                n = 0
            if is_bytes:
                # The queue is empty: keep the bytes object itself, its sent
                # head skipped through woff (no copy of a large tail).
                self.wbuf.append(data)
                self.whead = 0
                self.woff = n
                self.wsize = size - n
            else:
                self._buffer_tail(data, n)
            self._start_writing()
        else:
            self._buffer_tail(data, 0)
        self._maybe_pause_protocol()

    cdef int _refuse_write(self, str call) except -1:
        # asyncio's two refusals of a write, named after the call that
        # asyncio makes them in (write() or, on 3.12+, writelines()).
        if self.eof:
            raise RuntimeError(f'Cannot call {call}() after write_eof()')
        if self.empty_waiter is not None:
            raise RuntimeError(f'unable to {call}; sendfile is in progress')
        return 0

    def writelines(self, list_of_data):
        """Write each buffer in order: one sendmsg() for all of them when
        nothing is queued (no joined copy), the rest queued."""
        return self._writelines(list_of_data)

    cdef object _writelines(self, object list_of_data):
        # transport.writelines(): the body of _front_writelines.
        cdef iovec iov[MAX_IOV]
        cdef Py_buffer views[MAX_IOV]
        cdef Py_ssize_t i, k, nviews = 0, total = 0, n, sent
        cdef int err
        # What asyncio accepts, its errors and their order, on the running
        # version: 3.12+ checks the transport's state, returns on a false
        # list_of_data and wraps each item in a memoryview (any buffer goes);
        # 3.11 (and every version's pipes) is b''.join() then write().
        cdef bint joined = not PY312 or self.pipe
        if joined:
            try:
                items = list(list_of_data)
            except TypeError:
                b''.join(list_of_data)      # asyncio's error text
                raise
        else:
            self._refuse_write('writelines')
            if not list_of_data:
                return
            items = list(list_of_data)
        for i in range(len(items)):
            data = items[i]
            if not isinstance(data, (bytes, bytearray, memoryview)):
                if joined:
                    b''.join(items)         # raises for what it cannot join
                items[i] = memoryview(data)
            if type(data) is not bytes:
                # A buffer that cannot be sent as it is (not contiguous)
                # fails the whole call before any of it is sent or queued,
                # as write() does: all of it is accepted, or none.
                if joined:
                    try:
                        _check_simple_buffer(items[i])
                    except BufferError:
                        b''.join(items)     # asyncio's error on this version
                        raise
                else:
                    _check_simple_buffer(items[i])
        if joined:
            self._refuse_write('write')
            # write(b''.join(...)) returns on empty data before it looks at
            # the connection: buffers that are all empty are no write.
            for data in items:
                if _nbytes(data):
                    break
            else:
                return
        if not items:
            return
        if self.conn_lost or (self.pipe and self.closing):
            self._write_after_lost()
            return
        start = 0
        sent = 0
        if self.wsize == 0:
            k = min(len(items), MAX_IOV)
            try:
                for i in range(k):
                    PyObject_GetBuffer(items[i], &views[i], PyBUF_SIMPLE)
                    nviews += 1
                    iov[i].iov_base = views[i].buf
                    iov[i].iov_len = views[i].len
                    total += views[i].len
                n = self._sendv(iov, k)
                err = errno
            finally:
                for i in range(nviews):
                    PyBuffer_Release(&views[i])
            if n < 0:
                if not _again(err):
                    self._fatal_error(self._io_error(err), f'Fatal write error on {self._what()} transport')
                    return
                n = 0
            sent = n
            # Skip what went out.
            for i in range(k):
                size = _nbytes(items[i])
                if sent >= size:
                    sent -= size
                    start = i + 1
                else:
                    break
            if start == len(items):
                return
        first = True
        for i in range(start, len(items)):
            data = items[i]
            if not _nbytes(data):
                continue
            self._buffer_tail(data, sent if first else 0)
            first = False
        if self.wsize and self.wh is None:
            self._start_writing()
        self._maybe_pause_protocol()

    cdef int _buffer_tail(self, object data, Py_ssize_t start) except -1:
        # Queue data[start:] as bytes (a copy unless it is bytes and whole);
        # start and the queue's size count bytes, not a memoryview's items.
        cdef Py_ssize_t size = _nbytes(data)
        if start >= size:
            return 0
        if type(data) is bytes and start == 0:
            chunk = data
        else:
            chunk = bytes(memoryview(data).cast('B')[start:])
        self.wbuf.append(chunk)
        self.wsize += size - start
        return 0

    cdef Py_ssize_t _flush(self) except -2:
        # One sendmsg() over the queued chunks; returns bytes sent, -1 on
        # EAGAIN; raises nothing: errors are returned as -(errno) - 2.
        cdef iovec iov[MAX_IOV]
        cdef list wbuf = self.wbuf
        cdef Py_ssize_t i, k = 0, n, total = len(wbuf)
        cdef Py_ssize_t head = self.whead, off = self.woff, size
        cdef object chunk
        cdef int err
        i = head
        while i < total and k < MAX_IOV:
            chunk = wbuf[i]
            size = PyBytes_GET_SIZE(chunk)
            if i == head:
                iov[k].iov_base = PyBytes_AS_STRING(chunk) + off
                iov[k].iov_len = size - off
            else:
                iov[k].iov_base = PyBytes_AS_STRING(chunk)
                iov[k].iov_len = size
            k += 1
            i += 1
        n = self._sendv(iov, k)
        if n < 0:
            err = errno
            if _again(err):
                return -1
            return -err - 2
        # Consume n bytes from the queue.
        self.wsize -= n
        while n > 0:
            chunk = wbuf[head]
            size = PyBytes_GET_SIZE(chunk) - off
            if n >= size:
                n -= size
                wbuf[head] = None
                head += 1
                off = 0
            else:
                off += n
                n = 0
        if head == total:
            wbuf.clear()
            head = 0
        elif head > 64 and head * 2 > total:
            del wbuf[:head]
            head = 0
        self.whead = head
        self.woff = off
        return 0

    cdef int on_writable(self) except -1:
        cdef Py_ssize_t r
        cdef int tries = 0
        if self.conn_lost or self.wsize == 0:
            return 0
        while True:
            r = self._flush()
            tries += 1
            if r < -1:
                self._write_error(<int>(-r - 2))
                return 0
            # A pipe whose reader drains it as we write takes more at once:
            # write again (a few times per event) rather than poll again.
            if (r == -1 or not self.pipe or self.wsize == 0
                    or tries >= MAX_IO_PER_EVENT):
                break
        if r == -1 and tries == 1:
            return 0
        return self._after_flush()

    cdef int _after_flush(self) except -1:
        self._maybe_resume_protocol()      # may queue more
        if self.wsize == 0:
            self._stop_writing()
            if self.empty_waiter is not None:
                self.empty_waiter.set_result(None)
            if self.closing:
                self._stop_reading()     # a write pipe's hang-up watch
                self.conn_lost += 1
                self._call_connection_lost(None)
            elif self.eof:
                if self.py_io:
                    self.sock.shutdown(socket.SHUT_WR)
                else:
                    shutdown(self.fd, SHUT_WR)
        return 0

    cdef int _write_error(self, int err) except -1:
        exc = self._io_error(err)
        self._drop_queue()
        self._fatal_error(exc, f'Fatal write error on {self._what()} transport')
        if self.empty_waiter is not None:
            self.empty_waiter.set_exception(exc)
        return 0

    def write_eof(self):
        if self.pipe:
            # A pipe has no half-close: asyncio's write pipe closes (after
            # flushing what is buffered).
            self.close()
            return
        if self.closing or self.eof:
            return
        self.eof = True
        if self.wsize == 0:
            self.sock.shutdown(socket.SHUT_WR)

    def get_write_buffer_size(self):
        return self.wsize

    # ------------------------------------------------------------------
    # flow control (asyncio's _FlowControlMixin, same messages)

    cdef int _maybe_pause_protocol(self) except -1:
        if self.wsize <= self.high_water or self.protocol_paused:
            return 0
        self.protocol_paused = True
        return self._tell_protocol('pause_writing')

    cdef int _maybe_resume_protocol(self) except -1:
        if not self.protocol_paused or self.wsize > self.low_water:
            return 0
        self.protocol_paused = False
        return self._tell_protocol('resume_writing')

    cdef int _tell_protocol(self, str method) except -1:
        try:
            getattr(self.protocol, method)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.loop.call_exception_handler({
                'message': f'protocol.{method}() failed',
                'exception': exc,
                'transport': self.transport,
                'protocol': self.protocol,
            })
        return 0

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            if low is None:
                high = 64 * 1024
            else:
                high = 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(
                f'high ({high!r}) must be >= low ({low!r}) must be >= 0')
        self.high_water = high
        self.low_water = low
        self.high_given = high
        self.low_given = low
        self._maybe_pause_protocol()

    # ------------------------------------------------------------------
    # closing

    def close(self):
        if self.closing:
            return
        self.closing = True
        if not (self.pipe_writer and self.wsize):
            # (a write pipe keeps watching for its reader's exit while it
            # flushes: asyncio then reports BrokenPipeError to the protocol)
            self._stop_reading()
        if self.wsize == 0:
            self.conn_lost += 1
            self._stop_writing()
            self._schedule_connection_lost(None)

    def abort(self):
        self._force_close(None)

    def force_close(self, exc):
        # StreamTransport._force_close: asyncio's SSLProtocol calls it.
        self._force_close(exc)

    cdef int _fatal_error(self, exc, str message) except -1:
        # OSErrors are logged at debug level only, as asyncio does, except
        # on a read pipe: there only EIO (a PTY whose other side closed).
        if isinstance(exc, OSError) and (not self.pipe or self.pipe_writer
                                         or exc.errno == EIO):
            if self.loop.debug:
                # exc itself, not exc_info=True as asyncio (which is always
                # inside the except block): some errors here were built from
                # an errno, and were never raised.
                aio_logger.debug("%r: %s", self.transport, message, exc_info=exc)
        else:
            self.loop.call_exception_handler({
                'message': message,
                'exception': exc,
                'transport': self.transport,
                'protocol': self.protocol,
            })
        self._force_close(exc)
        return 0

    cdef int _force_close(self, exc) except -1:
        if self.conn_lost:
            return 0
        if self.wsize:
            self._drop_queue()
        if not self.closing:
            self.closing = True
            self._stop_reading()
        self.conn_lost += 1
        self._schedule_connection_lost(exc)
        return 0

    cdef int _schedule_connection_lost(self, exc) except -1:
        # Through the transport's method, so that a failing connection_lost
        # is reported as asyncio's is ("Exception in callback
        # StreamTransport._call_connection_lost(None)").
        transport = self.transport
        self.loop.call_soon(self._call_connection_lost if transport is None
                            else transport._call_connection_lost, exc)
        return 0

    def _call_connection_lost(self, exc):
        if self.sock is None:
            return      # already done (asyncio 3.11 raises AttributeError here)
        transport = self.transport
        try:
            if self.protocol_connected:
                self.protocol.connection_lost(exc)
        finally:
            self.sock.close()
            self.sock = None
            self.protocol = None
            self._detach_server(transport)
            if self.empty_waiter is not None:
                self.empty_waiter.set_exception(
                    ConnectionError("Connection is closed by peer"))
            self.transport = None    # break the core <-> transport cycle

    # ------------------------------------------------------------------
    # what the public transport asks

    def is_closing(self):
        return self.closing

    def is_reading(self):
        return not self.closing and not self.paused

    def set_protocol(self, protocol):
        self._set_protocol(protocol)

    def get_protocol(self):
        return self.protocol

    def _sock_obj(self):
        return self.sock

    def _fd(self):
        return self.fd

    def _describe(self, name):
        info = [name]
        if self.sock is None:
            info.append('closed')
        elif self.closing:
            info.append('closing')
        info.append(f'fd={self.fd}')
        if self.pipe:
            # asyncio's pipe transports: one direction each, and a last word
            # once the loop or the pipe is closed
            if self.sock is None:
                info.append('closed')
            elif self.loop.closed:
                info.append('open')
            elif self.pipe_writer:
                info.append('polling' if self.wh is not None else 'idle')
                info.append(f'bufsize={self.wsize}')
            else:
                info.append('polling' if self.rh is not None else 'idle')
        elif not self.loop.closed and self.sock is not None:
            info.append('read=polling' if self.rh is not None else 'read=idle')
            state = 'polling' if self.wh is not None else 'idle'
            info.append(f'write=<{state}, bufsize={self.wsize}>')
        return '<{}>'.format(' '.join(info))

    def _set_sock(self, sock):
        self.sock = sock

    def _close_on_del(self, transport):
        # The transport is being collected while its socket is open.
        sock = self.sock
        self.sock = None
        self._stop_reading()
        self._stop_writing()
        sock.close()
        self._detach_server(transport)

    def __repr__(self):
        return f"<StreamCore fd={self.fd}>"

    def _handle_callback(self, bint write):
        # asyncio's I/O handles call the transport's _read_ready() or
        # _write_ready(), and its reprs and error messages name them.
        transport = self.transport
        if transport is None:
            return self
        return transport._write_ready if write else transport._read_ready

    def _run_readable(self):
        self.on_readable()

    def _run_writable(self):
        self.on_writable()


class _CoreFront:
    """What every public transport over a StreamCore forwards to it: the
    BaseTransport and ReadTransport methods, repr, and the unclosed warning."""

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        raise TypeError("ringloop transports are created by the event loop")

    # -- BaseTransport ---------------------------------------------------

    def close(self):
        self._core.close()

    def set_protocol(self, protocol):
        self._core.set_protocol(protocol)

    def get_protocol(self):
        return self._core.get_protocol()

    # -- ReadTransport -----------------------------------------------------

    def is_reading(self):
        return self._core.is_reading()

    def pause_reading(self):
        self._core.pause_reading()

    def resume_reading(self):
        self._core.resume_reading()

    def __repr__(self):
        return self._core._describe(type(self).__name__)

    def __del__(self, _warn=warnings.warn):
        try:
            core = self._core
        except AttributeError:
            return
        if core._sock_obj() is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            core._close_on_del(self)


class StreamTransport(_CoreFront, aio_transports._FlowControlMixin):
    """A TCP or Unix stream transport (an asyncio.Transport)."""

    # write, writelines and is_closing (which StreamWriter.drain() calls on
    # every drain) are method descriptors set below the class (_front_*).
    # A __dict__, as asyncio's transports have: code patches their methods
    # (mock.patch.object(transport, "write")), and CPython's specialized
    # method load still applies while the instance dict is empty.
    __slots__ = ("_core", "__weakref__", "__dict__")

    _start_tls_compatible = True
    _sendfile_compatible = aio_SendfileMode.TRY_NATIVE

    # -- what asyncio's own code reads on transports -------------------

    @property
    def _protocol_paused(self):
        return self._core.protocol_paused

    @property
    def _high_water(self):
        return self._core.high_given

    @property
    def _low_water(self):
        return self._core.low_given

    @property
    def _sock(self):
        return self._core._sock_obj()

    @property
    def _sock_fd(self):
        return self._core._fd()

    # -- WriteTransport ----------------------------------------------------

    def set_write_buffer_limits(self, high=None, low=None):
        self._core.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self):
        core = self._core
        return (core.low_given, core.high_given)

    def get_write_buffer_size(self):
        return self._core.get_write_buffer_size()

    def write_eof(self):
        self._core.write_eof()

    def can_write_eof(self):
        return True

    def abort(self):
        self._core.abort()

    def _force_close(self, exc):
        # As asyncio's socket transports: close at once, dropping what is
        # queued, and call connection_lost(exc).  asyncio's SSLProtocol
        # calls it on a fatal TLS error and when a TLS shutdown times out.
        self._core.force_close(exc)

    # -- for loop.sendfile() -------------------------------------------------

    def _make_empty_waiter(self):
        core = self._core
        if core.empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        waiter = self._loop.create_future()
        core.empty_waiter = waiter
        if not core.get_write_buffer_size():
            waiter.set_result(None)
        return waiter

    def _reset_empty_waiter(self):
        self._core.empty_waiter = None





# --- StreamTransport's hot methods: method descriptors on C functions ------
# A method of a class is looked up in the type's cache and, with the class's
# version and an empty instance dict, CPython's specializing interpreter
# loads and calls a method descriptor of a C function with no attribute
# lookup at all; an instance slot holding a bound method (the earlier
# design) took the generic path: the type lookup, the slot's descriptor
# call, then a generic call (~110 instructions per transport.write()).
# The C functions find the core in the _core slot by its offset.

cdef extern from *:
    """
    #include "structmember.h"   /* PyMemberDef, on 3.11 */
    static Py_ssize_t rl_front_core_off = -1;

    /* The _core slot's offset in the transport object: from its member
       descriptor. */
    static int rl_front_init(PyObject *descr)
    {
        if (!PyObject_TypeCheck(descr, &PyMemberDescr_Type)) {
            PyErr_SetString(PyExc_TypeError, "_core is not a slot");
            return -1;
        }
        rl_front_core_off = ((PyMemberDescrObject *)descr)->d_member->offset;
        return 0;
    }

    /* transport._core (borrowed), AttributeError if the slot is empty. */
    static inline PyObject *rl_front_core(PyObject *self)
    {
        PyObject *core = *(PyObject **)((char *)self + rl_front_core_off);
        if (core == NULL) {
            PyErr_SetString(PyExc_AttributeError, "_core");
        }
        return core;
    }

    static PyObject *rl_method_descr(PyObject *type, PyMethodDef *def)
    {
        return PyDescr_NewMethod((PyTypeObject *)type, def);
    }
    """
    ctypedef struct PyMethodDef:
        const char *ml_name
        void *ml_meth
        int ml_flags
        const char *ml_doc
    int METH_FASTCALL, METH_KEYWORDS, METH_NOARGS
    int rl_front_init(object descr) except -1
    PyObject *rl_front_core(object self) except NULL
    object rl_method_descr(object type, PyMethodDef *d)


cdef object _front_slow(object self, str name, PyObject **args, Py_ssize_t nargs,
                        PyObject *kwnames):
    # Keywords or a wrong count: the core's method parses them and raises
    # as a Python method does.
    cdef Py_ssize_t i
    cdef tuple names
    core = <object>rl_front_core(self)
    pos = [<object>args[i] for i in range(nargs)]
    kw = {}
    if kwnames != NULL:
        names = <tuple>kwnames
        for i in range(len(names)):
            kw[names[i]] = <object>args[nargs + i]
    return getattr(core, name)(*pos, **kw)


cdef object _front_write(object self, PyObject **args, Py_ssize_t nargs,
                         PyObject *kwnames):
    if nargs == 1 and kwnames == NULL:
        return (<StreamCore?><object>rl_front_core(self))._write(<object>args[0])
    return _front_slow(self, 'write', args, nargs, kwnames)


cdef object _front_writelines(object self, PyObject **args, Py_ssize_t nargs,
                              PyObject *kwnames):
    if nargs == 1 and kwnames == NULL:
        return (<StreamCore?><object>rl_front_core(self))._writelines(<object>args[0])
    return _front_slow(self, 'writelines', args, nargs, kwnames)


cdef object _front_is_closing(object self, PyObject *unused):
    return (<StreamCore?><object>rl_front_core(self)).closing


cdef PyMethodDef _front_defs[3]


cdef _install_front_methods(cls):
    rl_front_init(cls.__dict__['_core'])
    _front_defs[0].ml_name = "write"
    _front_defs[0].ml_meth = <void *>_front_write
    _front_defs[0].ml_flags = METH_FASTCALL | METH_KEYWORDS
    _front_defs[0].ml_doc = ("write($self, data)\n--\n\n"
                             "Write some data bytes to the transport.")
    _front_defs[1].ml_name = "writelines"
    _front_defs[1].ml_meth = <void *>_front_writelines
    _front_defs[1].ml_flags = METH_FASTCALL | METH_KEYWORDS
    _front_defs[1].ml_doc = ("writelines($self, list_of_data)\n--\n\n"
                             "Write a list (or any iterable) of data bytes to the transport.")
    _front_defs[2].ml_name = "is_closing"
    _front_defs[2].ml_meth = <void *>_front_is_closing
    _front_defs[2].ml_flags = METH_NOARGS
    _front_defs[2].ml_doc = ("is_closing($self, /)\n--\n\n"
                             "Return True if the transport is closing or closed.")
    cls.write = rl_method_descr(cls, &_front_defs[0])
    cls.writelines = rl_method_descr(cls, &_front_defs[1])
    cls.is_closing = rl_method_descr(cls, &_front_defs[2])


_install_front_methods(StreamTransport)


cdef object _sock_name(object sock, int fd, bint peer):
    # sock.getsockname() / getpeername(), None if it fails, as asyncio
    # records them; IP addresses built in C when fd is an IP socket's.
    if fd >= 0:
        name = rl_inet_name(fd, peer)
        if name is not NotImplemented:
            return name
    try:
        return sock.getpeername() if peer else sock.getsockname()
    except OSError:
        return None


cdef dict _socket_extra(object sock, object extra, int fd):
    # fd: the socket's fd if it is an AF_INET/AF_INET6 socket, else -1.
    if extra is None:
        extra = {}
    extra['socket'] = new_transport_socket(sock)
    extra['sockname'] = _sock_name(sock, fd, False)
    if 'peername' not in extra:
        extra['peername'] = _sock_name(sock, fd, True)
    return extra


cdef int _inet_fd(object sock, int family, int fd) except -2:
    # sock's fd if it is a socket.socket of an IP family whose class keeps
    # the socket module's getsockname()/getpeername(), else -1 (family and
    # fd: the socket's, when the caller has read them, else -1).
    t = type(sock)
    if t is not py_socket and not (
            is_socket(sock)
            and t.getsockname is py_socket_getsockname
            and t.getpeername is py_socket_getpeername):
        return -1
    if family < 0:
        family = sock_family(sock)
    if family == AF_INET or family == AF_INET6:
        return fd if fd >= 0 else sock.fileno()
    return -1


def socket_extra(sock, extra=None):
    """A socket transport's extra info, as asyncio fills it: 'socket' (a
    TransportSocket), 'sockname', and 'peername' unless given."""
    return _socket_extra(sock, extra, _inet_fd(sock, -1, -1))


def make_stream_transport(CoreLoop loop, sock, protocol, waiter=None,
                          extra=None, server=None):
    """The loop's _make_socket_transport: a connected stream socket
    (non-blocking) becomes a StreamTransport; connection_made, then
    reading, then the waiter's result are scheduled, in asyncio's order."""
    return _make_stream_transport(loop, sock, protocol, waiter, extra, server, -1)


cdef object _make_stream_transport(CoreLoop loop, sock, protocol, waiter,
                                   extra, server, int tcp_fd):
    # tcp_fd: sock's fd when the caller knows it for a TCP socket (the
    # accept loop), else -1.
    cdef StreamCore core = StreamCore.__new__(StreamCore)
    cdef int family = -1, stype = -1
    cdef int fd = tcp_fd
    if fd >= 0:
        extra = _socket_extra(sock, extra, fd)
        set_nodelay(fd)
    else:
        fd = sock.fileno()
        if is_socket(sock):
            family = sock_family(sock)
            stype = sock_type(sock)
        else:
            try:
                family = sock.family
                stype = sock.type
            except (AttributeError, TypeError):    # not a socket's
                family = stype = -1
        extra = _socket_extra(sock, extra, _inet_fd(sock, family, fd))
        if (family == AF_INET or family == AF_INET6) and stype == SOCK_STREAM:
            set_nodelay(fd)
    core.loop = loop
    core.sock = sock
    if type(sock) is py_socket:
        # A transport dropped unclosed is collected with its compiled core
        # (a cycle): the GC may finalize the socket first, which then warns
        # "unclosed <socket.socket>" before the transport's own "unclosed
        # transport" (asyncio warns once).  A plain socket.socket (__slots__
        # of ints only) can hold no cycle: kept out of the GC, it is freed
        # after the transport's __del__ has closed it.
        PyObject_GC_UnTrack(sock)
    core.fd = fd
    core.py_io = _overrides_io(sock)
    core.context = PyContext_CopyCurrent()
    transport = StreamTransport.__new__(StreamTransport)
    transport._core = core
    transport._extra = extra
    transport._loop = loop
    core.transport = transport
    core._set_protocol(protocol)
    if server is not None:
        if PY313:
            server._attach(transport)
        else:
            server._attach()
        # Only once attached: a transport whose _attach() failed (its
        # server was closed in the protocol factory) never detaches.
        core.server = server
    loop._transports.put(core.fd, transport)
    held = loop._take_received(core.fd)
    if held is not None:
        core.held = b"".join([chunk for chunk, _ in held])
    loop.call_soon(protocol.connection_made, transport)
    loop.call_soon(core._add_reader_cb)
    if waiter is not None:
        loop.call_soon(aio_set_result_unless_cancelled, waiter, None)
    return transport


# ---------------------------------------------------------------------------
# Pipe transports: the same core over read()/write()/writev()

def _get_pipe(self):
    return self._core._sock_obj()


def _set_pipe(self, pipe):
    # asyncio's pipe transports have a _pipe attribute that code (and
    # CPython's tests) set to None to drop the pipe without closing it.
    self._core._set_sock(pipe)


class ReadPipeTransport(_CoreFront, aio_transports.ReadTransport):
    """The read end of a pipe, FIFO, socket, PTY or character device (an
    asyncio.ReadTransport), as loop.connect_read_pipe() makes it."""

    # A __dict__, as asyncio's pipe transports have: pipes are not on the
    # per-request path, and code patches their methods (CPython's tests do).
    __slots__ = ("_core", "_loop", "is_closing", "__weakref__", "__dict__")

    _pipe = property(_get_pipe, _set_pipe)


class WritePipeTransport(StreamTransport):
    """The write end of a pipe, FIFO, socket, PTY or character device (an
    asyncio.WriteTransport with flow control), as loop.connect_write_pipe()
    makes it.  write_eof() closes it once the buffer is flushed."""

    __slots__ = ()

    _pipe = property(_get_pipe, _set_pipe)
    _start_tls_compatible = False
    _sendfile_compatible = aio_SendfileMode.UNSUPPORTED

    # As asyncio's write pipe (a _FlowControlMixin, hence a ReadTransport
    # by inheritance), reading is not supported.
    def is_reading(self):
        raise NotImplementedError

    def pause_reading(self):
        raise NotImplementedError

    def resume_reading(self):
        raise NotImplementedError


cdef int _check_simple_buffer(object data) except -1:
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    PyBuffer_Release(&view)
    return 0


def _ready_methods(cls):
    # What the loop runs when the fd is ready, as Python methods.  The loop
    # calls the core in C and never these; they name the callback in an I/O
    # handle's repr and in the exception handler's message, as asyncio's
    # transports' _read_ready()/_write_ready() do, with the concrete class's
    # name (asyncio: "_SelectorSocketTransport._read_ready()").  The same
    # for the connection_lost call the core schedules.
    def _read_ready(self):
        self._core._run_readable()

    def _write_ready(self):
        self._core._run_writable()

    def _call_connection_lost(self, exc):
        self._core._call_connection_lost(exc)

    for f in (_read_ready, _write_ready, _call_connection_lost):
        f.__qualname__ = f"{cls.__name__}.{f.__name__}"
        setattr(cls, f.__name__, f)


for _cls in (StreamTransport, ReadPipeTransport, WritePipeTransport):
    _ready_methods(_cls)
del _cls


def make_pipe_transport(CoreLoop loop, pipe, protocol, waiter=None, extra=None,
                        bint write=False):
    """The loop's _make_read_pipe_transport / _make_write_pipe_transport:
    what asyncio's Unix pipe transports accept (pipes, FIFOs, sockets,
    character devices), made non-blocking; connection_made, then watching
    the fd, then the waiter's result are scheduled, in asyncio's order."""
    cdef StreamCore core
    fd = pipe.fileno()
    mode = os.fstat(fd).st_mode
    is_fifo = stat.S_ISFIFO(mode)
    is_socket = stat.S_ISSOCK(mode)
    if not (is_fifo or is_socket or stat.S_ISCHR(mode)):
        if write:
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        raise ValueError("Pipe transport is for pipes/sockets only.")
    os.set_blocking(fd, False)
    core = StreamCore.__new__(StreamCore)
    core.loop = loop
    core.sock = pipe
    core.fd = fd
    core.pipe = True
    core.pipe_writer = write
    core.context = PyContext_CopyCurrent()
    if write:
        transport = WritePipeTransport.__new__(WritePipeTransport)
    else:
        transport = ReadPipeTransport.__new__(ReadPipeTransport)
    transport._core = core
    transport._extra = dict(extra) if extra else {}
    transport._extra['pipe'] = pipe
    transport._loop = loop
    if not write:
        transport.is_closing = core.is_closing
    core.transport = transport
    core._set_protocol(protocol)
    loop.call_soon(protocol.connection_made, transport)
    if not write or is_fifo or is_socket:
        # A read pipe reads; a write pipe over a pipe or socket watches for
        # the reader's exit (a character device's readability means data).
        loop.call_soon(core._add_reader_cb)
    if waiter is not None:
        loop.call_soon(aio_set_result_unless_cancelled, waiter, None)
    return transport


# ---------------------------------------------------------------------------
# Unix servers' socket files: the inode recorded when the server binds, the
# file removed on close if it is still that one.  stat() and unlink() are
# called here in C, not through os.stat()/os.unlink(): 3.13's asyncio makes
# these calls inside its own create_unix_server() and _stop_serving(), which
# blocking-call detectors (blockbuster, as aiohttp's and other test suites
# use it) allow by name; the same calls made from a Python function of ours
# were reported as blocking calls of the caller's code.

def unix_socket_inode(path):
    """st_ino of the file at path, None if it cannot be stat()ed."""
    cdef struct_stat st
    cdef bytes p = os.fsencode(path)
    if b"\0" in p or c_stat(p, &st) < 0:
        return None
    return st.st_ino


cdef bint _gone_or_raise(int err, path) except -1:
    """False for ENOENT (the file is gone); OSError for any other errno."""
    if err == ENOENT:
        return False
    raise OSError(err, os.strerror(err), path)


def unlink_unix_socket(path, ino):
    """Remove the file at path if it is still a socket with inode ino.
    True if it was removed; False if it is gone or is another file now;
    OSError for any other failure (EACCES...)."""
    cdef struct_stat st
    cdef bytes p = os.fsencode(path)
    if b"\0" in p:
        return False        # no such file name (an abstract name has none)
    if c_stat(p, &st) < 0:
        return _gone_or_raise(errno, path)
    if st.st_ino != ino or not c_S_ISSOCK(st.st_mode):
        return False
    if c_unlink(p) < 0:
        return _gone_or_raise(errno, path)
    return True


# ---------------------------------------------------------------------------
# Servers: the accept loop of one listening socket

cdef object aio_ACCEPT_RETRY_DELAY = aio_constants.ACCEPT_RETRY_DELAY
cdef tuple RESOURCE_ERRNOS


import errno as _errno
RESOURCE_ERRNOS = (_errno.EMFILE, _errno.ENFILE, _errno.ENOBUFS, _errno.ENOMEM)


cdef class AcceptCore(IOTarget):

    def __init__(self, CoreLoop loop, sock, protocol_factory, server, int backlog):
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.protocol_factory = protocol_factory
        self.server = server
        self.backlog = backlog if backlog > 0 else 1
        self.context = PyContext_CopyCurrent()
        self.retry_delay = 0.0
        # socket.socket.accept(), unless a subclass overrides it: the
        # connection made from _accept() with the listener's family, type
        # and protocol as ints (no enum conversions).
        if (is_socket(sock)
                and type(sock).accept is py_socket_accept):
            self.family = sock_family(sock)
            self.stype = sock_type(sock)
            self.proto = sock_proto(sock)
        else:
            self.family = -1
        # TCP listeners of socket.socket's own _accept(): accept4() here.
        self.c_accept = (RL_HAVE_ACCEPT4 and self.stype == SOCK_STREAM
                         and (self.family == AF_INET or self.family == AF_INET6)
                         and type(sock)._accept is py_socket_raw_accept)

    def start(self):
        if self.loop.closed or self.sock is None:
            return
        self.rh = new_io_handle(self.loop, self, False, self.context)
        if self.loop.debug:
            self.rh.source_traceback = aio_extract_stack()
        self.loop._io_start(self.fd, self.fd, self.rh, False)
        if self.loop.sock_waits is not None:
            # The proactor's readiness poll holds the listener's file: a
            # listening socket closed by its owner while the server still
            # watches it would keep its port (and go on completing
            # handshakes) until the server closes.  The loop's check of
            # closed sockets calls this object (__call__), which drops the
            # watch.  (Not a bound method kept on self: that is a cycle.)
            self.loop.sock_waits[self] = self.sock

    def stop(self):
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        if self.loop.sock_waits is not None:
            self.loop.sock_waits.pop(self, None)
        if self.rh is not None:
            self.rh = None
            self.loop._io_stop(self.fd, False)

    def __call__(self):
        # The socket was closed under the watch (CoreLoop._check_sock_waits).
        self.stop()

    def _resume(self):
        self.retry = None
        self.start()

    def _handle_callback(self, bint write):
        # What the accept handle shows (its repr, "Exception in callback
        # ..."): a method named as asyncio's, not this object's repr.
        return self._accept_connection

    def _accept_connection(self):
        """Accept what the listening socket has queued (up to the backlog)."""
        self.on_readable()

    cdef int on_readable(self) except -1:
        cdef int i, c_fd, err
        cdef int tcp_fd = -1
        cdef sockaddr_storage ss
        cdef socklen_t slen
        cdef CoreLoop loop = self.loop
        sock = self.sock
        for i in range(self.backlog):
            try:
                if self.c_accept:
                    # accept4() here, as _accept() calls it; the peer's
                    # address built in C; no exception object when the
                    # queue is empty.
                    c_fd = rl_accept_cloexec(self.fd, &ss, &slen)
                    if c_fd < 0:
                        err = errno
                        if err == EINTR:
                            PyErr_CheckSignals()
                            continue
                        if err == EAGAIN or err == ECONNABORTED:
                            return 0
                        # (apart: Cython makes a switch of an `or` chain, and
                        # EWOULDBLOCK is EAGAIN on Linux, a duplicate case)
                        if err == EWOULDBLOCK:
                            return 0
                        raise _os_error(err)
                    try:
                        addr = rl_inet_address(&ss, slen)
                        conn = py_socket(self.family, self.stype, self.proto, c_fd)
                    except BaseException:
                        os.close(c_fd)
                        raise
                    tcp_fd = c_fd
                elif self.family >= 0:
                    conn_fd, addr = sock._accept()
                    try:
                        conn = py_socket(self.family, self.stype, self.proto, conn_fd)
                    except BaseException:
                        os.close(conn_fd)
                        raise
                else:
                    conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return 0
            except OSError as exc:
                if exc.errno not in RESOURCE_ERRNOS:
                    raise
                # Out of fds (or memory): stop accepting and try again soon,
                # backing off up to asyncio's retry delay.  Reported once per
                # starvation, not once per attempt.
                if not self.starved:
                    self.starved = True
                    loop.call_exception_handler({
                        'message': 'socket.accept() out of system resource',
                        'exception': exc,
                        'socket': aio_TransportSocket(sock),
                    })
                    self.retry_delay = 0.01
                else:
                    self.retry_delay = min(self.retry_delay * 2, aio_ACCEPT_RETRY_DELAY)
                self.stop()
                self.retry = loop.call_later(self.retry_delay, self._resume)
                return 0
            if self.starved:
                self.starved = False
                aio_logger.info('%r accepts connections again', sock)
            if loop.debug:
                aio_logger.debug("%r got a new connection from %r: %r",
                                 self.server, addr, conn)
            conn.setblocking(False)
            self._accept_one(conn, addr, tcp_fd)
            if self.rh is None:
                # The protocol factory closed the server (or stopped it):
                # accept no more; the listening socket may be closed.
                return 0
        return 0

    cdef int _accept_one(self, conn, addr, int tcp_fd) except -1:
        # tcp_fd: conn's fd when it is known to be a TCP socket, else -1.
        # Each connection is set up in its own copy of the context, as
        # asyncio's accept Task is: what the protocol factory (or anything
        # it calls) sets in a context variable belongs to that connection
        # (its transport's callbacks see it), not to the next ones.
        ctx = PyContext_CopyCurrent()
        PyContext_Enter(ctx)
        try:
            self._accept_in_context(conn, addr, tcp_fd)
        finally:
            PyContext_Exit(ctx)
        return 0

    cdef int _accept_in_context(self, conn, addr, int tcp_fd) except -1:
        protocol = None
        transport = None
        try:
            protocol = self.protocol_factory()
            transport = _make_stream_transport(self.loop, conn, protocol,
                                               None, {'peername': addr},
                                               self.server, tcp_fd)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if transport is None:
                conn.close()
            else:
                transport.close()
            # As asyncio (3.11-3.13): reported in debug mode only.
            if not self.loop.debug:
                return 0
            context = {
                'message': 'Error on transport creation for incoming connection',
                'exception': exc,
            }
            if protocol is not None:
                context['protocol'] = protocol
            if transport is not None:
                context['transport'] = transport
            self.loop.call_exception_handler(context)
        return 0
