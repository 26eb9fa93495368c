/*
 * dora-ts C node API.
 *
 * A C node links libdora_node_api and includes this header (or "node_api.h", which
 * includes it, for nodes written against dora's header). The first group of functions
 * is dora's C node API with dora's names and signatures; the rest extends it: Arrow in
 * and out through the Arrow C Data Interface, metadata parameters, a timeout variant
 * of dora_next_event, in-place output samples and an error string.
 *
 * Ownership, in one place: every pointer returned by the library is owned by the
 * library unless its function says "the caller frees"; pointers read from an event
 * stay valid until free_dora_event(event). Exported Arrow arrays are the exception:
 * they are the caller's and live until their release callback is called, even after
 * the event is freed. Free every event and release every array before
 * free_dora_context. A context is used by one thread at a time; events may be read
 * from several threads but freed once.
 *
 * Signals: the first shared-memory input a process maps installs a process-wide SIGBUS
 * handler (sigaction, SA_ONSTACK). A read past the end of a segment that its sender
 * truncated then reads zeros instead of killing the process, and the node's log says
 * so; every other SIGBUS goes to the handler installed before (or the default action).
 * A SIGBUS handler installed later should chain to the one it replaces.
 *
 * GENERATED from bindings/c/api.json by bindings/c/generate-header.ts. Do not edit.
 */
#ifndef DORA_NODE_API_H
#define DORA_NODE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DORA_NODE_API_VERSION_MAJOR 0
#define DORA_NODE_API_VERSION_MINOR 1
#define DORA_NODE_API_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------ */
/* Arrow C Data Interface (the standard ABI, https://arrow.apache.org/docs/format/CDataInterface.html) */

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char *format;
  const char *name;
  const char *metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema **children;
  struct ArrowSchema *dictionary;
  void (*release)(struct ArrowSchema *);
  void *private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void **buffers;
  struct ArrowArray **children;
  struct ArrowArray *dictionary;
  void (*release)(struct ArrowArray *);
  void *private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */


/* ------------------------------------------------------------------------------------ */
/* Types */

/**
 * A node's connection to its dataflow. Opaque; create with init_dora_context_from_env.
 */
typedef struct DoraContext DoraContext;

/**
 * One event. Opaque; returned by dora_next_event, freed with free_dora_event.
 */
typedef struct DoraEvent DoraEvent;

/**
 * Metadata parameters: a map from keys to typed values. Opaque.
 */
typedef struct DoraMetadata DoraMetadata;

/**
 * An output buffer the node fills in place, then sends (shared memory when large).
 * Opaque.
 */
typedef struct DoraOutputSample DoraOutputSample;

/**
 * Shared-memory counters of a node (dora_shared_memory_stats): segments it created, its
 * samples some receiver still holds (and the most ever held at once), its free samples
 * kept for reuse, and segments of other nodes it has mapped.
 */
typedef struct DoraSharedMemoryStats {
  uint64_t created;
  uint64_t outstanding;
  uint64_t peak_outstanding;
  uint64_t free;
  uint64_t mapped;
} DoraSharedMemoryStats;

/**
 * Kinds of events (dora's enum).
 */
enum DoraEventType {
  /** The dataflow is being stopped (the message is the cause); the stream ends after
   * this event. */
  DoraEventType_Stop = 0,
  /** A message on one of the node's inputs (a timer tick carries an empty array). */
  DoraEventType_Input = 1,
  /** Every sender of an input has finished; no more messages on it. */
  DoraEventType_InputClosed = 2,
  /** A runtime error (for example the daemon went away; the message says what); the
   * stream ends after this event. */
  DoraEventType_Error = 3,
  /** Anything else; also what read_dora_event_type returns for NULL. */
  DoraEventType_Unknown = 4,
  /** Data arrived again on an input its `input_timeout` had closed; the input is open
   * again. */
  DoraEventType_InputRecovered = 5,
  /** A node this node receives from was restarted under its restart policy (the
   * event's id is that node); its inputs from it are open again. */
  DoraEventType_NodeRestarted = 6,
  /** A node this node receives from failed and will not be restarted (the event's id
   * is that node); `INPUT_CLOSED` follows for the inputs it fed. */
  DoraEventType_NodeFailed = 7,
};
typedef enum DoraEventType DoraEventType;

