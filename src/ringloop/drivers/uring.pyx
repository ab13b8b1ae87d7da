"""io_uring driver (Linux): readiness through POLL_ADD plus completion ops.

How io_uring behaves, and what this driver does about it:

* Two rings shared with the kernel: we write SQEs and bump the SQ tail, the
  kernel consumes them inside io_uring_enter (no SQPOLL thread here) and
  appends CQEs we consume by bumping the CQ head.  Indices are free-running
  32-bit counters; loads of the kernel's index are acquire, stores of ours
  release.  Everything (structs, constants, syscall numbers) is declared in
  ringloop_uring.h: no liburing, no <linux/io_uring.h> at build time.
* One io_uring_enter per loop iteration: SQEs queued by set_interest() and
  the op_* methods go out with the next poll()'s enter, which also waits
  (GETEVENTS, min_complete=1, timeout as an EXT_ARG timespec, or a TIMEOUT
  SQE on kernels without EXT_ARG).  The SQ is flushed earlier only when full.
* Whatever a submitted SQE points at (buffers, sockaddr, msghdr, iovec) may
  be read or written by the kernel until that request's *final* CQE - even
  after the awaiting future was cancelled, and even after ASYNC_CANCEL
  (cancellation is a request too; it can lose the race).  So each UringOp
  owns its memory and holds a reference to itself (the user_data is its
  address) until that CQE.  Cancel/remove requests targeting an op pin it
  too, so its address cannot be reused by a new op while a stale cancel is
  on its way (the ABA problem of user_data keys).
* Readiness is level-triggered like epoll, which multishot POLL_ADD is not:
  the kernel posts a poll CQE on a wake-up, and a socket nobody reads from
  is never woken again.  Level semantics need a readiness check per
  reported event; a one-shot POLL_ADD re-armed in the next enter *is* that
  check (the kernel evaluates the mask at arm time and completes at once if
  still ready), at the cost of one SQE and no extra syscall.  Multishot is
  used where edge semantics are correct: the loop's own wake-up fds, which
  the loop drains completely (FdWatch.internal).  Not the transports'
  sockets: a short read does not prove a socket drained (TCP urgent data,
  an AF_UNIX out-of-band byte, and SCM_RIGHTS and SO_PASSCRED messages on
  AF_UNIX stop a read early), and no wake-up would report the rest.  A
  poll request is dropped with ASYNC_CANCEL, which marks it cancelled
  whatever its state: a POLL_REMOVE that finds it busy (a wake-up being
  processed) fails with EALREADY and leaves it armed, holding the file: a
  multishot request always, a one-shot one when the wake-up's completion
  finds the file no longer ready (drained meanwhile) and re-arms it.
  Readers and writers of one fd are separate requests, so changing one
  never disturbs the other.
* A poll request holds a reference to the *file*: closing the fd number
  does not end it (epoll forgets closed fds; io_uring keeps the socket
  alive!).  Interest must be dropped (set_interest(w, 0) -> ASYNC_CANCEL)
  and ops cancelled (forget_fd) before a socket is closed.  Both target
  requests by user_data, never by fd, so they still work when the number
  has been closed or reused by the time the SQE is submitted.
* Sockets opened O_NONBLOCK: io_uring normally arms an internal poll and
  retries, but some kernels/files report -EAGAIN; the op then waits on a
  one-shot POLL_ADD of its own and reissues itself.  A non-blocking
  connect may likewise end in -EINPROGRESS: we wait for POLLOUT and read
  SO_ERROR.  -EINTR results are retried.
* Thread affinity: SINGLE_ISSUER|DEFER_TASKRUN make completions cheaper,
  but only one task may then submit (and, with DEFER_TASKRUN, reap): any
  other gets -EEXIST.  asyncio lets a loop be created in one thread and run
  or closed in another, so the ring is created R_DISABLED and enabled by the
  first thread that submits.  If another thread polls later, the ring is
  rebuilt for it: polls are re-armed and never-submitted SQEs reissued;
  completion ops already in the old ring cannot be moved (their futures get
  RuntimeError, their memory is kept forever) and later rings drop
  SINGLE_ISSUER so that it cannot happen twice.
* Fork: the rings are MAP_SHARED with the parent's kernel context.  They
  are marked MADV_DONTFORK, and any use from a child (detected through a
  pthread_atfork counter, not a getpid() per call) raises RuntimeError.
* CQ overflow: the CQ has 1024 entries by default (4x the SQ); beyond it, kernels with
  FEAT_NODROP (required) keep completions in an overflow list and set
  IORING_SQ_CQ_OVERFLOW: we reap and enter with GETEVENTS until it clears.
* Errors: -errno in cqe.res.  ECANCELED/ENOENT/EALREADY differ across
  kernel versions for cancelled work; only the op's final CQE matters.
* Setup errors ENOSYS (no io_uring, or seccomp), EPERM (seccomp, the
  kernel.io_uring_disabled sysctl, io_uring_group), EACCES (LSM) and ENOMEM
  (RLIMIT_MEMLOCK, per user: measured on 6.18, ~85 KiB for a 256/4096
  ring, ~36 KiB for 256/1024) mean "unavailable": UringUnavailable.  The
  kernel frees a closed ring's memory asynchronously, so ENOMEM is retried
  for up to 62 ms before it is reported.
"""

__all__ = ["UringDriver", "UringUnavailable", "probe", "uring_available"]

import os
import socket as _socket

from ringloop import _messages as msg

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.buffer cimport (
    PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE,
)
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetObject
from libc.stdint cimport uint64_t, uintptr_t, uint32_t, uint16_t
from libc.string cimport memset, memcpy, strlen
from libc.stdlib cimport realloc, free

cdef extern from "ringloop_compat.h":
    int rl_sock_fd(object sock)     # a socket.socket's fd field, -1 once closed

cdef extern from "<errno.h>" nogil:
    int errno
    enum:
        EINTR
        EAGAIN
        EBUSY
        ENOSYS
        EPERM
        EACCES
        ENOMEM
        EINVAL
        ECANCELED
        EBADF
        ETIME
        EINPROGRESS
        EEXIST
from libc.math cimport floor
from posix.stat cimport struct_stat, fstat

from ringloop.drivers.base cimport Driver, FdWatch, EV_READ, EV_WRITE
from ringloop.includes.uring cimport *

cdef extern from "Python.h":
    int _PyBytes_Resize(PyObject **, Py_ssize_t) except -1
    void PyErr_WriteUnraisable(object)


# --------------------------------------------------------------------------
# constants

cdef enum:
    # op kinds
    OPK_POLL = 1
    OPK_RECV
    OPK_RECV_INTO
    OPK_RECVFROM
    OPK_RECVFROM_INTO
    OPK_SEND
    OPK_SENDALL
    OPK_SENDTO
    OPK_ACCEPT
    OPK_CONNECT

cdef enum:
    ST_NEW = 0
    ST_SUBMITTED = 1        # a kernel request is (or will be) in flight
    ST_CANCELLING = 2       # ASYNC_CANCEL sent, final CQE pending
    ST_DONE = 3

cdef enum:
    OPF_FORGOTTEN = 1       # forget_fd() cancelled it: drop late results
    OPF_POLLWAIT = 2        # waiting on its own POLL_ADD after -EAGAIN
    OPF_MULTI = 8           # a multishot POLL_ADD
    OPF_IDENT = 16          # id_dev/id_ino: its socket's identity when cancelled

# user_data tags (low 3 bits; op objects are at least 8-aligned)
cdef enum:
    UD_OP = 0               # the op's request: ptr
    UD_TIMEOUT = 1          # (seq << 3) | 1: wait timeout (fallback)
    UD_AUX = 2              # ptr | 2: cancel/remove pinning op ptr; 2 alone: ignore
    UD_POLLWAIT = 4         # ptr | 4: op waiting for readiness after EAGAIN

DEF CLOSE_DRAIN_SECONDS = 2.0
DEF SETUP_ENOMEM_RETRIES = 10     # backing off from 1 ms (see _setup)

_OPK_NAMES = {OPK_POLL: "poll", OPK_RECV: "recv", OPK_RECV_INTO: "recv_into",
              OPK_RECVFROM: "recvfrom", OPK_RECVFROM_INTO: "recvfrom_into",
              OPK_SEND: "send", OPK_SENDALL: "sendall", OPK_SENDTO: "sendto",
              OPK_ACCEPT: "accept", OPK_CONNECT: "connect"}
_ST_NAMES = {ST_NEW: "new", ST_SUBMITTED: "submitted",
             ST_CANCELLING: "cancelling", ST_DONE: "done"}

