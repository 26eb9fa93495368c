/* Benchmark sender in C (the twin of sender.ts): MODE=latency sends COUNT messages of SIZE
 * bytes paced at RATE Hz after WARMUP messages; MODE=throughput sends COUNT back to back.
 * Every message carries its send time (CLOCK_MONOTONIC) in ns as parameter `sent`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dora_node_api.h"

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(void) {
  void *dora = init_dora_context_from_env();
  if (!dora) {
    fprintf(stderr, "sender: %s\n", dora_last_error());
    return 1;
  }
  size_t size = strtoull(getenv("SIZE"), NULL, 10);
  long count = atol(getenv("COUNT")), warmup = getenv("WARMUP") ? atol(getenv("WARMUP")) : 10;
  double rate = getenv("RATE") ? atof(getenv("RATE")) : 100;
  int paced = strcmp(getenv("MODE"), "latency") == 0;
  char *payload = malloc(size ? size : 1);
  memset(payload, 7, size);
  int64_t start = now_ns();
  DoraMetadata *meta = dora_metadata_new();
  for (long i = 0; i < warmup + count; i++) {
    if (paced) {
      int64_t due = start + (int64_t)(i * 1e9 / rate), wait = due - now_ns();
      if (wait > 0) nanosleep(&(struct timespec){wait / 1000000000, wait % 1000000000}, NULL);
    }
    dora_metadata_set_int(meta, "sent", now_ns());
    dora_metadata_set_int(meta, "i", i);
    dora_metadata_set_bool(meta, "warmup", i < warmup);
    if (dora_send_output_with_metadata(dora, "data", 4, payload, size, meta) != 0) {
      fprintf(stderr, "sender: %s\n", dora_last_error());
      return 1;
    }
  }
  dora_metadata_free(meta);
  free(payload);
  free_dora_context(dora);
  return 0;
}
