from ringloop.drivers.base cimport Driver, FdWatch


cdef class SelectorDriver(Driver):
    cdef:
        readonly object selector    # a selectors.BaseSelector
        object _EVENT_READ
        object _EVENT_WRITE
