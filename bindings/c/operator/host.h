/*
 * Hosting one C operator in a runtime process: load its library, initialize it, hand it
 * events, drop it. Used by both runtimes: the C runtime executable (runtime.c) and the
 * Python runtime (through the dora._operator extension module). Not a public API.
 *
 * Every call returns, besides its result, a message in the caller's `error` buffer
 * (error_len bytes, NUL-terminated, truncated if needed) when it fails. Calls on one
 * operator come from one thread at a time; `send` may be called from any thread the
 * operator uses, while the operator is alive.
 */
#ifndef DORA_OPERATOR_HOST_H
#define DORA_OPERATOR_HOST_H

#include <stddef.h>
#include <stdint.h>

typedef struct DoraOperatorHost DoraOperatorHost;

/*
 * Sends an operator's output: `output_id` as the operator named it (NUL-terminated),
 * `len` bytes at `data`. Returns 0, or non-zero with a message written to `error`.
 */
typedef int (*DoraOperatorSendFn)(void *user, const char *output_id, const uint8_t *data, size_t len, char *error, size_t error_len);

/*
 * Opens the library at `path` (the file itself: lib<name>.so), finds its three
 * functions and calls dora_init_operator. Outputs go to send(user, ...). NULL on failure.
 */
DoraOperatorHost *dora_operator_load(const char *path, DoraOperatorSendFn send, void *user, char *error, size_t error_len);

/*
 * Events. Each returns the operator's status (DORA_STATUS_CONTINUE, _STOP or _STOP_ALL),
 * or -1 when the operator returned an error or an unknown status.
 */
int dora_operator_input(DoraOperatorHost *host, const char *input_id, const uint8_t *data, size_t len, char *error, size_t error_len);
int dora_operator_input_closed(DoraOperatorHost *host, const char *input_id, char *error, size_t error_len);
int dora_operator_stop(DoraOperatorHost *host, char *error, size_t error_len);
int dora_operator_error(DoraOperatorHost *host, const char *message, char *error, size_t error_len);

/* Calls dora_drop_operator and frees the host (also on failure): 0, or -1 with a message. */
int dora_operator_drop(DoraOperatorHost *host, char *error, size_t error_len);

#endif /* DORA_OPERATOR_HOST_H */
