/*
 * Single-core C epoll echo server: the "C server (limit)" row of bench/echo.py.
 *
 * What a loop written in C with no Python in it does on one core: one
 * thread, pinned to one CPU, listening on 127.0.0.1 (ephemeral port),
 * level-triggered epoll, one reusable 256 KiB buffer for every read (no
 * allocation per message).  On readable: recv into the buffer, send it all
 * back; repeat while a recv fills the buffer, stop at a short read (with
 * level-triggered epoll a short read means the socket is drained for now,
 * and epoll reports it again if more arrives: the extra recv that would
 * only fail with EAGAIN is saved, as a tuned server does) or at EAGAIN.
 * When the peer does not take everything (send returns EAGAIN, possible
 * with 100 KiB messages), the rest is kept in a per-connection pending
 * buffer and the connection waits for EPOLLOUT only: it reads nothing more
 * until that is sent (back-pressure, as a Python transport's pause_reading
 * would do).  Accepted sockets get TCP_NODELAY.
 *
 * It prints one JSON line, {"port": P, "pid": N, "class": "cecho"}, once it
 * listens, like bench/echo.py's Python servers, and then serves until
 * SIGTERM or until its lifetime (-l seconds, alarm()) is over.
 *
 * Build: cc -O2 -o cecho cecho.c   (bench/echo.py does this itself)
 * Usage: cecho [-C CPU] [-b BACKLOG] [-l LIFETIME_S]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define MAX_EVENTS 256

struct conn {
    int fd;
    char *pending;      /* bytes read but not yet sent back (NULL: none) */
    size_t pending_len; /* how many */
    size_t pending_off; /* how many of those were sent already */
    size_t pending_cap;
};

static char buf[BUF_SIZE];

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
}

/* Send data[0:len]; keep what the socket does not take.  0 ok, -1 dead. */
static int send_all(int ep, struct conn *c, const char *data, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            size_t rest = len - off;
            if (rest > c->pending_cap) {
                char *p = realloc(c->pending, rest);
                if (!p) return -1;
                c->pending = p;
                c->pending_cap = rest;
            }
            memmove(c->pending, data + off, rest);
            c->pending_len = rest;
            c->pending_off = 0;
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return 0;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Writable again: send the pending bytes; when done, read again. */
static int flush_pending(int ep, struct conn *c) {
    while (c->pending_off < c->pending_len) {
        ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->pending_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    c->pending_len = c->pending_off = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

/* Readable: echo until a short read or EAGAIN.  0 ok, -1 closed or dead. */
static int echo(int ep, struct conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            if (send_all(ep, c, buf, (size_t)n) < 0) return -1;
            if (c->pending_len) return 0;          /* wait for EPOLLOUT first */
            if ((size_t)n < sizeof buf) return 0;  /* drained for now */
        } else if (n == 0) {
            return -1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else {
            return -1;
        }
    }
}

int main(int argc, char **argv) {
    int cpu = -1, backlog = 1024, opt;
    double lifetime = 0;
    while ((opt = getopt(argc, argv, "C:b:l:")) != -1) {
        switch (opt) {
        case 'C': cpu = atoi(optarg); break;
        case 'b': backlog = atoi(optarg); break;
        case 'l': lifetime = atof(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-C CPU] [-b BACKLOG] [-l LIFETIME_S]\n", argv[0]);
            return 2;
        }
    }
    if (lifetime > 0) alarm((unsigned)lifetime + 1); /* ends us whatever happens */
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            perror("cecho: sched_setaffinity");
            return 2;
        }
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only */
    addr.sin_port = 0;
    socklen_t alen = sizeof addr;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, backlog) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("cecho: listen");
        return 2;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the listener */
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) {
        perror("cecho: epoll");
        return 2;
    }
    printf("{\"port\": %d, \"pid\": %d, \"class\": \"cecho\"}\n", ntohs(addr.sin_port),
           (int)getpid());
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("cecho: epoll_wait");
            return 2;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED) continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                            perror("cecho: accept4");
                        break;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
                        close(fd);
                        free(nc);
                    }
                }
                continue;
            }
            uint32_t evs = events[i].events;
            int rc = 0;
            if (c->pending_len) {
                rc = flush_pending(ep, c);
            } else if (evs & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                rc = echo(ep, c);
            }
            if (rc < 0) drop(ep, c);
        }
    }
}
