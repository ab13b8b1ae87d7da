cimport cython
from ringloop.core.handles cimport Handle, TimerHandle
from ringloop.drivers.base cimport Driver, FdWatch, Waker


# A _socket.socket's family, type and protocol as ints (no enum conversion).
cdef bint is_socket(object o) except -1
cdef int sock_family(object sock) except? -1
cdef int sock_type(object sock) except? -1
cdef int sock_proto(object sock) except? -1


@cython.final
cdef class TransportMap:
    cdef dict refs               # fd -> weakref.ref to its transport
    cdef int put(self, object fd, object transport) except -1
    cdef object _live(self, object fd)


cdef class CoreLoop:
    cdef:
        # --- scheduling -------------------------------------------------
        list ready               # Handles to run on the next iteration
        list ready_spare         # the other half of the double buffer
        list scheduled           # binary heap of TimerHandles (timer_lt)
        long timer_cancelled_count
        unsigned long long timer_seq
        bint stopping
        bint closed
        object thread_id         # threading.get_ident() of the running thread
        unsigned long run_ident  # the same as a C value (0: not running)
        object bound_soon        # loop.call_soon while running (ringloop_fastcall.h)
        object bound_soon_ts     # loop.call_soon_threadsafe, likewise
        bint soon_overridden     # call_soon* assigned on the instance
        bint future_overridden   # the class defines its own create_future()
        bint time_overridden     # loop.time() is not ours (class or instance)
        bint time_on_instance    # `time` assigned on the instance
        unsigned int time_type_tag  # the type's version tag when last checked
        double clock_resolution

        # --- debug ------------------------------------------------------
        bint debug
        public double slow_callback_duration
        object current_handle
        bint origin_tracking_enabled
        int origin_tracking_saved_depth

        # --- errors, factories ------------------------------------------
        object exception_handler
        object task_factory

        # --- executor, async generators ---------------------------------
        public object _default_executor
        bint executor_shutdown_called
        object asyncgens         # weakref.WeakSet of live async generators
        bint asyncgens_shutdown_called
        object old_agen_hooks

        # --- I/O --------------------------------------------------------
        Driver driver
        dict watches             # fd -> FdWatch
        int internal_watches     # how many of them are the loop's own fds
        Waker waker
        FdWatch waker_watch
        bint polling             # inside driver.poll() (GIL released)
        bint spinning            # the last iteration did not block either
        bint wake_pending        # a wake-up was written and not yet drained
        # call_soon_threadsafe pacing (loop.pyx, _pace) timed out during
        # iteration pace_stall_iter + 1: the loop's thread is held up (in a
        # callback that blocks without the GIL); no pacing until it moves on.
        bint pace_stalled
        unsigned long long pace_stall_iter
        object signal_sock       # socketpair for signal.set_wakeup_fd (main thread)
        FdWatch signal_watch
        object old_wakeup_fd
        object old_wakeup_id     # (st_dev, st_ino) of that fd's file, or None
        dict signal_handlers     # signum -> Handle (add_signal_handler)
        bint portable
        bint check_fds           # validate fds in add_reader/add_writer (io_uring)
        public object _fallback_reason   # why this is not the kind asked for
        unsigned long fork_gen   # rl_fork_gen() when made: differs in a forked child
        int owner_pid            # getpid() when made

        # --- transports ---------------------------------------------------
        public TransportMap _transports   # fd -> transport, weakly
        char *rbuf                  # the stream transports' shared read buffer
        Py_ssize_t rbuf_size
        bint rbuf_lent              # a read's bytes are in rbuf while Python code
                                    # may run: a nested read waits (stream.pyx)
        object spare_bytes          # a read's bytes nobody kept (stream.pyx)
        object loop_kw              # {'loop': self} while running (_new_future)
        Py_ssize_t spare_cap        # how many bytes its allocation holds
        # future -> socket.socket of each sock_* call waiting on a kernel
        # request (ProactorCore; None on the selector kind): checked each
        # iteration for sockets closed meanwhile (_check_sock_waits)
        dict sock_waits
        unsigned long long sock_scan_mark   # stat_callbacks at the last check
        double sock_scan_next               # monotonic() the next check may run
        unsigned long long sock_scan_iter   # stat_iterations at the last check
        double poll_end                     # monotonic() after the last blocking poll

        # --- statistics ---------------------------------------------------
        unsigned long long stat_iterations
        unsigned long long stat_callbacks
        unsigned long long stat_io_events
        unsigned long long stat_wakeups
        double stat_poll_time

    cdef inline int _check_closed(self) except -1
    cpdef object _take_received(self, int fd)
    cdef _executor_join_timed_out(self, timeout)
    cdef inline object _running_kw(self)
    cdef object _new_future(self)
    cdef object _plain_future(self)
    cdef int _check_thread(self) except -1
    cdef int _check_forked(self) except -1
    cdef int _check_process(self) except -1
    cdef int _check_callback(self, object callback, str method) except -1
    cdef TimerHandle _call_at(self, double when, object callback, tuple args,
                              object context)
    cdef int _heap_push(self, TimerHandle h) except -1
    cdef TimerHandle _heap_pop(self)
    cdef int _heapify(self) except -1
    cdef int _run_once(self) except -1
    cdef double _now(self) except? -1.0
    cdef int _time_check(self) except -1
    cdef int _process_io(self, int n) except -1
    cdef int _run_ready(self) except -1
    cdef int _run_debug(self, list todo, Py_ssize_t n, Py_ssize_t *pi) except -1
    cdef int _run_forever_setup(self) except -1
    cdef int _run_forever_cleanup(self) except -1
    cdef int _set_origin_tracking(self, bint enabled) except -1
    cdef FdWatch _watch_for(self, int fd, object fileobj)
    cdef int _update_interest(self, FdWatch w) except -1
    cdef object _add_handler(self, object fileobj, object callback, tuple args,
                             bint write)
    cdef bint _remove_handler(self, object fileobj, bint write) except -1
    cdef object _add_reader(self, object fileobj, object callback, tuple args)
    cdef object _add_writer(self, object fileobj, object callback, tuple args)
    cdef bint _remove_reader(self, object fileobj) except -1
    cdef bint _remove_writer(self, object fileobj) except -1
    cdef int _ensure_signal_sock(self) except -1
    cdef int _install_signal_wakeup(self) except -1
    cdef int _uninstall_signal_wakeup(self) except -1
    cdef int _check_sock(self, object sock) except -1
    cdef int _check_sock_waits(self) except -1
    cdef object _sock_now(self, object sock, str method, tuple args)
    cdef object _sock_wait(self, object sock, str method, tuple args, bint write)
    cdef int _io_start(self, int fd, object fileobj, Handle h, bint write) except -1
    cdef int _io_stop(self, int fd, bint write) except -1