/**
 * Types of metadata parameter values; the numbers are the wire tags of docs/protocol.md.
 */
enum DoraParameterType {
  /** No parameter with that key. */
  DORA_PARAMETER_NONE = 0,
  /** bool */
  DORA_PARAMETER_BOOL = 1,
  /** int64_t */
  DORA_PARAMETER_INT = 2,
  /** double */
  DORA_PARAMETER_FLOAT = 3,
  /** UTF-8 string */
  DORA_PARAMETER_STRING = 4,
  /** list of bool */
  DORA_PARAMETER_LIST_BOOL = 5,
  /** list of int64_t */
  DORA_PARAMETER_LIST_INT = 6,
  /** list of double */
  DORA_PARAMETER_LIST_FLOAT = 7,
  /** list of UTF-8 strings */
  DORA_PARAMETER_LIST_STRING = 8,
  /** int64_t nanoseconds since the Unix epoch, UTC */
  DORA_PARAMETER_TIMESTAMP = 9,
};


/* ------------------------------------------------------------------------------------ */
/* dora's C node API */

/**
 * Connects to the dataflow described by the environment the daemon sets
 * (DORA_NODE_CONFIG) and waits for the start barrier. Returns a DoraContext (as void *)
 * that the caller frees with free_dora_context, or NULL on failure (dora_last_error says
 * why, e.g. when the program was not started by dora).
 */
void *init_dora_context_from_env(void);

/**
 * Closes every output (receivers get InputClosed), tells the daemon, unlinks this node's
 * shared memory and frees the context. NULL is a no-op.
 */
void free_dora_context(void *dora_context);

/**
 * Blocks until the next event and returns it (a DoraEvent, as void *); the caller frees
 * it with free_dora_event. Returns NULL when the event stream has ended: after a Stop or
 * Error event, or when every input is closed.
 */
void *dora_next_event(void *dora_context);

/**
 * Frees an event. Pointers read from it become invalid; a shared-memory input is returned
 * to its sender once no exported Arrow array uses it either. NULL is a no-op.
 */
void free_dora_event(void *dora_event);

/**
 * The event's type.
 */
enum DoraEventType read_dora_event_type(void *dora_event);

/**
 * The input id of an Input or InputClosed event, as a pointer and length (also
 * NUL-terminated), valid until free_dora_event. Other events give NULL and 0.
 */
void read_dora_input_id(void *dora_event, char **out_ptr, size_t *out_len);

/**
 * The raw bytes of an Input event whose data is a primitive fixed-width array (a uint8
 * array for bytes sent with dora_send_output): its values, in place and without copying
 * (in shared memory for large inputs), valid until free_dora_event. Gives NULL and 0 for
 * other events, for empty data and for other types (use dora_event_arrow).
 */
void read_dora_input_data(void *dora_event, char **out_ptr, size_t *out_len);

/**
 * The message's timestamp (hybrid logical clock, nanoseconds since the Unix epoch); 0 for
 * events without one.
 */
unsigned long long read_dora_input_timestamp(void *dora_event);

/**
 * Sends data_len bytes as a uint8 Arrow array on the output id_ptr[0..id_len). The bytes
 * are copied once (into shared memory at or above the dataflow's threshold); the caller
 * keeps ownership of data_ptr. Returns 0 on success, -1 on failure (dora_last_error says
 * why, e.g. an undeclared output).
 */
int dora_send_output(void *dora_context, const char *id_ptr, size_t id_len, const char *data_ptr, size_t data_len);

/**
 * Writes a log record (level: error, warn, info, debug or trace) to the node's log in the
 * dataflow's logs. Returns 0 on success, -1 on failure.
 */
