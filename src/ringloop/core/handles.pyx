"""Handle and TimerHandle: the callbacks the loop schedules.

Same contract as asyncio.Handle/TimerHandle (cancel, cancelled, when, and
get_context on 3.12+), as compact extension types with freelists.  They are
not instances of asyncio.Handle: that class cannot be subclassed from an
extension type, and nothing in asyncio's API requires the base class.
"""

cimport cython
from cpython.ref cimport Py_INCREF, Py_DECREF

import sys
from asyncio import format_helpers as _fh

cdef extern from "ringloop_call.h":
    int rl_run_in_context(object ctx, object cb, object args) noexcept
    ctypedef int (*rl_target_fn)(object) except -1
    int rl_run_target(object ctx, rl_target_fn fn, object target) noexcept
    int rl_pending_error() except -1

cdef extern from "Python.h":
    object PyContext_CopyCurrent()
    int PyContext_Exit(object ctx) except -1
    bint PyContext_CheckExact(object o)

cdef bint PY312 = sys.version_info >= (3, 12)
cdef bint PY313 = sys.version_info >= (3, 13)
cdef object _format_callback_source = _fh._format_callback_source


@cython.freelist(1024)
cdef class Handle:
    def __init__(self, *args, **kwargs):
        raise TypeError("ringloop handles are created by the event loop")

    def __dealloc__(self):
        # Before Cython drops the fields: the context copy must be tracked
        # when it dies (see handles.pxd).
        _track_context(self)

    def cancel(self):
        if not self.cancelled_:
            self.cancelled_ = True
            if self.loop is not None and self.loop.get_debug():
                # Keep a useful repr after the callback is dropped.
                self.repr_cache = repr(self)
            self.callback = None
            self.args = None

    def cancelled(self):
        return self.cancelled_

    def get_context(self):
        return self.context

    @property
    def _callback(self):
        return self._shown_callback()

    cdef object _shown_callback(self):
        # What reprs, error messages and ``_callback`` show as the callback.
        return self.callback

    @property
    def _args(self):
        return self.args

    @property
    def _cancelled(self):
        return self.cancelled_

    @property
    def _source_traceback(self):
        return self.source_traceback

    @property
    def _context(self):
        return self.context

    @property
    def _loop(self):
        return self.loop

    def _run(self):
        self.run()

    cdef int run(self) except -1:
        # Strong references for the duration of the call: the callback may
        # cancel its own handle, which drops the handle's.
        cdef object cb = self.callback
        cdef object args = self.args
        cdef object ctx = self.context
        cdef int rc = rl_run_in_context(ctx, cb, args)
        if rc == 0:
            return 0
        if rc == -1 and not PyContext_CheckExact(ctx):
            # Not a contextvars.Context (call_soon(..., context=x) takes
            # anything, as asyncio's does): asyncio calls x.run(cb, *args).
            return self._run_other_context(ctx, cb, args)
        # What the callback referenced is not kept alive while the error is
        # reported (asyncio's frame has let go of it by then).
        cb = None
        args = None
        return self._run_failed(rc, ctx)

    cdef int _run_failed(self, int rc, object ctx) except -1:
        # The callback raised (rc -2, its context still entered), its
        # context could not be entered (rc -1: the same context scheduled
        # twice and one callback running the other), or not left (rc -3: C
        # code left another context entered).  As in asyncio, where all
        # three are errors of Context.run(), SystemExit and KeyboardInterrupt
        # propagate and anything else goes to the exception handler, which
        # runs inside the `except` (where sys.exc_info() is the exception,
        # as in asyncio's Handle._run).
        try:
            rl_pending_error()
        except BaseException as exc:
            if rc == -2:
                PyContext_Exit(ctx)
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise
            self._report(exc)
        return 0

    cdef int _run_other_context(self, object ctx, object cb, object args) except -1:
        try:
            rl_pending_error()      # PyContext_Enter's TypeError: dropped
        except TypeError:
            pass
        try:
            if args is None:
                ctx.run(cb)
            else:
                ctx.run(cb, *args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._report(exc)
        return 0

    cdef int _report(self, exc) except -1:
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            raise exc
        loop = self.loop
        if PY313:
            cb = _format_callback_source(self._shown_callback(), self.args,
                                         debug=loop.get_debug())
        else:
            cb = _format_callback_source(self._shown_callback(), self.args)
        context = {
            'message': f'Exception in callback {cb}',
            'exception': exc,
            'handle': self,
        }
        if self.source_traceback:
            context['source_traceback'] = self.source_traceback
        loop.call_exception_handler(context)
        return 0

    def _repr_info(self):
        info = [self._class_name()]
        if self.cancelled_:
            info.append('cancelled')
        if self.callback is not None:
            if PY313:
                info.append(_format_callback_source(
                    self._shown_callback(), self.args, debug=self.loop.get_debug()))
            else:
                info.append(_format_callback_source(self._shown_callback(), self.args))
        if self.source_traceback:
            frame = self.source_traceback[len(self.source_traceback) - 1]
            info.append(f'created at {frame[0]}:{frame[1]}')
        return info

    def _class_name(self):
        return 'Handle'

    def __repr__(self):
        if self.repr_cache is not None:
            return self.repr_cache
        return '<{}>'.format(' '.join(self._repr_info()))


cdef class TimerHandle(Handle):
    def when(self):
        return self.when_

    @property
    def _when(self):
        return self.when_

    @property
    def _scheduled(self):
        return self.scheduled

    def cancel(self):
        if not self.cancelled_ and self.loop is not None:
            self.loop._timer_handle_cancelled(self)
        Handle.cancel(self)

    def _class_name(self):
        return 'TimerHandle'

    def _repr_info(self):
        info = Handle._repr_info(self)
        pos = 2 if self.cancelled_ else 1
        info.insert(pos, f'when={self.when_}')
        return info

    def __hash__(self):
        return hash(self.when_)

    def __richcmp__(self, other, int op):
        if not isinstance(other, TimerHandle):
            return NotImplemented
        cdef double a = self.when_
        cdef double b = (<TimerHandle>other).when_
        if op == 0:
            return a < b
        if op == 4:
            return a > b
        # As asyncio's: <= and >= are the strict test or __eq__; != is
        # the negation of __eq__.
        if (op == 1 and a < b) or (op == 5 and a > b):
            return True
        equal = (a == b and self.callback == (<TimerHandle>other).callback
                 and self.args == (<TimerHandle>other).args
                 and self.cancelled_ == (<TimerHandle>other).cancelled_)
        return (not equal) if op == 3 else equal


cdef extern from "Python.h":
    ctypedef struct PyTypeObject:
        PyObject *tp_dict
    ctypedef struct PyObject
    int PyDict_DelItemString(PyObject *d, const char *key) except -1
    void PyType_Modified(PyTypeObject *t)

if not PY312:
    # get_context() appeared in 3.12: on 3.11 the method is removed from the
    # type, so 3.11 users see 3.11's Handle API.
    PyDict_DelItemString((<PyTypeObject *>Handle).tp_dict, "get_context")
    PyType_Modified(<PyTypeObject *>Handle)


cdef Handle new_handle(object loop, object callback, tuple args, object context):
    """A handle under the cyclic GC (readers, writers, signal handlers)."""
    cdef Handle h = Handle.__new__(Handle)
    _fill(h, loop, callback, args, context)
    return h


cdef extern from "Python.h":
    void PyObject_GC_Track(void *op)
    void PyObject_GC_UnTrack(void *op)
    int PyObject_GC_IsTracked(object op)
    Py_ssize_t Py_REFCNT(object op)


cdef inline int _fill(Handle h, object loop, object callback, tuple args,
                     object context) except -1:
    h.callback = callback
    h.args = args
    h.loop = loop
    h.context = PyContext_CopyCurrent() if context is None else context
    return 0


cdef inline int _fill_owned(Handle h, object loop, object callback, tuple args,
                           object context) except -1:
    """Fill an untracked handle the loop owns (new or from the pool)."""
    h.callback = callback
    h.args = args
    h.loop = loop
    if context is None:
        # A fresh copy only this handle holds: untracked with the handle.
        h.context = PyContext_CopyCurrent()
        PyObject_GC_UnTrack(<void *>h.context)
        h.ctx_untracked = True
    else:
        h.context = context
    return 0


cdef inline int _untrack(Handle h) except -1:
    PyObject_GC_UnTrack(<void *>h)
    h.untracked = True
    return 0


# Recycled call_soon handles.  A Handle the loop lets go of while nobody else
# holds it (the C Task drops the one call_soon returns at once) is emptied
# and kept here, still untracked, for the next call_soon: no allocation,
# zeroing, GC link/unlink or deallocation per callback.  Nobody can observe
# the reuse: the handle had no other reference and takes no weak ones.
cdef enum:
    POOL_MAX = 256
cdef PyObject *_pool[POOL_MAX]
cdef int _pool_n = 0


cdef Handle new_owned_handle(object loop, object callback, tuple args, object context):
    """A handle the loop owns until it runs: kept out of the cyclic GC."""
    global _pool_n
    cdef Handle h
    if _pool_n:
        _pool_n -= 1
        h = <Handle>_pool[_pool_n]      # a new reference for h...
        Py_DECREF(h)                     # ...replacing the pool's
    else:
        h = Handle.__new__(Handle)
        _untrack(h)
    _fill_owned(h, loop, callback, args, context)
    return h


cdef void handle_release(Handle h, Py_ssize_t loop_refs) noexcept:
    """The loop is about to drop h; loop_refs is how many references the
    loop itself holds right now.  Anything more is someone else's: put the
    handle (and its context copy) back under the cyclic GC.  A plain Handle
    only the loop holds goes to the pool instead."""
    global _pool_n
    if not h.untracked:
        return
    if Py_REFCNT(h) > loop_refs:
        h.untracked = False
        if not PyObject_GC_IsTracked(h):
            PyObject_GC_Track(<void *>h)
        _track_context(h)
    elif _pool_n < POOL_MAX and type(h) is Handle:
        _track_context(h)
        # Emptied before it is pooled: dropping these may run arbitrary
        # code (__del__), which may schedule callbacks and use the pool.
        h.callback = None
        h.args = None
        h.context = None
        h.loop = None
        h.cancelled_ = False
        if h.source_traceback is not None:
            h.source_traceback = None
        if h.repr_cache is not None:
            h.repr_cache = None
        if _pool_n < POOL_MAX:
            Py_INCREF(h)
            _pool[_pool_n] = <PyObject *>h
            _pool_n += 1


cdef void handle_track(Handle h) noexcept:
    """Put a queued handle (and its context copy) back under the cyclic GC."""
    if not h.untracked:
        return
    h.untracked = False
    if not PyObject_GC_IsTracked(h):
        PyObject_GC_Track(<void *>h)
    _track_context(h)


cdef inline void _track_context(Handle h) noexcept:
    if h.ctx_untracked:
        h.ctx_untracked = False
        if not PyObject_GC_IsTracked(h.context):
            PyObject_GC_Track(<void *>h.context)


cdef TimerHandle new_timer(object loop, double when, object callback, tuple args,
                           object context):
    """A timer the loop owns until it fires or is dropped (see above).
    One that someone else also holds (asyncio.sleep() keeps its timer in
    its frame) is handed back to the GC when a run ends (handle_track), so
    that a loop dropped unclosed with a sleeping task is collectable."""
    cdef TimerHandle h = TimerHandle.__new__(TimerHandle)
    _untrack(h)
    _fill_owned(h, loop, callback, args, context)
    h.when_ = when
    return h


cdef class IOTarget:
    """Something the loop calls when an fd is readable or writable."""

    cdef int on_readable(self) except -1:
        return 0

    cdef int on_writable(self) except -1:
        return 0

    def _handle_callback(self, bint write):
        """What an I/O handle for this target shows as its callback (in its
        repr and in the exception handler's message)."""
        return self


cdef int _target_readable(object t) except -1:
    return (<IOTarget>t).on_readable()


cdef int _target_writable(object t) except -1:
    return (<IOTarget>t).on_writable()


cdef class IOHandle(Handle):
    """A reader/writer handle that calls IOTarget.on_readable/on_writable."""

    cdef int run(self) except -1:
        cdef object ctx = self.context
        cdef IOTarget t = self.target
        cdef int rc = rl_run_target(
            ctx, _target_writable if self.write_side else _target_readable, t)
        if rc == 0:
            return 0
        return self._run_failed(rc, ctx)

    def cancel(self):
        Handle.cancel(self)
        self.target = None

    cdef object _shown_callback(self):
        # asyncio's handle calls the transport's _read_ready/_write_ready;
        # ours calls the target in C, and shows what the target names.
        if self.target is None:
            return self.callback
        return self.target._handle_callback(self.write_side)


cdef IOHandle new_io_handle(object loop, IOTarget target, bint write, object context):
    cdef IOHandle h = IOHandle.__new__(IOHandle)
    h.loop = loop
    h.target = target
    h.write_side = write
    h.callback = target      # for repr and debug messages
    h.args = ()
    h.context = context
    return h
