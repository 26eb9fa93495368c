/* GENERATED from protocol/facts.json by scripts/generate-facts.ts (npm run facts). Do not edit. */

/* eslint-disable */

/** The project version (package.json, the C library, the Python package). */
export const VERSION = "0.1.0";
/** Version of the node ⇄ daemon protocol, in every binary preamble, `register` and DORA_NODE_CONFIG; a peer with another version is refused. */
export const PROTOCOL_VERSION = 1;
/** The first bytes of every binary message: "DORA". */
export const MAGIC: readonly number[] = [0x44, 0x4f, 0x52, 0x41];

/** Parameters per message, at most. */
export const MAX_PARAMETERS = 4096;
/** Nesting levels of an Arrow layout (and of a value to infer a type from), at most. */
export const MAX_DEPTH = 64;
/** Sample ids, and lost ranges, per drop-token frame, at most. */
export const MAX_DROP_TOKEN_ENTRIES = 1048576;
/** Every buffer of a payload starts at a multiple of this many bytes. */
export const BUFFER_ALIGNMENT = 64;
/** Default of the dataflow's shared_memory_threshold: payloads of at least this many bytes travel through shared memory. */
export const SHARED_MEMORY_THRESHOLD = 4096;
/** Bytes of a shared-memory segment name, at most. */
export const SEGMENT_NAME_MAX = 200;

/** A segment is named <segmentPrefix><24 random hex digits>, where segmentPrefix is dora-ts-<dataflowId>-; a receiver refuses any other prefix, other characters, and longer names. */
export const SEGMENT_PREFIX = "dora-ts-";
/** What a segment name may hold: the prefix, then only these characters. */
export const SEGMENT_NAME = /^dora-ts-[A-Za-z0-9_.-]*$/;
export const SEGMENT_RANDOM_HEX_DIGITS = 24;

/** Topic prefix of the daemon's control events to a node: `dora/events/<node>\0`. */
export const EVENTS_TOPIC_PREFIX = "dora/events/";
/** Prefix of the built-in timers' names and topics. */
export const TIMER_PREFIX = "dora/timer/";
/** Environment variable that carries the JSON-encoded NodeConfig. */
export const NODE_CONFIG_ENV = "DORA_NODE_CONFIG";

/** Kinds of binary messages (the byte after the preamble). */
export enum MessageKind {
  /** A data message. */
  Data = 1,
  /** End of stream: the sender closed this output; nothing follows on it. */
  EndOfStream = 2,
  /** Drop tokens, receiver to sender (never on a data link). */
  DropTokens = 3,
}

/** Where a data message's payload is. */
export enum PayloadLocation {
  /** No payload (end of stream only). */
  None = 0,
  /** The payload is the next frame. */
  Inline = 1,
  /** The payload sits in a shared-memory segment named in the header. */
  SharedMemory = 2,
}

/** Wire tags of parameter values. */
export enum ParameterTag {
  /** bool: u8, 0 or 1 (any non-zero reads as true) */
  Bool = 1,
  /** integer: i64 */
  Int = 2,
  /** float: f64 */
  Float = 3,
  /** string: str32 */
  String = 4,
  /** list of bool: u32 n, n × u8 */
  ListBool = 5,
  /** list of integer: u32 n, n × i64 */
  ListInt = 6,
  /** list of float: u32 n, n × f64 */
  ListFloat = 7,
  /** list of string: u32 n, n × str32 */
  ListString = 8,
  /** timestamp: i64 nanoseconds since the Unix epoch, UTC */
  Timestamp = 9,
}

/** Names of the event types, indexed by their number (enum DoraEventType). */
export const EVENT_TYPES = ["STOP", "INPUT", "INPUT_CLOSED", "ERROR", "UNKNOWN", "INPUT_RECOVERED", "NODE_RESTARTED", "NODE_FAILED"] as const;
/** One of EVENT_TYPES. */
export type EventTypeName = (typeof EVENT_TYPES)[number];