_SETUP_FLAG_NAMES = [
    (RL_SETUP_CQSIZE, "CQSIZE"), (RL_SETUP_CLAMP, "CLAMP"),
    (RL_SETUP_R_DISABLED, "R_DISABLED"), (RL_SETUP_SUBMIT_ALL, "SUBMIT_ALL"),
    (RL_SETUP_COOP_TASKRUN, "COOP_TASKRUN"), (RL_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"),
    (RL_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"), (RL_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"),
    (RL_SETUP_NO_SQARRAY, "NO_SQARRAY"),
]
_FEATURE_NAMES = [
    (RL_FEAT_SINGLE_MMAP, "SINGLE_MMAP"), (RL_FEAT_NODROP, "NODROP"),
    (RL_FEAT_SUBMIT_STABLE, "SUBMIT_STABLE"), (RL_FEAT_RW_CUR_POS, "RW_CUR_POS"),
    (RL_FEAT_CUR_PERSONALITY, "CUR_PERSONALITY"), (RL_FEAT_FAST_POLL, "FAST_POLL"),
    (RL_FEAT_POLL_32BITS, "POLL_32BITS"), (RL_FEAT_SQPOLL_NONFIXED, "SQPOLL_NONFIXED"),
    (RL_FEAT_EXT_ARG, "EXT_ARG"), (RL_FEAT_NATIVE_WORKERS, "NATIVE_WORKERS"),
    (RL_FEAT_RSRC_TAGS, "RSRC_TAGS"), (RL_FEAT_CQE_SKIP, "CQE_SKIP"),
    (RL_FEAT_LINKED_FILE, "LINKED_FILE"), (RL_FEAT_REG_REG_RING, "REG_REG_RING"),
    (RL_FEAT_RECVSEND_BUNDLE, "RECVSEND_BUNDLE"), (RL_FEAT_MIN_TIMEOUT, "MIN_TIMEOUT"),
]
_OPCODE_NAMES = [
    (RL_OP_NOP, "NOP"), (RL_OP_POLL_ADD, "POLL_ADD"), (RL_OP_POLL_REMOVE, "POLL_REMOVE"),
    (RL_OP_SENDMSG, "SENDMSG"), (RL_OP_RECVMSG, "RECVMSG"), (RL_OP_TIMEOUT, "TIMEOUT"),
    (RL_OP_TIMEOUT_REMOVE, "TIMEOUT_REMOVE"), (RL_OP_ACCEPT, "ACCEPT"),
    (RL_OP_ASYNC_CANCEL, "ASYNC_CANCEL"), (RL_OP_LINK_TIMEOUT, "LINK_TIMEOUT"),
    (RL_OP_CONNECT, "CONNECT"), (RL_OP_CLOSE, "CLOSE"), (RL_OP_READ, "READ"),
    (RL_OP_WRITE, "WRITE"), (RL_OP_SEND, "SEND"), (RL_OP_RECV, "RECV"),
    (RL_OP_SPLICE, "SPLICE"), (RL_OP_PROVIDE_BUFFERS, "PROVIDE_BUFFERS"),
    (RL_OP_SHUTDOWN, "SHUTDOWN"), (RL_OP_MSG_RING, "MSG_RING"), (RL_OP_SOCKET, "SOCKET"),
    (RL_OP_SEND_ZC, "SEND_ZC"), (RL_OP_SENDMSG_ZC, "SENDMSG_ZC"),
]
# Opcodes the driver cannot work without (all present since 5.6, the first
# kernel with IORING_REGISTER_PROBE).
_REQUIRED_OPS = (RL_OP_POLL_ADD, RL_OP_POLL_REMOVE, RL_OP_ASYNC_CANCEL, RL_OP_TIMEOUT,
                 RL_OP_TIMEOUT_REMOVE, RL_OP_RECV, RL_OP_SEND, RL_OP_RECVMSG,
                 RL_OP_SENDMSG, RL_OP_ACCEPT, RL_OP_CONNECT)

_KNOWN_DISABLE = frozenset({"single_issuer", "defer_taskrun", "coop_taskrun",
                            "submit_all", "ext_arg", "multishot_poll", "r_disabled"})

rl_install_atfork()


cdef extern from "<time.h>" nogil:
    ctypedef struct _rl_timespec "struct timespec":
        long tv_sec
        long tv_nsec
    int _rl_clock_gettime "clock_gettime"(int clk_id, _rl_timespec *tp)
    int _RL_CLOCK_MONOTONIC "CLOCK_MONOTONIC"


cdef extern from "<unistd.h>" nogil:
    int _rl_usleep "usleep"(unsigned int usec)


cdef inline double _monotonic() noexcept nogil:
    # C-level clock: close() may run at interpreter shutdown, when Python
    # modules are already gone.
    cdef _rl_timespec ts
    _rl_clock_gettime(_RL_CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


class UringUnavailable(OSError):
    """io_uring cannot be used in this process (kernel, sysctl, seccomp,
    memlock limit, or platform).  Use ringloop.SelectorEventLoop instead."""


def uring_available():
    return bool(RINGLOOP_HAVE_URING)


cdef str _strerror(int err):
    return os.strerror(err)


cdef object _unavailable(int err, str what):
    cdef str cause
    name = _errno_name(err)
    if err == ENOSYS:
        cause = ("the kernel has no io_uring (older than 5.1, built without "
                 "CONFIG_IO_URING) or a seccomp filter answers ENOSYS for it")
    elif err == EPERM:
        cause = ("io_uring is not permitted: the kernel.io_uring_disabled sysctl "
                 "is 1 or 2 (or this process is outside kernel.io_uring_group), or "
                 "a seccomp filter blocks it (Docker's and Kubernetes' default "
                 "profiles do)")
    elif err == EACCES:
        cause = "a security module (SELinux/AppArmor) denied io_uring"
    elif err == ENOMEM:
        cause = ("the ring's memory could not be allocated: without "
                 "CAP_IPC_LOCK it counts against RLIMIT_MEMLOCK (`ulimit -l`"
                 f"{_memlock_limit()}), which all of this user's processes "
                 "share; raise that limit, or make smaller rings "
                 "(ProactorEventLoop(cq_entries=...))")
    else:
        cause = _strerror(err)
    return UringUnavailable(
        err, f"io_uring is unavailable: {what} failed with {name} ({cause}); "
             f"use ringloop.SelectorEventLoop (epoll) instead")


cdef str _memlock_limit():
    # ", now N KiB" for the message above, or "" if it cannot be read.
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    except (ImportError, OSError, ValueError):
        return ""
    if soft == resource.RLIM_INFINITY:
        return ", now unlimited"
    return f", now {soft // 1024} KiB"


cdef str _errno_name(int err):
    import errno as _errno
    return _errno.errorcode.get(err, f"errno {err}")


# --------------------------------------------------------------------------
# per-watch state and ops

@cython.final
cdef class _WatchState:
    def __cinit__(self):
        self.want = 0
        self.queued = False
        self.dead = False
        self.multishot = False
        self.ready_gen = 0
        self.ready_slot = -1


@cython.freelist(64)
@cython.final
cdef class UringOp:
    """A completion operation (or a poll request) and the memory it owns."""

    def __cinit__(self):
        self.state = ST_NEW
        self.has_view = False
        self.prev = self.next = NULL
        self.fd_prev = self.fd_next = NULL

    def __dealloc__(self):
        if self.has_view:
            PyBuffer_Release(&self.view)
            self.has_view = False

    # The op is its future's done callback: a cancelled future cancels the
    # kernel request.  After our own completion the callback was removed.
    def __call__(self, fut):
        if self.state == ST_SUBMITTED and self.drv is not None:
            try:
                if fut.cancelled():
                    self.drv.op_cancel(self)
            except Exception:
                pass

    @property
    def kind(self):
        return _OPK_NAMES.get(self.kind, "?")

    @property
    def state(self):
        return _ST_NAMES.get(self.state, "?")

    @property
    def fd(self):
        return self.fd

    def __repr__(self):
        return (f"<UringOp {_OPK_NAMES.get(self.kind, '?')} fd={self.fd} "
                f"{_ST_NAMES.get(self.state, '?')}>")


# --------------------------------------------------------------------------
# addresses: socket-module semantics

cdef int _fill_sockaddr(int family, object addr, sockaddr_storage *ss,
                        socklen_t *lenp) except -1:
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6
    cdef sockaddr_un *sun
    cdef bytes hb, path
    cdef long port, flowinfo = 0, scope_id = 0
    cdef bint have_scope = False
    memset(ss, 0, sizeof(sockaddr_storage))
    if family == AF_UNIX:
        if isinstance(addr, str):
            path = os.fsencode(addr)
        elif isinstance(addr, (bytes, bytearray, memoryview)):
            path = bytes(addr)
        else:
            raise TypeError(f"a bytes-like object is required, not "
                            f"'{type(addr).__name__}'")
        sun = <sockaddr_un *>ss
        sun.sun_family = AF_UNIX
        if len(path) == 0 or path[0] == 0:
            # Linux abstract namespace: exact length, no terminator.  An
            # empty path is the bare family, as the socket module passes it
            # (connect and sendto refuse it with EINVAL; bind auto-binds).
            if <size_t>len(path) > sizeof(sun.sun_path):
                raise OSError("AF_UNIX path too long")
            memcpy(sun.sun_path, <char *>path, len(path))
            lenp[0] = <socklen_t>(RL_SUN_PATH_OFFSET + len(path))
        else:
            if <size_t>len(path) >= sizeof(sun.sun_path):
                raise OSError("AF_UNIX path too long")
            memcpy(sun.sun_path, <char *>path, len(path))
            sun.sun_path[len(path)] = 0
            lenp[0] = <socklen_t>(RL_SUN_PATH_OFFSET + len(path) + 1)
        return 0
    if family == AF_INET:
        if not isinstance(addr, tuple):
            raise TypeError(f"AF_INET address must be tuple, not {type(addr).__name__}")
        if len(addr) != 2:
            raise TypeError("AF_INET address must be a pair (host, port)")
        host, pport = addr
        port = _port(pport)
        sin = <sockaddr_in *>ss
        sin.sin_family = AF_INET
        sin.sin_port = htons(<uint16_t>port)
        _ip_host(AF_INET, host, &sin.sin_addr, NULL)
        lenp[0] = sizeof(sockaddr_in)
        return 0
    if family == AF_INET6:
        if not isinstance(addr, tuple):
            raise TypeError(f"AF_INET6 address must be tuple, not {type(addr).__name__}")
        if not 2 <= len(addr) <= 4:
            raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
        host = addr[0]
        port = _port(addr[1])
        if len(addr) > 2:
            flowinfo = addr[2]
            if flowinfo < 0 or flowinfo > 0xfffff:
                raise OverflowError("getsockaddrarg: flowinfo must be 0-1048575.")
        if len(addr) > 3:
            scope_id = addr[3]
            have_scope = True
        sin6 = <sockaddr_in6 *>ss
        sin6.sin6_family = AF_INET6
        sin6.sin6_port = htons(<uint16_t>port)
        sin6.sin6_flowinfo = htonl(<uint32_t>flowinfo)
        _ip_host(AF_INET6, host, &sin6.sin6_addr, &sin6.sin6_scope_id)
        if have_scope:
            sin6.sin6_scope_id = <uint32_t>scope_id
        lenp[0] = sizeof(sockaddr_in6)
        return 0
    raise ValueError(f"io_uring driver: unsupported address family {family}")


cdef long _port(object p) except -1:
    cdef long port
    if not isinstance(p, int):
        raise TypeError(f"'{type(p).__name__}' object cannot be interpreted as an integer")
    port = p
    if port < 0 or port > 0xffff:
        raise OverflowError("getsockaddrarg: port must be 0-65535.")
    return port


cdef int _ip_host(int family, object host, void *dst, uint32_t *scope) except -1:
    # Numeric hosts are parsed here; anything else goes through getaddrinfo,
    # as the socket module itself does (blocking: asyncio resolves first).
    cdef bytes hb
    if isinstance(host, str):
        hb = host.encode("idna") if not host.isascii() else host.encode()
    elif isinstance(host, (bytes, bytearray)):
        hb = bytes(host)
    else:
        raise TypeError(f"str, bytes or bytearray expected, not {type(host).__name__}")
    if family == AF_INET:
        if hb == b"" :
            (<in_addr *>dst).s_addr = htonl(INADDR_ANY)
            return 0
        if hb == b"<broadcast>":
            (<in_addr *>dst).s_addr = htonl(INADDR_BROADCAST)
            return 0
    elif hb == b"":
        memset(dst, 0, 16)
        return 0
    if b"\0" not in hb and inet_pton(family, <char *>hb, dst) == 1:
        return 0
    infos = _socket.getaddrinfo(hb.decode(), None, family)
    sa = infos[0][4]
    numeric = sa[0].split("%")[0].encode()
    if inet_pton(family, <char *>numeric, dst) != 1:
        raise OSError(EINVAL, f"cannot parse address {sa[0]!r}")
    if scope != NULL and len(sa) > 3:
        scope[0] = sa[3]
    return 0


cdef object _make_addr(sockaddr_storage *ss, socklen_t addrlen):
    # socket.makesockaddr() equivalent.
    cdef char buf[64]
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6
    cdef sockaddr_un *sun
    cdef Py_ssize_t n
    if addrlen == 0:
        return None
    if ss.ss_family == AF_INET:
        sin = <sockaddr_in *>ss
        inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof(buf))
        return (buf.decode("ascii"), ntohs(sin.sin_port))
    if ss.ss_family == AF_INET6:
        sin6 = <sockaddr_in6 *>ss
        inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof(buf))
        return (buf.decode("ascii"), ntohs(sin6.sin6_port),
                ntohl(sin6.sin6_flowinfo), sin6.sin6_scope_id)
    if ss.ss_family == AF_UNIX:
        sun = <sockaddr_un *>ss
        n = <Py_ssize_t>addrlen - RL_SUN_PATH_OFFSET
        if n > 0 and sun.sun_path[0] == 0:
            return PyBytes_FromStringAndSize(sun.sun_path, n)
        if n > <Py_ssize_t>sizeof(sun.sun_path):
            n = sizeof(sun.sun_path)
        if n < 0:
            n = 0
        # regular NUL-terminated name (the kernel may omit the NUL)
        raw = PyBytes_FromStringAndSize(sun.sun_path, n)
        return os.fsdecode(raw.split(b"\0", 1)[0])
    return (ss.ss_family, PyBytes_FromStringAndSize((<sockaddr *>ss).sa_data, 14))


