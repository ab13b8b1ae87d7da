# The driver seam: what the core loop asks of an I/O backend.
#
# A driver multiplexes file descriptors for the loop.  The core keeps one
# FdWatch per watched fd (its reader/writer handles) and tells the driver the
# interest mask; the driver's poll() blocks (without the GIL) for at most the
# given timeout and leaves the ready watches and their masks in ``ready``/
# ``masks``, which the core turns into ready callbacks before any callback
# runs.  Completion drivers (io_uring) implement the same calls with POLL_ADD
# and add operation submission on top; see docs/architecture.md.

cdef enum:
    EV_READ = 1
    EV_WRITE = 2


cdef class FdWatch:
    cdef:
        int fd
        int mask            # interest the driver currently holds (EV_*)
        bint internal       # the loop's own wake-up fd: no handles
        object fileobj      # what the user passed (int or object with fileno())
        object reader       # Handle or None
        object writer       # Handle or None
        object key          # the selectors driver's SelectorKey, if any


cdef class Driver:
    cdef:
        readonly str name
        # Results of the last poll(): borrowed FdWatch pointers (the loop's
        # dict owns them) and EV_* masks.
        void **ready
        int *masks
        int capacity
        # Operations in flight for a socket object (a completion driver's
        # sock_* calls): the loop has them checked for sockets closed
        # meanwhile (fail_closed_owners) while there are any.
        Py_ssize_t n_owned
        # 2 while a blocking wait runs; 1, set without the GIL, once it has
        # returned and the loop's thread is about to take the GIL back (the
        # selectors driver, whose select() has no such hook, keeps 2 until
        # it has the GIL); 0 once it has it.  call_soon_threadsafe callers
        # on other threads read it to step aside (see the core loop's
        # _soon_threadsafe_entry).
        int gil_wanted

    cdef int set_interest(self, FdWatch w, int mask) except -1
    cdef int poll(self, double timeout) except -1
    cdef bint idle(self) noexcept        # nothing queued or in flight
    cdef int close(self) except -1
    cdef dict info(self)
    cdef int _grow(self, int n) except -1
    cdef int fail_closed_owners(self) except -1


cdef class Waker:
    """Wakes a loop blocked in poll() from another thread."""
    cdef:
        readonly int read_fd
        readonly int write_fd
        readonly str kind
    cdef int wake(self) nogil
    cdef int drain(self) except -1
    cdef int close(self) except -1


cdef Waker make_waker(bint portable)