/** Why a node is told to stop (dora's causes). */
export const STOP_CAUSES = ["MANUAL", "ALL_INPUTS_CLOSED"] as const;
/** One of STOP_CAUSES. */
export type StopCause = (typeof STOP_CAUSES)[number];

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug", "trace"] as const;
/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Tags (`t`) of node → daemon requests. */
export const NODE_REQUEST_TAGS = ["register", "ready", "log", "outputs-closed", "heartbeat", "restart-seen", "dynamic-config", "stats", "tap", "closing"] as const;
/** One of NODE_REQUEST_TAGS. */
export type NodeRequestTag = (typeof NODE_REQUEST_TAGS)[number];

/** Tags (`t`) of the daemon's answers to `register`. */
export const REGISTER_REPLY_TAGS = ["ok", "error"] as const;
/** One of REGISTER_REPLY_TAGS. */
export type RegisterReplyTag = (typeof REGISTER_REPLY_TAGS)[number];

/** Tags (`t`) of daemon → node events. */
export const DAEMON_EVENT_TAGS = ["start", "stop", "peer-exited", "inputs-closed", "node-restarted", "node-failed"] as const;
/** One of DAEMON_EVENT_TAGS. */
export type DaemonEventTag = (typeof DAEMON_EVENT_TAGS)[number];

/** Buffers and children of each kind of Arrow layout (children -1: one per field). */
export const ARROW_LAYOUTS = {
  NULL: { buffers: 0, children: 0 },
  BOOL: { buffers: 2, children: 0 },
  FIXED: { buffers: 2, children: 0 },
  VAR32: { buffers: 3, children: 0 },
  VAR64: { buffers: 3, children: 0 },
  LIST32: { buffers: 2, children: 1 },
  LIST64: { buffers: 2, children: 1 },
  FIXED_LIST: { buffers: 1, children: 1 },
  STRUCT: { buffers: 1, children: -1 },
} as const;
export type ArrowLayoutKind = keyof typeof ARROW_LAYOUTS;

/** The Arrow formats carried: C Data Interface format string (a prefix for parameterized ones), type, layout, bytes per value (0: not fixed width, -1: the format's N). */
export const ARROW_FORMATS: readonly { readonly format: string; readonly prefix?: string; readonly type: string; readonly layout: ArrowLayoutKind; readonly width: number }[] = [
  { format: "n", type: "null", layout: "NULL", width: 0 },
  { format: "b", type: "bool", layout: "BOOL", width: 0 },
  { format: "c", type: "int8", layout: "FIXED", width: 1 },
  { format: "C", type: "uint8", layout: "FIXED", width: 1 },
  { format: "s", type: "int16", layout: "FIXED", width: 2 },
  { format: "S", type: "uint16", layout: "FIXED", width: 2 },
  { format: "i", type: "int32", layout: "FIXED", width: 4 },
  { format: "I", type: "uint32", layout: "FIXED", width: 4 },
  { format: "l", type: "int64", layout: "FIXED", width: 8 },
  { format: "L", type: "uint64", layout: "FIXED", width: 8 },
  { format: "e", type: "float16", layout: "FIXED", width: 2 },
  { format: "f", type: "float32", layout: "FIXED", width: 4 },
  { format: "g", type: "float64", layout: "FIXED", width: 8 },
  { format: "u", type: "utf8", layout: "VAR32", width: 0 },
  { format: "z", type: "binary", layout: "VAR32", width: 0 },
  { format: "U", type: "large utf8", layout: "VAR64", width: 0 },
  { format: "Z", type: "large binary", layout: "VAR64", width: 0 },
  { format: "w:N", prefix: "w:", type: "fixed-size binary of N bytes", layout: "FIXED", width: -1 },
  { format: "tdD", type: "date32 (days)", layout: "FIXED", width: 4 },
  { format: "tdm", type: "date64 (milliseconds)", layout: "FIXED", width: 8 },
  { format: "tts", type: "time32 (seconds)", layout: "FIXED", width: 4 },
  { format: "ttm", type: "time32 (milliseconds)", layout: "FIXED", width: 4 },
  { format: "ttu", type: "time64 (microseconds)", layout: "FIXED", width: 8 },
  { format: "ttn", type: "time64 (nanoseconds)", layout: "FIXED", width: 8 },
  { format: "tsU:TZ", prefix: "ts", type: "timestamp with unit U (s, m, u, n) and zone TZ (may be empty: tsn:)", layout: "FIXED", width: 8 },
  { format: "tDs", type: "duration (seconds)", layout: "FIXED", width: 8 },
  { format: "tDm", type: "duration (milliseconds)", layout: "FIXED", width: 8 },
  { format: "tDu", type: "duration (microseconds)", layout: "FIXED", width: 8 },
  { format: "tDn", type: "duration (nanoseconds)", layout: "FIXED", width: 8 },
  { format: "+l", type: "list", layout: "LIST32", width: 0 },
  { format: "+L", type: "large list", layout: "LIST64", width: 0 },
  { format: "+w:N", prefix: "+w:", type: "fixed-size list of N", layout: "FIXED_LIST", width: -1 },
  { format: "+s", type: "struct", layout: "STRUCT", width: 0 },
];

