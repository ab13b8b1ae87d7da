from ringloop.core.handles cimport IOTarget, IOHandle
from ringloop.core.loop cimport CoreLoop
from ringloop.includes.net cimport iovec


cdef class StreamCore(IOTarget):
    """The compiled half of a stream transport (TCP, Unix): the public
    StreamTransport (an asyncio.Transport) holds one and hands it the work."""
    cdef:
        # --- wiring -----------------------------------------------------
        CoreLoop loop
        object sock
        int fd
        object transport          # the public object; None after connection_lost
        object protocol
        bint buffered             # a BufferedProtocol: get_buffer/buffer_updated
        bint stream_reader        # asyncio's StreamReaderProtocol: reads may feed its
                                  # reader in C (_feed_stream_reader, stream.pyx)
        bint pipe                 # a pipe transport: read()/write()/writev()
        bint pipe_writer          # a write pipe: readable means "reader gone"
        bint py_io                # a socket subclass overriding recv/send...:
                                  # its methods are called, as asyncio does
        object py_exc             # the exception a py_io call raised, or None
        object server             # asyncio Server or None
        object context            # contextvars.Context the callbacks run in
        IOHandle rh               # registered read handle, or None
        IOHandle wh               # registered write handle, or None

        # --- state ------------------------------------------------------
        bint closing              # close() called (or a fatal error)
        bint paused               # pause_reading()
        bint large_reads          # reads go straight into the bytes (stream.pyx)
        bint reads_kept           # a large read was kept: no more of those
        bint paused_reads         # the protocol pauses on full reads: read 256 KiB
        object held               # bytes read before the transport existed, or None
        bint eof                  # write_eof() called
        bint protocol_connected
        public bint protocol_paused   # pause_writing() sent, resume not yet
        int conn_lost             # connection_lost scheduled (+ writes since)

        # --- write buffer -------------------------------------------------
        # Pending chunks are bytes objects (anything else is copied when it
        # is buffered, so the caller may reuse its buffer): wbuf[whead:],
        # the first woff bytes of wbuf[whead] already sent.
        list wbuf
        Py_ssize_t whead
        Py_ssize_t woff
        Py_ssize_t wsize
        # compared with wsize as C doubles; readonly: the values as given
        # (asyncio accepts any real numbers and reports them back as given)
        double high_water
        double low_water
        readonly object high_given
        readonly object low_given
        public object empty_waiter

    cdef int _set_protocol(self, protocol) except -1
    cdef int _feed_stream_reader(self, const char *buf, Py_ssize_t n) except -1
    cdef int _feed_stream_reader_steps(self, proto, const char *buf, Py_ssize_t n) except -1
    cdef int _schedule_connection_lost(self, exc) except -1
    cdef inline Py_ssize_t _recv(self, void *buf, Py_ssize_t n) except? -2
    cdef inline Py_ssize_t _send(self, const void *buf, Py_ssize_t n) except? -2
    cdef inline Py_ssize_t _sendv(self, iovec *iov, Py_ssize_t k) except? -2
    cdef Py_ssize_t _py_recv(self, void *buf, Py_ssize_t n) except? -2
    cdef Py_ssize_t _py_send(self, const void *buf, Py_ssize_t n) except? -2
    cdef Py_ssize_t _py_sendv(self, iovec *iov, Py_ssize_t k) except? -2
    cdef Py_ssize_t _py_call(self, method, arg, void *into, Py_ssize_t n) except? -2
    cdef object _io_error(self, int err)
    cdef str _what(self)
    cdef int _start_reading(self) except -1
    cdef int _stop_reading(self) except -1
    cdef int _start_writing(self) except -1
    cdef int _stop_writing(self) except -1
    cdef int _refuse_write(self, str call) except -1
    cdef int _drop_queue(self) except -1
    cdef int _write_after_lost(self) except -1
    cdef int _detach_server(self, transport) except -1
    cdef int _read_buffered(self) except -1
    cdef int _read_failed(self, Py_ssize_t n, int err) except -1
    cdef int _on_eof(self) except -1
    cdef int _on_pipe_eof(self) except -1
    cdef int _buffer_tail(self, object data, Py_ssize_t start) except -1
    cdef Py_ssize_t _flush(self) except -2
    cdef int _after_flush(self) except -1
    cdef object _write(self, object data)
    cdef object _writelines(self, object list_of_data)
    cdef int _data_received_failed(self) except -1
    cdef int _write_error(self, int err) except -1
    cdef int _fatal_error(self, exc, str message) except -1
    cdef int _force_close(self, exc) except -1
    cdef int _maybe_pause_protocol(self) except -1
    cdef int _maybe_resume_protocol(self) except -1
    cdef int _tell_protocol(self, str method) except -1


cdef class AcceptCore(IOTarget):
    """A listening socket's accept loop (one per socket of a Server)."""
    cdef int _accept_one(self, conn, addr, int tcp_fd) except -1
    cdef int _accept_in_context(self, conn, addr, int tcp_fd) except -1
    cdef:
        CoreLoop loop
        object sock
        int fd
        object protocol_factory
        object server
        int backlog
        object context
        IOHandle rh
        object retry              # TimerHandle of the EMFILE back-off, or None
        double retry_delay
        bint starved              # out of fds: reported once until it ends
        int family, stype, proto  # the listener's; family -1: call sock.accept()
        bint c_accept             # a TCP listener: accept4() in on_readable
