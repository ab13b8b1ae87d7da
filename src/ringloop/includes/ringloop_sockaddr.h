/* IP socket addresses as the socket module gives them, built without its
 * detour through glibc's inet_ntop(), whose IPv4 case formats with
 * sprintf("%u.%u.%u.%u") (~1,700 instructions of a connection's set-up,
 * once per address).  The objects are equal to socket.py's:
 *   AF_INET:  (host: str, port: int)
 *   AF_INET6: (host: str, port: int, flowinfo: int, scope_id: int), the
 *             host from inet_ntop() as CPython's makeipaddr() makes it.
 * Other families are left to the socket module (the callers fall back). */
#ifndef RINGLOOP_SOCKADDR_H
#define RINGLOOP_SOCKADDR_H

#include <Python.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/* Decimal octets, no leading zeros: "127.0.0.1". */
static inline Py_ssize_t
rl_format_ipv4(const unsigned char *b, char *out)
{
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned int v = b[i];
        if (v >= 100) {
            *p++ = (char)('0' + v / 100);
            v %= 100;
            *p++ = (char)('0' + v / 10);
            *p++ = (char)('0' + v % 10);
        }
        else if (v >= 10) {
            *p++ = (char)('0' + v / 10);
            *p++ = (char)('0' + v % 10);
        }
        else {
            *p++ = (char)('0' + v);
        }
        if (i < 3)
            *p++ = '.';
    }
    return p - out;
}

/* The address tuple of an AF_INET/AF_INET6 sockaddr; a new reference to
 * NotImplemented for another family (the caller asks the socket module);
 * NULL with an exception set on failure. */
static PyObject *
rl_inet_address(const void *addr, socklen_t len)
{
    const struct sockaddr *sa = (const struct sockaddr *)addr;
    char buf[INET6_ADDRSTRLEN + 1];
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        Py_ssize_t n = rl_format_ipv4((const unsigned char *)&a->sin_addr, buf);
        PyObject *host = PyUnicode_FromStringAndSize(buf, n);
        if (host == NULL)
            return NULL;
        PyObject *port = PyLong_FromLong((long)ntohs(a->sin_port));
        if (port == NULL) {
            Py_DECREF(host);
            return NULL;
        }
        PyObject *t = PyTuple_New(2);
        if (t == NULL) {
            Py_DECREF(host);
            Py_DECREF(port);
            return NULL;
        }
        PyTuple_SET_ITEM(t, 0, host);
        PyTuple_SET_ITEM(t, 1, port);
        return t;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf)) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("NiII", PyUnicode_FromString(buf),
                             (int)ntohs(a->sin6_port),
                             (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    Py_INCREF(Py_NotImplemented);
    return Py_NotImplemented;
}

/* sock.getsockname() (peer == 0) or sock.getpeername() (peer != 0) of an
 * IP socket's fd, as asyncio's transports record them: the address, None
 * if the call fails (asyncio catches the OSError), NotImplemented for
 * another family. */
static PyObject *
rl_inet_name(int fd, int peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int r;
    memset(&ss, 0, sizeof(ss));
    if (peer)
        r = getpeername(fd, (struct sockaddr *)&ss, &len);
    else
        r = getsockname(fd, (struct sockaddr *)&ss, &len);
    if (r < 0) {
        Py_INCREF(Py_None);
        return Py_None;
    }
    return rl_inet_address(&ss, len);
}

/* accept4(SOCK_CLOEXEC), as socket.socket._accept() calls it on Linux: the
 * new fd, or -1 with errno set.  The address goes to *ss (*len its length).
 * Where there is no accept4() (RL_HAVE_ACCEPT4 is 0), the callers use
 * socket.socket._accept(). */
#if defined(__linux__) && defined(SOCK_CLOEXEC)
#define RL_HAVE_ACCEPT4 1
static inline int
rl_accept_cloexec(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
    *len = sizeof(*ss);
    memset(ss, 0, sizeof(*ss));
    return accept4(fd, (struct sockaddr *)ss, len, SOCK_CLOEXEC);
}
#else
#define RL_HAVE_ACCEPT4 0
static inline int
rl_accept_cloexec(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
    (void)fd; (void)ss; (void)len;
    errno = ENOSYS;
    return -1;
}
#endif

#endif
