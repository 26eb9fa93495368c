/*
 * dora-ts C operator API: the types, and the functions an operator calls.
 *
 * An operator is a shared library that a dora runtime process loads for a node declared
 * with `operators:` (or `operator:`) and `shared-library: path/name` in the dataflow
 * (the runtime opens path/libname.so). It exports the three functions of
 * operator_api.h; the runtime calls them from one thread, one call at a time. The
 * names, signatures and struct layouts below are dora's (its operator_types.h), so an
 * operator written for dora compiles unchanged.
 *
 * Building one, the way dora's examples do:
 *
 *     cc -c -fPIC operator.c -I<dora-ts>/bindings/c/include -o operator.o
 *     cc -shared operator.o -L<dora-ts>/bindings/c/build -ldora_operator_api_c -o build/liboperator.so
 *
 * or `cc -shared -fPIC operator.c -o build/liboperator.so $(pkg-config --cflags --libs
 * dora-operator-api)`. libdora_operator_api_c is a static archive: the operator carries
 * its own copy of the five functions below. An operator linked without it still loads:
 * every runtime process provides these five symbols too.
 *
 * Ownership, in one place: what the runtime passes in (the event, its input, the
 * SendOutput_t) is the runtime's and valid during the call only; copies returned by
 * dora_read_input_id and dora_read_data are the caller's, freed with dora_free_input_id
 * and dora_free_data. An error (DoraResult_t.error) is a heap Vec_uint8_t holding a UTF-8
 * message (not NUL-terminated); whoever receives one owns it: the runtime frees the
 * errors an operator returns, the operator those dora_send_operator_output returns (or
 * hands them back as its own result, as dora's examples do).
 */
#ifndef DORA_OPERATOR_TYPES_H
#define DORA_OPERATOR_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A byte vector: `len` bytes at `ptr`, in an allocation of `cap` bytes. */
typedef struct Vec_uint8 {
  uint8_t *ptr;
  size_t len;
  size_t cap;
} Vec_uint8_t;

/** Success (error == NULL) or a heap-allocated error message (see the ownership note). */
typedef struct DoraResult {
  Vec_uint8_t *error;
} DoraResult_t;

/** What dora_init_operator returns: the result and, on success, the operator's own state. */
typedef struct DoraInitResult {
  DoraResult_t result;
  void *operator_context;
} DoraInitResult_t;

typedef struct DoraInitOperator {
  DoraInitResult_t (*init_operator)(void);
} DoraInitOperator_t;

typedef struct DoraDropOperator {
  DoraResult_t (*drop_operator)(void *);
} DoraDropOperator_t;

/**
 * What the operator wants after an event: keep going, stop this operator (the runtime
 * drops it and delivers nothing more to it; the process ends once all its operators
 * have stopped), or stop the whole dataflow (every node gets STOP).
 */
enum DoraStatus {
  DORA_STATUS_CONTINUE = 0,
  DORA_STATUS_STOP = 1,
  DORA_STATUS_STOP_ALL = 2,
};
/** Same ABI as uint8_t; values of enum DoraStatus. */
typedef uint8_t DoraStatus_t;

typedef struct OnEventResult {
  DoraResult_t result;
  DoraStatus_t status;
} OnEventResult_t;

/** An input message. Opaque: read it with dora_read_input_id and dora_read_data. */
typedef struct Input Input_t;

/**
 * One event, as dora_on_event receives it; exactly one of the four is set:
 *   input         non-NULL for a message on one of the operator's inputs;
 *   input_closed  non-empty for an input whose senders have all finished: the input's
 *                 id (not NUL-terminated; read-only);
 *   stop          true when the dataflow is stopping (no more events follow);
 *   error         non-empty for a runtime error: its message (read-only).
 * Input ids are the operator's own, as declared under its `inputs`.
 */
typedef struct RawEvent {
  Input_t *input;
  Vec_uint8_t input_closed;
  bool stop;
  Vec_uint8_t error;
} RawEvent_t;

/** An output message. Opaque: made by dora_send_operator_output. */
typedef struct Output Output_t;

/** dora's closure type behind SendOutput_t: call(env_ptr, output) sends. */
typedef struct ArcDynFn1_DoraResult_Output {
  void *env_ptr;
  DoraResult_t (*call)(void *, Output_t);
  void (*release)(void *);
  void (*retain)(void *);
} ArcDynFn1_DoraResult_Output_t;

/** How an operator sends: pass it to dora_send_operator_output. Valid until the operator is dropped. */
typedef struct SendOutput {
  ArcDynFn1_DoraResult_Output_t send_output;
} SendOutput_t;

typedef struct DoraOnEvent {
  OnEventResult_t (*on_event)(RawEvent_t *, SendOutput_t const *, void *);
} DoraOnEvent_t;

/** dora's tracing context of a message (unused by dora-ts; kept for source compatibility). */
typedef struct Metadata {
  Vec_uint8_t open_telemetry_context;
} Metadata_t;

/** Frees a Vec returned by dora_read_data. */
void dora_free_data(Vec_uint8_t _data);

/** Frees an id returned by dora_read_input_id. */
void dora_free_input_id(char *_input_id);

/**
 * A copy of an input's bytes: the values of a primitive fixed-width array (a uint8 array
 * for bytes sent with dora_send_operator_output or dora_send_output), empty (ptr non-NULL,
 * len 0) for a timer tick or data of another type. The caller frees it with
 * dora_free_data. ptr is NULL only when `input` is NULL, from another version of dora-ts,
 * or memory ran out.
 */
Vec_uint8_t dora_read_data(Input_t *input);

/**
 * A copy of the input's id (the operator's own id for it), NUL-terminated. The caller
 * frees it with dora_free_input_id. NULL when `input` is NULL, from another version of
 * dora-ts, or memory ran out.
 */
char *dora_read_input_id(Input_t const *input);

/**
 * Sends `data_len` bytes at `data_ptr` (a uint8 array) on the operator's output `id`
 * (NUL-terminated, one of the operator's declared `outputs`). Copies the data: the
 * caller keeps ownership of `id` and `data_ptr`. Returns an error for an undeclared
 * output or a failed send.
 */
DoraResult_t dora_send_operator_output(SendOutput_t const *send_output, char const *id, uint8_t const *data_ptr, size_t data_len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DORA_OPERATOR_TYPES_H */