cdef inline uint64_t _ud(UringOp op):
    return <uint64_t><uintptr_t><PyObject *>op


# --------------------------------------------------------------------------
# the driver

cdef object _fd_identity(int fd):
    # (st_dev, st_ino) of what the fd refers to, or None if it is closed.
    cdef struct_stat st
    if fstat(fd, &st) < 0:
        return None
    return (<unsigned long long>st.st_dev, <unsigned long long>st.st_ino)


cdef class UringDriver(Driver):

    def __cinit__(self):
        self.name = "io_uring"
        self.ring_fd = -1
        self.sq_ring_ptr = NULL
        self.cq_ring_ptr = NULL
        self.sqes = NULL
        self.inflight_head = NULL
        self.fd_heads = NULL
        self.fd_cap = 0
        self.closed = False
        self.closing = False
        self.arm_list = []
        self.orphans = []
        self.recv_stash = {}
        self.accept_stash = {}
        self.disabled = set()

    def __init__(self, entries=256, cq_entries=1024, disable=()):
        cdef int e = entries, ce = cq_entries
        if e < 1 or e > 32768:
            raise ValueError("entries must be 1-32768")
        if ce < e:
            ce = e
        self.req_entries = e
        self.req_cq_entries = ce
        self.disabled = set(disable)
        bad = self.disabled - _KNOWN_DISABLE
        if bad:
            raise ValueError(f"unknown io_uring features to disable: {sorted(bad)}")
        if not RINGLOOP_HAVE_URING:
            raise UringUnavailable(
                ENOSYS, "io_uring is unavailable: it exists only on Linux; "
                        "use ringloop.SelectorEventLoop instead")
        self.pid = getpid()
        self.fork_gen = rl_fork_gen()
        self._grow(64)
        self._setup()

    def __dealloc__(self):
        cdef PyObject *p
        cdef UringOp op
        if self.ring_fd >= 0:
            self._unmap()
        # Poll requests hold no user memory: the ring is gone, drop them.
        # (Completion ops hold a reference to us, so none can be left.)
        p = self.inflight_head
        self.inflight_head = NULL
        while p != NULL:
            op = <UringOp>p
            p = op.next
            op.prev = op.next = NULL
            Py_DECREF(op)
        free(self.fd_heads)
        self.fd_heads = NULL

    def fileno(self):
        return self.ring_fd

    # ------------------------------------------------------------------
    # ring life cycle

    cdef int _setup(self) except -1:
        cdef rl_uring_params p
        cdef int fd = -1, err = 0
        cdef unsigned int flags
        cdef list candidates = []
        cdef unsigned int base = RL_SETUP_CQSIZE | RL_SETUP_CLAMP
        cdef unsigned int si, sub
        cdef int attempt
        d = self.disabled
        sub = 0 if "submit_all" in d else RL_SETUP_SUBMIT_ALL
        if "single_issuer" not in d:
            si = RL_SETUP_SINGLE_ISSUER
            if "r_disabled" not in d:
                si |= RL_SETUP_R_DISABLED
            if "defer_taskrun" not in d:
                candidates.append(base | si | sub | RL_SETUP_DEFER_TASKRUN | RL_SETUP_TASKRUN_FLAG)
            if "coop_taskrun" not in d:
                candidates.append(base | si | sub | RL_SETUP_COOP_TASKRUN | RL_SETUP_TASKRUN_FLAG)
            candidates.append(base | si | sub)
        candidates.append(base | sub)
        candidates.append(base)
        candidates.append(0)
        seen = set()
        for flags in candidates:
            if flags in seen:
                continue
            seen.add(flags)
            for attempt in range(SETUP_ENOMEM_RETRIES + 1):
                memset(&p, 0, sizeof(p))
                p.flags = flags
                p.cq_entries = self.req_cq_entries
                fd = rl_io_uring_setup(self.req_entries, &p)
                if fd >= 0:
                    break
                err = errno
                if err != ENOMEM or attempt == SETUP_ENOMEM_RETRIES:
                    break
                # The kernel gives a closed ring's memory (and its share of
                # RLIMIT_MEMLOCK) back asynchronously: a loop made right
                # after another was closed can find it still counted.  Wait
                # 1, 1, 2, 2, 4... ms (62 ms in all) before giving up.
                with nogil:
                    _rl_usleep(1000 << (attempt >> 1))
            if fd >= 0:
                break
            if err != EINVAL:
                break
        if fd < 0:
            if err in (ENOSYS, EPERM, EACCES, ENOMEM):
                raise _unavailable(err, "io_uring_setup()")
            if err == EINVAL:
                raise UringUnavailable(
                    err, "io_uring is unavailable: io_uring_setup() rejected every "
                         "parameter set (EINVAL); use ringloop.SelectorEventLoop instead")
            raise OSError(err, f"io_uring_setup() failed: {_strerror(err)}")
        self.ring_fd = fd
        self.setup_flags = p.flags
        self.features = p.features
        try:
            if not (p.features & RL_FEAT_NODROP):
                raise UringUnavailable(
                    ENOSYS, "io_uring is unavailable: the kernel's io_uring is too old "
                            "(no IORING_FEAT_NODROP, kernel < 5.5); use "
                            "ringloop.SelectorEventLoop instead")
            self._map(fd, &p)
            self._probe_ops()
        except BaseException:
            self._unmap()
            raise
        self.single_issuer = (p.flags & RL_SETUP_SINGLE_ISSUER) != 0
        self.defer_taskrun = (p.flags & RL_SETUP_DEFER_TASKRUN) != 0
        self.taskrun_flag = (p.flags & RL_SETUP_TASKRUN_FLAG) != 0
        self.use_ext_arg = (p.features & RL_FEAT_EXT_ARG) != 0 and "ext_arg" not in self.disabled
        self.use_multishot_poll = "multishot_poll" not in self.disabled
        self.enabled = not (p.flags & RL_SETUP_R_DISABLED)
        self.owner_set = False
        if self.enabled and self.single_issuer:
            # Not disabled: the creating thread is the single issuer.
            self.owner = rl_thread_token()
            self.owner_set = True
        self.sq_tail = self.sq_ktail[0]
        self.timeout_ud = 0
        return 0

    cdef int _map(self, int fd, void *params) except -1:
        cdef rl_uring_params *p = <rl_uring_params *>params
        cdef unsigned *array
        cdef unsigned i
        cdef int err
        self.sq_ring_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned)
        self.cq_ring_sz = p.cq_off.cqes + p.cq_entries * sizeof(rl_cqe)
        if p.features & RL_FEAT_SINGLE_MMAP:
            if self.cq_ring_sz > self.sq_ring_sz:
                self.sq_ring_sz = self.cq_ring_sz
            self.cq_ring_sz = self.sq_ring_sz
        self.sq_ring_ptr = mmap(NULL, self.sq_ring_sz, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_POPULATE, fd, RL_OFF_SQ_RING)
        if self.sq_ring_ptr == MAP_FAILED:
            err = errno
            self.sq_ring_ptr = NULL
            raise _unavailable(err, "mmap() of the SQ ring")
        if p.features & RL_FEAT_SINGLE_MMAP:
            self.cq_ring_ptr = self.sq_ring_ptr
        else:
            self.cq_ring_ptr = mmap(NULL, self.cq_ring_sz, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_POPULATE, fd, RL_OFF_CQ_RING)
            if self.cq_ring_ptr == MAP_FAILED:
                err = errno
                self.cq_ring_ptr = NULL
                raise _unavailable(err, "mmap() of the CQ ring")
        self.sqes_sz = p.sq_entries * sizeof(rl_sqe)
        self.sqes = <rl_sqe *>mmap(NULL, self.sqes_sz, PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_POPULATE, fd, RL_OFF_SQES)
        if <void *>self.sqes == MAP_FAILED:
            err = errno
            self.sqes = NULL
            raise _unavailable(err, "mmap() of the SQE array")
        if RL_MADV_DONTFORK:
            # A forked child must not even see the parent's shared rings.
            madvise(self.sq_ring_ptr, self.sq_ring_sz, RL_MADV_DONTFORK)
            if self.cq_ring_ptr != self.sq_ring_ptr:
                madvise(self.cq_ring_ptr, self.cq_ring_sz, RL_MADV_DONTFORK)
            madvise(<void *>self.sqes, self.sqes_sz, RL_MADV_DONTFORK)
        self.sq_khead = <unsigned *>rl_ptr_add(self.sq_ring_ptr, p.sq_off.head)
        self.sq_ktail = <unsigned *>rl_ptr_add(self.sq_ring_ptr, p.sq_off.tail)
        self.sq_kflags = <unsigned *>rl_ptr_add(self.sq_ring_ptr, p.sq_off.flags)
        self.sq_mask = (<unsigned *>rl_ptr_add(self.sq_ring_ptr, p.sq_off.ring_mask))[0]
        self.sq_entries = (<unsigned *>rl_ptr_add(self.sq_ring_ptr, p.sq_off.ring_entries))[0]
        # Identity SQ index array, written once: SQE slot i is entry i.
        array = <unsigned *>rl_ptr_add(self.sq_ring_ptr, p.sq_off.array)
        for i in range(self.sq_entries):
            array[i] = i
        self.cq_khead = <unsigned *>rl_ptr_add(self.cq_ring_ptr, p.cq_off.head)
        self.cq_ktail = <unsigned *>rl_ptr_add(self.cq_ring_ptr, p.cq_off.tail)
        self.cq_koverflow = <unsigned *>rl_ptr_add(self.cq_ring_ptr, p.cq_off.overflow)
        self.cq_mask = (<unsigned *>rl_ptr_add(self.cq_ring_ptr, p.cq_off.ring_mask))[0]
        self.cq_entries = (<unsigned *>rl_ptr_add(self.cq_ring_ptr, p.cq_off.ring_entries))[0]
        self.cqes = <rl_cqe *>rl_ptr_add(self.cq_ring_ptr, p.cq_off.cqes)
        return 0

    cdef int _unmap(self):
        if self.sqes != NULL:
            munmap(<void *>self.sqes, self.sqes_sz)
            self.sqes = NULL
        if self.cq_ring_ptr != NULL and self.cq_ring_ptr != self.sq_ring_ptr:
            munmap(self.cq_ring_ptr, self.cq_ring_sz)
        self.cq_ring_ptr = NULL
        if self.sq_ring_ptr != NULL:
            munmap(self.sq_ring_ptr, self.sq_ring_sz)
            self.sq_ring_ptr = NULL
        if self.ring_fd >= 0:
            close(self.ring_fd)
            self.ring_fd = -1
        return 0

    cdef int _probe_ops(self) except -1:
        cdef rl_probe pr
        cdef int i, r, err
        memset(&pr, 0, sizeof(pr))
        r = rl_io_uring_register(self.ring_fd, RL_REGISTER_PROBE, &pr, RL_PROBE_OPS)
        if r < 0:
            err = errno
            if err in (EPERM, EACCES):
                raise _unavailable(err, "io_uring_register(PROBE)")
            raise UringUnavailable(
                ENOSYS, f"io_uring is unavailable: the kernel's io_uring is too old "
                        f"(IORING_REGISTER_PROBE failed with {_errno_name(err)}, "
                        f"kernel < 5.6); use ringloop.SelectorEventLoop instead")
        memset(self.ops, 0, sizeof(self.ops))
        for i in range(pr.ops_len):
            if pr.ops[i].op < 64 and pr.ops[i].flags & RL_PROBE_OP_SUPPORTED:
                self.ops[pr.ops[i].op] = 1
        missing = [name for code, name in _OPCODE_NAMES
                   if code in _REQUIRED_OPS and not self.ops[code]]
        if missing:
            raise UringUnavailable(
                ENOSYS, f"io_uring is unavailable: the kernel lacks required "
                        f"opcodes {missing}; use ringloop.SelectorEventLoop instead")
        return 0

    cdef int _enable(self) except -1:
        cdef int r, err
        if self.enabled:
            return 0
        r = rl_io_uring_register(self.ring_fd, RL_REGISTER_ENABLE_RINGS, NULL, 0)
        if r < 0:
            err = errno
            raise OSError(err, f"io_uring_register(ENABLE_RINGS) failed: {_strerror(err)}")
        self.enabled = True
        if self.single_issuer:
            self.owner = rl_thread_token()
            self.owner_set = True
        return 0

    cdef int _check_usable(self) except -1:
        if rl_fork_gen() != self.fork_gen:
            raise RuntimeError(msg.forked(self.pid, getpid()))
        if self.closed or self.ring_fd < 0:
            raise RuntimeError("the io_uring driver is closed")
        return 0

    cdef int _switch_thread(self) except -1:
        # A thread other than the single issuer wants the ring: it can neither
        # submit to it nor (DEFER_TASKRUN) reap it.  Build a new ring for this
        # thread.  SQEs never submitted are reissued there; polls are re-armed;
        # completion ops the old ring holds are abandoned (memory kept).
        cdef unsigned head, i
        cdef uint64_t ud
        cdef PyObject *p
        cdef UringOp op
        cdef set unsubmitted = set()
        cdef list reissue = []
        cdef bint orphaned = False
        head = rl_load_acquire(self.sq_khead)
        i = head
        while i != self.sq_tail:
            ud = self.sqes[i & self.sq_mask].user_data
            if (ud & 7) == UD_OP or (ud & 7) == UD_POLLWAIT:
                if ud & ~(<uint64_t>7):
                    unsubmitted.add(<uintptr_t>(ud & ~(<uint64_t>7)))
            elif (ud & 7) == UD_AUX and (ud & ~(<uint64_t>7)):
                # a cancel that never reached the kernel: release its pin
                Py_DECREF(<object><PyObject *><uintptr_t>(ud & ~(<uint64_t>7)))
                self.n_aux -= 1
            i += 1
        self.sq_tail = head
        p = self.inflight_head
        while p != NULL:
            op = <UringOp>p
            p = op.next
            if op.kind == OPK_POLL:
                if op.ws is not None:
                    if op.ws.rd is op:
                        op.ws.rd = None
                    elif op.ws.wr is op:
                        op.ws.wr = None
                    if op.ws.want and not op.ws.queued:
                        op.ws.queued = True
                        self.arm_list.append(op.ws)
                    op.ws = None
                op.state = ST_DONE
                self._untrack(op)
            elif <uintptr_t><PyObject *>op in unsubmitted:
                if op.state == ST_CANCELLING:
                    self._finish(op, -ECANCELED)
                else:
                    op.oflags &= ~OPF_POLLWAIT
                    reissue.append(op)
            else:
                orphaned = True
                self._unlink_orphan(op, RuntimeError(
                    "io_uring operation abandoned: the event loop moved to another "
                    "thread while it was in flight in a single-issuer ring"), False)
        # Pins of aux requests already in the old ring are leaked with it.
        self.n_aux = 0
        self._unmap()
        if orphaned:
            # Never again: later rings accept any submitting thread.
            self.disabled.add("single_issuer")
        self.timeout_ud = 0
        self._setup()
        self._enable()
        for op in reissue:
            self._issue(op)
        self.st_migrations += 1
        return 0

    cdef int _unlink_orphan(self, UringOp op, object exc, bint cancel) except -1:
        # Abandon a completion op: off our lists, its reference moved to
        # self.orphans (never released: the kernel may still write its
        # memory), its future failed or cancelled.
        fut = op.fut
        self._unlink(op)
        self.orphans.append(op)
        Py_DECREF(op)           # the in-flight ref, now held by self.orphans
        op.state = ST_DONE
        op.drv = None
        if op.owner is not None:
            op.owner = None
            self.n_owned -= 1
        if fut is not None:
            try:
                if not fut.done():
                    fut.remove_done_callback(op)
                    if cancel:
                        fut.cancel()
                    else:
                        fut.set_exception(exc)
            except BaseException:
                pass
        return 0

    # ------------------------------------------------------------------
    # submission

    cdef rl_sqe *_sqe(self) except NULL:
        cdef rl_sqe *sqe
        if self.sq_tail - rl_load_acquire(self.sq_khead) >= self.sq_entries:
            self.st_sq_full += 1
            self._flush()
            if self.sq_tail - rl_load_acquire(self.sq_khead) >= self.sq_entries:
                raise OSError(EBUSY, "io_uring submission queue is full")
        sqe = &self.sqes[self.sq_tail & self.sq_mask]
        memset(sqe, 0, sizeof(rl_sqe))
        self.sq_tail += 1
        self.st_sqes += 1
        return sqe

    cdef int _enter(self, unsigned to_submit, unsigned min_complete,
                    unsigned flags, void *arg, size_t argsz, bint block) noexcept:
        cdef int r
        if to_submit:
            rl_store_release(self.sq_ktail, self.sq_tail)
        self.st_enter += 1
        if block:
            self.gil_wanted = 2
            with nogil:
                r = rl_io_uring_enter(self.ring_fd, to_submit, min_complete, flags, arg, argsz)
                self.gil_wanted = 1
            self.gil_wanted = 0
        else:
            r = rl_io_uring_enter(self.ring_fd, to_submit, min_complete, flags, arg, argsz)
        if r < 0:
            return -errno
        return r

    cdef int _flush(self) except -1:
        # Submit everything queued, without waiting.
        cdef unsigned n
        cdef int r, tries = 0
        cdef unsigned n0
        self._check_usable()
        if self.owner_set and self.owner != rl_thread_token():
            self._switch_thread()
        if not self.enabled:
            self._enable()
        n = self.sq_tail - rl_load_acquire(self.sq_khead)
        while n and tries < 100:
            tries += 1
            r = self._enter(n, 0, 0, NULL, 0, False)
            if r < 0:
                if r == -EINTR:
                    continue
                if r == -EEXIST and self.single_issuer:
                    self.owner = 0
                    self._switch_thread()
                    n = self.sq_tail - rl_load_acquire(self.sq_khead)
                    continue
                if r == -EAGAIN or r == -EBUSY:
                    # Out of request memory or a CQ overflow backlog: make
                    # room by reaping, then try again.
                    self._reap()
                    self._enter(0, 0, RL_ENTER_GETEVENTS, NULL, 0, False)
                    self._reap()
                    continue
                raise OSError(-r, f"io_uring_enter() failed: {_strerror(-r)}")
            n = self.sq_tail - rl_load_acquire(self.sq_khead)
        return 0

    cdef int _track(self, UringOp op) except -1:
        # The op now has a kernel request: it owns a reference to itself
        # (user_data is its address) until the final CQE.
        cdef PyObject *p = <PyObject *>op
        cdef int fd = op.fd
        cdef int n
        Py_INCREF(op)
        op.prev = NULL
        op.next = self.inflight_head
        if self.inflight_head != NULL:
            (<UringOp>self.inflight_head).prev = p
        self.inflight_head = p
        self.n_inflight += 1
        if op.kind != OPK_POLL:
            self.n_ops += 1
            if fd >= 0:
                if fd >= self.fd_cap:
                    self._grow_fds(fd + 1)
                op.fd_prev = NULL
                op.fd_next = self.fd_heads[fd]
                if self.fd_heads[fd] != NULL:
                    (<UringOp>self.fd_heads[fd]).fd_prev = p
                self.fd_heads[fd] = p
        return 0

    cdef int _grow_fds(self, int n) except -1:
        cdef int cap = self.fd_cap if self.fd_cap else 64
        cdef PyObject **h
        while cap < n:
            cap *= 2
        h = <PyObject **>realloc(self.fd_heads, cap * sizeof(PyObject *))
        if h == NULL:
            raise MemoryError()
        memset(&h[self.fd_cap], 0, (cap - self.fd_cap) * sizeof(PyObject *))
        self.fd_heads = h
        self.fd_cap = cap
        return 0

    cdef int _unlink(self, UringOp op) except -1:
        cdef PyObject *p = <PyObject *>op
        if op.prev != NULL:
            (<UringOp>op.prev).next = op.next
        elif self.inflight_head == p:
            self.inflight_head = op.next
        if op.next != NULL:
            (<UringOp>op.next).prev = op.prev
        op.prev = op.next = NULL
        self.n_inflight -= 1
        if op.kind != OPK_POLL:
            self.n_ops -= 1
            if op.fd >= 0 and op.fd < self.fd_cap:
                if op.fd_prev != NULL:
                    (<UringOp>op.fd_prev).fd_next = op.fd_next
                elif self.fd_heads[op.fd] == p:
                    self.fd_heads[op.fd] = op.fd_next
                if op.fd_next != NULL:
                    (<UringOp>op.fd_next).fd_prev = op.fd_prev
            op.fd_prev = op.fd_next = NULL
        return 0

    cdef int _untrack(self, UringOp op) except -1:
        # The caller holds its own reference to op.
        self._unlink(op)
        Py_DECREF(op)
        return 0

    cdef int _cancel_req(self, UringOp op) except -1:
        # ASYNC_CANCEL of op's current request, by user_data (never
        # POLL_REMOVE: see the module's notes).  The cancel pins op
        # (ud = ptr|UD_AUX) until its own CQE.
        cdef rl_sqe *sqe = self._sqe()
        sqe.opcode = RL_OP_ASYNC_CANCEL
        sqe.fd = -1
        sqe.addr = op.ud
        sqe.user_data = _ud(op) | UD_AUX
        Py_INCREF(op)
        self.n_aux += 1
        self.st_cancels += 1
        self.cancel_queued = True
        return 0

    cdef int _flush_cancels(self) except -1:
        # Cancellations go to the kernel at once, not with the next poll:
        # until the cancelled request is gone it holds a reference to its
        # file, so a socket the user closes right after cancelling (or after
        # remove_reader) would stay open - a listener would keep accepting.
        # The GETEVENTS enter runs deferred task work (DEFER_TASKRUN), which
        # is where the kernel frees the cancelled request and its file.
        self.cancel_queued = False
        self._flush()
        self._enter(0, 0, RL_ENTER_GETEVENTS, NULL, 0, False)
        return 0

    cdef bint idle(self) noexcept:
        if rl_fork_gen() != self.fork_gen or self.closed or self.ring_fd < 0:
            # Not usable here: let poll() raise its clear error.
            return False
        return (self.sq_tail == rl_load_acquire(self.sq_khead) and self.n_ops == 0
                and not self.arm_list
                and self.cq_khead[0] == rl_load_acquire(self.cq_ktail))

    # ------------------------------------------------------------------
    # completion

    cdef int _reap(self) except -1:
        cdef unsigned head, tail
        cdef rl_cqe *cqe
        cdef uint64_t ud
        cdef int res
        cdef unsigned fl
        while True:
            head = self.cq_khead[0]
            tail = rl_load_acquire(self.cq_ktail)
            if head == tail:
                return 0
            cqe = &self.cqes[head & self.cq_mask]
            ud = cqe.user_data
            res = cqe.res
            fl = cqe.flags
            # Consume before handling: handlers may re-enter (submit, flush).
            rl_store_release(self.cq_khead, head + 1)
            self.st_cqes += 1
            self._handle_cqe(ud, res, fl)

    cdef int _handle_cqe(self, uint64_t ud, int res, unsigned flags) except -1:
        cdef unsigned tag = <unsigned>(ud & 7)
        cdef uintptr_t ptr = <uintptr_t>(ud & ~(<uint64_t>7))
        cdef UringOp op
        if tag == UD_OP and ptr:
            op = <UringOp><PyObject *>ptr
            if op.kind == OPK_POLL:
                return self._poll_cqe(op, res, flags)
            return self._op_cqe(op, res, flags)
        if tag == UD_POLLWAIT and ptr:
            op = <UringOp><PyObject *>ptr
            op.oflags &= ~OPF_POLLWAIT
            if op.state != ST_SUBMITTED or (op.fut is not None and op.fut.done()):
                return self._finish(op, -ECANCELED)
            if res < 0 and res != -ECANCELED and res != -EINTR:
                return self._finish(op, res)
            if op.kind == OPK_CONNECT and res >= 0:
                return self._finish(op, -_so_error(op.fd))
            op.ud = _ud(op)
            return self._issue(op)
        if tag == UD_AUX:
            if ptr:
                self.n_aux -= 1
                Py_DECREF(<object><PyObject *>ptr)
            return 0
        if tag == UD_TIMEOUT:
            if ud == self.timeout_ud:
                self.timeout_ud = 0
            return 0
        return 0

    # ------------------------------------------------------------------
    # readiness

    cdef int set_interest(self, FdWatch w, int mask) except -1:
        cdef _WatchState ws
        self._check_usable()
        ws = <_WatchState>w.key if w.key is not None else None
        if mask == w.mask and (ws is None or not ws.dead):
            return 0
        if ws is None:
            w.mask = mask
            if mask == 0:
                return 0
            ws = _WatchState.__new__(_WatchState)
            ws.w = w
            ws.multishot = w.internal and self.use_multishot_poll
            w.key = ws
        ws.dead = False
        ws.want = mask
        w.mask = mask
        if not (mask & EV_READ) and ws.rd is not None:
            self._drop_poll(ws.rd)
            ws.rd = None
        if not (mask & EV_WRITE) and ws.wr is not None:
            self._drop_poll(ws.wr)
            ws.wr = None
        if (((mask & EV_READ) and ws.rd is None) or ((mask & EV_WRITE) and ws.wr is None)) \
                and not ws.queued:
            ws.queued = True
            self.arm_list.append(ws)
        if mask == 0:
            w.key = None        # break the w <-> ws cycle; ws is detached
        if self.cancel_queued and not self.closing:
            self._flush_cancels()
        return 0

    cdef int _drop_poll(self, UringOp op) except -1:
        op.ws = None
        if op.state == ST_SUBMITTED:
            op.state = ST_CANCELLING
            # ASYNC_CANCEL, not POLL_REMOVE: a POLL_REMOVE that finds the
            # request busy (a wake-up's task work pending) fails with
            # -EALREADY, and the request lives on holding the file (a closed
            # socket would never send its FIN, the loop's close would wait
            # out its drain): a multishot one always, a one-shot one when
            # the wake-up's work finds the fd drained and re-arms it.
            self._cancel_req(op)
        return 0

    cdef int _arm(self, _WatchState ws) except -1:
        cdef UringOp op
        cdef rl_sqe *sqe
        cdef int d, i
        cdef unsigned int events
        for i in range(2):      # a C loop: no tuple of Python ints per call
            d = EV_READ if i == 0 else EV_WRITE
            if not (ws.want & d):
                continue
            if (ws.rd if d == EV_READ else ws.wr) is not None:
                continue
            sqe = self._sqe()
            events = POLLIN if d == EV_READ else POLLOUT
            op = ws.spare
            if op is not None and op.events == events and op.fd == ws.w.fd:
                # The same request again (a one-shot poll re-armed): its
                # last CQE is in, and nothing can target its user_data any
                # more (see _poll_cqe), so the object is reused as it is.
                ws.spare = None
                self.st_poll_reuses += 1
            else:
                op = UringOp.__new__(UringOp)
                op.kind = OPK_POLL
                op.fd = ws.w.fd
                op.events = events
                op.ud = _ud(op)
            op.ws = ws
            sqe.opcode = RL_OP_POLL_ADD
            sqe.fd = op.fd
            sqe.op_flags = rl_poll_events(op.events)
            if ws.multishot:
                sqe.len = RL_POLL_ADD_MULTI
                op.oflags |= OPF_MULTI
            else:
                op.oflags &= ~OPF_MULTI
            sqe.user_data = op.ud
            op.state = ST_SUBMITTED
            self._track(op)
            if d == EV_READ:
                ws.rd = op
            else:
                ws.wr = op
        return 0

    cdef int _arm_pending(self) except -1:
        cdef list lst = self.arm_list
        cdef _WatchState ws
        self.arm_list = []
        for ws in lst:
            ws.queued = False
            if ws.want and not ws.dead and ws.w.key is ws:
                self._arm(ws)
        return 0

    cdef int _poll_cqe(self, UringOp op, int res, unsigned flags) except -1:
        cdef _WatchState ws = op.ws
        cdef bint final = not (flags & RL_CQE_F_MORE)
        cdef int m = 0
        cdef bint reusable
        if final:
            # Every path that sends a cancel or remove for a poll request
            # (which pins it: a stale request could hit a reused user_data)
            # first marks it CANCELLING or detaches it from its watch: a
            # request still SUBMITTED and attached has none on the way.
            reusable = (op.state == ST_SUBMITTED and ws is not None
                        and (ws.rd is op or ws.wr is op))
            op.state = ST_DONE
            self._untrack(op)
            if ws is not None:
                if ws.rd is op:
                    ws.rd = None
                elif ws.wr is op:
                    ws.wr = None
                op.ws = None
                if reusable:
                    ws.spare = op
        if ws is None or ws.w.key is not ws:
            return 0            # detached: interest was dropped
        if res < 0:
            if res == -EINVAL and op.oflags & OPF_MULTI:
                # No multishot poll on this kernel: one-shot from now on.
                self.use_multishot_poll = False
                ws.multishot = False
            elif res == -EBADF:
                ws.dead = True  # fd closed: silent, as epoll would be
                return 0
            elif res != -ECANCELED:
                m = ws.want     # let the callbacks meet the error
        else:
            if res & (POLLIN | POLLPRI | POLLRDHUP) and op.events & POLLIN:
                m |= EV_READ
            if res & POLLOUT and op.events & POLLOUT:
                m |= EV_WRITE
            if res & (POLLERR | POLLHUP | POLLNVAL):
                m |= EV_READ | EV_WRITE
            m &= ws.want
        if m:
            self._report(ws, m)
        if final and ws.want and not ws.queued:
            # One-shot: re-armed by the next poll()'s enter, which is also
            # the level-triggered re-check.
            self.st_rearms += 1
            ws.queued = True
            self.arm_list.append(ws)
        return 0

    cdef int _report(self, _WatchState ws, int m) except -1:
        cdef int slot
        if ws.ready_gen == self.poll_gen:
            self.masks[ws.ready_slot] |= m
            return 0
        if self.nready >= self.capacity:
            self._grow(self.capacity * 2 if self.capacity else 64)
        slot = self.nready
        self.nready += 1
        self.ready[slot] = <void *>ws.w
        self.masks[slot] = m
        ws.ready_gen = self.poll_gen
        ws.ready_slot = slot
        return 0

    cdef int poll(self, double timeout) except -1:
        cdef unsigned to_submit, flags = 0
        cdef rl_getevents_arg arg
        cdef rl_kernel_timespec ts
        cdef rl_sqe *sqe
        cdef void *argp = NULL
        cdef size_t argsz = 0
        cdef int r = 0, guard
        cdef double secs
        self._check_usable()
        if self.owner_set and self.owner != rl_thread_token():
            n_orphans = len(self.orphans)
            self._switch_thread()
            if len(self.orphans) != n_orphans:
                # Ops the old ring could not hand over were failed just now
                # and their callbacks are ready: do not block before they run.
                timeout = 0
        if not self.enabled:
            self._enable()
        self.poll_gen += 1
        self.nready = 0
        if self.arm_list:
            self._arm_pending()
        if timeout != 0 and self.cq_khead[0] != rl_load_acquire(self.cq_ktail):
            timeout = 0         # completions already waiting: don't block
        if timeout == 0:
            to_submit = self.sq_tail - rl_load_acquire(self.sq_khead)
            # Without DEFER_TASKRUN completions appear on their own; with it
            # they must be run by a GETEVENTS enter (TASKRUN_FLAG says when).
            sqf = rl_load_relaxed(self.sq_kflags)
            if sqf & (RL_SQ_TASKRUN | RL_SQ_CQ_OVERFLOW) or (
                    self.defer_taskrun and not self.taskrun_flag):
                flags = RL_ENTER_GETEVENTS
            if to_submit or flags:
                r = self._enter(to_submit, 0, flags, NULL, 0, False)
        else:
            flags = RL_ENTER_GETEVENTS
            if timeout > 0:
                if timeout > 1e9:
                    timeout = 1e9
                secs = floor(timeout)
                ts.tv_sec = <long long>secs
                ts.tv_nsec = <long long>((timeout - secs) * 1e9)
                if ts.tv_nsec >= 1000000000:
                    ts.tv_nsec = 999999999
                if self.use_ext_arg:
                    memset(&arg, 0, sizeof(arg))
                    arg.ts = <uint64_t><uintptr_t>&ts
                    flags |= RL_ENTER_EXT_ARG
                    argp = &arg
                    argsz = sizeof(arg)
                else:
                    # Fallback: a TIMEOUT request completes the wait.  Remove
                    # the previous one if it is still pending.
                    if self.timeout_ud:
                        sqe = self._sqe()
                        sqe.opcode = RL_OP_TIMEOUT_REMOVE
                        sqe.fd = -1
                        sqe.addr = self.timeout_ud
                        sqe.user_data = UD_AUX
                    sqe = self._sqe()
                    self.timeout_seq += 1
                    self.timeout_ud = (self.timeout_seq << 3) | UD_TIMEOUT
                    sqe.opcode = RL_OP_TIMEOUT
                    sqe.fd = -1
                    sqe.addr = <uint64_t><uintptr_t>&ts   # read at submit
                    sqe.len = 1
                    sqe.user_data = self.timeout_ud
            self.st_waits += 1
            to_submit = self.sq_tail - rl_load_acquire(self.sq_khead)
            r = self._enter(to_submit, 1, flags, argp, argsz, True)
        if r == -EEXIST and self.single_issuer:
            # The kernel says another task is the single issuer (a thread we
            # failed to tell apart): rebuild for this one, poll without waiting.
            self.owner = 0
            self._switch_thread()
            r = self._enter(self.sq_tail - rl_load_acquire(self.sq_khead), 0,
                            RL_ENTER_GETEVENTS, NULL, 0, False)
        if r < 0:
            if r == -EINTR:
                PyErr_CheckSignals()
            elif r != -ETIME and r != -EBUSY and r != -EAGAIN:
                raise OSError(-r, f"io_uring_enter() failed: {_strerror(-r)}")
        self._reap()
        guard = 0
        while rl_load_relaxed(self.sq_kflags) & RL_SQ_CQ_OVERFLOW and guard < 1000:
            # Completions spilled into the kernel's overflow list: move them
            # into the (now emptier) CQ and keep reaping.
            guard += 1
            self.st_overflow_flushes += 1
            self._enter(0, 0, RL_ENTER_GETEVENTS, NULL, 0, False)
            self._reap()
        return self.nready

    # ------------------------------------------------------------------
    # completion ops

    cdef UringOp _new_op(self, int kind, int fd, object fut):
        cdef UringOp op
        self._check_usable()
        op = UringOp.__new__(UringOp)
        op.kind = kind
        op.fd = fd
        op.fut = fut
        return op

    cdef int _start(self, UringOp op) except -1:
        cdef int r
        op.ud = _ud(op)
        self._issue(op)          # may raise (SQ full beyond flush): nothing tracked yet
        self._track(op)
        op.state = ST_SUBMITTED
        op.drv = self
        self.st_ops += 1
        if self.caller_cancels:
            return 0
        try:
            op.fut.add_done_callback(op)
        except BaseException:
            self.op_cancel(op)
            raise
        return 0

    cdef int _issue(self, UringOp op) except -1:
        # (Re)write the op's SQE for its current progress.
        cdef rl_sqe *sqe = self._sqe()
        cdef int k = op.kind
        sqe.fd = op.fd
        sqe.user_data = op.ud
        if k == OPK_RECV:
            sqe.opcode = RL_OP_RECV
            sqe.addr = <uint64_t><uintptr_t>PyBytes_AS_STRING(op.obj)
            sqe.len = <uint32_t>op.nbytes
        elif k == OPK_RECV_INTO:
            sqe.opcode = RL_OP_RECV
            sqe.addr = <uint64_t><uintptr_t>op.view.buf
            sqe.len = <uint32_t>op.nbytes
        elif k == OPK_RECVFROM or k == OPK_RECVFROM_INTO:
            if k == OPK_RECVFROM:
                op.iov.iov_base = PyBytes_AS_STRING(op.obj)
            else:
                op.iov.iov_base = op.view.buf
            op.iov.iov_len = op.nbytes
            memset(&op.msg, 0, sizeof(msghdr))
            memset(&op.addr, 0, sizeof(sockaddr_storage))
            op.msg.msg_name = &op.addr
            op.msg.msg_namelen = sizeof(sockaddr_storage)
            op.msg.msg_iov = &op.iov
            op.msg.msg_iovlen = 1
            sqe.opcode = RL_OP_RECVMSG
            sqe.addr = <uint64_t><uintptr_t>&op.msg
            sqe.len = 1
        elif k == OPK_SEND or k == OPK_SENDALL:
            sqe.opcode = RL_OP_SEND
            sqe.addr = <uint64_t><uintptr_t>(<char *>op.view.buf + op.pos)
            sqe.len = <uint32_t>(op.nbytes - op.pos)
            sqe.op_flags = MSG_NOSIGNAL
        elif k == OPK_SENDTO:
            op.iov.iov_base = op.view.buf
            op.iov.iov_len = op.nbytes
            memset(&op.msg, 0, sizeof(msghdr))
            op.msg.msg_name = &op.addr
            op.msg.msg_namelen = op.addrlen
            op.msg.msg_iov = &op.iov
            op.msg.msg_iovlen = 1
            sqe.opcode = RL_OP_SENDMSG
            sqe.addr = <uint64_t><uintptr_t>&op.msg
            sqe.len = 1
            sqe.op_flags = MSG_NOSIGNAL
        elif k == OPK_ACCEPT:
            memset(&op.addr, 0, sizeof(sockaddr_storage))
            op.addrlen = sizeof(sockaddr_storage)
            sqe.opcode = RL_OP_ACCEPT
            sqe.addr = <uint64_t><uintptr_t>&op.addr
            sqe.off = <uint64_t><uintptr_t>&op.addrlen
            sqe.op_flags = SOCK_CLOEXEC | SOCK_NONBLOCK
        elif k == OPK_CONNECT:
            sqe.opcode = RL_OP_CONNECT
            sqe.addr = <uint64_t><uintptr_t>&op.addr
            sqe.off = op.addrlen
        else:
            raise AssertionError("bad op kind")
        return 0

    cdef int _issue_pollwait(self, UringOp op) except -1:
        cdef rl_sqe *sqe = self._sqe()
        cdef int k = op.kind
        op.oflags |= OPF_POLLWAIT
        op.ud = _ud(op) | UD_POLLWAIT
        sqe.opcode = RL_OP_POLL_ADD
        sqe.fd = op.fd
        if k == OPK_SEND or k == OPK_SENDALL or k == OPK_SENDTO or k == OPK_CONNECT:
            sqe.op_flags = rl_poll_events(POLLOUT)
        else:
            sqe.op_flags = rl_poll_events(POLLIN)
        sqe.user_data = op.ud
        return 0

    cdef int _op_cqe(self, UringOp op, int res, unsigned flags) except -1:
        if op.state == ST_SUBMITTED:
            if res == -EAGAIN:
                # O_NONBLOCK honoured by this kernel: wait for readiness
                # with a poll of our own, then reissue.
                self.st_eagain += 1
                return self._issue_pollwait(op)
            if res == -EINPROGRESS and op.kind == OPK_CONNECT:
                return self._issue_pollwait(op)
            if res == -EINTR:
                return self._issue(op)
            if op.kind == OPK_SENDALL and res > 0:
                op.pos += res
                if op.pos < op.nbytes and not op.fut.done():
                    return self._issue(op)
        return self._finish(op, res)

    cdef int _finish(self, UringOp op, int res) except -1:
        # The op's final CQE: settle the future (or stash what it brought),
        # then release everything it owned.
        cdef int k = op.kind
        cdef PyObject *p
        cdef bint forgotten = (op.oflags & OPF_FORGOTTEN) != 0
        cdef bint wanted
        cdef Py_ssize_t n
        fut = op.fut
        value = None
        exc = None
        op.state = ST_DONE
        self._untrack(op)
        try:
            wanted = fut is not None and not fut.done()
            if res < 0:
                if k == OPK_SENDALL and res == -ECANCELED and op.pos:
                    pass
                if res == -ECANCELED and self.closing:
                    exc = None
                elif k == OPK_CONNECT and op.addr.ss_family in (AF_INET, AF_INET6):
                    exc = OSError(-res, f"Connect call failed {op.addr_obj}")
                else:
                    exc = OSError(-res, _strerror(-res))
            elif k == OPK_RECV or k == OPK_RECVFROM:
                p = <PyObject *>op.obj
                Py_INCREF(<object>p)
                op.obj = None
                if res != op.nbytes:
                    _PyBytes_Resize(&p, res)
                data = <object>p
                Py_DECREF(<object>p)
                addr = _make_addr(&op.addr, op.msg.msg_namelen) if k == OPK_RECVFROM else None
                if not wanted or self._stash_live(op.fd):
                    if res > 0 and not forgotten and not self.closing:
                        self._stash_recv(op, data, addr)
                    if wanted:
                        got = self._from_stash(op.fd, op.nbytes, True)
                        data, addr = got if got is not None else (b"", addr)
                value = (data, addr) if k == OPK_RECVFROM else data
            elif k == OPK_RECV_INTO or k == OPK_RECVFROM_INTO:
                addr = _make_addr(&op.addr, op.msg.msg_namelen) if k == OPK_RECVFROM_INTO else None
                if not wanted or self._stash_live(op.fd):
                    if res > 0 and not forgotten and not self.closing:
                        self._stash_recv(op, PyBytes_FromStringAndSize(<char *>op.view.buf, res), addr)
                    if wanted:
                        got = self._from_stash(op.fd, op.nbytes, True)
                        res = 0
                        if got is not None:
                            res = len(got[0])
                            memcpy(op.view.buf, PyBytes_AS_STRING(got[0]), res)
                            addr = got[1]
                value = (res, addr) if k == OPK_RECVFROM_INTO else res
            elif k == OPK_SEND or k == OPK_SENDTO:
                value = res
            elif k == OPK_ACCEPT:
                addr = _make_addr(&op.addr, op.addrlen)
                if not wanted:
                    if forgotten or self.closing:
                        close(res)
                    else:
                        self.st_stashed += 1
                        self.accept_stash.setdefault(op.fd, []).append((res, addr))
                value = (res, addr)
            if wanted:
                if not self.caller_cancels:
                    fut.remove_done_callback(op)
                if res < 0:
                    if exc is None:
                        fut.cancel()
                    else:
                        fut.set_exception(exc)
                else:
                    fut.set_result(value)
        except BaseException as e:
            # Never raise into the reaping path: report and carry on.
            PyErr_SetObject(type(e), e)
            PyErr_WriteUnraisable(op)
        finally:
            if op.has_view:
                PyBuffer_Release(&op.view)
                op.has_view = False
            op.obj = None
            op.fut = None
            op.drv = None
            op.addr_obj = None
            if op.owner is not None:
                op.owner = None
                self.n_owned -= 1
        return 0

    # A stash belongs to the socket that had the fd when its bytes were
    # received, known by its identity (st_dev, st_ino): a closed socket's
    # number may be another socket's by the time anyone asks, and that one
    # must never get the bytes (they are dropped, as a closed socket's
    # unread data is).  fstat() only on these rare paths: a cancellation,
    # a stash made or used.

    cdef list _stash_entry(self, int fd, object ident):
        # [is a stream socket, [(bytes, addr)...] oldest first, identity]
        cdef int sotype = 0
        cdef socklen_t sl = sizeof(int)
        entry = self.recv_stash.get(fd)
        if entry is not None and entry[2] != ident:
            entry = None                # a closed socket's leftovers
        if entry is None:
            if getsockopt(fd, SOL_SOCKET, SO_TYPE, &sotype, &sl) < 0:
                sotype = SOCK_STREAM
            entry = [sotype == SOCK_STREAM, [], ident]
            self.recv_stash[fd] = entry
        return entry

    cdef bint _stash_live(self, int fd) except -1:
        # This fd has a stash, made while the socket that has it now had it;
        # a stale one is dropped.
        if not self.recv_stash:
            return False
        entry = self.recv_stash.get(fd)
        if entry is None:
            return False
        if entry[2] != _fd_identity(fd) or not entry[1]:
            del self.recv_stash[fd]
            return False
        return True

    cdef int _stash_recv(self, UringOp op, bytes data, object addr) except -1:
        # What a receive brought for nobody (its future was cancelled): kept
        # for the next receive on the socket, unless the fd's number no
        # longer belongs to the socket it was cancelled on.
        owner = op.owner
        if owner is not None:
            # The socket object it read for: closed since (its number may
            # be another socket's by now), its bytes go with it.
            try:
                if owner.fileno() != op.fd:
                    return 0
            except Exception:
                return 0
        ident = _fd_identity(op.fd)
        if ident is None:
            return 0
        if op.oflags & OPF_IDENT and ident != (op.id_dev, op.id_ino):
            return 0
        self._stash_entry(op.fd, ident)[1].append((data, addr))
        self.st_stashed += 1
        return 0

    cdef int restore_recv(self, int fd, bytes data, object addr) except -1:
        # Older than anything stashed since: in front.  On a stream an empty
        # result is EOF, which the next receive meets again by itself; on a
        # datagram socket it is a message of its own.
        if self.closing or self.closed:
            return 0
        ident = _fd_identity(fd)
        if ident is None:
            return 0
        entry = self._stash_entry(fd, ident)
        if entry[0] and not data:
            if not entry[1]:
                del self.recv_stash[fd]
            return 0
        (<list>entry[1]).insert(0, (data, addr))
        self.st_stashed += 1
        return 0

    cdef int restore_accept(self, int fd, int conn_fd, object addr) except -1:
        if self.closing or self.closed:
            close(conn_fd)
            return 0
        self.accept_stash.setdefault(fd, []).insert(0, (conn_fd, addr))
        self.st_stashed += 1
        return 0

    cdef object _from_stash(self, int fd, Py_ssize_t n, bint want_addr):
        # Oldest stashed data first: (bytes, addr) or None.  Streams hand out
        # up to n bytes across chunks; datagrams one message, truncated to n.
        if not self._stash_live(fd):
            return None
        entry = self.recv_stash[fd]
        chunks = entry[1]
        if not chunks:
            del self.recv_stash[fd]
            return None
        if entry[0]:
            parts = []
            addr = chunks[0][1]
            while chunks and n > 0:
                data, a = chunks[0]
                if len(data) <= n:
                    parts.append(data)
                    n -= len(data)
                    chunks.pop(0)
                else:
                    parts.append(data[:n])
                    chunks[0] = (data[n:], a)
                    n = 0
            result = (b"".join(parts), addr)
        else:
            data, addr = chunks.pop(0)
            result = (data[:n], addr)
        if not chunks:
            del self.recv_stash[fd]
        return result

    cdef UringOp op_recv(self, int fd, Py_ssize_t nbytes, object fut):
        return self._recv(OPK_RECV, fd, nbytes, fut)

    cdef UringOp op_recvfrom(self, int fd, Py_ssize_t nbytes, object fut):
        return self._recv(OPK_RECVFROM, fd, nbytes, fut)

    cdef UringOp op_recv_into(self, int fd, object buf, Py_ssize_t nbytes, object fut):
        return self._recv_into(OPK_RECV_INTO, fd, buf, nbytes, fut)

    cdef UringOp _recv(self, int kind, int fd, Py_ssize_t nbytes, object fut):
        # RECV -> bytes, RECVFROM -> (bytes, addr): a fresh buffer of nbytes,
        # or what a cancelled receive stashed on this fd first.
        cdef UringOp op
        cdef bint want_addr = kind == OPK_RECVFROM
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom" if want_addr
                             else "negative buffersize in recv")
        if self.recv_stash:
            got = self._from_stash(fd, nbytes, want_addr)
            if got is not None:
                if not fut.done():
                    fut.set_result(got if want_addr else got[0])
                return None
        op = self._new_op(kind, fd, fut)
        op.nbytes = nbytes
        op.obj = PyBytes_FromStringAndSize(NULL, nbytes)
        self._start(op)
        return op

    cdef UringOp op_recvfrom_into(self, int fd, object buf, Py_ssize_t nbytes, object fut):
        return self._recv_into(OPK_RECVFROM_INTO, fd, buf, nbytes, fut)

    cdef UringOp _recv_into(self, int kind, int fd, object buf, Py_ssize_t nbytes, object fut):
        cdef UringOp op
        cdef Py_ssize_t n
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into" if kind == OPK_RECV_INTO
                             else "negative buffersize in recvfrom_into")
        op = self._new_op(kind, fd, fut)
        try:
            PyObject_GetBuffer(buf, &op.view, PyBUF_WRITABLE)
        except (BufferError, TypeError):
            name = "recv_into" if kind == OPK_RECV_INTO else "recvfrom_into"
            raise TypeError(f"{name}() argument 1 must be read-write "
                            f"bytes-like object, not {type(buf).__name__}") from None
        op.has_view = True
        if nbytes == 0:
            nbytes = op.view.len
        elif nbytes > op.view.len:
            raise ValueError("buffer too small for requested bytes" if kind == OPK_RECV_INTO
                             else "nbytes is greater than the length of the buffer")
        op.nbytes = nbytes
        if self.recv_stash:
            got = self._from_stash(fd, nbytes, True)
            if got is not None:
                n = len(got[0])
                memcpy(op.view.buf, PyBytes_AS_STRING(got[0]), n)
                PyBuffer_Release(&op.view)
                op.has_view = False
                if not fut.done():
                    fut.set_result(n if kind == OPK_RECV_INTO else (n, got[1]))
                return None
        op.obj = buf
        self._start(op)
        return op

    cdef UringOp op_send(self, int fd, object data, object fut):
        return self._send(OPK_SEND, fd, data, fut)

    cdef UringOp op_sendall(self, int fd, object data, object fut):
        return self._send(OPK_SENDALL, fd, data, fut)

    cdef UringOp _send(self, int kind, int fd, object data, object fut):
        cdef UringOp op = self._new_op(kind, fd, fut)
        PyObject_GetBuffer(data, &op.view, PyBUF_SIMPLE)
        op.has_view = True
        op.nbytes = op.view.len
        op.obj = data
        if kind == OPK_SENDALL and op.nbytes == 0:
            PyBuffer_Release(&op.view)
            op.has_view = False
            if not fut.done():
                fut.set_result(None)
            return None
        self._start(op)
        return op

    cdef UringOp op_sendto(self, int fd, object data, int family, object addr, object fut):
        cdef UringOp op = self._new_op(OPK_SENDTO, fd, fut)
        _fill_sockaddr(family, addr, &op.addr, &op.addrlen)
        PyObject_GetBuffer(data, &op.view, PyBUF_SIMPLE)
        op.has_view = True
        op.nbytes = op.view.len
        op.obj = data
        self._start(op)
        return op

    cdef UringOp op_accept(self, int fd, object fut):
        cdef UringOp op
        if self.accept_stash:
            lst = self.accept_stash.get(fd)
            if lst:
                conn = lst.pop(0)
                if not lst:
                    del self.accept_stash[fd]
                if fut.done():
                    lst = self.accept_stash.setdefault(fd, [])
                    lst.insert(0, conn)
                else:
                    fut.set_result(conn)
                return None
        op = self._new_op(OPK_ACCEPT, fd, fut)
        self._start(op)
        return op

    cdef UringOp op_connect(self, int fd, int family, object addr, object fut):
        cdef UringOp op = self._new_op(OPK_CONNECT, fd, fut)
        _fill_sockaddr(family, addr, &op.addr, &op.addrlen)
        op.addr_obj = addr
        self._start(op)
        # Start the connection now, as a non-blocking connect() would: code
        # that awaits something else (or blocks in accept()) meanwhile must
        # see the SYN sent.  Connects are rare; the batching is for I/O.
        self._flush()
        return op

    cdef int set_owner(self, UringOp op, object sock) except -1:
        # sock (a socket.socket) is what op runs for: its receives' late
        # data is kept for it alone (_stash_recv), and a close of it while
        # op waits fails op's future (fail_closed_owners).
        if op is None or op.state == ST_DONE:
            return 0
        if op.owner is None:
            self.n_owned += 1
        op.owner = sock
        return 0

    cdef int fail_closed_owners(self) except -1:
        # The ring's share of CoreLoop._check_sock_waits (the why is there):
        # each op with an owner whose socket object's fd field says closed
        # has its future failed with EBADF; its coroutine cancels it.
        cdef PyObject *p = self.inflight_head
        cdef UringOp op
        cdef list closed = None
        while p != NULL:
            op = <UringOp>p
            p = op.next
            if (op.owner is not None and op.state == ST_SUBMITTED
                    and op.fut is not None and rl_sock_fd(op.owner) < 0):
                if closed is None:
                    closed = []
                closed.append(op.fut)
        if closed is not None:
            for fut in closed:
                if not fut.done():
                    fut.set_exception(OSError(EBADF, os.strerror(EBADF)))
        return 0

    cdef int op_cancel(self, UringOp op) except -1:
        if op is None or op.state != ST_SUBMITTED:
            return 0
        self._check_usable()
        if op.kind in (OPK_RECV, OPK_RECVFROM, OPK_RECV_INTO, OPK_RECVFROM_INTO):
            # What it may still bring belongs to the socket it runs on now.
            ident = _fd_identity(op.fd)
            if ident is not None:
                op.id_dev, op.id_ino = ident
                op.oflags |= OPF_IDENT
        op.state = ST_CANCELLING
        self._cancel_req(op)
        if not self.closing:
            self._flush_cancels()
        return 0

    cdef int forget_fd(self, int fd) except -1:
        cdef PyObject *p
        cdef UringOp op
        if fd >= 0 and fd < self.fd_cap and self.fd_heads[fd] != NULL:
            p = self.fd_heads[fd]
            while p != NULL:
                op = <UringOp>p
                p = op.fd_next
                op.oflags |= OPF_FORGOTTEN
                self.op_cancel(op)
        if self.recv_stash:
            self.recv_stash.pop(fd, None)
        if self.accept_stash:
            for conn_fd, _ in self.accept_stash.pop(fd, ()):
                close(conn_fd)
        return 0

    cdef bint has_stash(self, int fd):
        return self._stash_live(fd) or (fd in self.accept_stash)

    cdef object take_recv_stash(self, int fd):
        items = self.take_recv_stash_items(fd)
        if items is None:
            return None
        return b"".join([c[0] for c in items])

    cdef object take_recv_stash_items(self, int fd):
        # [(bytes, addr)...] oldest first, or None.
        if not self._stash_live(fd):
            return None
        return self.recv_stash.pop(fd)[1]

    cdef list take_accept_stash(self, int fd):
        return self.accept_stash.pop(fd, [])

    # ------------------------------------------------------------------
    # close

    cdef int _abandon_all(self, str why, bint cancel_futures) except -1:
        cdef PyObject *p = self.inflight_head
        cdef UringOp op
        while p != NULL:
            op = <UringOp>p
            p = op.next
            if op.kind == OPK_POLL:
                op.state = ST_DONE
                op.ws = None
                self._untrack(op)
            else:
                self._unlink_orphan(op, RuntimeError(why), cancel_futures)
        return 0

    cdef int close(self) except -1:
        cdef PyObject *p
        cdef UringOp op
        cdef rl_getevents_arg arg
        cdef rl_kernel_timespec ts
        cdef double deadline, left
        cdef int r
        cdef unsigned to_submit
        if self.closed:
            return 0
        if self.ring_fd < 0:
            self.closed = True
            return 0
        if rl_fork_gen() != self.fork_gen:
            # Forked child: the requests are the parent's; our copies of the
            # buffers are private, so just let go.  Never touch the rings.
            self.sq_ring_ptr = self.cq_ring_ptr = NULL   # not mapped (DONTFORK)
            self.sqes = NULL
            self._unmap()
            self.closed = True
            return 0
        self.closing = True
        try:
            if self.owner_set and self.owner != rl_thread_token():
                # Another thread owns this single-issuer ring: we cannot
                # cancel through it.  Keep the ops' memory, drop the ring.
                self._abandon_all("io_uring ring closed from another thread", True)
            else:
                if not self.enabled:
                    self._enable()
                self.arm_list = []
                p = self.inflight_head
                while p != NULL:
                    op = <UringOp>p
                    p = op.next
                    if op.state == ST_SUBMITTED:
                        op.state = ST_CANCELLING
                        if op.kind == OPK_POLL:
                            op.ws = None
                        self._cancel_req(op)
                deadline = _monotonic() + CLOSE_DRAIN_SECONDS
                while self.n_inflight or self.n_aux or self.sq_tail != rl_load_acquire(self.sq_khead):
                    left = deadline - _monotonic()
                    if left <= 0:
                        break
                    to_submit = self.sq_tail - rl_load_acquire(self.sq_khead)
                    ts.tv_sec = <long long>left
                    ts.tv_nsec = <long long>((left - <long long>left) * 1e9)
                    if self.use_ext_arg:
                        memset(&arg, 0, sizeof(arg))
                        arg.ts = <uint64_t><uintptr_t>&ts
                        r = self._enter(to_submit, 1, RL_ENTER_GETEVENTS | RL_ENTER_EXT_ARG,
                                        &arg, sizeof(arg), True)
                    else:
                        if to_submit:
                            self._flush()
                        r = self._enter(0, 0, RL_ENTER_GETEVENTS, NULL, 0, False)
                        if self.cq_khead[0] == rl_load_acquire(self.cq_ktail):
                            with nogil:
                                _rl_usleep(1000)
                    self._reap()
                    while rl_load_relaxed(self.sq_kflags) & RL_SQ_CQ_OVERFLOW:
                        self._enter(0, 0, RL_ENTER_GETEVENTS, NULL, 0, False)
                        self._reap()
                if self.n_inflight:
                    self._abandon_all("io_uring ring closed before the operation "
                                      "finished", True)
        finally:
            self.closing = False
            self.closed = True
            for lst in self.accept_stash.values():
                for conn_fd, _ in lst:
                    close(conn_fd)
            self.accept_stash.clear()
            self.recv_stash.clear()
            self.arm_list = []
            self._unmap()
        return 0

    # ------------------------------------------------------------------
    # statistics

    cdef dict info(self):
        if rl_fork_gen() != self.fork_gen:
            return {"driver": "io_uring", "forked": True,
                    "note": f"ring of process {self.pid}, unusable in this child"}
        return {
            "driver": "io_uring",
            "ring_fd": self.ring_fd,
            "sq_entries": self.sq_entries,
            "cq_entries": self.cq_entries,
            "setup_flags": [n for f, n in _SETUP_FLAG_NAMES if self.setup_flags & f],
            "features": [n for f, n in _FEATURE_NAMES if self.features & f],
            "ext_arg": self.use_ext_arg,
            "multishot_poll": self.use_multishot_poll,
            "single_issuer": self.single_issuer,
            "defer_taskrun": self.defer_taskrun,
            "enter_calls": self.st_enter,
            "waits": self.st_waits,
            "sqes_submitted": self.st_sqes,
            "cqes_reaped": self.st_cqes,
            "overflow_flushes": self.st_overflow_flushes,
            "cq_overflow_kernel": (self.cq_koverflow[0] if self.cq_ring_ptr != NULL else 0),
            "poll_rearms": self.st_rearms,
            "poll_requests_reused": self.st_poll_reuses,
            "ops_started": self.st_ops,
            "cancels": self.st_cancels,
            "eagain_retries": self.st_eagain,
            "stashed": self.st_stashed,
            "sq_full_flushes": self.st_sq_full,
            "thread_migrations": self.st_migrations,
            "in_flight": self.n_inflight,
            "ops_in_flight": self.n_ops,
            "orphaned_ops": len(self.orphans),
        }


