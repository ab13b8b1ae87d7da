# Mirrors of the socket headers the transports call directly (the hot path
# avoids the socket module: no method lookup, no exception object on EAGAIN).

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len
    ssize_t writev(int fd, const iovec *iov, int iovcnt)

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    ssize_t recv(int fd, void *buf, size_t n, int flags)
    ssize_t sendmsg(int fd, const msghdr *msg, int flags)
    int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen)
    int shutdown(int fd, int how)
    enum:
        MSG_NOSIGNAL
        SHUT_WR
        AF_UNSPEC
        AF_INET
        AF_INET6
        SOCK_STREAM
        SOCK_DGRAM

cdef extern from "<netinet/in.h>" nogil:
    enum:
        IPPROTO_TCP
        IPPROTO_UDP

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)

cdef extern from "<netinet/tcp.h>" nogil:
    enum:
        TCP_NODELAY

cdef extern from "<errno.h>" nogil:
    int errno
    enum:
        EINTR
        EAGAIN
        EWOULDBLOCK
        EIO
        ECONNABORTED

cdef extern from "<limits.h>" nogil:
    enum:
        IOV_MAX
