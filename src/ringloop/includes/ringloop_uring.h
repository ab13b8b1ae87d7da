/* io_uring ABI for ringloop's own ring code: no liburing, and no reliance on
 * <linux/io_uring.h> being installed on the build machine.
 *
 * Everything here is kernel ABI (stable: values are never renumbered, structs
 * only grow in reserved space), declared under our own rl_ names so that it
 * cannot clash with the kernel header if some other include pulls it in.
 * On non-Linux systems the syscall wrappers fail with ENOSYS and the driver
 * reports itself unavailable at run time; the module still compiles.
 */
#ifndef RINGLOOP_URING_H
#define RINGLOOP_URING_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/mman.h>
#include "ringloop_compat.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <time.h>

#if defined(__linux__)
#include <sys/syscall.h>
#define RINGLOOP_HAVE_URING 1
#else
#define RINGLOOP_HAVE_URING 0
#endif

#ifndef MAP_POPULATE
#define MAP_POPULATE 0
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC 0
#endif
#ifndef SOCK_NONBLOCK
#define SOCK_NONBLOCK 0
#endif
#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif

/* ---- system call numbers (identical on every Linux architecture since
 * the 5.1 "unified" numbering, except alpha which nobody runs this on) */
#define RL_NR_io_uring_setup 425
#define RL_NR_io_uring_enter 426
#define RL_NR_io_uring_register 427

/* ---- structs ------------------------------------------------------------ */

struct rl_sqring_offsets {
    uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
    uint64_t user_addr;
};

struct rl_cqring_offsets {
    uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
    uint64_t user_addr;
};

struct rl_uring_params {
    uint32_t sq_entries;
    uint32_t cq_entries;
    uint32_t flags;
    uint32_t sq_thread_cpu;
    uint32_t sq_thread_idle;
    uint32_t features;
    uint32_t wq_fd;
    uint32_t resv[3];
    struct rl_sqring_offsets sq_off;
    struct rl_cqring_offsets cq_off;
};

/* The 64-byte SQE with its unions flattened to the members we use:
 *   off      = off / addr2 (accept: addrlen pointer; connect: addrlen)
 *   addr     = buffer, sockaddr, msghdr or target user_data (cancel/remove)
 *   op_flags = rw_flags / poll32_events / msg_flags / timeout_flags /
 *              accept_flags / cancel_flags (one 32-bit union in the ABI) */
struct rl_sqe {
    uint8_t opcode;
    uint8_t flags;
    uint16_t ioprio;
    int32_t fd;
    uint64_t off;
    uint64_t addr;
    uint32_t len;
    uint32_t op_flags;
    uint64_t user_data;
    uint16_t buf_index;
    uint16_t personality;
    int32_t splice_fd_in;
    uint64_t addr3;
    uint64_t pad2;
};

struct rl_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

struct rl_getevents_arg {
    uint64_t sigmask;
    uint32_t sigmask_sz;
    uint32_t min_wait_usec;   /* "pad" before 6.12: must be 0 there */
    uint64_t ts;
};

struct rl_kernel_timespec {
    int64_t tv_sec;
    long long tv_nsec;
};

struct rl_probe_op {
    uint8_t op;
    uint8_t resv;
    uint16_t flags;
    uint32_t resv2;
};

#define RL_PROBE_OPS 256
struct rl_probe {
    uint8_t last_op;
    uint8_t ops_len;
    uint16_t resv;
    uint32_t resv2[3];
    struct rl_probe_op ops[RL_PROBE_OPS];
};

struct rl_buf_reg {           /* IORING_REGISTER_PBUF_RING argument */
    uint64_t ring_addr;
    uint32_t ring_entries;
    uint16_t bgid;
    uint16_t flags;
    uint64_t resv[3];
};

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct rl_sqe) == 64, "io_uring SQE is 64 bytes");
_Static_assert(sizeof(struct rl_cqe) == 16, "io_uring CQE is 16 bytes");
_Static_assert(sizeof(struct rl_uring_params) == 120, "io_uring_params is 120 bytes");
_Static_assert(sizeof(struct rl_getevents_arg) == 24, "getevents_arg is 24 bytes");
_Static_assert(sizeof(struct rl_probe_op) == 8, "probe op is 8 bytes");
_Static_assert(sizeof(struct rl_probe) == 16 + 8 * RL_PROBE_OPS, "probe layout");
_Static_assert(sizeof(struct rl_buf_reg) == 40, "buf_reg is 40 bytes");
#endif

