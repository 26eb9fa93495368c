/* Sender: XPUB (a PUB that also hands over subscriptions) bound on ENDPOINT. Waits for the
 * receiver's subscription, then sends WARMUP+PACED messages at 100 Hz and BURST back to back.
 * Payload: 8 bytes, the CLOCK_MONOTONIC send time in ns. Usage: sender ENDPOINT [WARMUP PACED BURST] */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zmq.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void send_now(void *pub) { int64_t t = now_ns(); zmq_send(pub, &t, sizeof t, 0); }

int main(int argc, char **argv)
{
    int warmup = argc > 4 ? atoi(argv[2]) : 100, paced = argc > 4 ? atoi(argv[3]) : 200, burst = argc > 4 ? atoi(argv[4]) : 100000;
    void *ctx = zmq_ctx_new(), *pub = zmq_socket(ctx, ZMQ_XPUB);
    int zero = 0;
    zmq_msg_t sub;
    struct timespec next;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &zero, sizeof zero);
    if (argc < 2 || zmq_bind(pub, argv[1]) != 0) { fprintf(stderr, "sender: cannot bind\n"); return 1; }
    zmq_msg_init(&sub);
    zmq_msg_recv(&sub, pub, 0); /* the subscription: the receiver is connected */
    zmq_msg_close(&sub);

    clock_gettime(CLOCK_MONOTONIC, &next);
    for (int i = 0; i < warmup + paced; i++) {
        next.tv_nsec += 10000000;
        if (next.tv_nsec >= 1000000000) { next.tv_sec++; next.tv_nsec -= 1000000000; }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        send_now(pub);
    }
    next.tv_nsec += 50000000; /* a pause, then the burst */
    if (next.tv_nsec >= 1000000000) { next.tv_sec++; next.tv_nsec -= 1000000000; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    for (int i = 0; i < burst; i++) send_now(pub);

    zmq_close(pub);     /* default linger: zmq_ctx_term waits until everything is delivered */
    zmq_ctx_term(ctx);
    return 0;
}
