"""The core loop: scheduling, timers, thread wake-up, errors, debug, executor,
DNS and the readiness-based sock_* methods, over a pluggable I/O driver."""

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from cpython.list cimport PyList_GET_SIZE, PyList_GET_ITEM
from cpython.dict cimport PyDict_Next
from cpython.object cimport PyObject
from cpython.weakref cimport PyWeakref_NewRef, PyWeakref_GetObject

cdef extern from "Python.h":
    ctypedef struct PyTypeObject
    ctypedef struct PyListObject:
        PyObject **ob_item
    void Py_SET_SIZE(object o, Py_ssize_t size)
    void Py_DECREF(object o)
    void Py_INCREF(object o)
    # Declared here so that NULL (delete the slice) can be passed.
    int PyList_SetSlice(object lst, Py_ssize_t low, Py_ssize_t high,
                        PyObject *itemlist) except -1

cdef extern from "ringloop_fastcall.h":
    ctypedef object (*rl_soon_impl)(object, object, object, object)
    ctypedef PyObject *(*rl_soon_get_fn)(object, int) except NULL
    ctypedef int (*rl_soon_set_fn)(object, int, PyObject *) except -1
    object rl_bound_new(object loop, int which)
    void rl_soon_cache_put(object loop, int which, object bound)
    void rl_soon_cache_drop(object loop)
    int rl_install_soon_methods(PyTypeObject *tp, rl_soon_impl soon,
                                rl_soon_impl threadsafe, rl_soon_get_fn get,
                                rl_soon_set_fn set) except -1

cdef extern from "Python.h":
    Py_ssize_t PyDict_GET_SIZE(dict d)     # a macro: no call, no error

cdef extern from "ringloop_compat.h":
    int rl_sock_fd(object sock)     # a socket.socket's fd field, -1 once closed
    ctypedef int (*visitproc)(PyObject *, void *) noexcept
    ctypedef int (*rl_extra_traverse)(PyObject *, visitproc, void *) noexcept
    int rl_patch_traverse(object type, rl_extra_traverse extra) except -1
    int rl_traverse_of(PyObject *o, visitproc visit, void *arg) noexcept

cdef extern from "Python.h":
    Py_ssize_t _refcnt "Py_REFCNT"(PyObject *o) noexcept
    PyObject *_list_item "PyList_GET_ITEM"(PyObject *lst, Py_ssize_t i) noexcept
    Py_ssize_t _list_size "PyList_GET_SIZE"(PyObject *lst) noexcept


cdef extern from "ringloop_call.h":
    object rl_new_kw(object type, tuple args, dict kw)
    unsigned int rl_type_version(object o)

cdef extern from "<poll.h>" nogil:
    int _poll_nothing "poll"(void *fds, unsigned long nfds, int timeout)

cdef extern from "pythread.h":
    unsigned long PyThread_get_thread_ident() nogil

# call_soon_threadsafe from another thread paces itself (see there) once the
# running loop has this many callbacks waiting.  Measured with a queue bridge
# (4 producer threads): 256 kept timers within 1 ms but cut a batching
# producer's rate 6x; 2048 gives timers within ~5 ms (asyncio: 7-20 ms) and
# 11M callbacks a second from a thread (asyncio 0.33M, uvloop 3.1M); 16384
# lets timers slip 30-50 ms.
cdef Py_ssize_t _THREADSAFE_BACKLOG = 2048

cdef extern from "Python.h":
    ctypedef struct PyThreadState
    ctypedef struct PyInterpreterState
    PyThreadState *PyThreadState_Get() noexcept
    PyInterpreterState *PyThreadState_GetInterpreter(PyThreadState *tstate) noexcept
    PyThreadState *PyInterpreterState_ThreadHead(PyInterpreterState *interp) noexcept
    PyThreadState *PyThreadState_Next(PyThreadState *tstate) noexcept


cdef inline bint _other_threads() noexcept:
    # Does this interpreter have a thread state besides ours: a thread
    # started by Python, or a foreign one inside PyGILState_Ensure?  New
    # states are linked in at the head of the list, so another thread's is
    # either the head or after ours.  Only our own state is dereferenced
    # (another thread may be unlinking its own meanwhile): a racy read of a
    # pointer, which at worst gives a stale answer for one iteration.
    cdef PyThreadState *me = PyThreadState_Get()
    return (PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(me)) != me
            or PyThreadState_Next(me) != NULL)

cdef extern from "Python.h":
    # Declared here so that NULL (delete the attribute) can be passed.
    int PyObject_GenericSetAttr(object o, object name, PyObject *value) except -1

from cpython.mem cimport PyMem_RawFree

from ringloop.core.handles cimport (
    Handle, TimerHandle, new_handle, new_owned_handle, new_timer, timer_lt,
    handle_release, handle_track,
)
from ringloop.drivers.base cimport (
    Driver, FdWatch, Waker, make_waker, EV_READ, EV_WRITE,
)
from ringloop.drivers.epoll cimport EpollDriver
from ringloop.drivers.selector cimport SelectorDriver
from ringloop.includes.system cimport (
    clock_gettime, clock_getres, timespec, CLOCK_MONOTONIC, RINGLOOP_HAVE_EPOLL,
    fcntl, F_GETFD, rl_install_atfork, rl_fork_gen, getpid,
)
from ringloop.includes cimport system as _sys
from ringloop.includes.net cimport (
    inet_pton, AF_UNSPEC, AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM,
    IPPROTO_TCP, IPPROTO_UDP,
)
from cpython.long cimport PyLong_Check, PyLong_CheckExact, PyLong_AsLongAndOverflow
from cpython.unicode cimport PyUnicode_CheckExact
from libc.string cimport strlen, memchr

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object u, Py_ssize_t *size) except NULL
    bint PyUnicode_IS_ASCII(object u)


cdef inline int _c_errno() noexcept:
    return _sys.errno

import _socket
import asyncio
import concurrent.futures
import errno as _errno
import io
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
import warnings
import weakref

from asyncio import (
    base_events as aio_base_events,
    coroutines as aio_coroutines,
    events as aio_events,
    exceptions as aio_exceptions,
    format_helpers as aio_format_helpers,
    futures as aio_futures,
    tasks as aio_tasks,
    constants as aio_constants,
)
from asyncio.log import logger as _aio_logger

from ringloop import _messages as msg

# Cached stdlib names (origin-prefixed, as the codebase convention says).
cdef object aio_Future = asyncio.Future
cdef object sys_is_finalizing = sys.is_finalizing
cdef object warnings_warn = warnings.warn   # usable while the module is torn down
cdef object aio_logger = _aio_logger        # the same (close() in debug mode at exit)
cdef object aio_Task = asyncio.Task
cdef object _AGAIN = object()     # _sock_now: the call would block
cdef object raw_family = _socket.socket.family.__get__   # ints, not enums
cdef object raw_type = _socket.socket.type.__get__
cdef object raw_proto = _socket.socket.proto.__get__
cdef object aio_ensure_future = aio_tasks.ensure_future
cdef object aio_isfuture = aio_futures.isfuture
cdef object aio_wrap_future = aio_futures.wrap_future
cdef object aio_iscoroutine = aio_coroutines.iscoroutine
cdef object aio_iscoroutinefunction = aio_coroutines.iscoroutinefunction


# A _socket.socket's family, type and protocol as C ints, without socket.py's
# enum conversions (~1 us each); shared with the other modules (loop.pxd).
# Only for objects is_socket() accepts.
cdef object _socket_type = _socket.socket
cdef object _py_socket = socket.socket


cdef bint is_socket(object o) except -1:
    # An instance of _socket.socket (or a subclass) by its real type, not by
    # isinstance(): a mock made with spec=socket.socket passes isinstance()
    # but has no socket object inside.
    t = type(o)
    return t is _py_socket or t is _socket_type or issubclass(t, _socket_type)


cdef int sock_family(object sock) except? -1:
    return raw_family(sock)


cdef int sock_type(object sock) except? -1:
    return raw_type(sock)


cdef int sock_proto(object sock) except? -1:
    return raw_proto(sock)


cdef object aio_extract_stack = aio_format_helpers.extract_stack
cdef object aio_SendfileNotAvailableError = aio_exceptions.SendfileNotAvailableError
cdef object cf_ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor
cdef object sys_get_asyncgen_hooks = sys.get_asyncgen_hooks
cdef object sys_set_asyncgen_hooks = sys.set_asyncgen_hooks
cdef object th_get_ident = threading.get_ident
cdef object th_main_thread = threading.main_thread

cdef bint PY312 = sys.version_info >= (3, 12)
cdef bint PY313 = sys.version_info >= (3, 13)

cdef double MAXIMUM_SELECT_TIMEOUT = 24 * 3600
# Rebuild the timer heap when more than half of at least this many timers
# are cancelled (asyncio's policy, same thresholds).
cdef Py_ssize_t MIN_SCHEDULED_TIMER_HANDLES = 100
# Batches of at most this many callbacks leave the ready list's storage
# allocated for the next iteration; larger ones give it back.
cdef enum:
    SMALL_BATCH = 256

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover
    _ssl = None


ctypedef volatile unsigned long long volatile_ull

cdef extern from "<time.h>" nogil:
    int nanosleep(const timespec *req, timespec *rem)


cdef inline double monotonic() nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline double _loop_now(CoreLoop loop) except? -1.0:
    # loop._now(), inlined where the loop reads its clock per operation.
    cdef unsigned int tag = rl_type_version(loop)
    if tag == 0 or tag != loop.time_type_tag:
        loop._time_check()
    if loop.time_overridden:
        return loop.time()
    return monotonic()


from libc.limits cimport INT_MAX


# The getaddrinfo() flags the C library knows here (others: EAI_BADFLAGS).
cdef object _AI_FLAGS = 0
for _name in ("AI_PASSIVE", "AI_CANONNAME", "AI_NUMERICHOST", "AI_V4MAPPED",
              "AI_ALL", "AI_ADDRCONFIG", "AI_NUMERICSERV"):
    _AI_FLAGS |= getattr(socket, _name, 0)


cdef int fileobj_to_fd(object fileobj) except -1:
    # selectors' checks, then the C int conversion that registering it
    # makes in asyncio (OverflowError, never a number cut to 32 bits).
    if isinstance(fileobj, int):
        fd = int(fileobj)
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    if fd > INT_MAX:
        raise OverflowError("Python int too large to convert to C int")
    return fd


cdef inline int check_ssl_socket(sock) except -1:
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    return 0


def _debug_mode_default():
    # asyncio's own rule (-X dev, or PYTHONASYNCIODEBUG unless -E), looked up
    # at each loop creation so that whatever asyncio decides, we decide.
    return bool(aio_coroutines._is_debug_mode())


rl_install_atfork()

# Write ends of the loops' signal wake-up sockets.  A child made by os.fork()
# inherits the wake-up fd; left pointing at the parent's socket, the child's
# signals would wake (and be handled by) the parent's loop.  asyncio resets
# it in the child from 3.12 on; ringloop does so on every version, for its
# own sockets only.  A C global, not a module attribute: an unclosed loop
# collected at interpreter exit closes after the module's dict is cleared.
cdef set _signal_wakeup_fds = set()


def _after_fork_child():
    if not _signal_wakeup_fds:
        return
    try:
        fd = signal.set_wakeup_fd(-1)
        if fd != -1 and fd not in _signal_wakeup_fds:
            signal.set_wakeup_fd(fd)        # not ours: leave it be
    except (ValueError, OSError):
        pass
    _signal_wakeup_fds.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


def _portable_requested():
    return os.environ.get("RINGLOOP_PORTABLE", "") not in ("", "0")


