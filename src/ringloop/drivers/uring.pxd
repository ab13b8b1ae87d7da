# The io_uring driver: readiness (the Driver seam) plus completion operations.
#
# ---------------------------------------------------------------------------
# Interface for the loop (ProactorEventLoop integration)
# ---------------------------------------------------------------------------
#
# Creation:   UringDriver(entries=256, cq_entries=1024, disable=())
#             raises UringUnavailable(OSError) when io_uring cannot be used
#             here (ENOSYS/EPERM/EACCES/ENOMEM at setup, kernel too old,
#             non-Linux); its message names the cause and says to use
#             SelectorEventLoop.  `disable` (iterable of str) switches
#             optional features off, for tests and diagnostics:
#             "single_issuer", "defer_taskrun", "coop_taskrun",
#             "submit_all", "ext_arg", "multishot_poll", "r_disabled".
#             Module-level probe() -> dict reports what works (cached).
#
# Readiness (same seam as epoll; see base.pxd):
#   set_interest(w, mask)   never blocks, never makes a system call: it
#             records the interest; POLL_ADD / ASYNC_CANCEL SQEs go out with
#             the next poll().  Level-triggered like epoll: a watch still
#             ready after its callback ran is reported again by the next
#             poll().  w.key holds the driver's per-watch state (do not
#             touch it); the driver keeps a strong ref to w while a kernel
#             poll request for it is in flight, so ready[] pointers are
#             always valid.  Watches with w.internal (waker eventfd, signal
#             socket: the loop drains them fully) use multishot POLL_ADD.
#   poll(timeout)  submits everything queued and waits with ONE
#             io_uring_enter (GIL released only when it may block), reaps
#             CQEs: completion ops finish their futures right there (their
#             done callbacks are scheduled with the future's loop, i.e. via
#             call_soon), readiness goes to ready[]/masks[] (return value =
#             count).  EINTR -> PyErr_CheckSignals(), returns 0.
#
# Completion operations (call from the loop's thread, in a running loop):
#   Each takes an asyncio Future `fut` created by the caller and returns
#   the UringOp (or None when it completed synchronously from a stash).
#   Argument errors (bad address, buffer not writable, closed driver, fork
#   child) raise synchronously and do not touch fut.  Otherwise fut gets
#   exactly one outcome, set only if fut is not already done:
#     set_result(value) on success, set_exception(OSError(errno, strerror))
#     on failure (OSError picks the subclass: ConnectionResetError...),
#     OSError(ECANCELED) when forget_fd() cancelled it.
#   The op adds itself as a done callback on fut: cancelling fut (e.g. task
#   cancellation, wait_for timeout) cancels the kernel request (ASYNC_CANCEL
#   by user_data).  The op keeps every buffer/sockaddr/msghdr it gave the
#   kernel until its final CQE, whatever happens to fut.
#
#     op_recv(fd, nbytes, fut)              -> bytes (b"" at EOF)
#     op_recv_into(fd, buf, nbytes, fut)    -> int   (nbytes 0 = len(buf);
#                                              holds a writable Py_buffer)
#     op_recvfrom(fd, nbytes, fut)          -> (bytes, addr)
#     op_recvfrom_into(fd, buf, nbytes, fut)-> (int, addr)
#     op_send(fd, data, fut)                -> int (one send)
#     op_sendall(fd, data, fut)             -> None (resubmits the rest)
#     op_sendto(fd, data, family, addr, fut)-> int
#     op_accept(fd, fut)                    -> (conn_fd, addr); conn_fd is
#                                              SOCK_CLOEXEC|SOCK_NONBLOCK,
#                                              owned by the caller
#     op_connect(fd, family, addr, fut)     -> None
#   Addresses follow the socket module: AF_INET (host, port), AF_INET6
#   (host, port[, flowinfo[, scope_id]]), AF_UNIX str/bytes (abstract names
#   with a leading NUL); host must be numeric or resolvable (resolved
#   synchronously like socket.sendto would; asyncio resolves before).
#
#   op_cancel(op)   request cancellation (idempotent).  The op's future is
#             NOT touched: the caller cancels its own future.
#   forget_fd(fd)   call before closing an fd that may have ops pending:
#             cancels them (by user_data, so it works even once the fd is
#             closed or reused), drops the fd's recv stash and closes its
#             stashed accepted connections.  Cheap no-op when nothing is
#             pending (an array lookup).
#
# Stashes (nothing lost to a cancellation race): a recv whose CQE brings
# data after its future was cancelled keeps the bytes per fd; the next
# op_recv*/op_recvfrom* on that fd returns them first (before any newer
# data, message boundaries kept for datagram sockets).  A stash belongs to
# the socket (st_dev, st_ino) that had the fd when the op was cancelled:
# once the number is another socket's, the bytes are dropped, never handed
# to it.  An accept that completes after cancellation stashes (conn_fd,
# addr) for the next op_accept on that listening fd (the loop's sock_accept
# waits for readiness instead, so that a cancelled accept takes nothing).
# The loop may also query/take them:
#     has_stash(fd) -> bint;  take_recv_stash(fd) -> bytes or None
#     take_recv_stash_items(fd) -> list of (bytes, addr) or None
#     take_accept_stash(fd) -> list of (conn_fd, addr) (caller owns fds)
# A receive or accept whose future got its result, but whose awaiting task
# was cancelled before it resumed, hands the result back to the front of
# the stash (the loop calls these; an accepted fd is closed instead once
# the driver is closing):
#     restore_recv(fd, data, addr);  restore_accept(fd, conn_fd, addr)
#
# close()   cancels every in-flight request and waits (bounded, 2 s) for the
#           final CQEs, cancels the futures still pending, closes stashed
#           connections, unmaps the rings and closes the ring fd.  Call it
#           BEFORE marking the loop closed if futures should see their
#           CancelledError callbacks scheduled (errors from a closed loop's
#           call_soon are swallowed).  Ops that cannot be drained (another
#           thread owns a single-issuer ring, or the 2 s bound) keep their
#           memory forever (leaked on purpose: the kernel may still write).
#
# Threads: the ring starts disabled and is enabled by the first thread that
# submits (poll()).  If another thread later polls, the driver rebuilds the
# ring for it (polls are re-armed); completion ops in flight at that moment
# cannot be moved: their futures get RuntimeError and their memory is kept.
# Fork: any use from a forked child raises RuntimeError.
# ---------------------------------------------------------------------------