cdef int _so_error(int fd):
    cdef int err = 0
    cdef socklen_t sl = sizeof(int)
    if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0:
        return errno
    return err


# --------------------------------------------------------------------------
# probe(): what works here, for statistics and diagnostics

_probe_cache = None


def probe():
    """Return a dict describing io_uring support in this process: whether it
    is available (and why not), kernel features, supported opcodes, the
    setup flags the kernel accepts, and whether multishot poll and
    provided-buffer rings work.  Cached after the first call."""
    global _probe_cache
    if _probe_cache is not None:
        return _copy(_probe_cache)
    result = {"available": False, "error": None, "kernel": os.uname().release}
    cdef UringDriver d
    try:
        d = UringDriver(entries=8, cq_entries=16)
    except OSError as e:
        result["error"] = str(e)
        result["errno"] = e.errno
        _probe_cache = result
        return _copy(result)
    try:
        result["available"] = True
        result["features"] = {n: bool(d.features & f) for f, n in _FEATURE_NAMES}
        result["opcodes"] = {n: bool(d.ops[c]) for c, n in _OPCODE_NAMES}
        result["setup_flags_used"] = [n for f, n in _SETUP_FLAG_NAMES if d.setup_flags & f]
        result["setup_flags_accepted"] = _probe_flags()
        result["multishot_poll"] = _probe_multishot(d)
        result["pbuf_ring"] = _probe_pbuf_ring(d.ring_fd)
        result["ext_arg"] = bool(d.features & RL_FEAT_EXT_ARG)
    finally:
        d.close()
    _probe_cache = result
    return _copy(result)