def choose_driver(selector=None, *, bint portable=False):
    """Pick the readiness driver: the given selectors selector, else native
    epoll, else selectors.DefaultSelector (other POSIX, or portable mode)."""
    if selector is not None:
        return SelectorDriver(selector)
    if portable or not RINGLOOP_HAVE_EPOLL:
        return SelectorDriver(selectors.DefaultSelector())
    return EpollDriver()


@cython.final
cdef class TransportMap:
    """fd -> the transport using it, weakly: what asyncio's loops keep in a
    WeakValueDictionary (``loop._transports``), so that add_reader() and the
    sock_* calls can refuse a live transport's fd.  A dict of weak
    references: setting an entry is a dict store and, most often, no
    allocation (the transport's existing weak reference is reused), where
    WeakValueDictionary runs Python code and makes a KeyedRef per entry.  A
    dead transport's entry stays until its fd number is used again (it then
    reads as absent), so the map holds at most one entry per fd number."""

    def __cinit__(self):
        self.refs = {}

    cdef int put(self, object fd, object transport) except -1:
        self.refs[fd] = PyWeakref_NewRef(transport, None)
        return 0

    cdef object _live(self, object fd):
        ref = self.refs.get(fd)
        if ref is None:
            return None
        obj = <object>PyWeakref_GetObject(ref)
        if obj is None:
            del self.refs[fd]
        return obj

    def __setitem__(self, fd, transport):
        self.put(fd, transport)

    def __getitem__(self, fd):
        obj = self._live(fd)
        if obj is None:
            raise KeyError(fd)
        return obj

    def __delitem__(self, fd):
        if self._live(fd) is None:
            raise KeyError(fd)
        del self.refs[fd]

    def __contains__(self, fd):
        return self._live(fd) is not None

    def get(self, fd, default=None):
        obj = self._live(fd)
        return default if obj is None else obj

    def pop(self, fd, *default):
        obj = self._live(fd)
        if obj is None:
            if default:
                return default[0]
            raise KeyError(fd)
        del self.refs[fd]
        return obj

    def items(self):
        live = []
        for fd, ref in list(self.refs.items()):
            obj = <object>PyWeakref_GetObject(ref)
            if obj is not None:
                live.append((fd, obj))
        return live

    def keys(self):
        return [fd for fd, _ in self.items()]

    def values(self):
        return [obj for _, obj in self.items()]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.items())

    def __repr__(self):
        return f"<TransportMap {dict(self.items())!r}>"


