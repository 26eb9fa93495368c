/*
 * GENERATED from protocol/facts.json by scripts/generate-facts.ts (npm run facts). Do not edit.
 *
 * The protocol facts the C library shares with every other implementation. Private to the
 * library (included by internal.h); the public error codes, enums and version are in
 * dora_node_api.h.
 */
#ifndef DORA_FACTS_H
#define DORA_FACTS_H

#define DORA_PROTOCOL_VERSION 1
#define DORA_MAGIC "DORA"
#define DORA_MAGIC_LEN 4
#define DORA_VERSION "0.1.0"

/* Parameters per message, at most. */
#define DORA_MAX_PARAMETERS 4096
/* Nesting levels of an Arrow layout (and of a value to infer a type from), at most. */
#define DORA_MAX_DEPTH 64
/* Sample ids, and lost ranges, per drop-token frame, at most. */
#define DORA_MAX_DROP_TOKEN_ENTRIES 1048576
/* Every buffer of a payload starts at a multiple of this many bytes. */
#define DORA_BUFFER_ALIGNMENT 64
/* Default of the dataflow's shared_memory_threshold: payloads of at least this many bytes travel through shared memory. */
#define DORA_SHARED_MEMORY_THRESHOLD 4096
/* Bytes of a shared-memory segment name, at most. */
#define DORA_SEGMENT_NAME_MAX 200

/* A segment is named <segmentPrefix><24 random hex digits>, where segmentPrefix is dora-ts-<dataflowId>-; a receiver refuses any other prefix, other characters, and longer names. */
#define DORA_SEGMENT_PREFIX "dora-ts-"
#define DORA_SEGMENT_RANDOM_HEX_DIGITS 24
#define DORA_EVENTS_TOPIC_PREFIX "dora/events/"
#define DORA_NODE_CONFIG_ENV "DORA_NODE_CONFIG"

enum { DORA_KIND_DATA = 1, DORA_KIND_END_OF_STREAM = 2, DORA_KIND_DROP_TOKENS = 3 };
enum { DORA_LOC_NONE = 0, DORA_LOC_INLINE = 1, DORA_LOC_SHARED_MEMORY = 2 };

/* Event type names, indexed by enum DoraEventType. */
#define DORA_EVENT_TYPE_NAMES {"STOP", "INPUT", "INPUT_CLOSED", "ERROR", "UNKNOWN", "INPUT_RECOVERED", "NODE_RESTARTED", "NODE_FAILED"}
#define DORA_STOP_MANUAL "MANUAL"
#define DORA_STOP_ALL_INPUTS_CLOSED "ALL_INPUTS_CLOSED"
#define DORA_LOG_LEVELS {"error", "warn", "info", "debug", "trace"}
#define DORA_LOG_LEVEL_COUNT 5
#define DORA_LOG_LEVELS_TEXT "error, warn, info, debug or trace"

/* Control-message tags (`t`). */
#define DORA_T_REGISTER "register"
#define DORA_T_READY "ready"
#define DORA_T_LOG "log"
#define DORA_T_OUTPUTS_CLOSED "outputs-closed"
#define DORA_T_HEARTBEAT "heartbeat"
#define DORA_T_RESTART_SEEN "restart-seen"
#define DORA_T_DYNAMIC_CONFIG "dynamic-config"
#define DORA_T_STATS "stats"
#define DORA_T_TAP "tap"
#define DORA_T_CLOSING "closing"
#define DORA_T_OK "ok"
#define DORA_T_ERROR "error"
#define DORA_T_START "start"
#define DORA_T_STOP "stop"
#define DORA_T_PEER_EXITED "peer-exited"
#define DORA_T_INPUTS_CLOSED "inputs-closed"
#define DORA_T_NODE_RESTARTED "node-restarted"
#define DORA_T_NODE_FAILED "node-failed"

/* DORA_NODE_CONFIG fields. */
#define DORA_CFG_PROTOCOL_VERSION "protocolVersion"
#define DORA_CFG_DATAFLOW_ID "dataflowId"
#define DORA_CFG_NODE_ID "nodeId"
#define DORA_CFG_DAEMON_PID "daemonPid"
#define DORA_CFG_DAEMON_START_TIME "daemonStartTime"
#define DORA_CFG_DYNAMIC "dynamic"
#define DORA_CFG_DAEMON_REQUESTS "daemonRequests"
#define DORA_CFG_DAEMON_EVENTS "daemonEvents"
#define DORA_CFG_DATA_ENDPOINT "dataEndpoint"
#define DORA_CFG_DROP_ENDPOINT "dropEndpoint"
#define DORA_CFG_SHARED_MEMORY_THRESHOLD "sharedMemoryThreshold"
#define DORA_CFG_SEGMENT_PREFIX "segmentPrefix"
#define DORA_CFG_OUTPUTS "outputs"
#define DORA_CFG_SUBSCRIBERS "subscribers"
#define DORA_CFG_INPUTS "inputs"
#define DORA_CFG_NODE_DESCRIPTOR "nodeDescriptor"
#define DORA_CFG_DATAFLOW_DESCRIPTOR_FILE "dataflowDescriptorFile"
#define DORA_CFG_RESTART_COUNT "restartCount"
#define DORA_CFG_OUTPUT_TYPES "outputTypes"
#define DORA_CFG_HEALTH_CHECK_TIMEOUT_MS "healthCheckTimeoutMs"
#define DORA_CFG_REMOTE "remote"
#define DORA_CFG_INPUT_ID "id"
#define DORA_CFG_INPUT_QUEUE_SIZE "queueSize"
#define DORA_CFG_INPUT_ENDPOINT "endpoint"
#define DORA_CFG_INPUT_TOPIC "topic"
#define DORA_CFG_INPUT_SOURCE "source"
#define DORA_CFG_INPUT_DROP_ENDPOINT "dropEndpoint"
#define DORA_CFG_INPUT_TIMEOUT_MS "timeoutMs"
#define DORA_CFG_INPUT_RESTARTABLE "restartable"