def _copy(dict r):
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
            for k, v in r.items()}


cdef dict _probe_flags():
    cdef rl_uring_params p
    cdef int fd
    out = {}
    tries = [
        ("CQSIZE", RL_SETUP_CQSIZE), ("CLAMP", RL_SETUP_CLAMP),
        ("R_DISABLED", RL_SETUP_R_DISABLED), ("SUBMIT_ALL", RL_SETUP_SUBMIT_ALL),
        ("COOP_TASKRUN", RL_SETUP_COOP_TASKRUN),
        ("TASKRUN_FLAG", RL_SETUP_COOP_TASKRUN | RL_SETUP_TASKRUN_FLAG),
        ("SINGLE_ISSUER", RL_SETUP_SINGLE_ISSUER),
        ("DEFER_TASKRUN", RL_SETUP_SINGLE_ISSUER | RL_SETUP_DEFER_TASKRUN),
        ("NO_SQARRAY", RL_SETUP_NO_SQARRAY),
    ]
    for name, flags in tries:
        memset(&p, 0, sizeof(p))
        p.flags = flags
        p.cq_entries = 8
        fd = rl_io_uring_setup(4, &p)
        out[name] = fd >= 0
        if fd >= 0:
            close(fd)
    return out


cdef bint _probe_multishot(UringDriver d) except -1:
    # Arm a multishot poll on an eventfd, fire it twice: it must report both
    # times with IORING_CQE_F_MORE and stay armed.
    cdef FdWatch w = FdWatch.__new__(FdWatch)
    cdef _WatchState ws
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    try:
        w.fd = efd
        w.internal = True
        d.set_interest(w, EV_READ)
        ok = True
        for _ in range(2):
            os.eventfd_write(efd, 1)
            if d.poll(1.0) != 1:
                ok = False
            os.eventfd_read(efd)
        ws = <_WatchState>w.key
        ok = ok and d.use_multishot_poll and ws.rd is not None and ws.multishot
        d.set_interest(w, 0)
        d.poll(0)
        return ok
    finally:
        os.close(efd)