from cpython.object cimport PyObject
from libc.stdint cimport uint64_t

from ringloop.drivers.base cimport Driver, FdWatch
from ringloop.includes.uring cimport (
    rl_sqe, rl_cqe, sockaddr_storage, socklen_t, msghdr, iovec,
)


cdef class _WatchState:
    """The driver's per-FdWatch state (kept in FdWatch.key)."""
    cdef:
        FdWatch w
        int want                  # EV_* interest the loop asked for
        UringOp rd                # poll request for EV_READ in flight, or None
        UringOp wr                # poll request for EV_WRITE in flight, or None
        UringOp spare             # a finished one-shot poll request, for the next re-arm
        bint queued               # waiting in the driver's arm list
        bint dead                 # fd was closed (EBADF): silent until re-set
        bint multishot            # internal watch: multishot POLL_ADD
        # reporting: one ready[] slot per watch per poll()
        unsigned long long ready_gen
        int ready_slot


cdef class UringOp:
    """One kernel request (or a chain of them, for sendall / EAGAIN retry)
    and everything it owns until its final CQE."""
    cdef:
        # --- state machine ----------------------------------------------
        unsigned char kind        # OPK_*
        unsigned char state       # ST_NEW, ST_SUBMITTED, ST_CANCELLING, ST_DONE
        unsigned char oflags      # OPF_*
        int fd
        uint64_t ud               # user_data of the request in flight
        UringDriver drv           # set while in flight (cancel from fut)
        object fut

        # --- intrusive lists (borrowed; the in-flight ref keeps us alive) --
        PyObject *prev
        PyObject *next
        PyObject *fd_prev
        PyObject *fd_next

        # --- memory owned until the final CQE ------------------------------
        object obj                # bytes received into / data sent / None
        Py_buffer view            # recv_into / sendall targets
        bint has_view
        Py_ssize_t nbytes         # requested length
        Py_ssize_t pos            # sendall progress
        sockaddr_storage addr     # peer address (in or out)
        socklen_t addrlen
        msghdr msg
        iovec iov
        object addr_obj           # caller's address (connect error text)
        object owner              # the socket object a receive reads for, or None
        unsigned long long id_dev # its socket's identity when cancelled (OPF_IDENT)
        unsigned long long id_ino

        # --- poll requests -------------------------------------------------
        _WatchState ws            # None once detached (interest dropped)
        unsigned int events       # POLL* mask asked for


