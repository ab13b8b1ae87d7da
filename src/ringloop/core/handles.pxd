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

    cdef int run(self) except -1
    cdef int _report(self, exc) except -1


cdef class TimerHandle(Handle):
    pass


cdef Handle new_handle(object loop, object callback, tuple args, object context)
cdef TimerHandle new_timer(object loop, double when, object callback, tuple args,
                           object context)
cdef bint timer_lt(TimerHandle a, TimerHandle b)