int dora_log(void *dora_context, const char *level_ptr, size_t level_len, const char *msg_ptr, size_t msg_len);


/* ------------------------------------------------------------------------------------ */
/* Dynamic nodes */

/**
 * Joins a running dataflow as its dynamic node node_id (`path: dynamic` in the YAML), for
 * a program the user starts by hand (dora's DoraNode::init_from_node_id). The library
 * looks for running dataflows in the user's runtime directory ($DORA_RUNTIME_DIR, else
 * $XDG_RUNTIME_DIR/dora-ts, else /tmp/dora-ts-<uid>), takes the one that declares that
 * dynamic node (when several do, $DORA_DATAFLOW, a dataflow id or name, chooses), asks
 * its daemon for the node's configuration, then joins as init_dora_context_from_env does.
 * When the process was started by dora (DORA_NODE_CONFIG is set), that configuration wins
 * and node_id is ignored. Returns a DoraContext (as void *) that the caller frees with
 * free_dora_context, which leaves the dataflow (the node may join it again), or NULL on
 * failure: dora_last_error says why, e.g. that no running dataflow declares the node,
 * naming those that run (DORA_E_CONFIG).
 */
void *init_dora_context_from_node_id(const char *node_id);

/**
 * For bindings: finds the running dataflow that declares dynamic node node_id as
 * init_dora_context_from_node_id does (dataflow, an id or a name, chooses among several;
 * NULL: $DORA_DATAFLOW, if set) and asks its daemon for the node's configuration, waiting
 * at most 5 s for the answer. Returns the length of that JSON text and, when it is below
 * capacity, writes it NUL-terminated into out (otherwise out is left alone: call again
 * with a larger buffer); -1 on failure (dora_last_error; DORA_E_CONFIG). Open the node
 * with dora_init_context(out, ...) and dora_join_dataflow.
 */
int64_t dora_dynamic_config(const char *node_id, const char *dataflow, char *out, size_t capacity);


/* ------------------------------------------------------------------------------------ */
/* Errors and identity */

/**
 * Error codes: every failing call records one beside its message (dora_last_error_code,
 * dora_error_name). The numbers are stable; the catalogue is protocol/facts.json's,
 * shared by every language binding.
 */
enum DoraErrorCode {
  /** No error. */
  DORA_E_OK = 0,
  /** No open context: NULL, or the node is closed. */
  DORA_E_NO_CONTEXT = 1,
  /** An argument is NULL, out of range or malformed. */
  DORA_E_INVALID_ARGUMENT = 2,
  /** Memory could not be allocated. */
  DORA_E_OUT_OF_MEMORY = 3,
  /** The node configuration (DORA_NODE_CONFIG) is missing, not JSON, or incomplete;
   * or a dynamic node found no running dataflow to join (none declares it, several
   * do, or its daemon refused). */
  DORA_E_CONFIG = 4,
  /** A peer speaks another protocol version. */
  DORA_E_PROTOCOL_VERSION = 5,
  /** The node's daemon went away. */
  DORA_E_DAEMON_GONE = 6,
  /** The output is not one the node declared. */
  DORA_E_UNDECLARED_OUTPUT = 7,
  /** A frame failed the protocol's checks. */
  DORA_E_MALFORMED_MESSAGE = 8,
  /** A shared-memory segment could not be created, opened or mapped, or a payload
   * lies outside it. */
  DORA_E_SHARED_MEMORY = 9,
  /** A wait ran out of time. */
  DORA_E_TIMEOUT = 10,
  /** The daemon refused the node, or answered its registration with nonsense. */
  DORA_E_REGISTRATION = 11,
  /** A ZeroMQ call failed. */
  DORA_E_ZMQ = 12,
  /** An Arrow type or a value that cannot be sent. */
  DORA_E_UNSUPPORTED_TYPE = 13,
  /** A metadata parameter is missing, has another type, or has no such element. */
  DORA_E_PARAMETER = 14,
  /** A system call failed. */
  DORA_E_SYSTEM = 15,
  /** A call the API does not allow in this state (a second pending next(), a sample
   * sent twice). */
  DORA_E_USAGE = 16,
  /** The dataflow descriptor is invalid. */
  DORA_E_DESCRIPTOR = 17,
  /** A node could not be built or spawned, or failed while the dataflow ran. */
  DORA_E_NODE = 18,
  /** The CLI could not reach the coordinator, or the coordinator refused the request. */
  DORA_E_CONTROL = 19,
  /** The native node library was not found or could not be loaded. */
  DORA_E_LIBRARY = 20,
};

