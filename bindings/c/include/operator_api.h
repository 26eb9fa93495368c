/*
 * dora-ts C operator API: the three functions an operator library defines (dora's
 * operator_api.h). Include this header in the operator's source; it declares them
 * exported, and checks their signatures against the runtime's function types.
 *
 *   dora_init_operator  called once, when the runtime process starts, before the node
 *                       joins the dataflow. Returns the operator's state (any pointer),
 *                       or an error: the node then fails to start.
 *   dora_on_event       called for every event of the operator's inputs, and for STOP
 *                       and runtime errors (see RawEvent_t). Returns a status (keep
 *                       going, stop this operator, stop the dataflow) or an error, which
 *                       ends the runtime process with a failure.
 *   dora_drop_operator  called once when the operator is done: it returned STOP or
 *                       STOP_ALL, all its inputs closed, or the dataflow stopped.
 *
 * Types, the functions an operator calls, ownership: operator_types.h.
 */
#ifndef DORA_OPERATOR_API_H
#define DORA_OPERATOR_API_H

#include <stddef.h>

#include "operator_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef _WIN32
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

EXPORT DoraInitResult_t dora_init_operator(void);

EXPORT DoraResult_t dora_drop_operator(void *operator_context);

EXPORT OnEventResult_t dora_on_event(RawEvent_t *event, const SendOutput_t *send_output, void *operator_context);

/* Fails to compile when a definition above does not match the type the runtime calls. */
static inline void dora_operator_signature_check(void) {
  DoraInitOperator_t init = {dora_init_operator};
  DoraDropOperator_t drop = {dora_drop_operator};
  DoraOnEvent_t on_event = {dora_on_event};
  (void)init;
  (void)drop;
  (void)on_event;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DORA_OPERATOR_API_H */
