/* Raw libzmq baseline, no middleware: `zmq send|recv ENDPOINT` with the benchmark's
 * environment (MODE, SIZE, COUNT, WARMUP, RATE; RESULT for recv). PUSH → PULL; each message
 * is one frame: an 8-byte send time (CLOCK_MONOTONIC ns), a warm-up flag byte, the payload. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  void *ctx = zmq_ctx_new();
  size_t size = strtoull(getenv("SIZE"), NULL, 10);
  long count = atol(getenv("COUNT")), warmup = getenv("WARMUP") ? atol(getenv("WARMUP")) : 10;
  if (strcmp(argv[1], "send") == 0) {
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int zero = 0, linger = -1;
    zmq_setsockopt(push, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(push, argv[2]);
    double rate = getenv("RATE") ? atof(getenv("RATE")) : 100;
    int paced = strcmp(getenv("MODE"), "latency") == 0;
    char *buffer = malloc(size + 9);
    memset(buffer, 7, size + 9);
    int64_t start = now_ns();
    for (long i = 0; i < warmup + count; i++) {
      if (paced) {
        int64_t wait = start + (int64_t)(i * 1e9 / rate) - now_ns();
        if (wait > 0) nanosleep(&(struct timespec){wait / 1000000000, wait % 1000000000}, NULL);
      }
      int64_t sent = now_ns();
      memcpy(buffer, &sent, 8);
      buffer[8] = i < warmup;
      zmq_send(push, buffer, size + 9, 0);
    }
    zmq_close(push);
    free(buffer);
  } else {
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    int zero = 0;
    zmq_setsockopt(pull, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_bind(pull, argv[2]);
    int64_t *latencies = malloc((size_t)count * sizeof *latencies), first = 0, last = 0;
    long received = 0;
    for (long n = 0; n < warmup + count; n++) {
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      zmq_msg_recv(&msg, pull, 0);
      int64_t now = now_ns(), sent;
      memcpy(&sent, zmq_msg_data(&msg), 8);
      if (!((char *)zmq_msg_data(&msg))[8]) {
        if (received == 0) first = now;
        last = now;
        latencies[received++] = now - sent;
      }
      zmq_msg_close(&msg);
    }
    FILE *out = fopen(getenv("RESULT"), "w");
    fprintf(out, "{\"received\":%ld,\"spanNs\":%" PRId64 ",\"latenciesNs\":[", received, last - first);
    for (long i = 0; i < received; i++) fprintf(out, "%s%" PRId64, i ? "," : "", latencies[i]);
    fprintf(out, "]}");
    fclose(out);
    zmq_close(pull);
  }
  zmq_ctx_term(ctx);
  return 0;
}