/**
 * A description of the last failure of a call on this thread, or NULL if none failed yet.
 * Owned by the library, valid until the next failing call on this thread.
 */
const char *dora_last_error(void);

/**
 * The code (enum DoraErrorCode) of the last failure of a call on this thread, recorded
 * with dora_last_error's message; DORA_E_OK (0) if none failed yet.
 */
int dora_last_error_code(void);

/**
 * The name of an error code without its prefix ("UNDECLARED_OUTPUT" for
 * DORA_E_UNDECLARED_OUTPUT), or NULL for a number that is not in the catalogue. Static:
 * never freed.
 */
const char *dora_error_name(int code);

/**
 * The node's id, NUL-terminated, valid until free_dora_context.
 */
const char *dora_node_id(const DoraContext *context);

/**
 * The dataflow run's id (a UUID), NUL-terminated, valid until free_dora_context.
 */
const char *dora_dataflow_id(const DoraContext *context);

/**
 * How many times the daemon has restarted this node under its restart_policy: 0 for its
 * first run (dora's is_restart() is restart_count > 0); for a dynamic node, how many
 * times it joined the dataflow before; -1 without a context.
 */
int dora_node_restart_count(const DoraContext *context);


/* ------------------------------------------------------------------------------------ */
/* Events */

/**
 * Like dora_next_event, waiting at most timeout_ms milliseconds (0: only what has
 * arrived, negative: no limit). Returns NULL on timeout and at the end of the stream;
 * dora_event_stream_ended tells which. The caller frees the event with free_dora_event.
 */
DoraEvent *dora_next_event_timeout(DoraContext *context, int64_t timeout_ms);

/**
 * True once the event stream has ended (dora_next_event returns NULL from then on).
 */
bool dora_event_stream_ended(const DoraContext *context);

/**
 * For a Stop event its cause ("MANUAL" or "ALL_INPUTS_CLOSED"), for an Error event its
 * message; NULL otherwise. NUL-terminated, valid until free_dora_event.
 */
const char *dora_event_message(const DoraEvent *event);

/**
 * Exports an Input event's data through the Arrow C Data Interface, without copying: the
 * array's buffers point into the received message (into the sender's shared memory for
 * large inputs). The caller owns both structs and calls their release callbacks when
 * done; they stay valid after free_dora_event. Returns 0, or -1 for events without data.
 */
int dora_event_arrow(const DoraEvent *event, struct ArrowArray *out_array, struct ArrowSchema *out_schema);

/**
 * The metadata parameters of an Input event (an empty map for other events). Owned by the
 * event, valid until free_dora_event.
 */
const DoraMetadata *dora_event_metadata(const DoraEvent *event);

/**
 * How many messages of the input named input (NUL-terminated) were dropped because its
 * queue was full (queue_size); 0 for an unknown input.
 */
uint64_t dora_dropped_messages(const DoraContext *context, const char *input);


/* ------------------------------------------------------------------------------------ */
/* Metadata parameters */

/**
 * An empty parameter map, for sending; the caller frees it with dora_metadata_free. NULL
 * if out of memory.
 */
DoraMetadata *dora_metadata_new(void);

/**
 * Frees a map made with dora_metadata_new (never one returned by dora_event_metadata).
 * NULL is a no-op.
 */