/* ---- constants ---------------------------------------------------------- */

/* setup flags */
#define RL_SETUP_IOPOLL         (1U << 0)
#define RL_SETUP_SQPOLL         (1U << 1)
#define RL_SETUP_CQSIZE         (1U << 3)
#define RL_SETUP_CLAMP          (1U << 4)
#define RL_SETUP_R_DISABLED     (1U << 6)
#define RL_SETUP_SUBMIT_ALL     (1U << 7)
#define RL_SETUP_COOP_TASKRUN   (1U << 8)
#define RL_SETUP_TASKRUN_FLAG   (1U << 9)
#define RL_SETUP_SINGLE_ISSUER  (1U << 12)
#define RL_SETUP_DEFER_TASKRUN  (1U << 13)
#define RL_SETUP_NO_SQARRAY     (1U << 16)

/* features reported by setup */
#define RL_FEAT_SINGLE_MMAP     (1U << 0)
#define RL_FEAT_NODROP          (1U << 1)
#define RL_FEAT_SUBMIT_STABLE   (1U << 2)
#define RL_FEAT_RW_CUR_POS      (1U << 3)
#define RL_FEAT_CUR_PERSONALITY (1U << 4)
#define RL_FEAT_FAST_POLL       (1U << 5)
#define RL_FEAT_POLL_32BITS     (1U << 6)
#define RL_FEAT_SQPOLL_NONFIXED (1U << 7)
#define RL_FEAT_EXT_ARG         (1U << 8)
#define RL_FEAT_NATIVE_WORKERS  (1U << 9)
#define RL_FEAT_RSRC_TAGS       (1U << 10)
#define RL_FEAT_CQE_SKIP        (1U << 11)
#define RL_FEAT_LINKED_FILE     (1U << 12)
#define RL_FEAT_REG_REG_RING    (1U << 13)
#define RL_FEAT_RECVSEND_BUNDLE (1U << 14)
#define RL_FEAT_MIN_TIMEOUT     (1U << 15)

/* opcodes */
#define RL_OP_NOP           0
#define RL_OP_POLL_ADD      6
#define RL_OP_POLL_REMOVE   7
#define RL_OP_SENDMSG       9
#define RL_OP_RECVMSG       10
#define RL_OP_TIMEOUT       11
#define RL_OP_TIMEOUT_REMOVE 12
#define RL_OP_ACCEPT        13
#define RL_OP_ASYNC_CANCEL  14
#define RL_OP_LINK_TIMEOUT  15
#define RL_OP_CONNECT       16
#define RL_OP_CLOSE         19
#define RL_OP_READ          22
#define RL_OP_WRITE         23
#define RL_OP_SEND          26
#define RL_OP_RECV          27
#define RL_OP_SPLICE        30
#define RL_OP_PROVIDE_BUFFERS 31
#define RL_OP_SHUTDOWN      34
#define RL_OP_MSG_RING      40
#define RL_OP_SOCKET        45
#define RL_OP_SEND_ZC       47
#define RL_OP_SENDMSG_ZC    48

/* sqe->flags */
#define RL_IOSQE_IO_LINK    (1U << 2)
#define RL_IOSQE_CQE_SKIP_SUCCESS (1U << 6)

/* poll / cancel / timeout op flags */
#define RL_POLL_ADD_MULTI   (1U << 0)
#define RL_ASYNC_CANCEL_ALL (1U << 0)
#define RL_ASYNC_CANCEL_FD  (1U << 1)
#define RL_ASYNC_CANCEL_ANY (1U << 2)
#define RL_RECV_MULTISHOT   (1U << 1)

