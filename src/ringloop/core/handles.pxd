cdef class Handle:
    cdef:
        object callback
        tuple args
        object context          # contextvars.Context the callback runs in
        object loop
        bint cancelled_          # cancel() was called
        object source_traceback  # list of frames (debug mode) or None
        object repr_cache        # repr frozen at cancel() in debug mode
        # Timer fields live here too: TimerHandle adds no fields, so it has
        # Handle's size and shares its freelist (Cython allows freelists on
        # base classes only, and reuses them for same-size subclasses).
        double when_
        unsigned long long seq   # FIFO order among equal deadlines
        bint scheduled           # still in the loop's heap
        # Loop-owned handles (call_soon*, call_later/at) are kept out of the
        # cyclic GC while queued: the loop owns them, so they cannot be part
        # of unreachable garbage, and scanning thousands of pending handles
        # dominated the cost of bursts.  handle_release() puts a handle back
        # under the GC when the loop lets go while anyone else still holds it.
        bint untracked
        # The context copy made for a loop-owned handle is kept out of the
        # GC with it (a burst of call_soon_threadsafe() otherwise spent a
        # third of its time in collections scanning the copies).  CPython's
        # context dealloc assumes a tracked object: whoever lets go of such a
        # handle tracks the copy again first (handle_release, __dealloc__).
        bint ctx_untracked
        object __weakref__       # asyncio's handles can be weakly referenced

    cdef int run(self) except -1
    cdef int _run_failed(self, int rc, object ctx) except -1
    cdef int _run_other_context(self, object ctx, object cb, object args) except -1
    cdef int _report(self, exc) except -1
    cdef object _shown_callback(self)


cdef class TimerHandle(Handle):
    pass


cdef Handle new_handle(object loop, object callback, tuple args, object context)
cdef Handle new_owned_handle(object loop, object callback, tuple args, object context)
cdef void handle_release(Handle h, Py_ssize_t loop_refs) noexcept
cdef void handle_track(Handle h) noexcept
cdef TimerHandle new_timer(object loop, double when, object callback, tuple args,
                           object context)
from cpython.object cimport PyObject


cdef inline bint timer_lt(PyObject *a, PyObject *b) noexcept:
    """Heap order of two TimerHandles (borrowed): deadline, then FIFO."""
    cdef double wa = (<TimerHandle>a).when_
    cdef double wb = (<TimerHandle>b).when_
    if wa != wb:
        return wa < wb
    return (<TimerHandle>a).seq < (<TimerHandle>b).seq


# I/O events of the loop's own transports.  An IOHandle sits in an FdWatch's
# reader/writer slot like any Handle, so the loop's poll/ready machinery
# (ordering, cancellation, debug timing) treats it exactly as asyncio treats
# the bound-method handles of its transports; running it calls a C method of
# its target instead of a Python callable: no handle, bound method or
# argument tuple per event.
cdef class IOTarget:
    cdef int on_readable(self) except -1
    cdef int on_writable(self) except -1


cdef class IOHandle(Handle):
    cdef:
        IOTarget target
        bint write_side


cdef IOHandle new_io_handle(object loop, IOTarget target, bint write, object context)
