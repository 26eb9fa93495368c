/*
 * Counters the core keeps for observing a running node (dora top, dora topic, the web
 * view): per output, messages and bytes sent and samples held by receivers; per input,
 * messages and bytes received and a histogram of their latency (from the message's
 * timestamp to its arrival). The node's thread only increments them; the watchdog thread
 * reads them once a second and reports them to the daemon (stats.c), so observing costs
 * the data path a few stores and, per drain of received messages, one clock read.
 *
 * Single writer: the node's thread (under ctx->lock where the pool is). A counter is
 * written with a relaxed atomic store of its value plus one (a plain store on the
 * machines we run on, no locked instruction) and read with a relaxed atomic load.
 */
#ifndef DORA_STATS_H
#define DORA_STATS_H

#include <stdint.h>
#include <time.h>

/* Latency histogram: 4 buckets per power of two of microseconds, exact below 4 µs; the
   last bucket takes everything from about 67 s on. p50/p99 are read from it within 19%. */
#define DORA_LATENCY_BUCKETS 100

typedef struct {
  uint64_t messages, bytes;
  uint64_t held; /* shared-memory samples of this output some receiver still holds */
} dora_output_stats;

typedef struct {
  uint64_t messages, bytes;
  uint32_t latency[DORA_LATENCY_BUCKETS];
} dora_input_stats;

static inline void dora__count(uint64_t *c, uint64_t n) { __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED); }

static inline int dora__latency_bucket(uint64_t us) {
  if (us < 4) return (int)us;
  int e = 63 - __builtin_clzll(us); /* >= 2 */
  int b = (e - 1) * 4 + (int)((us >> (e - 2)) & 3);
  return b < DORA_LATENCY_BUCKETS ? b : DORA_LATENCY_BUCKETS - 1;
}

/* The wall clock in ns, as message timestamps are (message.c's clock: wall time plus monotonic progress). */
static inline uint64_t dora__wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One message received on an input: `now` is dora__wall_ns(), read once per drain (transport.c). */
static inline void dora__count_received(dora_input_stats *s, uint64_t bytes, uint64_t timestamp, uint64_t now) {
  dora__count(&s->messages, 1);
  dora__count(&s->bytes, bytes);
  uint32_t *b = &s->latency[dora__latency_bucket(now > timestamp ? (now - timestamp) / 1000 : 0)];
  __atomic_store_n(b, __atomic_load_n(b, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

#endif /* DORA_STATS_H */
