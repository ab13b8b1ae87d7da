"""Native epoll readiness driver (Linux).

How epoll behaves, and what this driver does about it:

* Interest is per *open file description*, registered under an fd number.
  Closing the last fd of a description silently removes it from the set, so
  a later EPOLL_CTL_MOD/DEL on that number fails with ENOENT/EBADF and an
  EPOLL_CTL_MOD on a *new* file that reused the number fails with ENOENT:
  we retry as ADD, and treat ENOENT/EBADF on removal as already removed.
* We use level-triggered mode, as asyncio does: a callback that leaves data
  unread is called again on the next iteration, never starved.
* EPOLLERR and EPOLLHUP are always reported, whatever the mask: they are
  delivered to both the reader and the writer (as selectors.EpollSelector
  does), so a reader sees EOF/error on its next recv and a writer its error.
* epoll_data carries a borrowed pointer to the loop's FdWatch, so an event
  needs no dict lookup.  The loop owns the FdWatch and unregisters it before
  dropping it; events of one poll are turned into ready callbacks before any
  callback runs, so a pointer in the result array is never stale.
* epoll_wait takes milliseconds: timeouts are rounded *up* so a timer never
  fires early and the loop never spins on a sub-millisecond remainder.
* EINTR: a signal arrived.  Python's C-level handler only set a flag; we run
  the Python-level handlers now (PyErr_CheckSignals) so Ctrl-C raises
  KeyboardInterrupt promptly, then report zero events.
* Regular files cannot be registered (EPERM), as with selectors: the error
  propagates to add_reader/add_writer.
"""

from libc.stdlib cimport malloc, free
from libc.math cimport ceil
from cpython.exc cimport PyErr_CheckSignals

from ringloop.drivers.base cimport Driver, FdWatch, EV_READ, EV_WRITE
from ringloop.includes.system cimport (
    errno, EINTR, ENOENT, EBADF, EEXIST, close,
    RINGLOOP_HAVE_EPOLL, epoll_event, epoll_create1, epoll_ctl, epoll_wait,
    EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP,
    EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL, EPOLL_CLOEXEC,
)


def epoll_available():
    return bool(RINGLOOP_HAVE_EPOLL)


cdef class EpollDriver(Driver):
    def __cinit__(self):
        cdef int err
        self.name = "epoll"
        self.epfd = -1
        self.maxevents = 256
        if not RINGLOOP_HAVE_EPOLL:
            raise OSError("epoll is not available on this platform; "
                          "pass a selectors selector to SelectorEventLoop")
        self.events = <epoll_event *>malloc(self.maxevents * sizeof(epoll_event))
        if self.events == NULL:
            raise MemoryError()
        self._grow(self.maxevents)
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            err = errno
            raise OSError(err, _strerror(err))   # as select.epoll() says it

    def __dealloc__(self):
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        free(self.events)
        self.events = NULL

    def fileno(self):
        return self.epfd

    cdef int set_interest(self, FdWatch w, int mask) except -1:
        cdef epoll_event ev
        cdef int rc, err
        if self.epfd < 0:
            raise RuntimeError("the epoll driver is closed")
        if mask == w.mask:
            return 0
        ev.events = 0
        if mask & EV_READ:
            ev.events |= EPOLLIN
        if mask & EV_WRITE:
            ev.events |= EPOLLOUT
        ev.data.ptr = <void *>w
        if mask == 0:
            rc = epoll_ctl(self.epfd, EPOLL_CTL_DEL, w.fd, &ev)
            err = errno
            w.mask = 0
            if rc < 0 and err != ENOENT and err != EBADF:
                raise OSError(err, _strerror(err))
            return 0
        if w.mask == 0:
            rc = epoll_ctl(self.epfd, EPOLL_CTL_ADD, w.fd, &ev)
            if rc < 0 and errno == EEXIST:
                rc = epoll_ctl(self.epfd, EPOLL_CTL_MOD, w.fd, &ev)
        else:
            rc = epoll_ctl(self.epfd, EPOLL_CTL_MOD, w.fd, &ev)
            if rc < 0 and errno == ENOENT:
                # The old file was closed behind our back; this is a new one.
                rc = epoll_ctl(self.epfd, EPOLL_CTL_ADD, w.fd, &ev)
        if rc < 0:
            err = errno
            raise OSError(err, _strerror(err))
        w.mask = mask
        return 0

    cdef int poll(self, double timeout) except -1:
        cdef int ms, n, i, m, err
        cdef unsigned int e
        if timeout < 0:
            ms = -1
        elif timeout == 0:
            ms = 0
        else:
            # Round up: never wake before the earliest timer is due.
            if timeout > 2147483.0:
                timeout = 2147483.0
            ms = <int>ceil(timeout * 1000.0)
        if ms == 0:
            # Non-blocking: not worth dropping and re-taking the GIL.
            n = epoll_wait(self.epfd, self.events, self.maxevents, 0)
        else:
            self.gil_wanted = 2
            with nogil:
                n = epoll_wait(self.epfd, self.events, self.maxevents, ms)
                self.gil_wanted = 1
            self.gil_wanted = 0
        if n < 0:
            err = errno
            if err == EINTR:
                PyErr_CheckSignals()
                return 0
            raise OSError(err, _strerror(err))
        for i in range(n):
            e = self.events[i].events
            m = 0
            if e & (EPOLLIN | EPOLLERR | EPOLLHUP):
                m |= EV_READ
            if e & (EPOLLOUT | EPOLLERR | EPOLLHUP):
                m |= EV_WRITE
            self.ready[i] = self.events[i].data.ptr
            self.masks[i] = m
        return n

    cdef int close(self) except -1:
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        return 0

    cdef dict info(self):
        return {"driver": "epoll", "epoll_fd": self.epfd}


cdef str _strerror(int err):
    import os
    return os.strerror(err)