/* Kinds of Arrow layouts, their buffer counts, and the formats without a parameter: X(format, layout, bytes per value). */
typedef enum { DORA_AL_NULL, DORA_AL_BOOL, DORA_AL_FIXED, DORA_AL_VAR32, DORA_AL_VAR64, DORA_AL_LIST32, DORA_AL_LIST64, DORA_AL_FIXED_LIST, DORA_AL_STRUCT } dora_arrow_layout;
#define DORA_ARROW_LAYOUT_BUFFERS {0, 2, 2, 3, 3, 2, 2, 1, 1}
#define DORA_ARROW_FORMATS(X) \
  X("n", DORA_AL_NULL, 0) \
  X("b", DORA_AL_BOOL, 0) \
  X("c", DORA_AL_FIXED, 1) \
  X("C", DORA_AL_FIXED, 1) \
  X("s", DORA_AL_FIXED, 2) \
  X("S", DORA_AL_FIXED, 2) \
  X("i", DORA_AL_FIXED, 4) \
  X("I", DORA_AL_FIXED, 4) \
  X("l", DORA_AL_FIXED, 8) \
  X("L", DORA_AL_FIXED, 8) \
  X("e", DORA_AL_FIXED, 2) \
  X("f", DORA_AL_FIXED, 4) \
  X("g", DORA_AL_FIXED, 8) \
  X("u", DORA_AL_VAR32, 0) \
  X("z", DORA_AL_VAR32, 0) \
  X("U", DORA_AL_VAR64, 0) \
  X("Z", DORA_AL_VAR64, 0) \
  X("tdD", DORA_AL_FIXED, 4) \
  X("tdm", DORA_AL_FIXED, 8) \
  X("tts", DORA_AL_FIXED, 4) \
  X("ttm", DORA_AL_FIXED, 4) \
  X("ttu", DORA_AL_FIXED, 8) \
  X("ttn", DORA_AL_FIXED, 8) \
  X("tDs", DORA_AL_FIXED, 8) \
  X("tDm", DORA_AL_FIXED, 8) \
  X("tDu", DORA_AL_FIXED, 8) \
  X("tDn", DORA_AL_FIXED, 8) \
  X("+l", DORA_AL_LIST32, 0) \
  X("+L", DORA_AL_LIST64, 0) \
  X("+s", DORA_AL_STRUCT, 0)
/* Parameterized formats: X(prefix, layout); the width is the parameter (w:N, +w:N) or 8 (timestamps). */
#define DORA_ARROW_PREFIX_FORMATS(X) \
  X("w:", DORA_AL_FIXED) \
  X("ts", DORA_AL_FIXED) \
  X("+w:", DORA_AL_FIXED_LIST)

/* The event record (dora_next_event_record): field offsets, flags. */
enum {
  DORA_R_TYPE = 0,
  DORA_R_FLAGS = 1,
  DORA_R_INPUT = 2,
  DORA_R_LENGTH = 4,
  DORA_R_TIMESTAMP = 8,
  DORA_R_EVENT = 16,
  DORA_R_PAYLOAD_ADDRESS = 24,
  DORA_R_PAYLOAD_LENGTH = 32,
  DORA_R_MAPPING = 40,
  DORA_R_MAPPING_ADDRESS = 48,
  DORA_R_MAPPING_LENGTH = 56,
  DORA_R_LAYOUT_LENGTH = 64,
  DORA_R_PARAMETERS_LENGTH = 68,
  DORA_R_MESSAGE_LENGTH = 72,
  DORA_R_INLINE_LENGTH = 76,
  DORA_R_BODY = 80,
};
enum { DORA_RECORD_SHARED = 1, DORA_RECORD_SAME_LAYOUT = 2 };
#define DORA_RECORD_NO_INPUT 65535

/* Error names, indexed by code (enum DoraErrorCode). */
#define DORA_ERROR_NAMES {"OK", "NO_CONTEXT", "INVALID_ARGUMENT", "OUT_OF_MEMORY", "CONFIG", "PROTOCOL_VERSION", "DAEMON_GONE", "UNDECLARED_OUTPUT", "MALFORMED_MESSAGE", "SHARED_MEMORY", "TIMEOUT", "REGISTRATION", "ZMQ", "UNSUPPORTED_TYPE", "PARAMETER", "SYSTEM", "USAGE", "DESCRIPTOR", "NODE", "CONTROL", "LIBRARY"}

#endif /* DORA_FACTS_H */
