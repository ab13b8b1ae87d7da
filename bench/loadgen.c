/*
 * TCP echo load generator for bench/echo.py, and HTTP/1.1 keep-alive load
 * generator for bench/httpbench.py (-H).
 *
 * N connections to 127.0.0.1:PORT, each in ping-pong: send a message of
 * SIZE bytes, read until SIZE bytes came back (and check they are the bytes
 * sent), send the next one.  Messages of TRUNC_FROM bytes or more are
 * checked in full one in CHECK_EVERY per connection (the first included);
 * the others are counted but not copied out of the kernel (recv with
 * MSG_TRUNC, which TCP discards without copying): at 100 KiB the copy and
 * the comparison of every echo made the client, not the server, the limit.  With -H the message is a keep-alive
 * "GET / HTTP/1.1" request (as wrk sends it) and SIZE is the length of the
 * server's fixed answer: every answer must be a "HTTP/1.1 200 " of exactly
 * SIZE bytes, the same bytes as the first one.  One thread, non-blocking
 * sockets, epoll.
 * Runs WARMUP seconds unmeasured, then DURATION seconds measured, and prints
 * one JSON line: requests/s over the measured window and the round-trip
 * latency percentiles (1 us histogram buckets) of the requests completed in
 * it.  It exits by itself at the end of the window whatever the server does;
 * a server that stops answering shows up as stalled connections.
 *
 * Build: cc -O2 -o loadgen loadgen.c   (bench/echo.py does this itself)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 1000000 /* 1 us buckets up to 1 s; slower ones go in the last */
#define MAX_EVENTS 256
#define TRUNC_FROM (16 * 1024) /* messages this large are sampled... */
#define CHECK_EVERY 16         /* ...one in this many checked in full */

struct conn {
    int fd;
    int connected;      /* connect() finished */
    int dead;           /* error or EOF: no longer in the game */
    size_t sent;        /* bytes of the current message written */
    size_t got;         /* bytes of the current message read back */
    uint64_t seq;       /* current message number, written into the message */
    double t_send;      /* when the current message started */
    double t_last;      /* last completion (or start of the window) */
    uint64_t done;      /* messages completed, all phases */
    uint64_t measured;  /* messages completed in the measured window */
    unsigned char *out; /* the message being sent */
    unsigned char *in;  /* what came back */
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Seconds this process spent runnable but waiting for a CPU (schedstat's
   run_delay); -1 where the kernel does not say. */
static double run_delay_seconds(void) {
    unsigned long long run = 0, delay = 0;
    FILE *f = fopen("/proc/self/schedstat", "r");
    if (!f) return -1;
    int got = fscanf(f, "%llu %llu", &run, &delay);
    fclose(f);
    return got == 2 ? (double)delay * 1e-9 : -1;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s -p PORT [-n CONNS=100] [-s SIZE=1024] [-w WARMUP_S=1] [-d DURATION_S=3]\n"
            "          [-C CPU=-1] [-S STALL_S=1] [-H]\n"
            "  -H: HTTP/1.1 keep-alive GETs; SIZE is the exact length of the server's answer\n",
            argv0);
    exit(2);
}

/* The first error, as a JSON-safe string. */
static char first_error[256];
static unsigned long n_errors;
static int n_live; /* connections not dead */