/** Where an input's messages come from and which topic to subscribe to. */
export interface InputWiring {
  /** Input id as the receiving node declared it. */
  readonly id: string;
  /** Receiver-side queue capacity; the oldest message is dropped when it is full. */
  readonly queueSize: number;
  /** ZeroMQ endpoint publishing this input: the sender's data endpoint, or the daemon's events endpoint for timers and the inputs the daemon feeds (a node's `send_stdout_as`/`send_logs_as` output, `dora/logs…`), whose topic is `dora/route/<node>/<input>\0`. */
  readonly endpoint: string;
  /** ZeroMQ subscription topic (the first frame of every message of this input). */
  readonly topic: string;
  /** `node/output` or the timer name, for messages and logs. */
  readonly source: string;
  /** The sender's drop-token endpoint (PULL), where this node returns shared-memory samples; null for timers and the inputs the daemon feeds. */
  readonly dropEndpoint: string | null;
  /** The input's `input_timeout` in milliseconds, 0 for none: armed by the first message, the input yields `INPUT_CLOSED` when nothing arrives for that long and `INPUT_RECOVERED` before the next message. */
  readonly timeoutMs: number;
  /** The sender has a restart policy: its end-of-stream does not close the input; the daemon's `inputs-closed` does, once the sender will not be restarted. */
  readonly restartable: boolean;
}

