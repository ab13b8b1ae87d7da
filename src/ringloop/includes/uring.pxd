# Mirror of ringloop_uring.h: the io_uring ABI (our own declarations, no
# liburing, no <linux/io_uring.h>), plus the socket/mman/poll names the
# io_uring driver needs.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t, uint64_t, int64_t

cdef extern from "ringloop_uring.h" nogil:
    const int RINGLOOP_HAVE_URING

    # --- structs ------------------------------------------------------------
    struct rl_sqring_offsets:
        uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1
        uint64_t user_addr
    struct rl_cqring_offsets:
        uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1
        uint64_t user_addr
    struct rl_uring_params:
        uint32_t sq_entries
        uint32_t cq_entries
        uint32_t flags
        uint32_t sq_thread_cpu
        uint32_t sq_thread_idle
        uint32_t features
        uint32_t wq_fd
        rl_sqring_offsets sq_off
        rl_cqring_offsets cq_off
    struct rl_sqe:
        uint8_t opcode
        uint8_t flags
        uint16_t ioprio
        int32_t fd
        uint64_t off
        uint64_t addr
        uint32_t len
        uint32_t op_flags
        uint64_t user_data
        uint16_t buf_index
        uint16_t personality
        int32_t splice_fd_in
        uint64_t addr3
        uint64_t pad2
    struct rl_cqe:
        uint64_t user_data
        int32_t res
        uint32_t flags
    struct rl_getevents_arg:
        uint64_t sigmask
        uint32_t sigmask_sz
        uint32_t min_wait_usec
        uint64_t ts
    struct rl_kernel_timespec:
        int64_t tv_sec
        long long tv_nsec
    struct rl_probe_op:
        uint8_t op
        uint16_t flags
    struct rl_probe:
        uint8_t last_op
        uint8_t ops_len
        rl_probe_op ops[256]
    struct rl_buf_reg:
        uint64_t ring_addr
        uint32_t ring_entries
        uint16_t bgid
        uint16_t flags

    # --- constants ----------------------------------------------------------
    enum:
        RL_PROBE_OPS
        RL_SETUP_IOPOLL
        RL_SETUP_SQPOLL
        RL_SETUP_CQSIZE
        RL_SETUP_CLAMP
        RL_SETUP_R_DISABLED
        RL_SETUP_SUBMIT_ALL
        RL_SETUP_COOP_TASKRUN
        RL_SETUP_TASKRUN_FLAG
        RL_SETUP_SINGLE_ISSUER
        RL_SETUP_DEFER_TASKRUN
        RL_SETUP_NO_SQARRAY

        RL_FEAT_SINGLE_MMAP
        RL_FEAT_NODROP
        RL_FEAT_SUBMIT_STABLE
        RL_FEAT_RW_CUR_POS
        RL_FEAT_CUR_PERSONALITY
        RL_FEAT_FAST_POLL
        RL_FEAT_POLL_32BITS
        RL_FEAT_SQPOLL_NONFIXED
        RL_FEAT_EXT_ARG
        RL_FEAT_NATIVE_WORKERS
        RL_FEAT_RSRC_TAGS
        RL_FEAT_CQE_SKIP
        RL_FEAT_LINKED_FILE
        RL_FEAT_REG_REG_RING
        RL_FEAT_RECVSEND_BUNDLE
        RL_FEAT_MIN_TIMEOUT

        RL_OP_NOP
        RL_OP_POLL_ADD
        RL_OP_POLL_REMOVE
        RL_OP_SENDMSG
        RL_OP_RECVMSG
        RL_OP_TIMEOUT
        RL_OP_TIMEOUT_REMOVE
        RL_OP_ACCEPT
        RL_OP_ASYNC_CANCEL
        RL_OP_LINK_TIMEOUT
        RL_OP_CONNECT
        RL_OP_CLOSE
        RL_OP_READ
        RL_OP_WRITE
        RL_OP_SEND
        RL_OP_RECV
        RL_OP_SPLICE
        RL_OP_PROVIDE_BUFFERS
        RL_OP_SHUTDOWN
        RL_OP_MSG_RING
        RL_OP_SOCKET
        RL_OP_SEND_ZC
        RL_OP_SENDMSG_ZC

        RL_IOSQE_IO_LINK
        RL_IOSQE_CQE_SKIP_SUCCESS
        RL_POLL_ADD_MULTI
        RL_ASYNC_CANCEL_ALL
        RL_ASYNC_CANCEL_FD
        RL_ASYNC_CANCEL_ANY
        RL_RECV_MULTISHOT
        RL_ENTER_GETEVENTS
        RL_ENTER_EXT_ARG
        RL_SQ_NEED_WAKEUP
        RL_SQ_CQ_OVERFLOW
        RL_SQ_TASKRUN
        RL_CQE_F_BUFFER
        RL_CQE_F_MORE
        RL_REGISTER_PROBE
        RL_REGISTER_ENABLE_RINGS
        RL_REGISTER_PBUF_RING
        RL_UNREGISTER_PBUF_RING
        RL_PROBE_OP_SUPPORTED
        RL_MADV_DONTFORK

    unsigned long long RL_OFF_SQ_RING
    unsigned long long RL_OFF_CQ_RING
    unsigned long long RL_OFF_SQES

    # --- calls --------------------------------------------------------------
    int rl_io_uring_setup(unsigned entries, rl_uring_params *p)
    int rl_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete,
                          unsigned flags, void *arg, size_t argsz)
    int rl_io_uring_register(int fd, unsigned opcode, void *arg, unsigned nr_args)

    unsigned rl_load_acquire(const unsigned *p)
    void rl_store_release(unsigned *p, unsigned v)
    unsigned rl_load_relaxed(const unsigned *p)
    void *rl_ptr_add(void *base, size_t off)
    uint32_t rl_poll_events(uint32_t m)

    int rl_install_atfork()
    unsigned long rl_fork_gen()

    uint64_t rl_thread_token()

    # --- <sys/mman.h> -------------------------------------------------------
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int madvise(void *addr, size_t length, int advice)
    void *MAP_FAILED
    enum:
        PROT_READ
        PROT_WRITE
        MAP_SHARED
        MAP_PRIVATE
        MAP_ANONYMOUS
        MAP_POPULATE

    # --- <sys/socket.h>, <netinet/in.h>, <sys/un.h>, <sys/uio.h> -----------
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
        char sa_data[14]
    struct sockaddr_storage:
        sa_family_t ss_family
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct in6_addr:
        unsigned char s6_addr[16]
    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id
    struct sockaddr_un:
        sa_family_t sun_family
        char sun_path[108]
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    enum:
        AF_UNIX
        AF_INET
        AF_INET6
        SOCK_STREAM
        SOCK_DGRAM
        SOCK_SEQPACKET
        SOCK_CLOEXEC
        SOCK_NONBLOCK
        SOL_SOCKET
        SO_TYPE
        SO_ERROR
        MSG_NOSIGNAL
        MSG_TRUNC
        INADDR_ANY
        INADDR_BROADCAST
        INET_ADDRSTRLEN
        INET6_ADDRSTRLEN
    int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen)
    int inet_pton(int af, const char *src, void *dst)
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
    uint16_t htons(uint16_t)
    uint16_t ntohs(uint16_t)
    uint32_t htonl(uint32_t)
    uint32_t ntohl(uint32_t)

    # --- <poll.h> -----------------------------------------------------------
    enum:
        POLLIN
        POLLPRI
        POLLOUT
        POLLERR
        POLLHUP
        POLLNVAL
        POLLRDHUP

    # --- misc ---------------------------------------------------------------
    int getpid()
    int close(int fd)
    const int RL_SUN_PATH_OFFSET