cdef class CoreLoop:
    """The compiled core shared by ringloop's public loop classes."""

    def __cinit__(self):
        self.ready = []
        self.ready_spare = []
        self.scheduled = []
        self.timer_cancelled_count = 0
        self.timer_seq = 0
        self.stopping = False
        # Closed until __init__ completes: a loop whose construction failed
        # (io_uring refused, fd exhaustion) has nothing to close or warn about.
        self.closed = True
        self.thread_id = None
        self.watches = {}
        self.slow_callback_duration = 0.1
        self.debug = False
        self.polling = False
        self.wake_pending = False
        self.old_wakeup_fd = None
        self.old_wakeup_id = None
        self.signal_handlers = {}
        self.origin_tracking_enabled = False
        self._transports = TransportMap()
        self.sock_waits = None
        self.rbuf = NULL
        self.rbuf_size = 0
        self.spare_bytes = None
        self.spare_cap = 0

    def __dealloc__(self):
        if self.rbuf != NULL:
            PyMem_RawFree(self.rbuf)
            self.rbuf = NULL

    def __init__(self, selector=None, *, Driver driver=None):
        cdef timespec ts
        cdef FdWatch w
        self.portable = _portable_requested()
        self.fork_gen = rl_fork_gen()
        self.owner_pid = getpid()
        self.future_overridden = type(self).create_future is not _core_create_future
        if driver is not None:
            self.driver = driver
        else:
            self.driver = choose_driver(selector, portable=self.portable)
        self.asyncgens = weakref.WeakSet()
        clock_getres(CLOCK_MONOTONIC, &ts)
        self.clock_resolution = <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9
        self.debug = _debug_mode_default()
        # epoll_ctl refuses a bad fd in add_reader/add_writer itself; the
        # other drivers (io_uring arms POLL_ADD at the next poll, select()
        # and poll() fail or report POLLNVAL later) check the fd first.
        self.check_fds = not isinstance(self.driver, EpollDriver)
        self.waker = make_waker(self.portable)
        w = FdWatch.__new__(FdWatch)
        w.fd = self.waker.read_fd
        w.internal = True
        self.waker_watch = w
        self.watches[w.fd] = w
        self.internal_watches = 1
        w.mask = 0
        self.driver.set_interest(w, EV_READ)
        self.closed = False

    # ------------------------------------------------------------------
    # state checks

    cdef inline int _check_closed(self) except -1:
        if self.closed:
            raise RuntimeError(msg.LOOP_CLOSED)
        return 0

    cdef int _check_forked(self) except -1:
        # The epoll set (or ring, or selector) is shared with the process
        # that made the loop: a forked child must never change it.
        if rl_fork_gen() != self.fork_gen:
            raise RuntimeError(msg.forked(self.owner_pid, getpid()))
        return 0

    cdef int _check_process(self) except -1:
        # Once per run: also catches a fork() that ran no atfork handlers.
        if getpid() != self.owner_pid:
            raise RuntimeError(msg.forked(self.owner_pid, getpid()))
        return 0

    cdef int _check_thread(self) except -1:
        if self.thread_id is None:
            return 0
        if th_get_ident() != self.thread_id:
            raise RuntimeError(msg.NOT_THREADSAFE)
        return 0

    cdef int _check_callback(self, object callback, str method) except -1:
        if aio_iscoroutine(callback) or aio_iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(
                f'a callable object was expected by {method}(), '
                f'got {callback!r}')
        return 0

    def _check_running(self):
        if self.thread_id is not None:
            raise RuntimeError(msg.LOOP_RUNNING)
        if aio_events._get_running_loop() is not None:
            raise RuntimeError(msg.OTHER_LOOP_RUNNING)

    def is_running(self):
        return self.thread_id is not None

    def _portable_mode(self):
        # RINGLOOP_PORTABLE=1 when the loop was made: Linux-only facilities
        # (eventfd, pidfd) replaced by their portable fallbacks.
        return self.portable

    def is_closed(self):
        return self.closed

    def get_debug(self):
        return self.debug

    def set_debug(self, enabled):
        self.debug = bool(enabled)
        if self.thread_id is not None:
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking,
                                      self.debug)

    def _set_coroutine_origin_tracking(self, enabled):
        self._set_origin_tracking(enabled)

    cdef int _set_origin_tracking(self, bint enabled) except -1:
        if enabled == self.origin_tracking_enabled:
            return 0
        if enabled:
            self.origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(aio_constants.DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(self.origin_tracking_saved_depth)
        self.origin_tracking_enabled = enabled
        return 0

    def time(self):
        return monotonic()

    # The loop reads its clock as asyncio's does, through loop.time(), when
    # that is not this method: a subclass's time(), or one assigned on the
    # instance (mock.patch.object(loop, 'time') in test suites).  Otherwise
    # it reads CLOCK_MONOTONIC itself.
    cdef double _now(self) except? -1.0:
        return _loop_now(self)

    cdef int _time_check(self) except -1:
        # The lookup first: it gives the type a version tag if it had none.
        self.time_overridden = (
            self.time_on_instance
            or getattr(type(self), 'time', None) is not _core_time)
        self.time_type_tag = rl_type_version(self)
        return 0

    def __setattr__(self, name, value):
        PyObject_GenericSetAttr(self, name, <PyObject *>value)
        if name == 'time':
            _time_instance_changed(self)

    def __delattr__(self, name):
        PyObject_GenericSetAttr(self, name, NULL)
        if name == 'time':
            _time_instance_changed(self)

    @property
    def _clock_resolution(self):
        return self.clock_resolution

    # asyncio's loop keeps these as plain attributes, and code writes them:
    # Sanic's shutdown sets `loop._stopping = False` before running its
    # shutdown coroutines (a read-only property made every Sanic server
    # fail at shutdown).  Writing `_debug` flips the flag alone, as in
    # asyncio (set_debug() also switches coroutine origin tracking).
    @property
    def _debug(self):
        return self.debug

    @_debug.setter
    def _debug(self, value):
        self.debug = bool(value)

    @property
    def _thread_id(self):
        return self.thread_id

    @property
    def _stopping(self):
        return self.stopping

    @_stopping.setter
    def _stopping(self, value):
        self.stopping = bool(value)

    @property
    def _closed(self):
        return self.closed

    @property
    def _ready(self):
        # Read-only view for introspection (asyncio exposes a deque).
        return tuple(self.ready)

    @property
    def _scheduled(self):
        return list(self.scheduled)

    @property
    def _asyncgens(self):
        return self.asyncgens

    @property
    def _executor_shutdown_called(self):
        return self.executor_shutdown_called

    # ------------------------------------------------------------------
    # callbacks and timers

    # call_soon and call_soon_threadsafe are installed as vectorcall entry
    # points at import (ringloop_fastcall.h) that call _soon_entry and
    # _soon_threadsafe_entry below; these defs document the same signature
    # and are what a build without the entry points would use.

    def call_soon(self, callback, *args, context=None):
        """Arrange for callback(*args) to be called on the next iteration."""
        return _soon_entry(self, callback, args, context)

    def call_soon_threadsafe(self, callback, *args, context=None):
        """Like call_soon(), from any thread; wakes a loop blocked in poll."""
        return _soon_threadsafe_entry(self, callback, args, context)

    def _write_to_self(self):
        # asyncio's private name, called by some libraries to wake the loop.
        self.wake_pending = True
        self.waker.wake()

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError('delay must not be None')
        cdef double when = _loop_now(self) + <double>delay
        if self.closed:
            raise RuntimeError(msg.LOOP_CLOSED)
        if self.debug:
            self._check_thread()
            self._check_callback(callback, 'call_at')
        return self._call_at(when, callback, args, context)

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError("when cannot be None")
        cdef double w = when
        if self.closed:
            raise RuntimeError(msg.LOOP_CLOSED)
        if self.debug:
            self._check_thread()
            self._check_callback(callback, 'call_at')
        return self._call_at(w, callback, args, context)

    cdef TimerHandle _call_at(self, double when, object callback, tuple args,
                              object context):
        cdef TimerHandle t = new_timer(self, when, callback, args, context)
        if self.debug:
            t.source_traceback = aio_extract_stack()
        self.timer_seq += 1
        t.seq = self.timer_seq
        self._heap_push(t)
        t.scheduled = True
        return t

    def _timer_handle_cancelled(self, TimerHandle handle):
        if handle.scheduled:
            self.timer_cancelled_count += 1

    # The heap is a Python list (so the GC and introspection see it) whose
    # entries are moved as raw pointers: a sift is a permutation, so no
    # reference count changes until an entry enters or leaves the list.

    cdef int _heap_push(self, TimerHandle h) except -1:
        cdef list heap = self.scheduled
        cdef PyObject **items
        cdef PyObject *item = <PyObject *>h
        cdef Py_ssize_t pos, parent
        heap.append(h)
        items = (<PyListObject *>heap).ob_item
        pos = PyList_GET_SIZE(heap) - 1
        while pos > 0:
            parent = (pos - 1) >> 1
            if timer_lt(item, items[parent]):
                items[pos] = items[parent]
                pos = parent
            else:
                break
        items[pos] = item
        return 0

    cdef TimerHandle _heap_pop(self):
        cdef list heap = self.scheduled
        cdef PyObject **items = (<PyListObject *>heap).ob_item
        cdef Py_ssize_t n = PyList_GET_SIZE(heap) - 1
        cdef PyObject *top = items[0]
        cdef PyObject *last = items[n]
        cdef Py_ssize_t pos = 0, child
        # Shrink by one: the list's references to top and last are ours now.
        Py_SET_SIZE(heap, n)
        if n > 0:
            while True:
                child = 2 * pos + 1
                if child >= n:
                    break
                if child + 1 < n and timer_lt(items[child + 1], items[child]):
                    child += 1
                if timer_lt(items[child], last):
                    items[pos] = items[child]
                    pos = child
                else:
                    break
            items[pos] = last      # the reference moves back into the list
        result = <TimerHandle>top  # a new reference for the caller...
        Py_DECREF(result)          # ...replacing the one the list held
        return result

    cdef int _heapify(self) except -1:
        cdef list old = self.scheduled
        cdef TimerHandle t
        self.scheduled = []
        for t in old:
            self._heap_push(t)
        return 0

    # ------------------------------------------------------------------
    # the iteration

    cdef int _run_once(self) except -1:
        cdef Py_ssize_t nsched = PyList_GET_SIZE(self.scheduled)
        cdef TimerHandle t
        cdef list keep
        cdef double timeout, t0
        cdef double end_time = 0
        cdef double now = 0, wait
        cdef bint sock_check_due
        cdef int n

        if (nsched > MIN_SCHEDULED_TIMER_HANDLES
                and self.timer_cancelled_count * 2 > nsched):
            keep = []
            for t in self.scheduled:
                if t.cancelled_:
                    t.scheduled = False
                    handle_release(t, 2)    # the old heap + t
                else:
                    keep.append(t)
            self.scheduled = keep
            self._heapify()
            self.timer_cancelled_count = 0
        else:
            while PyList_GET_SIZE(self.scheduled):
                t = <TimerHandle>PyList_GET_ITEM(self.scheduled, 0)
                if not t.cancelled_:
                    break
                self.timer_cancelled_count -= 1
                self._heap_pop()
                t.scheduled = False
                handle_release(t, 1)        # t only

        # Sockets closed under a waiting sock_* call or a server's watch
        # (proactor): checked when callbacks ran since the last check (only
        # they can close one), at most once a millisecond; a check put off
        # that way bounds the poll's timeout instead, so an idle loop still
        # makes it.  The time is the one read when the last blocking poll
        # returned (late by the callbacks run since, which only puts the
        # check off by as much): a server's watch keeps this gate open for
        # its whole life, and with a clock read per iteration (and an
        # items() walk) an HTTP request cost 4,777-4,813 instructions under
        # callgrind, 4,717-4,740 without.  A loop that has not blocked for
        # 64 iterations reads the clock itself.
        sock_check_due = False
        if (self.sock_waits is not None
                and (PyDict_GET_SIZE(self.sock_waits) or self.driver.n_owned)
                and self.stat_callbacks != self.sock_scan_mark):
            now = self.poll_end
            if (now < self.sock_scan_next
                    and self.stat_iterations - self.sock_scan_iter >= 64):
                now = monotonic()
            if now >= self.sock_scan_next:
                self.sock_scan_mark = self.stat_callbacks
                self.sock_scan_iter = self.stat_iterations
                self.sock_scan_next = now + 0.001
                self._check_sock_waits()
            else:
                sock_check_due = True

        if PyList_GET_SIZE(self.ready) or self.stopping:
            timeout = 0
        elif PyList_GET_SIZE(self.scheduled):
            t = <TimerHandle>PyList_GET_ITEM(self.scheduled, 0)
            timeout = t.when_ - _loop_now(self)
            if timeout > MAXIMUM_SELECT_TIMEOUT:
                timeout = MAXIMUM_SELECT_TIMEOUT
            elif not (timeout >= 0):
                # Past, or NaN (a NaN deadline is due at once, as on
                # asyncio 3.11/3.12; a NaN poll timeout would block forever).
                timeout = 0
        else:
            timeout = -1
        if sock_check_due and timeout != 0:
            wait = self.sock_scan_next - now
            if timeout < 0 or timeout > wait:
                timeout = wait

        self.stat_iterations += 1
        if timeout != 0:
            self.polling = True
            t0 = monotonic()
            try:
                n = self.driver.poll(timeout)
            finally:
                self.polling = False
                self.poll_end = monotonic()
                self.stat_poll_time += self.poll_end - t0
        elif (PyDict_GET_SIZE(self.watches) > self.internal_watches
                or self.signal_handlers or not self.driver.idle()):
            n = self.driver.poll(0)
        else:
            # Callbacks are ready and no user fd or signal handler is
            # watched: nothing a zero-timeout poll could report matters now
            # (a pending thread wake-up is drained by the next blocking poll).
            n = 0
        if timeout != 0:
            self.spinning = False
        elif not self.spinning:
            # The last poll blocked, so it let go of the GIL one iteration ago.
            self.spinning = True
        elif _other_threads():
            # Hand the GIL over: a blocking poll releases it, a zero-timeout
            # poll (or none) does not, and a thread waiting for it would
            # otherwise get it only at the switch interval (5 ms) while
            # callbacks keep the loop busy.  asyncio's select(0) and
            # uvloop's uv_run() release it every iteration; here it is
            # released around an empty poll(), the same system call's worth
            # of time for a woken waiter to take it.  (sched_yield() would
            # hand this CPU to any runnable thread, and a CPU-bound one would
            # then keep the GIL a whole interval at every iteration.)  Every
            # iteration: a woken waiter takes tens of microseconds to come
            # back for the GIL, and windows spaced further apart (one per
            # 50 us was tried) it misses, waiting for the switch interval.
            # It costs ~370 instructions and the call, so it is paid only
            # while other threads exist, and not right after a blocking poll
            # (which released the GIL).
            with nogil:
                _poll_nothing(NULL, 0, 0)
                self.driver.gil_wanted = 1
            self.driver.gil_wanted = 0
        if n:
            self._process_io(n)

        if PyList_GET_SIZE(self.scheduled):
            end_time = _loop_now(self) + self.clock_resolution
        while PyList_GET_SIZE(self.scheduled):
            t = <TimerHandle>PyList_GET_ITEM(self.scheduled, 0)
            if t.when_ >= end_time:
                break
            self._heap_pop()
            t.scheduled = False
            self.ready.append(t)

        return self._run_ready()

    cdef int _process_io(self, int n) except -1:
        cdef int i, m
        cdef FdWatch w
        cdef Handle h
        cdef Driver d = self.driver
        for i in range(n):
            w = <FdWatch>d.ready[i]
            m = d.masks[i]
            if w.internal:
                if w is self.waker_watch:
                    self.waker.drain()
                    self.wake_pending = False
                else:
                    self._drain_signal_sock()
                continue
            self.stat_io_events += 1
            if m & EV_READ and w.reader is not None:
                h = <Handle>w.reader
                if h.cancelled_:
                    self._remove_reader(w.fd)
                else:
                    self.ready.append(h)
            if m & EV_WRITE and w.writer is not None:
                h = <Handle>w.writer
                if h.cancelled_:
                    self._remove_writer(w.fd)
                else:
                    self.ready.append(h)
        return 0

    cdef int _run_ready(self) except -1:
        cdef list todo = self.ready
        cdef Py_ssize_t i = 0, n = PyList_GET_SIZE(todo)
        cdef Handle h = None
        cdef bint done = False
        if n == 0:
            return 0
        # Double buffer: callbacks scheduled while these run go to the other
        # list and wait for the next iteration, as in asyncio.
        self.ready = self.ready_spare
        # Each handle leaves the batch before it runs (its slot becomes NULL,
        # which CPython's list code tolerates), so that, as in asyncio, what
        # a callback referenced (a finished task...) is freed as soon as it
        # has run, not when the whole batch is done.  handle_release(h, 1):
        # the loop's only reference is then h's.
        # try/finally, not try/except: its normal path costs nothing, where
        # an except clause saves the exception state on every entry.
        try:
            if not self.debug:
                while i < n:
                    h = _take(todo, i)
                    i += 1
                    if not h.cancelled_:
                        h.run()
                    handle_release(h, 1)
            else:
                self._run_debug(todo, n, &i)
            done = True
        finally:
            if not done:
                # KeyboardInterrupt/SystemExit from a callback (propagating
                # now): what did not run yet runs first on the next
                # iteration.
                if h is not None:
                    handle_release(h, 1)
                rest = todo[i:]
                PyList_SetSlice(todo, 0, n, NULL)
                self.stat_callbacks += i
                self.ready[0:0] = rest
                self.ready_spare = todo
        if n <= SMALL_BATCH:
            # Every slot is NULL already (_take): forget them and keep the
            # storage (PyList_SetSlice frees it and the next append
            # allocates it again, every iteration).
            Py_SET_SIZE(todo, 0)
        else:
            PyList_SetSlice(todo, 0, n, NULL)   # gives a burst's memory back
        self.ready_spare = todo
        self.stat_callbacks += n
        return 0

    cdef int _run_debug(self, list todo, Py_ssize_t n, Py_ssize_t *pi) except -1:
        # _run_ready's loop in debug mode: the running handle is known to
        # the exception handler, and slow callbacks are logged.  *pi counts
        # the handles taken from todo; one that raises is released here.
        cdef Handle h
        cdef double t0, dt
        while pi[0] < n:
            h = _take(todo, pi[0])
            pi[0] += 1
            if h.cancelled_:
                handle_release(h, 1)
                continue
            self.current_handle = h
            try:
                t0 = self._now()
                h.run()
                dt = self._now() - t0
                if dt >= self.slow_callback_duration:
                    aio_logger.warning('Executing %s took %.3f seconds',
                                       _format_handle(h), dt)
            finally:
                self.current_handle = None
                handle_release(h, 1)
        return 0

    # ------------------------------------------------------------------
    # running and stopping

    cdef int _run_forever_setup(self) except -1:
        self._check_closed()
        self._check_process()
        self._check_running()
        # From here on the loop's state changes: anything raised on the way
        # (a KeyboardInterrupt from Ctrl-C landing in the Python code below)
        # undoes it, or the loop would stay "running" for good.
        try:
            self._set_origin_tracking(self.debug)
            self.old_agen_hooks = sys_get_asyncgen_hooks()
            self.thread_id = th_get_ident()
            self.run_ident = PyThread_get_thread_ident()
            sys_set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            aio_events._set_running_loop(self)
            self._install_signal_wakeup()
        except BaseException:
            self._run_forever_cleanup()
            raise
        return 0

    cdef int _run_forever_cleanup(self) except -1:
        cdef Py_ssize_t i
        cdef PyObject *item
        self.stopping = False
        self.thread_id = None
        self.run_ident = 0
        # Pending timers someone else holds too (asyncio.sleep() keeps its
        # timer in its frame) go back under the cyclic GC: a loop dropped
        # unclosed with a sleeping task is then a cycle the GC can see.
        # (Those only the heap holds are walked by _queued_traverse.)
        for i in range(PyList_GET_SIZE(self.scheduled)):
            item = _list_item(<PyObject *>self.scheduled, i)
            if _refcnt(item) > 1:
                handle_track(<Handle>item)
        # Break the loop <-> bound call_soon cycle: an idle loop is freed by
        # reference counting.
        self.bound_soon = None
        self.bound_soon_ts = None
        self.loop_kw = None
        rl_soon_cache_drop(self)
        aio_events._set_running_loop(None)
        self._set_origin_tracking(False)
        if self.old_agen_hooks is not None:
            sys_set_asyncgen_hooks(*self.old_agen_hooks)
            self.old_agen_hooks = None
        self._uninstall_signal_wakeup()
        return 0

    def run_forever(self):
        """Run until stop() is called."""
        self._run_forever_setup()
        try:
            while True:
                self._run_once()
                if self.stopping:
                    break
        finally:
            self._run_forever_cleanup()

    def run_until_complete(self, future):
        """Run until the future (or coroutine, wrapped in a Task) is done and
        return its result, or raise its exception."""
        try:
            self._check_closed()
            self._check_running()
            self._check_process()
        except RuntimeError:
            # Held by the error's traceback, as by asyncio's frame.
            msg.reraise_holding(future)
        new_task = not aio_isfuture(future)
        future = aio_ensure_future(future, loop=self)
        if new_task:
            # An exception raised by the loop stops it: the task's exception
            # then must not be logged as never retrieved.
            future._log_destroy_pending = False
        future.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except:
            if new_task and future.done() and not future.cancelled():
                # The coroutine raised a BaseException: consume it to avoid
                # 'Task exception was never retrieved'.
                future.exception()
            raise
        finally:
            future.remove_done_callback(_run_until_complete_cb)
        if not future.done():
            raise RuntimeError(msg.STOPPED_BEFORE_DONE)
        return future.result()

    def stop(self):
        """Stop after the callbacks of the current iteration have run."""
        self.stopping = True

    def close(self):
        """Close the loop: drop pending callbacks, release the driver and
        the wake-up fds, shut the default executor down without waiting."""
        if self.thread_id is not None:
            raise RuntimeError(msg.CLOSE_RUNNING)
        if self.closed:
            return
        if self.debug:
            aio_logger.debug("Close %r", self)
        self.closed = True
        self.spare_bytes = None
        _release_all(self.ready)
        _release_all(self.scheduled)
        self.timer_cancelled_count = 0
        self.executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        if self.signal_handlers:
            if not sys_is_finalizing():
                for sig in list(self.signal_handlers):
                    self.remove_signal_handler(sig)
            else:
                warnings_warn(f"Closing the loop {self!r} on interpreter shutdown "
                              f"stage, skipping signal handlers removal",
                              ResourceWarning, source=self)
                self.signal_handlers.clear()
        self._close_io()

    def _close_io(self):
        cdef FdWatch w
        cdef list watches = list(self.watches.values())
        for w in watches:
            if w.reader is not None:
                (<Handle>w.reader).cancel()
            if w.writer is not None:
                (<Handle>w.writer).cancel()
            w.reader = w.writer = None
        self.watches.clear()
        if self.sock_waits:
            # Nothing is watched any more: the sockets (a serving Server's
            # listeners among them) are their owners' again.
            self.sock_waits.clear()
        if self.driver is not None:
            self.driver.close()
        for w in watches:
            # A driver's per-watch state may point back at its watch (the
            # io_uring driver's does): the loop's own watches still have
            # interest at close, so drop the link, not leave a cycle.
            w.key = None
        if self.waker is not None:
            self.waker.close()
        if self.signal_sock is not None:
            _signal_wakeup_fds.discard(self.signal_sock[1].fileno())
            for s in self.signal_sock:
                s.close()
            self.signal_sock = None

    # ------------------------------------------------------------------
    # signals during the wait (main thread only)

    cdef int _ensure_signal_sock(self) except -1:
        cdef FdWatch w
        if self.signal_sock is not None:
            return 0
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self.signal_sock = (a, b)
        _signal_wakeup_fds.add(b.fileno())
        w = FdWatch.__new__(FdWatch)
        w.fd = a.fileno()
        w.internal = True
        self.signal_watch = w
        self.watches[w.fd] = w
        self.internal_watches += 1
        self.driver.set_interest(w, EV_READ)
        return 0

    cdef int _install_signal_wakeup(self) except -1:
        # While the loop runs in the main thread, Python's C signal handler
        # writes the signal number to our socket, so a signal delivered to
        # any thread wakes the poll at once.
        if th_get_ident() != th_main_thread().ident:
            return 0
        self._ensure_signal_sock()
        try:
            self.old_wakeup_fd = signal.set_wakeup_fd(
                self.signal_sock[1].fileno(), warn_on_full_buffer=False)
        except ValueError:
            self.old_wakeup_fd = None
        else:
            self.old_wakeup_id = _fd_identity(self.old_wakeup_fd)
        return 0

    cdef int _uninstall_signal_wakeup(self) except -1:
        if self.old_wakeup_fd is None:
            return 0
        old = self.old_wakeup_fd
        old_id = self.old_wakeup_id
        self.old_wakeup_fd = None
        self.old_wakeup_id = None
        if self.signal_handlers:
            # add_signal_handler() keeps the wake-up fd pointed at this loop,
            # as asyncio does: signals that arrive while the loop is stopped
            # wait in the socket and are handled when it runs again.
            return 0
        try:
            current = signal.set_wakeup_fd(-1)
        except ValueError:
            return 0
        if current != self.signal_sock[1].fileno():
            # Set by someone else during the run (another loop's
            # add_signal_handler(), a library's own pipe): theirs stays.
            _set_wakeup_fd_quietly(current)
        elif old >= 0 and _fd_identity(old) == old_id:
            # The fd this run replaced, if it is still the same file: a fd
            # its owner closed meanwhile (its number maybe reused by now)
            # is not put back, and the wake-up fd stays unset.
            _set_wakeup_fd_quietly(old)
        return 0

    def _drain_signal_sock(self):
        others = None
        try:
            while True:
                data = self.signal_sock[0].recv(4096)
                if not data:
                    break
                for signum in data:
                    if not signum:
                        continue
                    if signum in self.signal_handlers:
                        self._handle_signal(signum)
                    else:
                        # Not ours: it belongs to whoever had the wake-up fd
                        # before this run (another loop's handlers).
                        if others is None:
                            others = bytearray()
                        others.append(signum)
        except (BlockingIOError, InterruptedError):
            pass
        if others is not None:
            self._forward_signals(others)
        # The C-level handler only set a flag: run the Python handlers now,
        # so Ctrl-C raises here even if no callback is ready.
        PyErr_CheckSignals()

    def _forward_signals(self, data):
        # While this loop runs in the main thread it holds the wake-up fd,
        # where asyncio's loop leaves it alone: the signal numbers it has no
        # handler for go on to the fd it replaced, so another loop's
        # add_signal_handler() callbacks still run (at once if that loop
        # runs in another thread, or when it runs next).
        old = self.old_wakeup_fd
        if old is None or old < 0 or old == self.signal_sock[1].fileno():
            return
        if _fd_identity(old) != self.old_wakeup_id:
            return   # closed by its owner since (the number may be reused)
        try:
            os.write(old, data)
        except OSError:
            pass     # full or gone: as Python's own handler, drop quietly

    def _handle_signal(self, sig):
        handle = self.signal_handlers.get(sig)
        if handle is None:
            return
        if (<Handle>handle).cancelled_:
            self.remove_signal_handler(sig)
        else:
            self.ready.append(handle)

    def _check_signal(self, sig):
        if not isinstance(sig, int):
            raise TypeError(f'sig must be an int, not {sig!r}')
        if sig not in signal.valid_signals():
            raise ValueError(f'invalid signal number {sig}')

    def add_signal_handler(self, sig, callback, *args):
        """Call callback(*args) from the loop when signal sig arrives
        (main thread only, as in asyncio)."""
        if aio_iscoroutine(callback) or aio_iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        self._ensure_signal_sock()
        try:
            # set_wakeup_fd() raises ValueError outside the main thread.
            prev = signal.set_wakeup_fd(self.signal_sock[1].fileno(),
                                        warn_on_full_buffer=False)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        handle = new_handle(self, callback, args, None)
        if self.debug:
            (<Handle>handle).source_traceback = aio_extract_stack()
        self.signal_handlers[sig] = handle
        try:
            # A Python-level no-op handler makes Python write the signal
            # number to the wake-up fd; SA_RESTART limits EINTR elsewhere.
            signal.signal(sig, _sighandler_noop)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self.signal_handlers[sig]
            if not self.signal_handlers and self.thread_id is None:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    aio_logger.info('set_wakeup_fd(-1) failed: %s', nexc)
            if exc.errno == _errno.EINVAL:
                raise RuntimeError(f'sig {sig:d} cannot be caught')
            raise

    def remove_signal_handler(self, sig):
        """Remove the handler for sig; True if there was one."""
        self._check_signal(sig)
        try:
            del self.signal_handlers[sig]
        except KeyError:
            return False
        if sig == signal.SIGINT:
            handler = signal.default_int_handler
        else:
            handler = signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == _errno.EINVAL:
                raise RuntimeError(f'sig {sig:d} cannot be caught')
            raise
        if not self.signal_handlers and self.thread_id is None:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                aio_logger.info('set_wakeup_fd(-1) failed: %s', exc)
        return True

    @property
    def _signal_handlers(self):
        return self.signal_handlers

    # ------------------------------------------------------------------
    # futures and tasks

    cdef inline object _running_kw(self):
        # {'loop': self} for the futures and tasks the loop makes, made once
        # per run and kept (rl_new_kw); None while not running.
        # _run_forever_cleanup drops it, so an idle loop is still freed by
        # reference counting.
        kw = self.loop_kw
        if kw is None and self.thread_id is not None:
            kw = self.loop_kw = {'loop': self}
        return kw

    cdef object _new_future(self):
        # The futures the loop's own methods wait on (sock_*...): made by
        # a subclass's create_future() if it has one, as asyncio's are.
        if self.future_overridden:
            return self.create_future()
        return self._plain_future()

    cdef object _plain_future(self):
        # loop= is passed: a Future made without it asks asyncio for the
        # running loop, which on 3.11 makes a getpid() system call.
        kw = self._running_kw()
        if kw is None:
            return aio_Future(loop=self)
        return rl_new_kw(aio_Future, (), kw)

    def create_future(self):
        return self._plain_future()

    def create_task(self, coro, *, name=None, context=None):
        if self.closed:
            # Raised from a frame that holds the coroutine, as asyncio's.
            msg.closed_holding(coro)
        if self.task_factory is None:
            # Defaults left out: every keyword costs a dict entry in the call.
            if name is None and context is None:
                kw = self._running_kw()
                if kw is None:
                    task = aio_Task(coro, loop=self)
                else:
                    task = rl_new_kw(aio_Task, (coro,), kw)
            else:
                task = aio_Task(coro, loop=self, name=name, context=context)
            # No frame of ours to trim from task._source_traceback (asyncio
            # deletes its create_task() frame; a compiled method has none).
        else:
            if context is None:
                task = self.task_factory(self, coro)
            else:
                task = self.task_factory(self, coro, context=context)
            if PY313:
                task.set_name(name)
            else:
                aio_tasks._set_task_name(task, name)
        return task

    def set_task_factory(self, factory):
        if factory is not None and not callable(factory):
            raise TypeError('task factory must be a callable or None')
        self.task_factory = factory

    def get_task_factory(self):
        return self.task_factory

    @property
    def _task_factory(self):
        return self.task_factory

    # ------------------------------------------------------------------
    # errors

    def get_exception_handler(self):
        return self.exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(f'A callable object or None is expected, '
                            f'got {handler!r}')
        self.exception_handler = handler

    @property
    def _exception_handler(self):
        return self.exception_handler

    @property
    def _current_handle(self):
        return self.current_handle

    def default_exception_handler(self, context):
        """Log the context's message and details to the 'asyncio' logger,
        exactly as asyncio's default handler does."""
        message = context.get('message')
        if not message:
            message = 'Unhandled exception in event loop'
        exception = context.get('exception')
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        else:
            exc_info = False
        if ('source_traceback' not in context
                and self.current_handle is not None
                and self.current_handle._source_traceback):
            context['handle_traceback'] = self.current_handle._source_traceback
        log_lines = [message]
        for key in sorted(context):
            if key in {'message', 'exception'}:
                continue
            value = context[key]
            if key == 'source_traceback':
                tb = ''.join(traceback.format_list(value))
                value = 'Object created at (most recent call last):\n'
                value += tb.rstrip()
            elif key == 'handle_traceback':
                tb = ''.join(traceback.format_list(value))
                value = 'Handle created at (most recent call last):\n'
                value += tb.rstrip()
            elif sys_is_finalizing() and isinstance(value, (aio_Future, aio_Task)):
                # Interpreter shutdown (a task collected by its last GC
                # passes): _asyncio's repr may already be freed there (a
                # crash on 3.11, found with tornado's suite).  asyncio's
                # Python handler fails before this point then; ours logs
                # the object without its details.
                value = f'<{type(value).__name__} object at {id(value):#x}>'
            else:
                value = repr(value)
            log_lines.append(f'{key}: {value}')
        aio_logger.error('\n'.join(log_lines), exc_info=exc_info)

    def call_exception_handler(self, context):
        if self.exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                aio_logger.error('Exception in default exception handler',
                                 exc_info=True)
            return
        try:
            ctx = None
            if PY312:
                thing = context.get("task")
                if thing is None:
                    thing = context.get("future")
                if thing is None:
                    thing = context.get("handle")
                if thing is not None and hasattr(thing, "get_context"):
                    ctx = thing.get_context()
            if ctx is not None and hasattr(ctx, "run"):
                ctx.run(self.exception_handler, self, context)
            else:
                self.exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    'message': 'Unhandled error in exception handler',
                    'exception': exc,
                    'context': context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                aio_logger.error('Exception in default exception handler '
                                 'while handling an unexpected error '
                                 'in custom exception handler',
                                 exc_info=True)

    # ------------------------------------------------------------------
    # async generators

    def _asyncgen_finalizer_hook(self, agen):
        self.asyncgens.discard(agen)
        if not self.closed:
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen):
        if self.asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning, source=self)
        self.asyncgens.add(agen)

    async def shutdown_asyncgens(self):
        """Shut down all active asynchronous generators."""
        self.asyncgens_shutdown_called = True
        if not len(self.asyncgens):
            return
        closing_agens = list(self.asyncgens)
        self.asyncgens.clear()
        results = await aio_tasks.gather(
            *[ag.aclose() for ag in closing_agens], return_exceptions=True)
        for result, agen in zip(results, closing_agens):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    'message': f'an error occurred during closing of '
                               f'asynchronous generator {agen!r}',
                    'exception': result,
                    'asyncgen': agen,
                })

    # ------------------------------------------------------------------
    # executors

    def run_in_executor(self, executor, func, *args):
        self._check_closed()
        if self.debug:
            self._check_callback(func, 'run_in_executor')
        if executor is None:
            executor = self._default_executor
            if self.executor_shutdown_called:
                raise RuntimeError(msg.EXECUTOR_SHUTDOWN)
            if executor is None:
                executor = cf_ThreadPoolExecutor(thread_name_prefix='asyncio')
                self._default_executor = executor
        return aio_wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor):
        if not isinstance(executor, cf_ThreadPoolExecutor):
            raise TypeError('executor must be ThreadPoolExecutor instance')
        self._default_executor = executor

    async def _shutdown_default_executor(self, timeout):
        self.executor_shutdown_called = True
        if self._default_executor is None:
            return
        future = self.create_future()
        thread = threading.Thread(target=self._do_shutdown, args=(future,))
        thread.start()
        if not PY312:
            try:
                await future
            finally:
                thread.join()
            return
        if not _SDE_TIMEOUT_BOUNDS_WAIT:
            # 3.12 before gh-111358's fix (3.12.1 here): the jobs are waited
            # for whatever the timeout; it bounds the thread's join only.
            try:
                await future
            finally:
                thread.join(timeout)
            if thread.is_alive():
                self._executor_join_timed_out(timeout)
            return
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            self._executor_join_timed_out(timeout)
        else:
            thread.join()

    cdef _executor_join_timed_out(self, timeout):
        # asyncio's words, its typo included.  (A cdef method has no frame:
        # stacklevel=1 is the caller's line, as asyncio's warning gives.)
        warnings.warn("The executor did not finishing joining "
                      f"its threads within {timeout} seconds.",
                      RuntimeWarning, stacklevel=1)
        self._default_executor.shutdown(wait=False)

    def _do_shutdown(self, future):
        try:
            self._default_executor.shutdown(wait=True)
            if not self.closed:
                self.call_soon_threadsafe(_set_result_unless_cancelled,
                                          future, None)
        except Exception as ex:
            if not self.closed and not future.cancelled():
                self.call_soon_threadsafe(future.set_exception, ex)

    # ------------------------------------------------------------------
    # DNS

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        """Resolve in the default executor; numeric hosts (IPv6 scope ids
        included) are resolved at once without a thread round trip."""
        # (Not on a closed loop, nor with flags the socket module would
        # refuse or the C library reject: they fail below as in asyncio;
        # not in debug mode, which logs every query as asyncio does.)
        if (not self.closed and not self.debug and isinstance(flags, int)
                and not (flags & ~_AI_FLAGS) and _is_numeric_query(host, port)):
            try:
                return socket.getaddrinfo(host, port, family, type, proto,
                                          flags | socket.AI_NUMERICHOST)
            except socket.gaierror:
                pass  # not numeric after all: let the resolver decide
        if self.debug:
            return await self.run_in_executor(
                None, self._getaddrinfo_debug, host, port, family, type,
                proto, flags)
        return await self.run_in_executor(
            None, socket.getaddrinfo, host, port, family, type, proto, flags)

    def _getaddrinfo_debug(self, host, port, family, type, proto, flags):
        parts = [f"{host}:{port!r}"]
        if family:
            parts.append(f'family={family!r}')
        if type:
            parts.append(f'type={type!r}')
        if proto:
            parts.append(f'proto={proto!r}')
        if flags:
            parts.append(f'flags={flags!r}')
        text = ', '.join(parts)
        aio_logger.debug('Get address info %s', text)
        t0 = self._now()
        addrinfo = socket.getaddrinfo(host, port, family, type, proto, flags)
        dt = self._now() - t0
        text = f'Getting address info {text} took {dt * 1e3:.3f}ms: {addrinfo!r}'
        if dt >= self.slow_callback_duration:
            aio_logger.info(text)
        else:
            aio_logger.debug(text)
        return addrinfo

    async def getnameinfo(self, sockaddr, flags=0):
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    # ------------------------------------------------------------------
    # readiness callbacks

    cdef FdWatch _watch_for(self, int fd, object fileobj):
        cdef FdWatch w = self.watches.get(fd)
        if w is None:
            w = FdWatch.__new__(FdWatch)
            w.fd = fd
            w.fileobj = fileobj
            self.watches[fd] = w
        return w

    cdef int _update_interest(self, FdWatch w) except -1:
        cdef int mask = 0
        self._check_forked()
        if w.reader is not None:
            mask |= EV_READ
        if w.writer is not None:
            mask |= EV_WRITE
        try:
            self.driver.set_interest(w, mask)
        finally:
            if w.mask == 0 and mask == 0:
                if self.watches.get(w.fd) is w:
                    del self.watches[w.fd]
        return 0

    # Readers and writers share one routine each for adding and removing;
    # `write` picks the slot.  As in asyncio, an invalid file object is
    # reported (ValueError) before a closed loop is (RuntimeError).

    cdef object _add_handler(self, object fileobj, object callback, tuple args,
                             bint write):
        cdef int fd = fileobj_to_fd(fileobj)
        self._check_closed()
        if self.check_fds and fcntl(fd, F_GETFD) == -1:
            # epoll_ctl would refuse a bad fd at once; a driver that arms
            # its polls later (io_uring) must not accept it silently.
            err = _c_errno()
            raise OSError(err, os.strerror(err))
        cdef Handle h = new_handle(self, callback, args, None)
        if self.debug:
            h.source_traceback = aio_extract_stack()
        self._io_start(fd, fileobj, h, write)
        return h

    cdef bint _remove_handler(self, object fileobj, bint write) except -1:
        cdef int fd
        cdef FdWatch w = None
        try:
            fd = fileobj_to_fd(fileobj)
        except OverflowError:
            return False    # never registered (asyncio: a failed lookup)
        except ValueError:
            # A file object closed since it was registered (fileno() is -1
            # now): found by identity, as selectors' exhaustive search does
            # for asyncio, so that its registration goes and a new file that
            # reuses the number is not shadowed by it.
            if self.closed:
                return False
            for candidate in self.watches.values():
                if (<FdWatch>candidate).fileobj is fileobj:
                    w = <FdWatch>candidate
                    break
            if w is None:
                raise
        if self.closed:
            return False
        if w is None:
            w = self.watches.get(fd)
        if w is None or w.internal:
            return False
        old = w.writer if write else w.reader
        if write:
            w.writer = None
        else:
            w.reader = None
        self._update_interest(w)
        if old is not None:
            (<Handle>old).cancel()
            return True
        return False

    cdef object _add_reader(self, object fileobj, object callback, tuple args):
        return self._add_handler(fileobj, callback, args, False)

    cdef object _add_writer(self, object fileobj, object callback, tuple args):
        return self._add_handler(fileobj, callback, args, True)

    cdef bint _remove_reader(self, object fileobj) except -1:
        return self._remove_handler(fileobj, False)

    cdef bint _remove_writer(self, object fileobj) except -1:
        return self._remove_handler(fileobj, True)

    def add_reader(self, fd, callback, *args):
        """Call callback(*args) whenever fd is readable."""
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, args)

    def remove_reader(self, fd):
        """Stop watching fd for reading; True if a reader was removed."""
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd, callback, *args):
        """Call callback(*args) whenever fd is writable."""
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, args)

    def remove_writer(self, fd):
        """Stop watching fd for writing; True if a writer was removed."""
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    cpdef object _take_received(self, int fd):
        # Data read from fd's socket that nobody got yet, as [(bytes,
        # address)...] oldest first, for a transport the socket now becomes
        # (ProactorEventLoop: what a cancelled sock_recv* had received);
        # None here, where reads leave what they do not take in the kernel.
        return None

    def _ensure_fd_no_transport(self, fd):
        # Transports register their fds in _transports (fd -> transport,
        # weakly) so that add_reader & co cannot steal a live transport's
        # fd, as in asyncio.
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(
                f'File descriptor {fd!r} is used by transport {transport!r}')

    # The loop's own transports install prebuilt IOHandles (one per
    # registration, not per event) and remove them by fd.

    cdef int _io_start(self, int fd, object fileobj, Handle h, bint write) except -1:
        # Put h in fd's reader or writer slot, replacing (cancelling) the one
        # there; the driver hears of it only when the interest changes.
        self._check_closed()
        cdef FdWatch w = self._watch_for(fd, fileobj)
        if w.internal:
            raise ValueError(f"fd {fd} is used by the event loop itself")
        old = w.writer if write else w.reader
        if write:
            w.writer = h
        else:
            w.reader = h
        if old is None:
            try:
                self._update_interest(w)
            except BaseException:
                if write:
                    w.writer = None
                else:
                    w.reader = None
                if w.reader is None and w.writer is None and self.watches.get(fd) is w:
                    del self.watches[fd]
                raise
        else:
            (<Handle>old).cancel()
        return 0

    cdef int _io_stop(self, int fd, bint write) except -1:
        if self.closed:
            return 0
        cdef FdWatch w = self.watches.get(fd)
        if w is None or w.internal:
            return 0
        old = w.writer if write else w.reader
        if old is None:
            return 0
        if write:
            w.writer = None
        else:
            w.reader = None
        (<Handle>old).cancel()
        self._update_interest(w)
        return 0

    # ------------------------------------------------------------------
    # low-level socket operations (readiness-based: try the syscall first,
    # wait for readiness only on EAGAIN)

    cdef int _check_sock(self, object sock) except -1:
        check_ssl_socket(sock)
        if self.debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        return 0

    cdef int _check_sock_waits(self) except -1:
        # A kernel request holds a reference to its socket's file: a socket
        # closed (or detached) while a sock_* call waits on it would stay
        # open in the kernel (no FIN; a listener keeps its port and goes on
        # completing handshakes) until the request completes.  The call
        # fails with EBADF instead, and its coroutine (or done callback)
        # cancels the request, which releases the file.
        cdef list closed = None
        if self.driver.n_owned:
            self.driver.fail_closed_owners()    # the ring's sock_* operations
        if not PyDict_GET_SIZE(self.sock_waits):
            return 0
        cdef Py_ssize_t pos = 0
        cdef PyObject *kp
        cdef PyObject *vp
        while PyDict_Next(self.sock_waits, &pos, &kp, &vp):
            if rl_sock_fd(<object>vp) < 0:
                if closed is None:
                    closed = []
                closed.append(<object>kp)
        if closed is not None:
            for fut in closed:
                del self.sock_waits[fut]
                if not hasattr(fut, "set_exception"):
                    fut()           # a server's listener (AcceptCore.__call__)
                elif not fut.done():
                    fut.set_exception(OSError(_errno.EBADF, os.strerror(_errno.EBADF)))
        return 0

    def _sock_read_done(self, fd, fut, handle=None):
        if handle is None or not handle.cancelled():
            self.remove_reader(fd)

    def _sock_write_done(self, fd, fut, handle=None):
        if handle is None or not handle.cancelled():
            self.remove_writer(fd)

    # recv, recv_into, recvfrom, recvfrom_into and sendto share one shape:
    # try sock.<method>(*args); on EAGAIN wait for readiness and retry it
    # from the reader/writer callback until it succeeds or fails.  The
    # method is looked up on each attempt, as asyncio does.

    cdef object _sock_wait(self, object sock, str method, tuple args, bint write):
        # The call would block: a future completed by the reader/writer
        # callback once the socket is ready.  (Awaited by the sock_* method
        # itself: no second coroutine per call.)
        fut = self._new_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        if write:
            handle = self._add_writer(fd, _sock_retry, (fut, sock, method, args))
        else:
            handle = self._add_reader(fd, _sock_retry, (fut, sock, method, args))
        fut.add_done_callback(_sock_done(self, fd, handle, write))
        return fut

    cdef object _sock_now(self, object sock, str method, tuple args):
        # sock.<method>(*args) at once; _AGAIN if it would block.
        self._check_sock(sock)
        try:
            return getattr(sock, method)(*args)
        except (BlockingIOError, InterruptedError):
            return _AGAIN

    async def sock_recv(self, sock, n):
        """Receive up to n bytes from the non-blocking socket sock."""
        # The busiest of them: the method called directly (Cython calls it
        # without making a bound method), not through _sock_now's getattr.
        self._check_sock(sock)
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait(sock, "recv", (n,), False)

    async def sock_recv_into(self, sock, buf):
        """Receive into buf; return the number of bytes received."""
        res = self._sock_now(sock, "recv_into", (buf,))
        if res is _AGAIN:
            res = await self._sock_wait(sock, "recv_into", (buf,), False)
        return res

    async def sock_recvfrom(self, sock, bufsize):
        """Receive a datagram of up to bufsize bytes: (data, address)."""
        res = self._sock_now(sock, "recvfrom", (bufsize,))
        if res is _AGAIN:
            res = await self._sock_wait(sock, "recvfrom", (bufsize,), False)
        return res

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        """Receive a datagram into buf: (nbytes, address)."""
        if not nbytes:
            nbytes = len(buf)
        res = self._sock_now(sock, "recvfrom_into", (buf, nbytes))
        if res is _AGAIN:
            res = await self._sock_wait(sock, "recvfrom_into", (buf, nbytes), False)
        return res

    async def sock_sendall(self, sock, data):
        """Send all of data; None on success, the error otherwise (how much
        was sent is then unknown, as in asyncio)."""
        self._check_sock(sock)
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n == len(data):
            return
        fut = self._new_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle = self._add_writer(fd, self._sock_sendall,
                                  (fut, sock, memoryview(data), [n]))
        fut.add_done_callback(_sock_done(self, fd, handle, True))
        return await fut

    def _sock_sendall(self, fut, sock, view, pos):
        if fut.done():
            return
        start = pos[0]
        try:
            n = sock.send(view[start:])
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            return
        start += n
        if start == len(view):
            fut.set_result(None)
        else:
            pos[0] = start

    async def sock_sendto(self, sock, data, address):
        """Send a datagram to address; return the number of bytes sent."""
        res = self._sock_now(sock, "sendto", (data, address))
        if res is _AGAIN:
            res = await self._sock_wait(sock, "sendto", (data, address), True)
        return res

    async def sock_connect(self, sock, address):
        """Connect sock to address (resolved first for IP families)."""
        self._check_sock(sock)
        if is_socket(sock):
            # ints: socket.py's properties make enums (~1 us each)
            family = sock_family(sock)
            stype = sock_type(sock)
            proto = sock_proto(sock)
        else:
            family = sock.family
            stype = sock.type
            proto = sock.proto
        if family == AF_INET or (_HAS_IPV6 and family == AF_INET6):
            # An IP literal at once (no coroutine), else by getaddrinfo.
            literal = _literal_address(address, family, stype, proto)
            address = (literal if literal is not None else
                       await self._resolve_first(address, family, stype, proto))
        fut = self._new_future()
        self._sock_connect(fut, sock, address)
        try:
            return await fut
        finally:
            fut = None

    def _sock_connect(self, fut, sock, address):
        fd = sock.fileno()
        cdef bint pending = False
        try:
            if type(sock) is _py_socket:
                # connect_ex(): the errno, without an exception object for
                # the usual EINPROGRESS; any other error is raised as
                # connect() raises it.
                try:
                    err = sock.connect_ex(address)
                except (OverflowError, TypeError, ValueError):
                    # A bad address: connect() raises the same error, in its
                    # own words ("connect(): port must be 0-65535."), as
                    # asyncio's call does.
                    sock.connect(address)
                    err = 0
                if err in _CONNECT_PENDING:
                    pending = True
                elif err:
                    raise OSError(err, os.strerror(err))
            else:
                sock.connect(address)
        except (BlockingIOError, InterruptedError):
            pending = True
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            return
        if pending:
            self._ensure_fd_no_transport(fd)
            handle = self._add_writer(fd, self._sock_connect_cb, (fut, sock, address))
            fut.add_done_callback(_sock_done(self, fd, handle, True))
        else:
            fut.set_result(None)

    def _sock_connect_cb(self, fut, sock, address):
        if fut.done():
            return
        try:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                raise OSError(err, f'Connect call failed {address}')
        except (BlockingIOError, InterruptedError):
            pass
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(None)
        finally:
            fut = None

    async def _resolve_first(self, address, family, type, proto):
        # sock_connect's address when it is not an IP literal.
        resolved = await self._ensure_resolved(
            address, family=family, type=type, proto=proto)
        return resolved[0][4]

    async def _ensure_resolved(self, address, *, family=0, type=socket.SOCK_STREAM,
                               proto=0, flags=0, loop=None):
        # `loop`: asyncio's create_* code passes the loop that resolves.
        host, port = address[:2]
        info = _ipaddr_info(host, port, family, type, proto, *address[2:])
        if info is not None:
            return [info]
        if loop is None:
            loop = self
        return await loop.getaddrinfo(host, port, family=family, type=type,
                                      proto=proto, flags=flags)

    async def sock_accept(self, sock):
        """Accept a connection: (conn, address), conn non-blocking."""
        self._check_sock(sock)
        fut = self._new_future()
        self._sock_accept(fut, sock)
        return await fut

    def _sock_accept(self, fut, sock):
        # Cancelled while its reader was already in the ready queue: leave
        # the connection in the backlog for the next accept.  (asyncio
        # 3.11-3.13 accepts it anyway, fails to set the result with
        # InvalidStateError and the connection is lost.)
        if fut.done():
            return
        fd = sock.fileno()
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
        except (BlockingIOError, InterruptedError):
            self._ensure_fd_no_transport(fd)
            handle = self._add_reader(fd, self._sock_accept, (fut, sock))
            fut.add_done_callback(_sock_done(self, fd, handle, False))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result((conn, address))

    # -- sendfile -------------------------------------------------------

    async def sock_sendfile(self, sock, file, offset=0, count=None, *, fallback=True):
        """Send a file with os.sendfile (zero-copy); fall back to reading
        the file in the executor where that is impossible and fallback is
        true."""
        if self.debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _check_sendfile_params(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except aio_SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock, file, offset, count):
        if not hasattr(os, "sendfile"):
            raise aio_SendfileNotAvailableError("os.sendfile() is not available")
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise aio_SendfileNotAvailableError("not a regular file")
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise aio_SendfileNotAvailableError("not a regular file")
        blocksize = count if count else fsize
        if not blocksize:
            return 0
        # A transport's socket is refused before anything is sent (asyncio
        # refuses it when it first waits for writability, after one chunk).
        self._ensure_fd_no_transport(sock.fileno())
        fut = self._new_future()
        self._sock_sendfile_step(fut, None, sock, fileno, offset, count,
                                 blocksize, 0)
        return await fut

    def _sock_sendfile_step(self, fut, registered_fd, sock, fileno, offset,
                            count, blocksize, total_sent):
        fd = sock.fileno()
        if registered_fd is not None:
            # Remove the writer first: an exception below must not leave it.
            # (The internal call: the public one refuses a transport's fd,
            # and raising here would leave the writer, called again and again.)
            self._remove_writer(registered_fd)
        if fut.cancelled():
            self._sock_sendfile_update_filepos(fileno, offset, total_sent)
            return
        if count:
            blocksize = count - total_sent
            if blocksize <= 0:
                self._sock_sendfile_update_filepos(fileno, offset, total_sent)
                fut.set_result(total_sent)
                return
        try:
            sent = os.sendfile(fd, fileno, offset, blocksize)
        except (BlockingIOError, InterruptedError):
            if registered_fd is None:
                self._sock_add_cancellation_callback(fut, sock)
            self._add_writer(fd, self._sock_sendfile_step,
                             (fut, fd, sock, fileno, offset, count, blocksize,
                              total_sent))
        except OSError as exc:
            if (registered_fd is not None and exc.errno == _errno.ENOTCONN
                    and type(exc) is not ConnectionError):
                new_exc = ConnectionError("socket is not connected", _errno.ENOTCONN)
                new_exc.__cause__ = exc
                exc = new_exc
            if total_sent == 0:
                err = aio_SendfileNotAvailableError("os.sendfile call failed")
                self._sock_sendfile_update_filepos(fileno, offset, total_sent)
                fut.set_exception(err)
            else:
                self._sock_sendfile_update_filepos(fileno, offset, total_sent)
                fut.set_exception(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._sock_sendfile_update_filepos(fileno, offset, total_sent)
            fut.set_exception(exc)
        else:
            if sent == 0:
                # EOF
                self._sock_sendfile_update_filepos(fileno, offset, total_sent)
                fut.set_result(total_sent)
            else:
                offset += sent
                total_sent += sent
                if registered_fd is None:
                    self._sock_add_cancellation_callback(fut, sock)
                self._add_writer(fd, self._sock_sendfile_step,
                                 (fut, fd, sock, fileno, offset, count,
                                  blocksize, total_sent))

    def _sock_sendfile_update_filepos(self, fileno, offset, total_sent):
        if total_sent > 0:
            os.lseek(fileno, offset, os.SEEK_SET)

    def _sock_add_cancellation_callback(self, fut, sock):
        def cb(fut):
            if fut.cancelled():
                fd = sock.fileno()
                if fd != -1:
                    self._remove_writer(fd)
        fut.add_done_callback(cb)

    async def _sock_sendfile_fallback(self, sock, file, offset, count):
        if offset:
            file.seek(offset)
        bufsize = aio_constants.SENDFILE_FALLBACK_READBUFFER_SIZE
        blocksize = min(count, bufsize) if count else bufsize
        buf = bytearray(blocksize)
        total_sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        break
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    break
                await self.sock_sendall(sock, view[:read])
                total_sent += read
            return total_sent
        finally:
            if total_sent > 0 and hasattr(file, 'seek'):
                file.seek(offset + total_sent)

    # ------------------------------------------------------------------
    # introspection

    def statistics(self):
        """What the loop has done: driver, iterations, callbacks run, I/O
        events, seconds spent blocked in the poll, thread wake-ups."""
        info = self.driver.info() if self.driver is not None else {}
        info.update({
            "driver": self.driver.name if self.driver is not None else None,
            "wakeup": self.waker.kind if self.waker is not None else None,
            "portable": self.portable,
            "fallback": self._fallback_reason,
            "iterations": self.stat_iterations,
            "callbacks": self.stat_callbacks,
            "io_events": self.stat_io_events,
            "poll_time": self.stat_poll_time,
            "thread_wakeups": self.stat_wakeups,
            "watched_fds": sum(1 for w in self.watches.values()
                               if not (<FdWatch>w).internal),
            "timers": len(self.scheduled),
            "ready": len(self.ready),
        })
        return info

    def __repr__(self):
        return (f'<{type(self).__name__} running={self.is_running()} '
                f'closed={self.is_closed()} debug={self.get_debug()}>')


# ----------------------------------------------------------------------
# module helpers


cdef inline Handle _take(list lst, Py_ssize_t i):
    # Move item i out of lst (leaving NULL): the caller gets its reference.
    cdef PyObject **items = (<PyListObject *>lst).ob_item
    cdef PyObject *p = items[i]
    items[i] = NULL
    cdef Handle h = <Handle>p     # a new reference...
    Py_DECREF(h)                  # ...replacing the list's
    return h


cdef int _release_all(list handles) except -1:
    cdef Handle h
    for h in handles:
        handle_release(h, 2)    # the list + h
    del handles[:]
    return 0


cdef inline Handle _queue_soon(CoreLoop loop, object callback, tuple args,
                              object context):
    # call_soon's work once the arguments are checked: a pooled handle, at
    # the end of the ready queue.
    cdef Handle h = new_owned_handle(loop, callback, args, context)
    if loop.debug:
        h.source_traceback = aio_extract_stack()
    loop.ready.append(h)
    return h


cdef object _soon_entry(object self, object callback, object args, object context):
    cdef CoreLoop loop = <CoreLoop>self
    if loop.closed:
        raise RuntimeError(msg.LOOP_CLOSED)
    if loop.debug:
        loop._check_thread()
        loop._check_callback(callback, 'call_soon')
    return _queue_soon(loop, callback, <tuple>args, context)


cdef object _soon_threadsafe_entry(object self, object callback, object args,
                                   object context):
    cdef CoreLoop loop = <CoreLoop>self
    cdef int wanted
    if loop.closed:
        raise RuntimeError(msg.LOOP_CLOSED)
    if loop.debug:
        loop._check_callback(callback, 'call_soon_threadsafe')
    h = _queue_soon(loop, callback, <tuple>args, context)
    wanted = (<volatile int *>&loop.driver.gil_wanted)[0]
    if wanted == 1:
        # The loop's thread is back from a wait and queued for the GIL that
        # this thread holds: hand it over now.  Otherwise it gets it only
        # when the switch interval (5 ms) forces a switch, and then perhaps
        # to another producer; meanwhile its timers are late and the
        # producers queue callbacks freely.  (asyncio's self-pipe write lets
        # go of the GIL at every call, with much the same effect.)  Its
        # thread is known to want the GIL: always wait here.
        _pace(loop, True, False)
    elif loop.polling:
        # Only a loop blocked in poll() needs waking: a running loop sees the
        # new callback before it polls again (all of this under the GIL).
        if not loop.wake_pending:
            loop.wake_pending = True
            loop.stat_wakeups += 1
            loop.waker.wake()
        elif (wanted == 2
                and PyList_GET_SIZE(loop.ready) > _THREADSAFE_BACKLOG
                and PyThread_get_thread_ident() != loop.run_ident):
            # Woken already and this far behind: the loop's thread is on its
            # way back from the wait (being scheduled, or inside the
            # selectors driver's select(), which has no hook to set 1) and
            # will then wait for the GIL.  Without this, producers queue
            # freely meanwhile (thousands of callbacks per switch interval)
            # and timers fire tens of milliseconds late.  The threshold
            # keeps batches large (a pace per call would cost a wake-up per
            # few callbacks: measured 6x fewer callbacks a second).
            _pace(loop, True, True)
    elif (PyList_GET_SIZE(loop.ready) > _THREADSAFE_BACKLOG
            and loop.run_ident != 0
            and PyThread_get_thread_ident() != loop.run_ident):
        # A busy loop this far behind another thread: let it run.  asyncio's
        # call_soon_threadsafe writes to its self-pipe every time, a system
        # call without the GIL, which paces a producer to the loop; without
        # it a producer keeps the GIL for whole switch intervals, queueing
        # faster than the loop runs callbacks, and timers fire seconds late.
        _pace(loop, False, True)
    return h


cdef void _pace(CoreLoop loop, bint for_gil, bint may_stall) noexcept:
    # Without the GIL, wait (at most ~10 short sleeps) for the loop's thread
    # to take it (for_gil) or to start its next iteration (its current batch
    # run).  Only letting go of the GIL (as asyncio's write does) is not
    # enough with several producers: the GIL then mostly goes to another
    # producer, not to the loop.  If the loop does neither meanwhile, its
    # thread may be held up (a callback blocked in time.sleep(), a join(), a
    # blocking library call...), where waiting cannot help and would cost
    # every call ~1 ms; or the GIL went to other producers.  Until the
    # loop's next iteration, calls then only let go of the GIL once each,
    # as asyncio's self-pipe write does.
    cdef unsigned long long mark = loop.stat_iterations
    cdef volatile int *wanted = &loop.driver.gil_wanted
    cdef int i
    cdef bint moved = False
    cdef timespec ts
    ts.tv_sec = 0
    ts.tv_nsec = 20000
    if may_stall and loop.pace_stalled and loop.pace_stall_iter == mark:
        with nogil:
            _poll_nothing(NULL, 0, 0)
        return
    with nogil:
        _poll_nothing(NULL, 0, 0)
        for i in range(10):
            if for_gil and not wanted[0]:
                moved = True
                break
            if (<volatile_ull *>&loop.stat_iterations)[0] != mark:
                moved = True
                break
            nanosleep(&ts, NULL)
    if not moved and loop.stat_iterations == mark:
        loop.pace_stalled = True
        loop.pace_stall_iter = mark


cdef tuple _SOON_NAMES = ('call_soon', 'call_soon_threadsafe')


cdef PyObject *_soon_get(object obj, int which) except NULL:
    # `loop.call_soon` / `loop.call_soon_threadsafe` (instance access of the
    # data descriptors in ringloop_fastcall.h): a value assigned on the
    # instance first, then the bound object the running loop keeps.
    cdef CoreLoop loop = <CoreLoop>obj
    cdef object bound
    if loop.soon_overridden:
        d = getattr(obj, '__dict__', None)
        if d is not None and _SOON_NAMES[which] in d:
            bound = d[_SOON_NAMES[which]]
            Py_INCREF(bound)
            return <PyObject *>bound
    bound = loop.bound_soon_ts if which else loop.bound_soon
    if bound is None:
        bound = rl_bound_new(obj, which)
        if loop.thread_id is not None:
            # Cached only while running; _run_forever_cleanup drops it.
            if which:
                loop.bound_soon_ts = bound
            else:
                loop.bound_soon = bound
    if loop.thread_id is not None and not loop.soon_overridden:
        rl_soon_cache_put(obj, which, bound)
    Py_INCREF(bound)
    return <PyObject *>bound


cdef int _soon_set(object obj, int which, PyObject *value) except -1:
    # `loop.call_soon = x` / `del loop.call_soon`: kept in the instance
    # __dict__, as for an ordinary method.
    # The flag goes up before the cache is emptied and before the dict is
    # touched (which may run a finalizer that looks call_soon up): from
    # then on no lookup refills the cache, and every lookup reads the dict.
    cdef CoreLoop loop = <CoreLoop>obj
    name = _SOON_NAMES[which]
    d = getattr(obj, '__dict__', None)
    if d is None:
        raise AttributeError(
            f"'{type(obj).__name__}' object attribute '{name}' is read-only")
    loop.soon_overridden = True
    rl_soon_cache_drop(obj)
    if value == NULL:
        try:
            del d[name]
        except KeyError:
            raise AttributeError(name) from None
        finally:
            loop.soon_overridden = any(n in d for n in _SOON_NAMES)
    else:
        d[name] = <object>value
    return 0


cdef object _core_create_future = CoreLoop.create_future
cdef object _core_time = CoreLoop.time


cdef int _time_instance_changed(CoreLoop loop) except -1:
    d = getattr(loop, '__dict__', None)
    loop.time_on_instance = d is not None and 'time' in d
    return loop._time_check()

rl_install_soon_methods(<PyTypeObject *>CoreLoop, _soon_entry,
                        _soon_threadsafe_entry, _soon_get, _soon_set)


def _sighandler_noop(signum, frame):
    """Dummy signal handler: Python writes the signal number to the loop's
    wake-up socket, and the loop calls the registered callback."""
    pass


@cython.final
cdef class _SockDone:
    """A sock_* future's done callback: loop._sock_read_done(fd, fut, handle)
    (or _sock_write_done), as asyncio's
    partial(self._sock_read_done, fd, handle=handle) calls it (a loop
    subclass may override those), without a partial and its keyword dict
    per wait."""
    cdef object loop, fd, handle
    cdef bint write

    def __call__(self, fut):
        if self.write:
            self.loop._sock_write_done(self.fd, fut, self.handle)
        else:
            self.loop._sock_read_done(self.fd, fut, self.handle)

    def __repr__(self):
        # As asyncio's future repr shows the partial:
        # Cls._sock_read_done(fd, handle=...); from 3.13 the arguments
        # only in debug mode.
        name = '_sock_write_done' if self.write else '_sock_read_done'
        qualname = getattr(getattr(self.loop, name, None), '__qualname__', name)
        if PY313 and not self.loop.get_debug():
            return f'{qualname}()'
        return f'{qualname}({self.fd!r}, handle={self.handle!r})'


cdef _SockDone _sock_done(object loop, object fd, object handle, bint write):
    cdef _SockDone d = _SockDone.__new__(_SockDone)
    d.loop = loop
    d.fd = fd
    d.handle = handle
    d.write = write
    return d


def _sock_retry(fut, sock, method, args):
    # Reader/writer callback of _sock_wait: retry the call once ready.
    if fut.done():
        return
    try:
        result = getattr(sock, method)(*args)
    except (BlockingIOError, InterruptedError):
        return
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _fd_identity(fd):
    # (st_dev, st_ino) of the file behind fd, None if fd is not open: tells
    # a fd that is still the same file from a number closed and reused.
    if fd is None or fd < 0:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _set_wakeup_fd_quietly(fd):
    try:
        signal.set_wakeup_fd(fd)
    except (ValueError, OSError):
        pass      # not a usable fd any more: the wake-up fd stays unset


# What shutdown_default_executor(timeout) bounds on the running version:
# the wait for the executor's jobs (3.13, and 3.12 from gh-111358's fix), or
# only the join of the shutdown thread once they finished (3.12.0-3.12.2).
# Read from asyncio's own method, so that a patch release's backport is
# followed whichever it was.
_SDE_TIMEOUT_BOUNDS_WAIT = (
    'timeouts' in aio_base_events.BaseEventLoop.shutdown_default_executor.__code__.co_names)

# run_until_complete()'s done callback is asyncio's own function: code
# recognises the task the loop runs by it.  anyio finds the "main task"
# that way (`callback is asyncio.base_events._run_until_complete_cb`), and
# ties worker threads and processes to the task that asked for them when
# it does not find one: a compiled function of ours made starlette's sync
# endpoints start a thread per request and anyio's to_process kill a
# busy pool.  It runs once per run_until_complete.
_run_until_complete_cb = aio_base_events._run_until_complete_cb


def _set_result_unless_cancelled(fut, result):
    if fut.cancelled():
        return
    fut.set_result(result)


def _format_handle(handle):
    cb = handle._callback
    if isinstance(getattr(cb, '__self__', None), aio_Task):
        return repr(cb.__self__)
    return str(handle)


def _check_sendfile_params(sock, file, offset, count):
    if 'b' not in getattr(file, 'mode', 'b'):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(
                "count must be a positive integer (got {!r})".format(count))
        if count <= 0:
            raise ValueError(
                "count must be a positive integer (got {!r})".format(count))
    if not isinstance(offset, int):
        raise TypeError(
            "offset must be a non-negative integer (got {!r})".format(offset))
    if offset < 0:
        raise ValueError(
            "offset must be a non-negative integer (got {!r})".format(offset))


cdef str _NUMERIC_CHARS = "0123456789abcdefABCDEF.:"


def _is_numeric_query(host, port):
    """True when getaddrinfo(host, port) needs neither DNS nor a services
    lookup: host None or an IP literal (optionally with a %scope), port None,
    an int or digits."""
    if port is not None and not isinstance(port, int):
        if isinstance(port, bytes):
            port = port.decode('ascii', 'replace')
        if not (isinstance(port, str) and port.isdigit()):
            return False
    if host is None:
        return True
    if isinstance(host, bytes):
        try:
            host = host.decode('ascii')
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str) or not host:
        return False
    addr = host.partition('%')[0]
    if not addr:
        return False
    for ch in addr:
        if ch not in _NUMERIC_CHARS:
            return False
    return True