void dora_metadata_free(DoraMetadata *metadata);

/**
 * The number of parameters.
 */
size_t dora_metadata_len(const DoraMetadata *metadata);

/**
 * The key of parameter index (0 <= index < dora_metadata_len), NUL-terminated, owned by
 * the map; NULL when out of range.
 */
const char *dora_metadata_key(const DoraMetadata *metadata, size_t index);

/**
 * The type of the parameter named key, DORA_PARAMETER_NONE if there is none.
 */
enum DoraParameterType dora_metadata_type(const DoraMetadata *metadata, const char *key);

/**
 * Reads a bool parameter. Returns 0, or -1 if key is missing or of another type.
 */
int dora_metadata_get_bool(const DoraMetadata *metadata, const char *key, bool *out);

/**
 * Reads an integer (or timestamp) parameter. Returns 0, or -1 if key is missing or of
 * another type.
 */
int dora_metadata_get_int(const DoraMetadata *metadata, const char *key, int64_t *out);

/**
 * Reads a float parameter (an integer parameter is converted). Returns 0, or -1 if key is
 * missing or of another type.
 */
int dora_metadata_get_float(const DoraMetadata *metadata, const char *key, double *out);

/**
 * Reads a string parameter as a pointer and length (also NUL-terminated), owned by the
 * map. Returns 0, or -1 if key is missing or of another type.
 */
int dora_metadata_get_string(const DoraMetadata *metadata, const char *key, const char **out_ptr, size_t *out_len);

/**
 * The number of elements of a list parameter. Returns 0, or -1 if key is missing or not a
 * list.
 */
int dora_metadata_list_len(const DoraMetadata *metadata, const char *key, size_t *out_len);

/**
 * Reads a list of integers, in place (owned by the map). Returns 0, or -1 if key is
 * missing or of another type.
 */
int dora_metadata_get_int_list(const DoraMetadata *metadata, const char *key, const int64_t **out_ptr, size_t *out_len);

/**
 * Reads a list of floats, in place (owned by the map). Returns 0, or -1 if key is missing
 * or of another type.
 */
int dora_metadata_get_float_list(const DoraMetadata *metadata, const char *key, const double **out_ptr, size_t *out_len);

/**
 * Reads element index of a list of strings (into out_string/out_len, owned by the map) or
 * of booleans (into out_bool); pass NULL for the outputs you do not need. Returns 0, or
 * -1 if key is missing, of another type, or index is out of range.
 */
int dora_metadata_get_list_item(const DoraMetadata *metadata, const char *key, size_t index, const char **out_string, size_t *out_len, bool *out_bool);

/**
 * Sets a bool parameter, replacing any parameter with that key. Returns 0, or -1 on
 * failure.
 */
int dora_metadata_set_bool(DoraMetadata *metadata, const char *key, bool value);

/**
 * Sets an integer parameter. Returns 0, or -1 on failure.
 */
int dora_metadata_set_int(DoraMetadata *metadata, const char *key, int64_t value);

/**
 * Sets a float parameter. Returns 0, or -1 on failure.
 */
int dora_metadata_set_float(DoraMetadata *metadata, const char *key, double value);

/**
 * Sets a string parameter to the UTF-8 bytes value[0..len) (copied). Returns 0, or -1 on
 * failure (e.g. invalid UTF-8).
 */
int dora_metadata_set_string(DoraMetadata *metadata, const char *key, const char *value, size_t len);

/**
 * Sets a timestamp parameter (nanoseconds since the Unix epoch, UTC). Returns 0, or -1 on
 * failure.
 */
int dora_metadata_set_timestamp(DoraMetadata *metadata, const char *key, int64_t nanoseconds);

/**
 * Sets a list-of-integers parameter (copied). Returns 0, or -1 on failure.
 */
int dora_metadata_set_int_list(DoraMetadata *metadata, const char *key, const int64_t *values, size_t len);