/** What the daemon tells a node when it spawns it, as JSON in DORA_NODE_CONFIG. */
export interface NodeConfig {
  /** The protocol version the daemon speaks. A node with another version refuses to start. */
  readonly protocolVersion: number;
  /** UUID of the dataflow run. */
  readonly dataflowId: string;
  /** This node's id. */
  readonly nodeId: string;
  /** PID of the daemon, the node's parent (not a dynamic node's). When the node's parent PID changes, or for a dynamic node when the process with this PID and `daemonStartTime` is gone, the daemon is gone and the node ends its event stream with an `ERROR` event. */
  readonly daemonPid: number;
  /** The daemon's start time (field 22 of /proc/<daemonPid>/stat): with `daemonPid`, tells the daemon from a later process given the same PID. null when unknown. */
  readonly daemonStartTime: string | null;
  /** The node is dynamic (`path: dynamic`): started by the user, it received this configuration from the daemon (`dynamic-config`). Its daemon is not its parent, it joins a dataflow that may be running already (it connects to its senders and subscribes to its timers only at `start`, as a restarted node does), and it may leave and join again. */
  readonly dynamic: boolean;
  /** Endpoint of the daemon's ROUTER (the node connects a DEALER). */
  readonly daemonRequests: string;
  /** Endpoint of the daemon's XPUB (the node subscribes to its control events and timers). */
  readonly daemonEvents: string;
  /** Where this node binds its data XPUB; null when it has no outputs. */
  readonly dataEndpoint: string | null;
  /** Where this node binds its drop-token PULL; null when it has no outputs. */
  readonly dropEndpoint: string | null;
  /** Payloads of at least this many bytes go through shared memory (dataflow field `shared_memory_threshold`, default 4096). */
  readonly sharedMemoryThreshold: number;
  /** Prefix of every shared-memory segment name this node creates: `dora-ts-<dataflowId>-` (the daemon unlinks them all at the end). */
  readonly segmentPrefix: string;
  /** Declared outputs, less those only the daemon sends on (the node's `send_stdout_as` and `send_logs_as`). Sending on another output is an error. */
  readonly outputs: readonly string[];
  /** For each output topic, the ids of the nodes that will subscribe to it; before reporting ready the node waits until that many subscriptions have arrived, less those the daemon reports as exited (start barrier, section 6). */
  readonly subscribers: Readonly<Record<string, readonly string[]>>;
  /** One entry per input (below). */
  readonly inputs: readonly InputWiring[];
  /** The node's YAML entry as JSON. */
  readonly nodeDescriptor: Readonly<Record<string, unknown>>;
  /** Path of a JSON file holding the whole dataflow descriptor (too large for the environment). */
  readonly dataflowDescriptorFile: string;
  /** How many times the daemon has restarted this node (0 for its first run); for a dynamic node, how many times it joined before. A restarted node connects to its senders only once they know it is back (`start`), and drops what reached it before. */
  readonly restartCount: number;
  /** For outputs whose declared type (`output_types`) fixes the Arrow format: the type's URN and that format (`+l<…>` for a list). With DORA_RUNTIME_TYPE_CHECK=warn or error in its environment, the node checks what it sends against it. */
  readonly outputTypes: Readonly<Record<string, { readonly urn: string; readonly format: string }>>;
  /** The node's `health_check_timeout` in milliseconds, 0 for none. When set, the node sends `heartbeat` requests while its code is active (calling the node API, or waiting in it); the daemon kills a node silent for longer. */
  readonly healthCheckTimeoutMs: number;
  /** Data to and from nodes on other machines (node to node over TCP with CURVE), null when none of the node's inputs or outputs crosses machines. `keyFile`: a file (0600, in the run folder) holding the machine's part's CURVE key pair as JSON `{"publicKey","secretKey"}` (Z85). `endpoint`: where a sender with receivers elsewhere binds its second data XPUB (`tcp://address:port`, reserved for it by its daemon, the same on every restart), null otherwise; it is a CURVE server admitting only `clientKeys` (the public keys of the dataflow's parts, through a ZAP handler), and publishes there every message of its outputs inline. `subscribers`: per output, which of `subscribers` are on other machines (they count at the start barrier, never hold a sample). `servers`: for each input endpoint of a sender on another machine, that sender's CURVE server key; the node connects to it as a CURVE client with its key pair. */
  readonly remote: { readonly keyFile: string; readonly endpoint: string | null; readonly clientKeys: readonly string[]; readonly subscribers: Readonly<Record<string, readonly string[]>>; readonly servers: Readonly<Record<string, string>> } | null;
}

/** The fields of NodeConfig, in order. */
export const NODE_CONFIG_FIELDS = ["protocolVersion", "dataflowId", "nodeId", "daemonPid", "daemonStartTime", "dynamic", "daemonRequests", "daemonEvents", "dataEndpoint", "dropEndpoint", "sharedMemoryThreshold", "segmentPrefix", "outputs", "subscribers", "inputs", "nodeDescriptor", "dataflowDescriptorFile", "restartCount", "outputTypes", "healthCheckTimeoutMs", "remote"] as const;
/** One of NODE_CONFIG_FIELDS. */
export type NodeConfigField = (typeof NODE_CONFIG_FIELDS)[number];

/** How the node core hands an event to a binding in one call (dora_next_event_record): a fixed part, little-endian, then at offset `body` the Arrow layout and the parameters in their wire encoding, the message (stop cause or error text, UTF-8), and at the next multiple of 8 a copy of an inline payload. Field offsets: */
export const RECORD = {
  /** u8: the event type (enum DoraEventType) */
  type: 0,
  /** u8: record flags (below) */
  flags: 1,
  /** u16: input index in the configuration's inputs (0xffff: none) */
  input: 2,
  /** u32: record length */
  length: 4,
  /** u64: timestamp */
  timestamp: 8,
  /** u64: event handle (a DoraEvent * the caller frees with free_dora_event, set only for shared-memory payloads: the event holds the sample, and its data stays where it is) */
  event: 16,
  /** u64: payload address */
  payloadAddress: 24,
  /** u64: payload length */
  payloadLength: 32,
  /** u64: mapping handle (for dora_mapping_retain / dora_mapping_release) */
  mapping: 40,
  /** u64: mapping address (where the segment the payload lies in is mapped) */
  mappingAddress: 48,
  /** u64: mapping length */
  mappingLength: 56,
  /** u32: layout length */
  layoutLength: 64,
  /** u32: parameters length */
  parametersLength: 68,
  /** u32: message length */
  messageLength: 72,
  /** u32: inline payload length */
  inlineLength: 76,
  /** Where the variable part starts. */
  body: 80,
} as const;
/** Event record flags. */
export const RECORD_FLAGS = {
  /** the payload is in shared memory, and the event handle must be freed */
  SHARED: 1,
  /** the layout is the one of this input's previous record */
  SAME_LAYOUT: 2,
} as const;
/** The input index of a record that belongs to no input. */
export const RECORD_NO_INPUT = 65535;

