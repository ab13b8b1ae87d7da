"""Readiness driver over any ``selectors.BaseSelector``.

This is the documented way to choose SelectSelector/PollSelector (for
example for character devices that epoll or kqueue refuse), and the driver
used where the native epoll driver does not exist (other POSIX systems).

Sharp edges of the selectors module this driver absorbs:

* ``register`` refuses an fd already registered (KeyError) and ``modify``
  one that is not: we track the mask ourselves and call the right one.
* A file closed behind our back stays in the selector's map under its old
  number; ``unregister`` may then raise (OSError/ValueError from a closed
  fileobj): we tolerate that, as asyncio does.
* ``select`` retries on EINTR itself (PEP 475) after running Python signal
  handlers, so Ctrl-C still raises promptly from inside it.
* SelectSelector cannot watch fds >= FD_SETSIZE (1024): its ValueError
  propagates to add_reader/add_writer unchanged.
* Each SelectorKey's ``data`` is the loop's FdWatch, so results need no
  lookup.
"""

import selectors

from ringloop.drivers.base cimport Driver, FdWatch, EV_READ, EV_WRITE


cdef class SelectorDriver(Driver):
    def __init__(self, selector):
        if not isinstance(selector, selectors.BaseSelector):
            raise TypeError(
                f"selector must be a selectors.BaseSelector, not {type(selector).__name__!r}")
        self.selector = selector
        self.name = f"selectors.{type(selector).__name__}"
        self._EVENT_READ = selectors.EVENT_READ
        self._EVENT_WRITE = selectors.EVENT_WRITE
        self._grow(64)

    cdef int set_interest(self, FdWatch w, int mask) except -1:
        cdef int events = 0
        if mask == w.mask:
            return 0
        if mask & EV_READ:
            events |= self._EVENT_READ
        if mask & EV_WRITE:
            events |= self._EVENT_WRITE
        if mask == 0:
            w.mask = 0
            try:
                self.selector.unregister(w.fd)
            except (KeyError, ValueError, OSError):
                pass
            return 0
        if w.mask == 0:
            try:
                self.selector.register(w.fd, events, w)
            except KeyError:
                # A stale registration under the same number (the old file was
                # closed without remove_reader): replace it.
                self.selector.unregister(w.fd)
                self.selector.register(w.fd, events, w)
        else:
            self.selector.modify(w.fd, events, w)
        w.mask = mask
        return 0

    cdef int poll(self, double timeout) except -1:
        cdef int n, i, m, ev
        cdef object key
        cdef list result
        if timeout != 0:
            # The selector lets go of the GIL inside select(), where no hook
            # can mark the moment it returns: 2 stands for the whole wait
            # (see base.pxd).
            self.gil_wanted = 2
        try:
            result = self.selector.select(None if timeout < 0 else timeout)
        finally:
            self.gil_wanted = 0
        n = len(result)
        self._grow(n)
        i = 0
        for key, ev in result:
            m = 0
            if ev & self._EVENT_READ:
                m |= EV_READ
            if ev & self._EVENT_WRITE:
                m |= EV_WRITE
            self.ready[i] = <void *>key.data
            self.masks[i] = m
            i += 1
        return n

    cdef int close(self) except -1:
        if self.selector is not None:
            self.selector.close()
        return 0

    cdef dict info(self):
        return {"driver": self.name}