/**
 * Sets a list-of-floats parameter (copied). Returns 0, or -1 on failure.
 */
int dora_metadata_set_float_list(DoraMetadata *metadata, const char *key, const double *values, size_t len);

/**
 * Sets a list-of-bool parameter from len values (copied). Returns 0, or -1 on failure.
 */
int dora_metadata_set_bool_list(DoraMetadata *metadata, const char *key, const bool *values, size_t len);

/**
 * Sets a list-of-strings parameter from len NUL-terminated UTF-8 strings (copied).
 * Returns 0, or -1 on failure.
 */
int dora_metadata_set_string_list(DoraMetadata *metadata, const char *key, const char *const *values, size_t len);


/* ------------------------------------------------------------------------------------ */
/* Sending */

/**
 * dora_send_output with metadata parameters (metadata may be NULL; the caller keeps
 * ownership of it and of the data). Returns 0, or -1 on failure.
 */
int dora_send_output_with_metadata(DoraContext *context, const char *id_ptr, size_t id_len, const char *data_ptr, size_t data_len, const DoraMetadata *metadata);

/**
 * Sends an Arrow array given through the Arrow C Data Interface. Its buffers are copied
 * once into the message (into shared memory at or above the threshold); the caller keeps
 * ownership of array, schema and metadata (may be NULL) and releases them as usual.
 * Supported types are those of docs/protocol.md. Returns 0, or -1 on failure.
 */
int dora_send_output_arrow(DoraContext *context, const char *id_ptr, size_t id_len, const struct ArrowArray *array, const struct ArrowSchema *schema, const DoraMetadata *metadata);

/**
 * A buffer of len bytes to fill in place and send with dora_send_output_sample: in shared
 * memory at or above the dataflow's threshold, so the data is never copied. The caller
 * gives it back through dora_send_output_sample or dora_discard_output_sample. NULL on
 * failure.
 */
DoraOutputSample *dora_allocate_output(DoraContext *context, size_t len);

/**
 * The sample's bytes (len of them), writable until the sample is sent or discarded.
 */
uint8_t *dora_output_sample_data(DoraOutputSample *sample);

/**
 * Sends the sample's bytes as a uint8 array. Takes ownership of sample in every case (do
 * not touch it afterwards, even on failure); metadata (may be NULL) stays the caller's.
 * Returns 0, or -1 on failure.
 */
int dora_send_output_sample(DoraContext *context, const char *id_ptr, size_t id_len, DoraOutputSample *sample, const DoraMetadata *metadata);

/**
 * Gives back a sample that will not be sent. NULL is a no-op.
 */
void dora_discard_output_sample(DoraContext *context, DoraOutputSample *sample);

/**
 * Calls the release callbacks of array and schema when they are set (either may be NULL),
 * as their owner would: for a caller that exported an array only to send it with
 * dora_send_output_arrow.
 */
void dora_arrow_release(struct ArrowArray *array, struct ArrowSchema *schema);

/**
 * Fills out with the node's shared-memory counters. Returns 0, or -1 for a NULL argument.
 */
int dora_shared_memory_stats(const DoraContext *context, DoraSharedMemoryStats *out);

/**
 * The node's observability counters as JSON text, what the core reports to its daemon
 * once a second (`stats`, docs/protocol.md):
 * {"outputs":{name:{messages,bytes,held}},"inputs":{id:{messages,bytes,dropped,queued,latencyCount,latencyP50Us,latencyP99Us}}},
 * here with the latencies of every message so far. Any thread. Returns the text's length
 * and, when it is below capacity, writes it NUL-terminated into out (otherwise out is
 * left alone); -1 for a NULL context.
 */
int64_t dora_stats_json(const DoraContext *context, char *out, size_t capacity);


/* ------------------------------------------------------------------------------------ */
/* Language bindings */

