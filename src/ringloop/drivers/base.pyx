"""The driver seam shared by every I/O backend, and the thread wake-up."""

import os

from libc.stdlib cimport malloc, realloc, free
from ringloop.includes.system cimport (
    read, write, close, pipe, fcntl, errno, EINTR, EAGAIN,
    F_GETFL, F_SETFL, F_GETFD, F_SETFD, FD_CLOEXEC, O_NONBLOCK,
    RINGLOOP_HAVE_EVENTFD, eventfd, EFD_CLOEXEC, EFD_NONBLOCK,
)


cdef class FdWatch:
    def __cinit__(self):
        self.fd = -1
        self.mask = 0
        self.internal = False

    def __repr__(self):
        return f"<FdWatch fd={self.fd} mask={self.mask}>"


cdef class Driver:
    def __cinit__(self):
        self.name = "abstract"
        self.ready = NULL
        self.masks = NULL
        self.capacity = 0

    def __dealloc__(self):
        free(self.ready)
        free(self.masks)

    cdef int _grow(self, int n) except -1:
        cdef void **r
        cdef int *m
        if n <= self.capacity:
            return 0
        r = <void **>realloc(self.ready, n * sizeof(void *))
        if r == NULL:
            raise MemoryError()
        self.ready = r
        m = <int *>realloc(self.masks, n * sizeof(int))
        if m == NULL:
            raise MemoryError()
        self.masks = m
        self.capacity = n
        return 0

    cdef int set_interest(self, FdWatch w, int mask) except -1:
        raise NotImplementedError

    cdef int fail_closed_owners(self) except -1:
        return 0            # no operations of its own: nothing to check

    cdef int poll(self, double timeout) except -1:
        raise NotImplementedError

    cdef bint idle(self) noexcept:
        # Readiness drivers keep no work of their own between polls.
        return True

    cdef int close(self) except -1:
        return 0

    cdef dict info(self):
        return {"driver": self.name}


cdef int _set_nonblock_cloexec(int fd) except -1:
    cdef int fl = fcntl(fd, F_GETFL)
    if fl < 0 or fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0:
        raise OSError(errno, "fcntl failed")
    fl = fcntl(fd, F_GETFD)
    if fl < 0 or fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0:
        raise OSError(errno, "fcntl failed")
    return 0


cdef class Waker:
    # eventfd on Linux (one fd, 8-byte counter); a non-blocking self-pipe on
    # other POSIX systems, or when RINGLOOP_PORTABLE=1 forces the portable path.
    def __cinit__(self):
        self.read_fd = -1
        self.write_fd = -1

    cdef int wake(self) nogil:
        cdef unsigned long long one = 1
        cdef char c = 0
        if self.write_fd < 0:
            return 0
        if self.read_fd == self.write_fd:
            write(self.write_fd, &one, 8)
        else:
            # A full pipe already guarantees a wake-up: EAGAIN is fine.
            write(self.write_fd, &c, 1)
        return 0

    cdef int drain(self) except -1:
        cdef char buf[256]
        cdef ssize_t n
        if self.read_fd < 0:
            return 0
        while True:
            n = read(self.read_fd, buf, sizeof(buf))
            if n > 0 and self.read_fd != self.write_fd and n == sizeof(buf):
                continue
            if n < 0 and errno == EINTR:
                continue
            return 0

    cdef int close(self) except -1:
        if self.read_fd >= 0:
            close(self.read_fd)
        if self.write_fd >= 0 and self.write_fd != self.read_fd:
            close(self.write_fd)
        self.read_fd = self.write_fd = -1
        return 0

    def __dealloc__(self):
        self.close()


cdef Waker make_waker(bint portable):
    cdef Waker w = Waker.__new__(Waker)
    cdef int fds[2]
    cdef int fd, err
    if RINGLOOP_HAVE_EVENTFD and not portable:
        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
        if fd < 0:
            err = errno
            raise OSError(err, os.strerror(err))
        w.read_fd = w.write_fd = fd
        w.kind = "eventfd"
        return w
    if pipe(fds) < 0:
        err = errno
        raise OSError(err, os.strerror(err))
    w.read_fd = fds[0]
    w.write_fd = fds[1]
    _set_nonblock_cloexec(fds[0])
    _set_nonblock_cloexec(fds[1])
    w.kind = "self-pipe"
    return w