cdef frozenset _CONNECT_PENDING = frozenset({
    _errno.EINPROGRESS, _errno.EAGAIN, _errno.EALREADY, _errno.EINTR})
cdef object _AF_INET_E = socket.AF_INET
cdef object _AF_INET6_E = socket.AF_INET6
cdef object _IPPROTO_TCP_E = socket.IPPROTO_TCP
cdef object _IPPROTO_UDP_E = socket.IPPROTO_UDP
cdef bint _HAS_IPV6 = socket.has_ipv6


cdef inline bint _c_long(object o, long *out):
    # An int (or int subclass: IntEnum) that fits a C long.
    cdef int overflow = 0
    cdef long v
    if not PyLong_Check(o):
        return False
    v = PyLong_AsLongAndOverflow(o, &overflow)
    if overflow:
        return False
    out[0] = v
    return True


cdef object _literal_info(object host, object port, object family, object type,
                          object flowinfo, object scopeid):
    # The common case of _ipaddr_info, in C: a str host of ASCII characters
    # (no NUL, no '%'), an exact int port, and int family/type/proto.
    # Returns what _ipaddr_info returns (the same objects: asyncio's enums
    # where it gives enums), or NotImplemented for "not the common case".
    cdef long c_family = 0, c_type = 0
    cdef Py_ssize_t n
    cdef const char *text
    cdef unsigned char addr[16]
    if not PyUnicode_CheckExact(host) or not PyLong_CheckExact(port):
        return NotImplemented
    if not _c_long(family, &c_family) or not _c_long(type, &c_type):
        return NotImplemented
    if not PyUnicode_IS_ASCII(host):
        return NotImplemented
    text = PyUnicode_AsUTF8AndSize(host, &n)
    if <Py_ssize_t>strlen(text) != n or memchr(text, 37, n) != NULL:   # NUL, '%'
        return NotImplemented
    if c_type == SOCK_STREAM:
        proto = _IPPROTO_TCP_E
    elif c_type == SOCK_DGRAM:
        proto = _IPPROTO_UDP_E
    else:
        return None
    if c_family == AF_UNSPEC:
        if inet_pton(AF_INET, text, addr) == 1:
            return (_AF_INET_E, type, proto, '', (host, port))
        if _HAS_IPV6 and inet_pton(AF_INET6, text, addr) == 1:
            return (_AF_INET6_E, type, proto, '', (host, port, flowinfo, scopeid))
        return None
    if c_family == AF_INET:
        if inet_pton(AF_INET, text, addr) == 1:
            return (family, type, proto, '', (host, port))
        return None
    if c_family == AF_INET6:
        if inet_pton(AF_INET6, text, addr) == 1:
            if _HAS_IPV6:
                return (family, type, proto, '', (host, port, flowinfo, scopeid))
            return (family, type, proto, '', (host, port))
        return None
    return NotImplemented