cdef class UringDriver(Driver):
    cdef:
        # --- the ring ------------------------------------------------------
        int ring_fd
        unsigned int setup_flags      # flags the ring was created with
        unsigned int features         # IORING_FEAT_* reported by the kernel
        unsigned int req_entries      # what the caller asked for
        unsigned int req_cq_entries
        void *sq_ring_ptr
        size_t sq_ring_sz
        void *cq_ring_ptr             # == sq_ring_ptr with FEAT_SINGLE_MMAP
        size_t cq_ring_sz
        rl_sqe *sqes
        size_t sqes_sz
        unsigned *sq_khead
        unsigned *sq_ktail
        unsigned *sq_kflags
        unsigned sq_mask
        unsigned sq_entries
        unsigned sq_tail              # our tail (published before enter)
        unsigned *cq_khead
        unsigned *cq_ktail
        unsigned *cq_koverflow
        rl_cqe *cqes
        unsigned cq_mask
        unsigned cq_entries

        # --- ownership: process, thread -------------------------------------
        int pid
        unsigned long fork_gen
        bint enabled                  # R_DISABLED ring enabled (or never disabled)
        bint owner_set
        uint64_t owner                # rl_thread_token() of the single issuer
        bint closed

        # --- features in use -------------------------------------------------
        set disabled                  # names switched off by the caller
        bint use_ext_arg
        bint use_multishot_poll
        bint single_issuer
        bint defer_taskrun
        bint cancel_queued            # an ASYNC_CANCEL awaits submission
        # The caller cancels ops itself (its coroutine catches the
        # cancellation at `await fut` and calls op_cancel): ops then skip
        # registering as their future's done callback, two method calls less.
        public bint caller_cancels
        bint taskrun_flag
        unsigned char ops[64]         # opcode supported (REGISTER_PROBE)

        # --- in flight ---------------------------------------------------------
        PyObject *inflight_head       # every op holding a kernel request
        Py_ssize_t n_inflight         # incl. poll requests
        Py_ssize_t n_ops              # completion ops only
        Py_ssize_t n_aux              # cancel/remove requests pinning a target op
        bint closing
        PyObject **fd_heads           # per-fd list of completion ops
        int fd_cap
        list arm_list                 # _WatchStates needing POLL_ADD
        list orphans                  # ops abandoned with their memory (never freed)
        uint64_t timeout_ud           # TIMEOUT SQE in flight (fallback), or 0
        unsigned long long timeout_seq
        unsigned long long poll_gen
        int nready

        # --- stashes -------------------------------------------------------------
        dict recv_stash               # fd -> [is_stream, list of (bytes, addr), identity]
        dict accept_stash             # fd -> list of (conn_fd, addr)

        # --- statistics ----------------------------------------------------------
        unsigned long long st_enter
        unsigned long long st_sqes
        unsigned long long st_cqes
        unsigned long long st_waits
        unsigned long long st_overflow_flushes
        unsigned long long st_rearms
        unsigned long long st_poll_reuses
        unsigned long long st_ops
        unsigned long long st_cancels
        unsigned long long st_eagain
        unsigned long long st_stashed
        unsigned long long st_migrations
        unsigned long long st_sq_full

    # ring life cycle
    cdef int _setup(self) except -1
    cdef int _map(self, int fd, void *params) except -1
    cdef int _unmap(self)
    cdef int _probe_ops(self) except -1
    cdef int _enable(self) except -1
    cdef int _check_usable(self) except -1
    cdef int _switch_thread(self) except -1

    # submission / completion
    cdef rl_sqe *_sqe(self) except NULL
    cdef int _enter(self, unsigned to_submit, unsigned min_complete,
                    unsigned flags, void *arg, size_t argsz, bint block) noexcept
    cdef int _flush(self) except -1
    cdef int _reap(self) except -1
    cdef int _handle_cqe(self, uint64_t ud, int res, unsigned flags) except -1
    cdef int _track(self, UringOp op) except -1
    cdef int _untrack(self, UringOp op) except -1
    cdef int _unlink(self, UringOp op) except -1
    cdef int _unlink_orphan(self, UringOp op, object exc, bint cancel) except -1
    cdef int _grow_fds(self, int n) except -1
    cdef int _issue(self, UringOp op) except -1
    cdef int _cancel_req(self, UringOp op) except -1
    cdef int _issue_pollwait(self, UringOp op) except -1

    # readiness
    cdef int _arm(self, _WatchState ws) except -1
    cdef int _drop_poll(self, UringOp op) except -1
    cdef int _arm_pending(self) except -1
    cdef int _poll_cqe(self, UringOp op, int res, unsigned flags) except -1
    cdef int _report(self, _WatchState ws, int m) except -1

    # completion ops
    cdef UringOp _new_op(self, int kind, int fd, object fut)
    cdef int _start(self, UringOp op) except -1
    cdef UringOp _recv(self, int kind, int fd, Py_ssize_t nbytes, object fut)
    cdef UringOp _recv_into(self, int kind, int fd, object buf, Py_ssize_t nbytes, object fut)
    cdef UringOp _send(self, int kind, int fd, object data, object fut)
    cdef int _op_cqe(self, UringOp op, int res, unsigned flags) except -1
    cdef int _finish(self, UringOp op, int res) except -1
    cdef int _stash_recv(self, UringOp op, bytes data, object addr) except -1
    cdef list _stash_entry(self, int fd, object ident)
    cdef bint _stash_live(self, int fd) except -1
    cdef object _from_stash(self, int fd, Py_ssize_t n, bint want_addr)
    cdef int _abandon_all(self, str why, bint cancel_futures) except -1

    # the loop's API
    cdef UringOp op_recv(self, int fd, Py_ssize_t nbytes, object fut)
    cdef UringOp op_recv_into(self, int fd, object buf, Py_ssize_t nbytes, object fut)
    cdef UringOp op_recvfrom(self, int fd, Py_ssize_t nbytes, object fut)
    cdef UringOp op_recvfrom_into(self, int fd, object buf, Py_ssize_t nbytes, object fut)
    cdef UringOp op_send(self, int fd, object data, object fut)
    cdef UringOp op_sendall(self, int fd, object data, object fut)
    cdef UringOp op_sendto(self, int fd, object data, int family, object addr, object fut)
    cdef UringOp op_accept(self, int fd, object fut)
    cdef UringOp op_connect(self, int fd, int family, object addr, object fut)
    cdef int op_cancel(self, UringOp op) except -1
    cdef int set_owner(self, UringOp op, object sock) except -1
    cdef int fail_closed_owners(self) except -1
    cdef int _flush_cancels(self) except -1
    cdef bint idle(self) noexcept
    cdef int forget_fd(self, int fd) except -1
    cdef bint has_stash(self, int fd)
    cdef object take_recv_stash(self, int fd)
    cdef object take_recv_stash_items(self, int fd)
    cdef list take_accept_stash(self, int fd)
    cdef int restore_recv(self, int fd, bytes data, object addr) except -1
    cdef int restore_accept(self, int fd, int conn_fd, object addr) except -1