/**
 * Opens a context without joining the dataflow yet: reads the configuration, given as
 * JSON text (NULL: read DORA_NODE_CONFIG), and binds and connects the sockets, without
 * waiting for anything. Join with dora_join_dataflow before any other call but
 * dora_allocate_output. On failure returns NULL and also writes the message,
 * NUL-terminated and truncated to error_len bytes, into error (may be NULL), and its code
 * (enum DoraErrorCode) into *out_code (may be NULL): the code a binding on another thread
 * cannot read with dora_last_error_code. Free with free_dora_context.
 */
DoraContext *dora_init_context(const char *config_json, char *error, size_t error_len, int *out_code);

/**
 * Registers with the daemon and waits for the start barrier (init_dora_context_from_env
 * is dora_init_context followed by this). It may run on another thread than the context's
 * other calls; meanwhile that thread may only allocate output samples
 * (dora_allocate_output, dora_output_sample_data, dora_output_sample_segment), so a
 * sender can fill its first sample while the dataflow starts. On failure returns -1 and
 * writes the message into error and its code into *out_code as dora_init_context does;
 * free the context then.
 */
int dora_join_dataflow(DoraContext *context, char *error, size_t error_len, int *out_code);

/**
 * Makes a dora_join_dataflow pending on another thread give up within 100 ms of its
 * registration's answer, returning -1 with DORA_E_NO_CONTEXT (or the next one, if none is
 * pending): for a binding whose node is closed while it joins, as a dynamic node may be
 * while the dataflow it joins waits for other nodes. Safe from any thread; free the
 * context once the join has returned. A node that had registered leaves the dataflow as
 * it is freed.
 */
void dora_cancel_join(DoraContext *context);

/**
 * dora_log with a target (the module or component that logs; target_len 0 for none).
 * Returns 0, or -1 on failure.
 */
int dora_log_with_target(DoraContext *context, const char *level_ptr, size_t level_len, const char *msg_ptr, size_t msg_len, const char *target_ptr, size_t target_len);

/**
 * dora_log_with_target with structured fields: fields_json is the text of one JSON object
 * (e.g. {"sensor":"temp-01"}; fields_len 0 for none), kept as such in the record
 * (send_logs_as and dora/logs receivers get it as the entry's fields). Returns 0, or -1
 * on failure (DORA_E_INVALID_ARGUMENT when fields_json is not a JSON object).
 */
int dora_log_with_fields(DoraContext *context, const char *level_ptr, size_t level_len, const char *msg_ptr, size_t msg_len, const char *target_ptr, size_t target_len, const char *fields_json, size_t fields_len);

/**
 * Blocks until events or drop tokens may be waiting, dora_interrupt_wait is called, the
 * context is being freed, or timeout_ms passes (negative: no limit). The one function
 * that may run on another thread while the context's thread makes other calls: it only
 * polls file descriptors. Wake-ups can be spurious; after it returns, take events with
 * dora_next_event_record. Returns 1 when something may be waiting, 0 on timeout or
 * interruption, -1 on error.
 */
int dora_wait(DoraContext *context, int64_t timeout_ms);

/**
 * Makes a pending dora_wait return 0 at once (or the next one, if none is pending). Safe
 * from any thread.
 */
void dora_interrupt_wait(DoraContext *context);

/**
 * For a binding with its own event loop: writes the file descriptors dora_wait polls (at
 * most 2) into out_fds and returns how many, or -1 (capacity too small, no open context).
 * Watch them for readability instead of calling dora_wait; they signal only that
 * something may have arrived since the context's thread last found nothing (spurious
 * wake-ups happen), and stay readable until that thread calls into the context again, so
 * stop watching while not waiting. They are valid until free_dora_context.
 */
int dora_wait_descriptors(const DoraContext *context, int *out_fds, size_t capacity);

/**
 * For a binding that waits outside the library (dora_wait_descriptors): how many
 * milliseconds it may wait before it must call dora_pump or dora_next_event_record again,
 * for an input's input_timeout to fire on time and for the node's health-check
 * heartbeats; -1 for no limit. Call it on the context's thread, after taking the events.
 */
