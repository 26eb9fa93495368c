/* Benchmark receiver in C (the twin of receiver.ts): one-way latency of every non-warm-up
 * message and the receive times, written as JSON to RESULT when the input closes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
    fprintf(stderr, "receiver: %s\n", dora_last_error());
    return 1;
  }
  size_t cap = 1024, received = 0;
  int64_t *latencies = malloc(cap * sizeof *latencies), first = 0, last = 0;
  void *event;
  while ((event = dora_next_event(dora))) {
    if (read_dora_event_type(event) == DoraEventType_Input) {
      int64_t now = now_ns(), sent = 0;
      bool warmup = false;
      const DoraMetadata *meta = dora_event_metadata(event);
      dora_metadata_get_int(meta, "sent", &sent);
      dora_metadata_get_bool(meta, "warmup", &warmup);
      if (!warmup) {
        if (received == 0) first = now;
        last = now;
        if (received == cap) latencies = realloc(latencies, (cap *= 2) * sizeof *latencies);
        latencies[received++] = now - sent;
      }
    }
    free_dora_event(event);
  }
  FILE *out = fopen(getenv("RESULT"), "w");
  fprintf(out, "{\"received\":%zu,\"spanNs\":%" PRId64 ",\"latenciesNs\":[", received, last - first);
  for (size_t i = 0; i < received; i++) fprintf(out, "%s%" PRId64, i ? "," : "", latencies[i]);
  fprintf(out, "]}");
  fclose(out);
  free(latencies);
  free_dora_context(dora);
  return 0;
}
