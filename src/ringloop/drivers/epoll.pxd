from ringloop.drivers.base cimport Driver, FdWatch
from ringloop.includes.system cimport epoll_event


cdef class EpollDriver(Driver):
    cdef:
        int epfd
        epoll_event *events     # kernel's output buffer for epoll_wait
        int maxevents