def _literal_address(address, family, type, proto):
    # sock_connect's address resolved at once if it is an IP literal (as
    # asyncio's _ensure_resolved would), else None.
    host, port = address[:2]
    info = _ipaddr_info(host, port, family, type, proto, *address[2:])
    return None if info is None else info[4]


def _ipaddr_info(host, port, family, type, proto, flowinfo=0, scopeid=0):
    # Resolve an (IP literal, numeric port) pair without getaddrinfo, as
    # asyncio does for sock_connect; None means "ask the resolver".
    if not hasattr(socket, 'inet_pton'):
        return None
    cdef long c_proto = 0
    if _c_long(proto, &c_proto) and (
            c_proto == 0 or c_proto == IPPROTO_TCP or c_proto == IPPROTO_UDP):
        info = _literal_info(host, port, family, type, flowinfo, scopeid)
        if info is not NotImplemented:
            return info
    if proto not in {0, socket.IPPROTO_TCP, socket.IPPROTO_UDP} or host is None:
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None
    if port is None:
        port = 0
    elif isinstance(port, bytes) and port == b'':
        port = 0
    elif isinstance(port, str) and port == '':
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None
    if family == socket.AF_UNSPEC:
        afs = [socket.AF_INET]
        if socket.has_ipv6:
            afs.append(socket.AF_INET6)
    else:
        afs = [family]
    if isinstance(host, bytes):
        host = host.decode('idna')
    if '%' in host:
        # Scope ids need getaddrinfo to be parsed.
        return None
    for af in afs:
        try:
            socket.inet_pton(af, host)
            if socket.has_ipv6 and af == socket.AF_INET6:
                return af, type, proto, '', (host, port, flowinfo, scopeid)
            else:
                return af, type, proto, '', (host, port)
        except OSError:
            pass
    return None


