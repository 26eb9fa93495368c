/*
 * The layouts behind operator_types.h's opaque Input_t and Output_t, shared by the
 * functions an operator calls (api.c, copied into every operator by the static archive)
 * and the runtimes that create inputs and receive outputs (host.c). Each struct starts
 * with DORA_OPERATOR_ABI: an operator linked against another layout is told so instead
 * of misreading memory. Change the number with the layout.
 */
#ifndef DORA_OPERATOR_ABI_H
#define DORA_OPERATOR_ABI_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "operator_types.h"

#define DORA_OPERATOR_ABI 0x0d0a0001u

struct Input {
  uint32_t abi;
  const char *id; /* NUL-terminated */
  size_t id_len;
  const uint8_t *data;
  size_t data_len;
};

struct Output {
  uint32_t abi;
  const char *id; /* NUL-terminated, the operator's */
  const uint8_t *data;
  size_t len;
};

/* A DoraResult_t carrying a formatted message; {NULL} (success) only if memory ran out. */
static inline DoraResult_t dora__operator_error(const char *fmt, ...) {
  DoraResult_t result = {NULL};
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(NULL, 0, fmt, args);
  va_end(args);
  Vec_uint8_t *error = n < 0 ? NULL : malloc(sizeof *error);
  char *text = error ? malloc((size_t)n + 1) : NULL;
  if (!text) {
    free(error);
    return result;
  }
  va_start(args, fmt);
  vsnprintf(text, (size_t)n + 1, fmt, args);
  va_end(args);
  *error = (Vec_uint8_t){(uint8_t *)text, (size_t)n, (size_t)n + 1};
  result.error = error;
  return result;
}

#endif /* DORA_OPERATOR_ABI_H */