cdef bint _probe_pbuf_ring(int ring_fd):
    cdef rl_buf_reg reg
    cdef void *mem
    cdef int r
    mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if mem == MAP_FAILED:
        return False
    memset(&reg, 0, sizeof(reg))
    reg.ring_addr = <uint64_t><uintptr_t>mem
    reg.ring_entries = 8
    reg.bgid = 7
    r = rl_io_uring_register(ring_fd, RL_REGISTER_PBUF_RING, &reg, 1)
    if r == 0:
        rl_io_uring_register(ring_fd, RL_UNREGISTER_PBUF_RING, &reg, 1)
    munmap(mem, 4096)
    return r == 0


# --------------------------------------------------------------------------
# Python-visible test hooks (tests/test_uring_driver.py)

cdef class _TestDriver:
    """Drives a UringDriver from Python, for tests and diagnostics only."""
    cdef readonly UringDriver d
    cdef dict watches

    def __init__(self, *args, **kwargs):
        self.d = UringDriver(*args, **kwargs)
        self.watches = {}

    def fileno(self):
        return self.d.ring_fd

    def set_interest(self, int fd, int mask, bint internal=False):
        cdef FdWatch w = self.watches.get(fd)
        if w is None:
            w = FdWatch.__new__(FdWatch)
            w.fd = fd
            w.internal = internal
            self.watches[fd] = w
        self.d.set_interest(w, mask)
        if w.mask == 0:
            del self.watches[fd]

    def poll(self, double timeout):
        cdef int n = self.d.poll(timeout), i
        return sorted([((<FdWatch>self.d.ready[i]).fd, self.d.masks[i]) for i in range(n)])

    def recv(self, int fd, Py_ssize_t n, fut):
        return self.d.op_recv(fd, n, fut)

    def recv_into(self, int fd, buf, Py_ssize_t n, fut):
        return self.d.op_recv_into(fd, buf, n, fut)

    def recvfrom(self, int fd, Py_ssize_t n, fut):
        return self.d.op_recvfrom(fd, n, fut)

    def recvfrom_into(self, int fd, buf, Py_ssize_t n, fut):
        return self.d.op_recvfrom_into(fd, buf, n, fut)

    def send(self, int fd, data, fut):
        return self.d.op_send(fd, data, fut)

    def sendall(self, int fd, data, fut):
        return self.d.op_sendall(fd, data, fut)

    def sendto(self, int fd, data, int family, addr, fut):
        return self.d.op_sendto(fd, data, family, addr, fut)

    def accept(self, int fd, fut):
        return self.d.op_accept(fd, fut)

    def connect(self, int fd, int family, addr, fut):
        return self.d.op_connect(fd, family, addr, fut)

    def cancel(self, UringOp op):
        self.d.op_cancel(op)

    def forget_fd(self, int fd):
        self.d.forget_fd(fd)

    def has_stash(self, int fd):
        return self.d.has_stash(fd)

    def take_recv_stash(self, int fd):
        return self.d.take_recv_stash(fd)

    def take_accept_stash(self, int fd):
        return self.d.take_accept_stash(fd)

    def info(self):
        return self.d.info()

    def close(self):
        self.d.close()
        self.watches.clear()

    def sockaddr_roundtrip(self, int family, addr):
        """Build a sockaddr the way op_connect/op_sendto do and decode it."""
        cdef sockaddr_storage ss
        cdef socklen_t sl
        _fill_sockaddr(family, addr, &ss, &sl)
        return _make_addr(&ss, sl)
