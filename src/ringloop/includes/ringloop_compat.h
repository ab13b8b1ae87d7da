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

/* A type's tp_traverse followed by an extra one (rl_patch_traverse): the
 * loop reports what the handles queued in it reference, since those
 * handles are kept out of the cyclic GC (core/loop.pyx, _queued_traverse).
 * One patched type per module that includes this. */
typedef int (*rl_extra_traverse)(PyObject *, visitproc, void *);
static traverseproc rl_base_traverse = NULL;
static rl_extra_traverse rl_extra = NULL;

static inline int rl_patched_traverse(PyObject *o, visitproc visit, void *arg) {
    int r = rl_base_traverse ? rl_base_traverse(o, visit, arg) : 0;
    if (r) return r;
    return rl_extra(o, visit, arg);
}

static inline int rl_patch_traverse(PyObject *type, rl_extra_traverse extra) {
    PyTypeObject *t = (PyTypeObject *)type;
    if (t->tp_traverse == rl_patched_traverse) return 0;
    rl_base_traverse = t->tp_traverse;
    rl_extra = extra;
    t->tp_traverse = rl_patched_traverse;
    return 0;
}

/* Call o's own tp_traverse (NULL-safe). */
static inline int rl_traverse_of(PyObject *o, visitproc visit, void *arg) {
    traverseproc f = Py_TYPE(o)->tp_traverse;
    return f ? f(o, visit, arg) : 0;
}

#endif