# ---------------------------------------------------------------------------
# asyncio's own methods, borrowed by the loop classes (ringloop/_borrowed.py)

import types as _types
cdef object _FunctionType = _types.FunctionType

cdef extern from "Python.h":
    object rl_method_new "PyMethod_New"(object func, object self)


cdef object _bind_to(object func, object obj):
    # func as an attribute of obj: bound through its __get__, as attribute
    # lookup binds (a plain callable without one, such as a Mock, is not).
    if type(func) is _FunctionType:
        return rl_method_new(func, obj)
    get = getattr(type(func), '__get__', None)
    return func if get is None else get(func, obj, type(obj))


def asyncio_method_of(owner, str name, obj):
    """owner's attribute `name`, looked up now, bound to obj."""
    return _bind_to(getattr(owner, name), obj)


cdef int _queued_traverse(PyObject *o, visitproc visit, void *arg) noexcept:
    # call_soon's handles are kept out of the cyclic GC while queued (see
    # handles.pyx), so a loop dropped unclosed with callbacks pending was a
    # cycle the GC could not see (loop -> ready -> handle -> loop): never
    # collected, never warned about, its fds never closed.  The loop reports
    # what such a handle references as its own, when nothing but the loop
    # can reach the handle: the ready list is the loop's alone (the double
    # buffer may hold it twice) and the handle's only reference is the
    # list's.  A handle with another holder is not walked: that holder,
    # not the loop, would be what keeps its referents alive.
    cdef CoreLoop loop = <CoreLoop>o
    cdef int r
    if loop.ready is not None:
        r = _traverse_owned(<PyObject *>loop.ready,
                            2 if loop.ready is loop.ready_spare else 1, visit, arg)
        if r:
            return r
    if loop.scheduled is not None:
        return _traverse_owned(<PyObject *>loop.scheduled, 1, visit, arg)
    return 0