int64_t dora_wake_after_ms(DoraContext *context);

/**
 * Without waiting: moves the messages that have arrived into the input queues (where a
 * full queue drops its oldest), applies the drop tokens receivers sent, and returns
 * released samples to their senders. For bindings whose node may be busy between calls.
 * Returns 0, or -1 without an open context.
 */
int dora_pump(DoraContext *context);

/**
 * Takes the next event without waiting and writes it into record as one self-contained
 * record, so that a binding needs no further call to read it. Returns the record's
 * length; 0 when no event is waiting (dora_event_stream_ended tells whether one ever
 * will); a length greater than capacity, without taking the event, when the record does
 * not fit (call again with a buffer that large); -1 on error. Layout (little-endian): u8
 * the event type (enum DoraEventType), u8 record flags (below), u16 input index in the
 * configuration's inputs (0xffff: none), u32 record length, u64 timestamp, u64 event
 * handle (a DoraEvent * the caller frees with free_dora_event, set only for shared-memory
 * payloads: the event holds the sample, and its data stays where it is), u64 payload
 * address, u64 payload length, u64 mapping handle (for dora_mapping_retain /
 * dora_mapping_release), u64 mapping address (where the segment the payload lies in is
 * mapped), u64 mapping length, u32 layout length, u32 parameters length, u32 message
 * length, u32 inline payload length; then at offset 80 the Arrow layout and the
 * parameters in their wire encoding (docs/protocol.md), the message (stop cause or error
 * text, UTF-8), and at the next multiple of 8 a copy of an inline payload. Flags: 1: the
 * payload is in shared memory, and the event handle must be freed; 2: the layout is the
 * one of this input's previous record.
 */
int64_t dora_next_event_record(DoraContext *context, uint8_t *record, size_t capacity);

/**
 * Keeps the mapped segment a record's mapping handle names mapped until
 * dora_mapping_release, beyond the life of the event it came from (and keeps the
 * context's memory until then). Call it while that event is still held. Returns 0, or -1
 * for NULL arguments.
 */
int dora_mapping_retain(DoraContext *context, void *mapping);

/**
 * Gives up a reference taken with dora_mapping_retain; the segment is unmapped once
 * nothing refers to it. Safe from any thread, also after free_dora_context.
 */
void dora_mapping_release(DoraContext *context, void *mapping);

/**
 * For a sample in shared memory: writes the address of the segment it lies in to
 * out_location[0] and the segment's length to out_location[1]. The segment stays mapped
 * until free_dora_context. Returns 0, or -1 for a sample below the threshold (plain
 * memory).
 */
int dora_output_sample_segment(const DoraContext *context, const DoraOutputSample *sample, uint64_t *out_location);

/**
 * Sends data_len bytes laid out as the Arrow layout describes, with the parameters
 * (parameters_len 0 for none); layout and parameters in their wire encoding
 * (docs/protocol.md). For bindings that lay out their own arrays. The layout is checked
 * against the data; the bytes are copied once (into shared memory at or above the
 * threshold). Returns 0, or -1 on failure.
 */
int dora_send_output_encoded(DoraContext *context, const char *id_ptr, size_t id_len, const uint8_t *layout, size_t layout_len, const uint8_t *parameters, size_t parameters_len, const uint8_t *data, size_t data_len);

/**
 * dora_send_output_sample with the sample's bytes laid out as the encoded Arrow layout
 * describes (layout_len 0: a uint8 array) and encoded parameters: an array written in
 * place into shared memory, sent without a copy. Takes ownership of sample in every case.
 * Returns 0, or -1 on failure.
 */
int dora_send_output_sample_encoded(DoraContext *context, const char *id_ptr, size_t id_len, DoraOutputSample *sample, const uint8_t *layout, size_t layout_len, const uint8_t *parameters, size_t parameters_len);

#ifdef __cplusplus
}
#endif

#endif /* DORA_NODE_API_H */
