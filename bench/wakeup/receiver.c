/* (e) reference receiver: blocking zmq_msg_recv in C. Prints the same JSON line as recv.ts.
 * Usage: receiver ENDPOINT [WARMUP PACED BURST] */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int warmup = argc > 4 ? atoi(argv[2]) : 100, paced = argc > 4 ? atoi(argv[3]) : 200, burst = argc > 4 ? atoi(argv[4]) : 100000;
    int total = warmup + paced + burst, zero = 0;
    int64_t *lat = calloc(paced, sizeof *lat), first = 0, last = 0;
    void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
    zmq_setsockopt(sub, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    if (argc < 2 || zmq_connect(sub, argv[1]) != 0) { fprintf(stderr, "receiver: cannot connect\n"); return 1; }
    for (int n = 0; n < total; n++) {
        zmq_msg_t m;
        int64_t ts = 0;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sub, 0);
        if (zmq_msg_size(&m) == 8) memcpy(&ts, zmq_msg_data(&m), 8);
        zmq_msg_close(&m);
        if (n < warmup + paced) { if (n >= warmup) lat[n - warmup] = now_ns() - ts; }
        else if (n == warmup + paced) first = now_ns();
        if (n == total - 1) last = now_ns();
    }
    printf("{\"lat\":[");
    for (int i = 0; i < paced; i++) printf("%s%lld", i ? "," : "", (long long)lat[i]);
    printf("],\"burst\":%d,\"span\":%lld}\n", burst, (long long)(last - first));
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return 0;
}
