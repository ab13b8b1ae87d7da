"""Datagram transports (UDP, Unix datagram sockets).

Not a hot path for the servers ringloop targets, so the logic is a compiled
Python class that mirrors asyncio's _SelectorDatagramTransport on the
running version (3.13 sends empty datagrams and counts 8 header bytes per
queued datagram; 3.11 and 3.12 drop empty ones), over the same driver seam
as the stream transports: readiness handles in the fd's watch.
"""

import socket
import sys
import warnings
from collections import deque

from asyncio import constants as aio_constants
from asyncio import futures as aio_futures
from asyncio import transports as aio_transports
from asyncio.log import logger as aio_logger

from ringloop.core.loop cimport CoreLoop
from ringloop.transports.stream import socket_extra

cdef bint PY313 = sys.version_info >= (3, 13)
cdef object aio_set_result_unless_cancelled = aio_futures._set_result_unless_cancelled


cdef _add(CoreLoop loop, int fd, callback, bint write):
    if loop is None:
        raise RuntimeError('the datagram transport has no loop any more')
    loop._add_handler(fd, callback, (), write)


cdef _remove(CoreLoop loop, int fd, bint write):
    if loop is None:
        raise RuntimeError('the datagram transport has no loop any more')
    loop._remove_handler(fd, write)


