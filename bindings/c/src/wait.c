/*
 * Waiting off the context's thread, for bindings whose own thread must not block
 * (Node's event loop). dora_wait polls the descriptors libzmq signals when a socket's
 * state may have changed, plus an eventfd that interrupts it; it never touches a
 * socket, so the context's thread may go on sending meanwhile. Those descriptors are
 * edge-like: they are readable only after something arrived since the context's thread
 * last found a socket empty, which is exactly when a binding waits (after
 * dora_next_event_record returned nothing).
 *
 * A binding with an event loop of its own can instead watch the same descriptors in it
 * (dora_wait_descriptors): no thread at all between libzmq's I/O thread and the binding.
 */
#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include "node.h"

int dora_wait(DoraContext *ctx, int64_t timeout_ms) {
  if (!ctx) return dora__fail(DORA_E_NO_CONTEXT, "dora_wait: no context");
  pthread_mutex_lock(&ctx->lock);
  bool open = !ctx->closing && !ctx->closed;
  if (open) ctx->waiters++;
  pthread_mutex_unlock(&ctx->lock);
  if (!open) return 0;
  struct pollfd fds[3] = {{ctx->wake_fd, POLLIN, 0}, {ctx->sub_fd, POLLIN, 0}, {ctx->pull_fd, POLLIN, 0}};
  int timeout = timeout_ms < 0 ? -1 : timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
  int n = poll(fds, ctx->pull_fd >= 0 ? 3 : 2, timeout);
  int rc = n > 0 ? 1 : 0;
  if (n > 0 && (fds[0].revents & POLLIN)) {
    uint64_t count;
    if (read(ctx->wake_fd, &count, sizeof count) < 0) { /* already reset by another waiter */
    }
    rc = 0;
  }
  pthread_mutex_lock(&ctx->lock);
  if (--ctx->waiters == 0) pthread_cond_broadcast(&ctx->idle);
  pthread_mutex_unlock(&ctx->lock);
  return rc;
}

void dora_interrupt_wait(DoraContext *ctx) {
  if (!ctx || ctx->wake_fd < 0) return;
  uint64_t one = 1;
  if (write(ctx->wake_fd, &one, sizeof one) < 0) { /* the counter is already non-zero: a wake-up is pending */
  }
}

int dora_pump(DoraContext *ctx) {
  if (!ctx || ctx->closed) return dora__fail(DORA_E_NO_CONTEXT, "dora_pump: no open context");
  dora__pump(ctx);
  return 0;
}

int64_t dora_wake_after_ms(DoraContext *ctx) {
  if (!ctx || ctx->closed) return -1;
  int64_t next = ctx->any_timeout ? dora__check_timeouts(ctx, dora__now_ms()) : -1;
  if (ctx->health_ms) {
    int64_t beat = ctx->health_ms / 4 > 1 ? ctx->health_ms / 4 : 1; /* a binding waiting outside stays active */
    if (next < 0 || beat < next) next = beat;
  }
  return next;
}

int dora_wait_descriptors(const DoraContext *ctx, int *out_fds, size_t capacity) {
  if (!ctx || ctx->closed || !out_fds) return dora__fail(DORA_E_NO_CONTEXT, "dora_wait_descriptors: no open context or output");
  int fds[2] = {ctx->sub_fd, ctx->pull_fd};
  size_t n = ctx->pull_fd >= 0 ? 2 : 1;
  if (capacity < n) return dora__fail(DORA_E_INVALID_ARGUMENT, "dora_wait_descriptors: room for %zu descriptors needed", n);
  memcpy(out_fds, fds, n * sizeof *fds);
  return (int)n;
}