cdef int _traverse_owned(PyObject *lst, Py_ssize_t own, visitproc visit, void *arg) noexcept:
    # The untracked handles of a queue only the loop holds (own: how many of
    # the list's references are the loop's) that nothing but the list holds.
    cdef PyObject *item
    cdef PyObject *ctx
    cdef Py_ssize_t i
    cdef int r
    if _refcnt(lst) != own:
        return 0
    for i in range(_list_size(lst)):
        item = _list_item(lst, i)
        if item == NULL or _refcnt(item) != 1 or not isinstance(<object>item, Handle):
            continue
        if not (<Handle>item).untracked:
            continue
        r = rl_traverse_of(item, visit, arg)
        if r:
            return r
        if (<Handle>item).ctx_untracked:
            ctx = <PyObject *>(<Handle>item).context
            if ctx != NULL and _refcnt(ctx) == 1:
                r = rl_traverse_of(ctx, visit, arg)
                if r:
                    return r
    return 0


rl_patch_traverse(CoreLoop, _queued_traverse)


cdef class AsyncioMethod:
    """A class attribute that is `owner`'s method `name`, looked up on owner
    at each access: a patch of asyncio's class reaches ringloop's loops."""

    cdef readonly object owner
    cdef readonly str name

    def __init__(self, owner, str name):
        getattr(owner, name)          # fails now for a name asyncio lacks
        self.owner = owner
        self.name = name

    def __get__(self, obj, objtype):
        func = getattr(self.owner, self.name)
        if obj is None:
            return func
        return _bind_to(func, obj)

    def __repr__(self):
        return f"<{self.owner.__name__}.{self.name}, looked up at each use>"
