from ringloop.core.loop cimport CoreLoop
from ringloop.drivers.uring cimport UringDriver


cdef class ProactorCore(CoreLoop):
    cdef:
        UringDriver uring    # the same object as CoreLoop.driver

    cdef int _check_sock_free(self, object sock) except -1
    cdef bint _taken(self, object sock, int fd, object fut) except -1
    cdef bint _ring_socket(self, object sock, str method)
    cdef object _op_future(self)
    cdef int _cancel_op(self, op) except -1
    cpdef object _take_received(self, int fd)