class DatagramTransport(aio_transports._FlowControlMixin,
                        aio_transports.DatagramTransport):
    """A datagram transport (an asyncio.DatagramTransport and Transport)."""

    max_size = 256 * 1024

    def __init__(self, loop, sock, protocol, address=None, waiter=None, extra=None):
        aio_transports._FlowControlMixin.__init__(self, socket_extra(sock, extra), loop)
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._protocol_connected = False
        self.set_protocol(protocol)
        self._buffer = deque()
        self._conn_lost = 0
        self._closing = False
        self._paused = False
        self._reading = False
        self._writing = False
        self._address = address
        self._buffer_size = 0
        loop._transports[self._sock_fd] = self
        loop.call_soon(self._protocol.connection_made, self)
        held = loop._take_received(self._sock_fd)
        if held is not None:
            for data, addr in held:
                loop.call_soon(self._deliver_held, data, addr)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(aio_set_result_unless_cancelled, waiter, None)

    def __repr__(self):
        info = [self.__class__.__name__]
        if self._sock is None:
            info.append('closed')
        elif self._closing:
            info.append('closing')
        info.append(f'fd={self._sock_fd}')
        if self._loop is not None and not self._loop.is_closed():
            info.append('read=polling' if self._reading else 'read=idle')
            state = 'polling' if self._writing else 'idle'
            info.append(f'write=<{state}, bufsize={self._buffer_size}>')
        return '<{}>'.format(' '.join(info))

    # -- registration ------------------------------------------------------

    def _start_reading(self):
        if self._closing or self._paused or self._loop is None or self._loop.is_closed():
            return
        _add(self._loop, self._sock_fd, self._read_ready, False)
        self._reading = True

    def _stop_reading(self):
        if self._reading:
            self._reading = False
            if self._loop is not None:
                _remove(self._loop, self._sock_fd, False)

    def _start_writing(self):
        if not self._writing and self._loop is not None and self._sock is not None:
            _add(self._loop, self._sock_fd, self._sendto_ready, True)
            self._writing = True

    def _stop_writing(self):
        if self._writing:
            self._writing = False
            if self._loop is not None:
                _remove(self._loop, self._sock_fd, True)

    # -- BaseTransport / ReadTransport ----------------------------------------

    def set_protocol(self, protocol):
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self):
        return self._protocol

    def is_closing(self):
        return self._closing

    def is_reading(self):
        return not self._closing and not self._paused

    def pause_reading(self):
        if not self.is_reading():
            return
        self._paused = True
        self._stop_reading()
        if self._loop.get_debug():
            aio_logger.debug("%r pauses reading", self)

    def resume_reading(self):
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop.get_debug():
            aio_logger.debug("%r resumes reading", self)

    def get_write_buffer_size(self):
        return self._buffer_size

    def abort(self):
        self._force_close(None)

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._buffer:
            self._conn_lost += 1
            self._stop_writing()
            self._loop.call_soon(self._call_connection_lost, None)

    def __del__(self, _warn=warnings.warn):
        if getattr(self, '_sock', None) is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            if self._loop is not None and not self._loop.is_closed():
                self._stop_reading()
                self._stop_writing()
            self._sock.close()

    def _fatal_error(self, exc, message='Fatal error on transport'):
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                # exc, not exc_info=True: not always called in an except block
                aio_logger.debug("%r: %s", self, message, exc_info=exc)
        else:
            self._loop.call_exception_handler({
                'message': message,
                'exception': exc,
                'transport': self,
                'protocol': self._protocol,
            })
        self._force_close(exc)

    def _force_close(self, exc):
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            self._stop_writing()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc):
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            # A sendto() after close() on an unconnected endpoint may have
            # queued a datagram and watched the socket for writing (as on
            # asyncio): no watch outlives the socket.
            self._stop_reading()
            self._stop_writing()
            self._sock.close()
            self._sock = None
            self._protocol = None
            self._loop = None

    # -- datagrams ---------------------------------------------------------------

    def _deliver_held(self, data, addr):
        # A datagram taken from the socket before it became this transport's
        # (on ProactorEventLoop, what a cancelled sock_recv* had received):
        # the protocol gets it first, as it would have from the kernel, and
        # its errors go where _read_ready's do.
        if self._conn_lost or self._closing:
            return
        self._protocol.datagram_received(data, self._address if addr is None else addr)

    def _read_ready(self):
        if self._conn_lost:
            return
        try:
            data, addr = self._sock.recvfrom(self.max_size)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal read error on datagram transport')
        else:
            self._protocol.datagram_received(data, addr)

    def sendto(self, data, addr=None):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f'data argument must be a bytes-like object, '
                            f'not {type(data).__name__!r}')
        if not PY313 and not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(
                    f'Invalid address: must be None or {self._address}')
            addr = self._address
        if (self._conn_lost and self._address) or self._sock is None:
            # (A socket already closed: dropped as after a loss, where
            # asyncio fails with AttributeError.)
            if self._conn_lost >= aio_constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                aio_logger.warning('socket.send() raised exception.')
            self._conn_lost += 1
            return
        if not self._buffer:
            sent = self._send_one(data, addr)
            if sent is not False:
                return
            self._start_writing()
        # What is queued is immutable, and counted in bytes (asyncio adds a
        # memoryview's len(), its items, and takes away bytes when sent).
        data = bytes(data)
        self._buffer.append((data, addr))
        self._buffer_size += len(data) + (8 if PY313 else 0)
        self._maybe_pause_protocol()

    def _send_one(self, data, addr):
        """Send one datagram: True when sent, False when the socket is full
        (try again when writable), None when an error was reported (to
        error_received, or as a fatal error)."""
        try:
            if self._extra['peername']:
                self._sock.send(data)
            else:
                self._sock.sendto(data, addr)
            return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._protocol.error_received(exc)
            return None
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal write error on datagram transport')
            return None

    def _sendto_ready(self):
        while self._buffer:
            data, addr = self._buffer.popleft()
            self._buffer_size -= len(data) + (8 if PY313 else 0)
            sent = self._send_one(data, addr)
            if sent is False:
                self._buffer.appendleft((data, addr))
                self._buffer_size += len(data) + (8 if PY313 else 0)
                break
            if sent is None:
                return
        self._maybe_resume_protocol()
        if not self._buffer:
            self._stop_writing()
            # A close() from resume_writing() above has already scheduled
            # connection_lost (the queue was empty by then): not twice.
            if self._closing and not self._conn_lost:
                self._call_connection_lost(None)


def make_datagram_transport(loop, sock, protocol, address=None, waiter=None, extra=None):
    return DatagramTransport(loop, sock, protocol, address, waiter, extra)