static void note_error(const char *what, int err) {
    n_errors++;
    if (!first_error[0]) {
        snprintf(first_error, sizeof first_error, "%s: %s", what, strerror(err));
        for (char *p = first_error; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = ' ';
    }
}

static void kill_conn(int ep, struct conn *c) {
    if (c->dead) return;
    c->dead = 1;
    n_live--;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static int http_mode;             /* -H */
static unsigned char *http_answer; /* the first complete answer, which every other must equal */

static void fill_message(struct conn *c, size_t size) {
    if (http_mode) return; /* the same request every time */
    /* The sequence number at the start, so a stale or misplaced echo fails. */
    size_t n = size < sizeof c->seq ? size : sizeof c->seq;
    memcpy(c->out, &c->seq, n);
}

/* Write what is left of the current message; 0 = ok (maybe partial), -1 = dead. */
static int pump_send(int ep, struct conn *c, size_t size) {
    while (c->sent < size) {
        ssize_t n = send(c->fd, c->out + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            note_error("send", n < 0 ? errno : EPIPE);
            kill_conn(ep, c);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = -1, nconns = 100, cpu = -1;
    size_t size = 1024;
    double warmup = 1.0, duration = 3.0, stall_s = 1.0;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:s:w:d:C:S:H")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': nconns = atoi(optarg); break;
        case 's': size = (size_t)strtoul(optarg, NULL, 10); break;
        case 'w': warmup = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'C': cpu = atoi(optarg); break;
        case 'S': stall_s = atof(optarg); break;
        case 'H': http_mode = 1; break;
        default: usage(argv[0]);
        }
    }
    if (port <= 0 || port > 65535 || nconns <= 0 || size == 0 || warmup < 0 || duration <= 0
        || (http_mode && size < 13))  /* an answer is at least "HTTP/1.1 200 " */
        usage(argv[0]);
    /* What each connection sends (out_len bytes) and reads back (in_len). */
    char request[128];
    size_t out_len = size, in_len = size;
    if (http_mode) {
        out_len = (size_t)snprintf(request, sizeof request,
                                   "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
        http_answer = calloc(1, size);
        if (!http_answer) {
            perror("calloc");
            return 2;
        }
    }

    /* Whatever happens, this process ends: the kernel kills it 10 s after
       the window should have closed. */
    alarm((unsigned)(warmup + duration + 10.0));

    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            perror("sched_setaffinity");
            return 2;
        }
    }

    uint64_t *hist = calloc(HIST_US + 1, sizeof *hist);
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!hist || !conns || ep < 0) {
        perror("setup");
        return 2;
    }

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only */

    double t0 = now();
    double t_measure = t0 + warmup, t_end = t_measure + duration;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->out = malloc(out_len);
        c->in = malloc(in_len);
        if (!c->out || !c->in) {
            perror("malloc");
            return 2;
        }
        if (http_mode)
            memcpy(c->out, request, out_len);
        else
            for (size_t k = 0; k < size; k++) c->out[k] = (unsigned char)('a' + (i + k) % 26);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            perror("socket");
            return 2;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
            note_error("connect", errno);
            close(c->fd);
            c->dead = 1;
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            perror("epoll_ctl");
            return 2;
        }
        n_live++;
    }

    uint64_t measured = 0, completed_all = 0;
    int measuring = 0;
    double cpu_measure = 0, delay_measure = -1;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        double t = now();
        if (!measuring && t >= t_measure) {
            measuring = 1;
            cpu_measure = cpu_seconds();
            delay_measure = run_delay_seconds();
            for (int i = 0; i < nconns; i++) conns[i].t_last = t;
        }
        if (t >= t_end || n_live == 0) break; /* no connection left: nothing to wait for */
        double until = measuring ? t_end : t_measure;
        int timeout_ms = (int)((until - t) * 1000.0) + 1;
        int n = epoll_wait(ep, events, MAX_EVENTS, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 2;
        }
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            uint32_t evs = events[e].events;
            if (c->dead) continue;
            if (!c->connected) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    note_error("connect", err);
                    kill_conn(ep, c);
                    continue;
                }
                if (!(evs & EPOLLOUT)) continue;
                c->connected = 1;
                /* From now on only readability matters, unless a send blocks. */
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                fill_message(c, size);
                c->t_send = now();
                if (pump_send(ep, c, out_len) < 0) continue;
                if (c->sent < out_len) {
                    struct epoll_event evw = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &evw);
                }
                continue;
            }
            if ((evs & EPOLLOUT) && c->sent < out_len) {
                if (pump_send(ep, c, out_len) < 0) continue;
                if (c->sent == out_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!(evs & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            for (;;) {
                /* Bytes the server may have sent back by now: an echo cannot
                   be ahead of the request, an HTTP answer comes once the whole
                   request is out. */
                size_t expect = http_mode ? (c->sent == out_len ? in_len : 0) : c->sent;
                if (c->got >= expect) {
                    /* Nothing outstanding: the server answered more than it was asked. */
                    char junk[64];
                    ssize_t r = recv(c->fd, junk, sizeof junk, 0);
                    if (r > 0) {
                        note_error("echo", EPROTO);
                        kill_conn(ep, c);
                    } else if (r == 0) {
                        note_error("server closed the connection", ECONNRESET);
                        kill_conn(ep, c);
                    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                        note_error("recv", errno);
                        kill_conn(ep, c);
                    }
                    break;
                }
                /* A large echo that is not checked is counted, not copied. */
                int check = http_mode || size < TRUNC_FROM || c->seq % CHECK_EVERY == 0;
                ssize_t r = recv(c->fd, c->in + (check ? c->got : 0), expect - c->got,
                                 check ? 0 : MSG_TRUNC);
                if (r < 0) {
                    if (errno == EINTR) continue;
                    if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        note_error("recv", errno);
                        kill_conn(ep, c);
                    }
                    break;
                }
                if (r == 0) {
                    note_error("server closed the connection", ECONNRESET);
                    kill_conn(ep, c);
                    break;
                }
                c->got += (size_t)r;
                if (c->got < in_len) continue;
                /* One round trip done. */
                double t_done = now();
                if (http_mode) {
                    if (!http_answer[0]) {
                        if (memcmp(c->in, "HTTP/1.1 200 ", 13) != 0) {
                            note_error("the answer is not HTTP/1.1 200", EPROTO);
                            kill_conn(ep, c);
                            break;
                        }
                        memcpy(http_answer, c->in, in_len);
                    } else if (memcmp(c->in, http_answer, in_len) != 0) {
                        note_error("an answer differs from the first one", EPROTO);
                        kill_conn(ep, c);
                        break;
                    }
                } else if (check && memcmp(c->in, c->out, size) != 0) {
                    note_error("echo differs from the message sent", EPROTO);
                    kill_conn(ep, c);
                    break;
                }
                completed_all++;
                c->done++;
                if (measuring && t_done < t_end) {
                    measured++;
                    double us = (t_done - c->t_send) * 1e6;
                    size_t b = us < 0 ? 0 : (us >= HIST_US ? HIST_US : (size_t)us);
                    hist[b]++;
                    c->measured++;
                    c->t_last = t_done;
                }
                c->seq++;
                c->sent = c->got = 0;
                fill_message(c, size);
                c->t_send = now();
                if (pump_send(ep, c, out_len) < 0) break;
                if (c->sent < out_len) {
                    struct epoll_event evw = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &evw);
                }
                break; /* the reply cannot be there yet */
            }
        }
    }
    double t_stop = now();
    /* Share of its core the client used in the window: near 1.0 means the
       client, not the server, may be the bottleneck. */
    double client_cpu = measuring ? (cpu_seconds() - cpu_measure) / (t_stop - t_measure) : 0;
    /* Share of the window the client was ready to run but another process had its CPU. */
    double delay_end = run_delay_seconds();
    double client_wait = measuring && delay_measure >= 0 && delay_end >= 0
                             ? (delay_end - delay_measure) / (t_stop - t_measure) : -1;

    /* Percentiles from the histogram: the bucket (1 us wide) the rank falls in. */
    double pct[] = {50.0, 90.0, 99.0, 99.9};
    double pval[4] = {-1, -1, -1, -1};
    double max_us = -1;
    uint64_t cum = 0;
    int k = 0;
    for (size_t b = 0; b <= HIST_US; b++) {
        if (!hist[b]) continue;
        cum += hist[b];
        max_us = (double)b;
        while (k < 4 && (double)cum >= pct[k] / 100.0 * (double)measured) {
            pval[k] = (double)b + 0.5;
            k++;
        }
    }

    int alive = 0, connected = 0, stalled = 0, never = 0;
    double worst_idle = 0;
    /* Fairness: the fewest and most round trips one connection made. */
    uint64_t conn_min = UINT64_MAX, conn_max = 0;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->connected) connected++;
        if (c->dead) continue;
        alive++;
        if (c->done == 0) never++;
        if (c->measured < conn_min) conn_min = c->measured;
        if (c->measured > conn_max) conn_max = c->measured;
        double idle = t_stop - c->t_last;
        if (idle > worst_idle) worst_idle = idle;
        if (idle >= stall_s) stalled++;
    }

    if (alive == 0) conn_min = 0;
    double window = t_end - t_measure;
    printf("{\"mode\": \"%s\", \"conns\": %d, \"size\": %zu, \"warmup\": %g, \"duration\": %g, "
           "\"requests\": %llu, \"requests_all\": %llu, \"window_s\": %.6f, \"rps\": %.1f, "
           "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
           "\"max_us\": %.1f, \"connected\": %d, \"alive\": %d, \"never_answered\": %d, "
           "\"stalled\": %d, \"worst_idle_s\": %.3f, \"conn_requests_min\": %llu, "
           "\"conn_requests_max\": %llu, \"client_cpu\": %.3f, \"client_cpu_wait\": %.3f, "
           "\"errors\": %lu, "
           "\"first_error\": \"%s\"}\n",
           http_mode ? "http" : "echo", nconns, size, warmup, duration, (unsigned long long)measured,
           (unsigned long long)completed_all, window, measured / window, pval[0], pval[1],
           pval[2], pval[3], max_us, connected, alive, never, stalled, worst_idle, (unsigned long long)conn_min,
           (unsigned long long)conn_max, client_cpu, client_wait, n_errors,
           first_error);
    fflush(stdout);
    return 0;
}
