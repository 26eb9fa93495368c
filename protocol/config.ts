/**
 * What the daemon tells a node when it spawns it: everything the node needs to
 * join the dataflow, as JSON in the `DORA_NODE_CONFIG` environment variable
 * (dora's variable name). Typed once here; the TypeScript, C and Python node
 * APIs all read this shape (see docs/protocol.md, "Node configuration").
 */

/** Version of the node ⇄ daemon protocol; a peer with another version is refused. */
export const PROTOCOL_VERSION = 1;

/** Environment variable that carries the JSON-encoded {@link NodeConfig}. */
export const NODE_CONFIG_ENV = 'DORA_NODE_CONFIG';

/** Where an input's messages come from and which topic to subscribe to. */
export interface InputWiring {
  /** Input id as the receiving node declared it. */
  readonly id: string;
  /** Receiver-side queue capacity; the oldest message is dropped when it is full. */
  readonly queueSize: number;
  /** ZeroMQ endpoint publishing this input (the sender's data socket or the daemon's event socket for timers). */
  readonly endpoint: string;
  /** ZeroMQ subscription topic (the first frame of every message of this input). */
  readonly topic: string;
  /** `node/output` or the timer name, for messages and logs. */
  readonly source: string;
  /** The sender's drop-token endpoint (PULL), where this node returns shared-memory samples; null for timers. */
  readonly dropEndpoint: string | null;
}

export interface NodeConfig {
  readonly protocolVersion: number;
  readonly dataflowId: string;
  readonly nodeId: string;
  /** PID of the daemon that spawned the node: if the node's parent changes, the daemon is gone. */
  readonly daemonPid: number;
  /** Daemon request socket (ROUTER) the node connects a DEALER to. */
  readonly daemonRequests: string;
  /** Daemon event socket (XPUB) the node subscribes to for its control events and timers. */
  readonly daemonEvents: string;
  /** Where the node binds its data socket (XPUB); null when it has no outputs. */
  readonly dataEndpoint: string | null;
  /** Where the node binds its drop-token socket (PULL); null when it has no outputs. */
  readonly dropEndpoint: string | null;
  /** Payloads of at least this many bytes are sent through shared memory. */
  readonly sharedMemoryThreshold: number;
  /** Prefix of the names of the shared-memory segments this node creates (the daemon unlinks them all at the end). */
  readonly segmentPrefix: string;
  readonly outputs: readonly string[];
  /**
   * The nodes that will subscribe to each output's topic; before reporting ready
   * the node waits until that many subscriptions have arrived (the start barrier),
   * less any of them the daemon reports as exited.
   */
  readonly subscribers: Readonly<Record<string, readonly string[]>>;
  readonly inputs: readonly InputWiring[];
  /** The node's own YAML entry, as JSON. */
  readonly nodeDescriptor: Readonly<Record<string, unknown>>;
  /** Path of a JSON file with the whole dataflow descriptor (too large for the environment). */
  readonly dataflowDescriptorFile: string;
}

/** Topic of messages a node publishes on `output`; the trailing NUL stops prefix matches (`a/x` vs `a/xy`). */
export function outputTopic(node: string, output: string): string {
  return `${node}/${output}\0`;
}

/** Topic of the daemon's control events addressed to one node. */
export function eventTopic(node: string): string {
  return `dora/events/${node}\0`;
}

/** Topic of a built-in timer's ticks (node ids cannot be `dora`, so no clash with outputs). */
export function timerTopic(timerName: string): string {
  return `${timerName}\0`;
}

/**
 * ZeroMQ endpoints for one dataflow. Linux abstract-namespace ipc addresses leave
 * no socket files behind, even after a crash.
 */
export function endpoints(dataflowId: string) {
  const base = `ipc://@dora-ts/${dataflowId}`;
  return {
    daemonRequests: `${base}/daemon`,
    daemonEvents: `${base}/events`,
    nodeData: (node: string) => `${base}/node/${node}`,
    nodeDrops: (node: string) => `${base}/node/${node}/drops`,
  };
}
