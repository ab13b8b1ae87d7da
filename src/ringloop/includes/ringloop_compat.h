/* Stand-ins for Linux-only headers, so ringloop compiles on other POSIX
 * systems.  There the native epoll driver and eventfd report themselves
 * unavailable at run time and the loop uses the selectors driver and a
 * self-pipe instead (see docs/architecture.md). */
#ifndef RINGLOOP_COMPAT_H
#define RINGLOOP_COMPAT_H

#include <errno.h>
#include <pthread.h>

/* ---- fork detection ------------------------------------------------------
 * A counter bumped in every child created by fork() (pthread_atfork runs
 * the child handler in the new process).  A loop or driver remembers the
 * value it was created with: a different value means "this is a forked
 * child, the epoll set or ring belongs to the parent".  Checking it costs a
 * load, not a getpid().  Each extension module including this header has
 * its own counter and installs its own handler (once). */
static volatile unsigned long rl_fork_generation = 0;
static void rl_on_fork_child(void) { rl_fork_generation++; }
static int rl_atfork_installed = 0;
static inline int rl_install_atfork(void) {
    if (rl_atfork_installed) return 0;
    rl_atfork_installed = 1;
    return pthread_atfork(NULL, NULL, rl_on_fork_child);
}
static inline unsigned long rl_fork_gen(void) { return rl_fork_generation; }

#if defined(__linux__)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#define RINGLOOP_HAVE_EPOLL 1
#define RINGLOOP_HAVE_EVENTFD 1
#else
#define RINGLOOP_HAVE_EPOLL 0
#define RINGLOOP_HAVE_EVENTFD 0
typedef union epoll_data { void *ptr; int fd; unsigned int u32; unsigned long long u64; } epoll_data_t;
struct epoll_event { unsigned int events; epoll_data_t data; };
#define EPOLLIN 0x001
#define EPOLLOUT 0x004
#define EPOLLERR 0x008
#define EPOLLHUP 0x010
#define EPOLL_CTL_ADD 1
#define EPOLL_CTL_DEL 2
#define EPOLL_CTL_MOD 3
#define EPOLL_CLOEXEC 0
#define EFD_CLOEXEC 0
#define EFD_NONBLOCK 0
static inline int epoll_create1(int f) { (void)f; errno = ENOSYS; return -1; }
static inline int epoll_ctl(int a, int b, int c, struct epoll_event *d) { (void)a; (void)b; (void)c; (void)d; errno = ENOSYS; return -1; }
static inline int epoll_wait(int a, struct epoll_event *b, int c, int d) { (void)a; (void)b; (void)c; (void)d; errno = ENOSYS; return -1; }
static inline int eventfd(unsigned int a, int b) { (void)a; (void)b; errno = ENOSYS; return -1; }
#endif

/* The fd a socket.socket object holds (-1 once closed or detached): the
 * first field of CPython's PySocketSockObject (Modules/socketmodule.h, the
 * same in 3.11-3.13), read without a method call.  Only for objects known
 * to be socket.socket instances. */
typedef struct { PyObject_HEAD int sock_fd; } rl_sock_head;
#define rl_sock_fd(o) (((rl_sock_head *)(o))->sock_fd)

#endif