/** The error catalogue: stable numbers, shared by every language (C: DORA_E_*). */
export enum ErrorCode {
  /** No error. */
  OK = 0,
  /** No open context: NULL, or the node is closed. */
  NO_CONTEXT = 1,
  /** An argument is NULL, out of range or malformed. */
  INVALID_ARGUMENT = 2,
  /** Memory could not be allocated. */
  OUT_OF_MEMORY = 3,
  /** The node configuration (DORA_NODE_CONFIG) is missing, not JSON, or incomplete; or a dynamic node found no running dataflow to join (none declares it, several do, or its daemon refused). */
  CONFIG = 4,
  /** A peer speaks another protocol version. */
  PROTOCOL_VERSION = 5,
  /** The node's daemon went away. */
  DAEMON_GONE = 6,
  /** The output is not one the node declared. */
  UNDECLARED_OUTPUT = 7,
  /** A frame failed the protocol's checks. */
  MALFORMED_MESSAGE = 8,
  /** A shared-memory segment could not be created, opened or mapped, or a payload lies outside it. */
  SHARED_MEMORY = 9,
  /** A wait ran out of time. */
  TIMEOUT = 10,
  /** The daemon refused the node, or answered its registration with nonsense. */
  REGISTRATION = 11,
  /** A ZeroMQ call failed. */
  ZMQ = 12,
  /** An Arrow type or a value that cannot be sent. */
  UNSUPPORTED_TYPE = 13,
  /** A metadata parameter is missing, has another type, or has no such element. */
  PARAMETER = 14,
  /** A system call failed. */
  SYSTEM = 15,
  /** A call the API does not allow in this state (a second pending next(), a sample sent twice). */
  USAGE = 16,
  /** The dataflow descriptor is invalid. */
  DESCRIPTOR = 17,
  /** A node could not be built or spawned, or failed while the dataflow ran. */
  NODE = 18,
  /** The CLI could not reach the coordinator, or the coordinator refused the request. */
  CONTROL = 19,
  /** The native node library was not found or could not be loaded. */
  LIBRARY = 20,
}

/** Each error code's one-line meaning. */
export const ERROR_DOCS: Readonly<Record<number, string>> = {
  0: "No error.",
  1: "No open context: NULL, or the node is closed.",
  2: "An argument is NULL, out of range or malformed.",
  3: "Memory could not be allocated.",
  4: "The node configuration (DORA_NODE_CONFIG) is missing, not JSON, or incomplete; or a dynamic node found no running dataflow to join (none declares it, several do, or its daemon refused).",
  5: "A peer speaks another protocol version.",
  6: "The node's daemon went away.",
  7: "The output is not one the node declared.",
  8: "A frame failed the protocol's checks.",
  9: "A shared-memory segment could not be created, opened or mapped, or a payload lies outside it.",
  10: "A wait ran out of time.",
  11: "The daemon refused the node, or answered its registration with nonsense.",
  12: "A ZeroMQ call failed.",
  13: "An Arrow type or a value that cannot be sent.",
  14: "A metadata parameter is missing, has another type, or has no such element.",
  15: "A system call failed.",
  16: "A call the API does not allow in this state (a second pending next(), a sample sent twice).",
  17: "The dataflow descriptor is invalid.",
  18: "A node could not be built or spawned, or failed while the dataflow ran.",
  19: "The CLI could not reach the coordinator, or the coordinator refused the request.",
  20: "The native node library was not found or could not be loaded.",
};

/** The name of an error code (`UNDECLARED_OUTPUT`), or `UNKNOWN` for a number outside the catalogue. */
export function errorName(code: number): string {
  return ErrorCode[code] ?? 'UNKNOWN';
}
