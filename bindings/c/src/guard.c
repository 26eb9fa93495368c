/*
 * The SIGBUS guard (docs/architecture.md, "A segment that shrinks under its receivers").
 * A read past the end of a receive mapping whose segment shrank raises SIGBUS; the
 * handler maps anonymous zero pages from the faulting page to the mapping's end, and the
 * read runs again over zeros. Any other SIGBUS goes to the handler installed before.
 *
 * The registry is all the handler touches: chunks of slots, never freed, read and written
 * with atomics only. Removal waits for a handler repairing that mapping, and a later
 * handler no longer finds it: a repair never lands on memory mapped again since.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define SLOTS_PER_CHUNK 256
#define CLAIMED ((uintptr_t)1) /* a slot's start while it is filled or emptied (no mapping starts at 1) */

struct dora_guard {
  uintptr_t start; /* 0: a free slot */
  size_t len;
  int inside; /* handlers repairing this mapping right now */
  bool damaged;
};

typedef struct guard_chunk {
  dora_guard slots[SLOTS_PER_CHUNK];
  struct guard_chunk *next;
} guard_chunk;

static guard_chunk first_chunk;
static uint64_t faults;
static struct sigaction previous;
static uintptr_t page_mask;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

/* Zero-fills g's mapping from addr's page to its end, if g still holds start (handlers inside g). */
static bool repair_slot(dora_guard *g, uintptr_t start, uintptr_t addr) {
  /* Removal waits for us now, so start and len hold still; len is read after start, since
     the slot may have been registered anew at the same address. */
  if (__atomic_load_n(&g->start, __ATOMIC_SEQ_CST) != start) return false;
  size_t len = __atomic_load_n(&g->len, __ATOMIC_RELAXED);
  if (addr - start >= len) return false;
  uintptr_t from = addr & page_mask;
  if (mmap((void *)from, start + len - from, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) return false;
  __atomic_store_n(&g->damaged, true, __ATOMIC_RELAXED);
  __atomic_add_fetch(&faults, 1, __ATOMIC_RELEASE); /* after damaged: see dora__guard_faults */
  return true;
}

/* Repairs the registered mapping holding addr; false when none holds it. */
static bool repair(uintptr_t addr) {
  for (guard_chunk *c = &first_chunk; c; c = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE)) {
    for (size_t i = 0; i < SLOTS_PER_CHUNK; i++) {
      dora_guard *g = &c->slots[i];
      uintptr_t start = __atomic_load_n(&g->start, __ATOMIC_ACQUIRE);
      if (start <= CLAIMED || addr - start >= __atomic_load_n(&g->len, __ATOMIC_RELAXED)) continue;
      __atomic_add_fetch(&g->inside, 1, __ATOMIC_SEQ_CST);
      bool repaired = repair_slot(g, start, addr);
      __atomic_sub_fetch(&g->inside, 1, __ATOMIC_SEQ_CST);
      if (repaired) return true;
    }
  }
  return false;
}

/* Only async-signal-safe calls: atomics, mmap (a plain system call), sigaction, raise. */
static void on_sigbus(int sig, siginfo_t *info, void *context) {
  int saved = errno;
  bool repaired = info && info->si_code == BUS_ADRERR && repair((uintptr_t)info->si_addr);
  errno = saved;
  if (repaired) return; /* the faulting read runs again, over zeros */
  if (previous.sa_handler == SIG_IGN && (!info || info->si_code <= 0)) return; /* sent with kill, and ignored before us */
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    if (previous.sa_flags & SA_SIGINFO) previous.sa_sigaction(sig, info, context);
    else previous.sa_handler(sig);
    return;
  }
  /* the default action, as if we were not here: the process ends on SIGBUS (with its core dump) */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGBUS, &dfl, NULL);
  raise(SIGBUS);
}

static void install(void) {
  page_mask = ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
  if (sigaction(SIGBUS, NULL, &previous) != 0) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  /* the handler we chain to runs with the mask and SA_NODEFER it was installed with; SA_ONSTACK
     keeps to an alternate signal stack where a runtime set one */
  sa.sa_mask = previous.sa_mask;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | (previous.sa_flags & SA_NODEFER);
  sigaction(SIGBUS, &sa, NULL);
}

dora_guard *dora__guard_add(const void *start, size_t len) {
  pthread_once(&install_once, install);
  for (guard_chunk *c = &first_chunk;;) {
    for (size_t i = 0; i < SLOTS_PER_CHUNK; i++) {
      dora_guard *g = &c->slots[i];
      uintptr_t free_slot = 0;
      if (!__atomic_compare_exchange_n(&g->start, &free_slot, CLAIMED, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) continue;
      __atomic_store_n(&g->len, len, __ATOMIC_RELAXED);
      __atomic_store_n(&g->damaged, false, __ATOMIC_RELAXED);
      __atomic_store_n(&g->start, (uintptr_t)start, __ATOMIC_RELEASE); /* live: len is visible with it */
      return g;
    }
    guard_chunk *next = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE);
    if (!next) {
      guard_chunk *grown = calloc(1, sizeof *grown); /* linked for the life of the process */
      if (!grown) {
        dora__fail(DORA_E_OUT_OF_MEMORY, "out of memory");
        return NULL;
      }
      if (__atomic_compare_exchange_n(&c->next, &next, grown, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) next = grown;
      else free(grown); /* another thread linked one: next is it */
    }
    c = next;
  }
}

bool dora__guard_remove(dora_guard *g) {
  if (!g) return false;
  __atomic_store_n(&g->start, CLAIMED, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&g->inside, __ATOMIC_SEQ_CST) != 0) sched_yield();
  bool damaged = __atomic_load_n(&g->damaged, __ATOMIC_RELAXED);
  __atomic_store_n(&g->start, 0, __ATOMIC_RELEASE);
  return damaged;
}

bool dora__guard_damaged(const dora_guard *g) { return g && __atomic_load_n(&g->damaged, __ATOMIC_RELAXED); }

uint64_t dora__guard_faults(void) { return __atomic_load_n(&faults, __ATOMIC_ACQUIRE); }