/* io_uring_enter flags */
#define RL_ENTER_GETEVENTS  (1U << 0)
#define RL_ENTER_EXT_ARG    (1U << 3)

/* sq_ring->flags */
#define RL_SQ_NEED_WAKEUP   (1U << 0)
#define RL_SQ_CQ_OVERFLOW   (1U << 1)
#define RL_SQ_TASKRUN       (1U << 2)

/* cqe->flags */
#define RL_CQE_F_BUFFER     (1U << 0)
#define RL_CQE_F_MORE       (1U << 1)

/* mmap offsets */
#define RL_OFF_SQ_RING      0ULL
#define RL_OFF_CQ_RING      0x8000000ULL
#define RL_OFF_SQES         0x10000000ULL

/* io_uring_register opcodes */
#define RL_REGISTER_PROBE        8
#define RL_REGISTER_ENABLE_RINGS 12
#define RL_REGISTER_PBUF_RING    22
#define RL_UNREGISTER_PBUF_RING  23
#define RL_PROBE_OP_SUPPORTED    (1U << 0)

/* ---- system calls ------------------------------------------------------- */

#if RINGLOOP_HAVE_URING
static inline int rl_io_uring_setup(unsigned entries, struct rl_uring_params *p) {
    return (int)syscall(RL_NR_io_uring_setup, entries, p);
}
static inline int rl_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete,
                                    unsigned flags, void *arg, size_t argsz) {
    return (int)syscall(RL_NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
}
static inline int rl_io_uring_register(int fd, unsigned opcode, void *arg, unsigned nr_args) {
    return (int)syscall(RL_NR_io_uring_register, fd, opcode, arg, nr_args);
}
#ifdef MADV_DONTFORK
#define RL_MADV_DONTFORK MADV_DONTFORK
#else
#define RL_MADV_DONTFORK 0
#endif
#else
static inline int rl_io_uring_setup(unsigned e, struct rl_uring_params *p) {
    (void)e; (void)p; errno = ENOSYS; return -1;
}
static inline int rl_io_uring_enter(int fd, unsigned a, unsigned b, unsigned c, void *d, size_t e) {
    (void)fd; (void)a; (void)b; (void)c; (void)d; (void)e; errno = ENOSYS; return -1;
}
static inline int rl_io_uring_register(int fd, unsigned a, void *b, unsigned c) {
    (void)fd; (void)a; (void)b; (void)c; errno = ENOSYS; return -1;
}
#define RL_MADV_DONTFORK 0
#endif

/* ---- shared-memory ordering ----------------------------------------------
 * The kernel writes CQ tail / SQ head, we write CQ head / SQ tail.  Loads of
 * the kernel's indices are acquire (entries written before the index are
 * visible), stores of ours are release (our entries are complete first). */
static inline unsigned rl_load_acquire(const unsigned *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void rl_store_release(unsigned *p, unsigned v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline unsigned rl_load_relaxed(const unsigned *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* sqe->poll32_events shares a union with the old 16-bit poll_events: on
 * big-endian hosts the kernel expects the halves swapped (as liburing does). */
static inline uint32_t rl_poll_events(uint32_t m) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (m << 16) | (m >> 16);
#else
    return m;
#endif
}

static inline void *rl_ptr_add(void *base, size_t off) { return (char *)base + off; }

#define RL_SUN_PATH_OFFSET ((int)offsetof(struct sockaddr_un, sun_path))

/* ---- fork detection: rl_install_atfork(), rl_fork_gen() in ringloop_compat.h */

/* ---- thread identity -------------------------------------------------------
 * pthread_t values (and even kernel tids) are reused once a thread exits, so
 * "is this the thread that owns the ring?" uses a token unique for the life
 * of the process: a thread-local set from a global counter on first use. */
static uint64_t rl_thread_counter = 0;
static __thread uint64_t rl_thread_tok = 0;
static inline uint64_t rl_thread_token(void) {
    if (rl_thread_tok == 0)
        rl_thread_tok = __atomic_add_fetch(&rl_thread_counter, 1, __ATOMIC_RELAXED);
    return rl_thread_tok;
}

#endif /* RINGLOOP_URING_H */
