/**
 * What crosses the cluster link, coordinator ⇄ daemon (DEALER → ROUTER over TCP with
 * CURVE): JSON, one frame per message, tagged `t`. A daemon registers with its machine id
 * and labels, then sends heartbeats; the coordinator asks it to run its part of a
 * dataflow (the nodes placed on its machine), and relays between the parts of a dataflow
 * the messages of {@link PartMessage}, which keep one run across machines.
 */
import type { DaemonEvent } from '../../protocol/control';
import type { NodeStatus, RunResult } from '../daemon';
import type { LogLine } from '../logs';

/** Version of this protocol; a daemon of another version is refused at registration. */
export const CLUSTER_PROTOCOL_VERSION = 1;

/** What a part says about one of its nodes whenever its status changes (the other parts mirror it). */
export interface NodeStatusUpdate {
  readonly node: string;
  readonly status: NodeStatus;
  readonly detail?: string;
  /** It published end-of-stream on its outputs before it ended. */
  readonly outputsClosed: boolean;
  readonly restarts: number;
  readonly pid?: number;
  readonly stderrTail: readonly string[];
  readonly killed?: boolean;
  /** Its machine was lost: it never said goodbye to anyone (its senders are told it exited). */
  readonly lost?: boolean;
}

/**
 * What a part tells the others at `prepare`: its CURVE public key (made for this part: the
 * key its nodes connect and serve with; senders elsewhere admit it) and, for each of its
 * nodes with receivers on other machines, the TCP endpoint that node binds on every
 * (re)start (docs/architecture.md, "Several machines").
 */
export interface ExportEndpoint {
  readonly machine: string;
  readonly serverKey: string;
  readonly endpoints: Readonly<Record<string, string>>;
}

/** Messages between the parts of one dataflow run, through the coordinator. */
export type PartMessage =
  /** To the part running `node`: publish this event to it. */
  | { readonly t: 'event'; readonly node: string; readonly event: DaemonEvent }
  /** From the part running `update.node`, to every other part. */
  | { readonly t: 'status'; readonly update: NodeStatusUpdate }
  /** To the part running `peer`: the sender `node` counts the restarted `peer` as a holder again. */
  | { readonly t: 'restart-seen'; readonly node: string; readonly peer: string }
  /** Part → coordinator: its own nodes have reached the start barrier. */
  | { readonly t: 'ready' }
  /** Coordinator → parts: every part is ready, start. */
  | { readonly t: 'start' }
  /** Part → coordinator: stop the whole dataflow (a node failed before the start, STOP_ALL); coordinator → parts: stop. */
  | { readonly t: 'stop'; readonly graceMs?: number }
  | { readonly t: 'kill' }
  /** Part → coordinator: a line of one of its nodes (for `dora logs --follow`, `dora start --attach`). */
  | { readonly t: 'line'; readonly line: LogLine }
  /** Part → coordinator: all its nodes have ended. */
  | { readonly t: 'finished'; readonly result: RunResult }
  /** Coordinator → the part running `node`: `dora node stop|restart`. */
  | { readonly t: 'node'; readonly action: 'stop' | 'restart'; readonly node: string; readonly graceMs?: number };

/** Daemon → coordinator. */
export type DaemonMessage =
  | { readonly t: 'register'; readonly machine: string; readonly labels: Readonly<Record<string, string>>; readonly version: number; readonly pid: number; readonly dataAddress: string; readonly publicKey: string }
  | { readonly t: 'heartbeat'; readonly nodes: number }
  /** A part has reserved its senders' ports and made its key pair: the coordinator launches the parts once all have. */
  | { readonly t: 'prepared'; readonly dataflow: string; readonly exports?: ExportEndpoint; readonly logDir?: string; readonly error?: string }
  /** Answer to `logs`. */
  | { readonly t: 'logs'; readonly dataflow: string; readonly request: number; readonly text?: string; readonly error?: string }
  | { readonly t: 'part'; readonly dataflow: string; readonly message: PartMessage };

/** What a daemon needs to run its part of a dataflow. */
export interface PartSpec {
  readonly dataflow: string;
  readonly name?: string;
  /** The descriptor: its text, its file name (for messages) and the folder relative paths resolve in. */
  readonly yaml: string;
  readonly file: string;
  readonly workingDir: string;
  readonly placement: Readonly<Record<string, string>>;
  readonly exitWhenNodesFinish?: boolean;
}

/** Coordinator → daemon. */
export type CoordinatorMessage =
  | { readonly t: 'registered'; readonly machine: string }
  | { readonly t: 'refused'; readonly message: string }
  /** Create the part (reserve its senders' ports, make its keys); answered by `prepared`. */
  | { readonly t: 'prepare'; readonly spec: PartSpec }
  /** Every part is prepared: spawn the nodes. */
  | { readonly t: 'launch'; readonly dataflow: string; readonly exports: readonly ExportEndpoint[] }
  | { readonly t: 'logs'; readonly dataflow: string; readonly request: number; readonly node?: string }
  | { readonly t: 'part'; readonly dataflow: string; readonly message: PartMessage }
  /** The coordinator is going away (`dora down`): stop everything. */
  | { readonly t: 'shutdown' };

export function encode(message: DaemonMessage | CoordinatorMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

/** Parses a frame; undefined unless it is an object with a string tag. */
export function decode<T extends { t: string }>(frame: Buffer): T | undefined {
  try {
    const value: unknown = JSON.parse(frame.toString('utf8'));
    if (value !== null && typeof value === 'object' && typeof (value as { t?: unknown }).t === 'string') return value as T;
  } catch {
    // malformed: dropped by the caller
  }
  return undefined;
}
