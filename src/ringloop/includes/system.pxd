# Mirrors of the C system headers ringloop uses (Linux first; guarded where
# other POSIX systems lack a facility).  One block per header.

cdef extern from "<errno.h>" nogil:
    int errno
    enum:
        EINTR
        EAGAIN
        EWOULDBLOCK
        EBADF
        ENOENT
        EEXIST
        EINVAL
        EPERM

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void *buf, size_t count)
    ssize_t write(int fd, const void *buf, size_t count)
    int close(int fd)
    int pipe(int pipefd[2])
    int getpid()

cdef extern from "<fcntl.h>" nogil:
    int fcntl(int fd, int cmd, ...)
    enum:
        F_GETFL
        F_SETFL
        F_GETFD
        F_SETFD
        FD_CLOEXEC
        O_NONBLOCK
        O_CLOEXEC

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    enum:
        CLOCK_MONOTONIC
    int clock_gettime(int clk_id, timespec *tp)
    int clock_getres(int clk_id, timespec *tp)

# Linux-only facilities.  ringloop_compat.h supplies stand-ins elsewhere so the
# module still compiles; the drivers check RINGLOOP_HAVE_* at run time.
cdef extern from "ringloop_compat.h" nogil:
    const int RINGLOOP_HAVE_EPOLL
    const int RINGLOOP_HAVE_EVENTFD

    # fork detection (a counter bumped in forked children)
    int rl_install_atfork()
    unsigned long rl_fork_gen()

    ctypedef union epoll_data_t:
        void *ptr
        int fd
        unsigned int u32
        unsigned long long u64
    struct epoll_event:
        unsigned int events
        epoll_data_t data
    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC
        EFD_CLOEXEC
        EFD_NONBLOCK
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int eventfd(unsigned int initval, int flags)
