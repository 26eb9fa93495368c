/* Wake-up probe: a libzmq SUB socket plus the C halves of the wake-up mechanisms
 * compared in docs/benchmarks/wakeup.md. Loaded by probe.ts through koffi.
 *
 * Rule for every mechanism: only the JS thread touches the zmq socket (receive, ZMQ_EVENTS),
 * except (a2) which by design calls zmq_poll on it from a koffi pool thread. Other threads
 * only watch ZMQ_FD, the socket's notification descriptor: readable means "commands are
 * pending, look at ZMQ_EVENTS"; it stays readable until the JS thread touches the socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef void notify_cb(void);

typedef struct probe {
    void *ctx, *sub;
    int zmq_fd;         /* ZMQ_FD of sub */
    int cancel_fd;      /* eventfd: ends a pending (a)/(a2) wait */
    int ctl_fd;         /* eventfd: wakes the notifier thread of (b)/(c) to re-read armed/stop */
    atomic_int armed;   /* (b)/(c): JS is waiting; the notifier fires once, then disarms */
    atomic_int stop;
    int pipe_w;         /* (b): the notifier writes one byte here */
    notify_cb *callback;/* (c): or calls this koffi-registered JS function */
} probe;

int64_t probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

probe *probe_open(const char *endpoint)
{
    probe *p = calloc(1, sizeof *p);
    int zero = 0;
    size_t len = sizeof p->zmq_fd;
    p->ctx = zmq_ctx_new();
    p->sub = zmq_socket(p->ctx, ZMQ_SUB);
    zmq_setsockopt(p->sub, ZMQ_RCVHWM, &zero, sizeof zero); /* 0 = unlimited: the burst drops nothing */
    zmq_setsockopt(p->sub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p->sub, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(p->sub, endpoint) != 0) { free(p); return NULL; }
    zmq_getsockopt(p->sub, ZMQ_FD, &p->zmq_fd, &len);
    p->cancel_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->pipe_w = -1;
    return p;
}

int probe_zmq_fd(probe *p) { return p->zmq_fd; }

/* JS thread, synchronous: the next message's payload (its send timestamp), or -1 if none waits. */
int64_t probe_try_recv(probe *p)
{
    zmq_msg_t m;
    int64_t ts = -2;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, p->sub, ZMQ_DONTWAIT) < 0) { zmq_msg_close(&m); return -1; }
    if (zmq_msg_size(&m) == 8) memcpy(&ts, zmq_msg_data(&m), 8);
    zmq_msg_close(&m);
    return ts;
}

/* JS thread, synchronous: ZMQ_EVENTS has POLLIN. Also processes pending commands, which
 * resets ZMQ_FD: call it after the drain, before waiting again. */
int probe_readable(probe *p)
{
    int ev = 0;
    size_t len = sizeof ev;
    zmq_getsockopt(p->sub, ZMQ_EVENTS, &ev, &len);
    return (ev & ZMQ_POLLIN) != 0;
}

static void consume(int fd) { uint64_t v; (void)!read(fd, &v, sizeof v); }
static void bump(int fd) { uint64_t one = 1; (void)!write(fd, &one, sizeof one); }

/* (a) koffi .async, on a pool thread: poll ZMQ_FD and the cancel eventfd; the socket itself
 * is not touched. 1 = look at the socket (may be spurious), 0 = timeout, -1 = cancelled. */
int probe_wait_fd(probe *p, int timeout_ms)
{
    struct pollfd f[2] = { { p->zmq_fd, POLLIN, 0 }, { p->cancel_fd, POLLIN, 0 } };
    int n = poll(f, 2, timeout_ms);
    if (f[1].revents) { consume(p->cancel_fd); return -1; }
    return n == 0 ? 0 : 1;
}

/* (a2) koffi .async: zmq_poll on the socket itself from the pool thread. Simpler, but the
 * socket is then used by two threads: the JS thread must not touch it while this runs. */
int probe_wait_zmq(probe *p, int timeout_ms)
{
    zmq_pollitem_t it[2] = { { p->sub, 0, ZMQ_POLLIN, 0 }, { NULL, p->cancel_fd, ZMQ_POLLIN, 0 } };
    int n = zmq_poll(it, 2, timeout_ms);
    if (it[1].revents) { consume(p->cancel_fd); return -1; }
    return n == 0 ? 0 : 1;
}

void probe_cancel(probe *p) { bump(p->cancel_fd); }

/* (b)/(c) notifier thread: sleeps on ctl_fd, and also on ZMQ_FD while armed; when ZMQ_FD is
 * readable and it wins the armed flag, it writes one byte to the pipe (b) or calls the JS
 * callback (c), which koffi forwards to the JS thread and waits for. */
static void *notifier(void *arg)
{
    probe *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd f[2] = { { p->ctl_fd, POLLIN, 0 }, { atomic_load(&p->armed) ? p->zmq_fd : -1, POLLIN, 0 } };
        if (poll(f, 2, -1) < 0 && errno != EINTR) break;
        if (f[0].revents) consume(p->ctl_fd);
        if ((f[1].revents & POLLIN) && atomic_exchange(&p->armed, 0)) {
            if (p->callback) p->callback();
            else { char b = 1; (void)!write(p->pipe_w, &b, 1); }
        }
    }
    return NULL;
}

/* Starts the notifier (detached: it is left to die with the process). Returns the pipe's read
 * end for (b) (callback NULL), 0 for (c), -1 on error. */
int probe_notifier_start(probe *p, notify_cb *callback)
{
    int fds[2] = { -1, -1 };
    pthread_t t;
    if (!callback) {
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
        p->pipe_w = fds[1];
    }
    p->callback = callback;
    if (pthread_create(&t, NULL, notifier, p) != 0) return -1;
    pthread_detach(t);
    return callback ? 0 : fds[0];
}

void probe_arm(probe *p) { atomic_store(&p->armed, 1); bump(p->ctl_fd); }
/* 1 if this call disarmed it (no notification will come), 0 if the notifier already fired. */
int probe_disarm(probe *p) { return atomic_exchange(&p->armed, 0); }
