/**
 * Control messages between a node and its daemon. They are rare (start-up,
 * shutdown, logs), so they are JSON: one ZeroMQ frame holding one object with a
 * `t` tag. The data plane never carries these.
 *
 * node → daemon, DEALER → ROUTER: {@link NodeRequest}; only `register` is answered
 * ({@link RegisterReply}). daemon → node, XPUB topic `dora/events/<node>`:
 * {@link DaemonEvent}.
 */

import type { DaemonEventTag, LogLevel, NodeRequestTag, RegisterReplyTag, StopCause } from './facts';

// Log levels, stop causes and the tags are protocol facts (protocol/facts.json).
export { LOG_LEVELS, STOP_CAUSES, type LogLevel, type StopCause } from './facts';

export type NodeRequest =
  /** First message of a node; the daemon answers with a RegisterReply. */
  | { readonly t: 'register'; readonly node: string; readonly version: number; readonly pid: number }
  /** The node's subscriptions are in place and all its subscribers have joined. */
  | { readonly t: 'ready'; readonly node: string }
  /** A log record from the node API (stdout/stderr are captured separately). */
  | { readonly t: 'log'; readonly node: string; readonly level: LogLevel; readonly message: string; readonly target?: string; readonly fields?: Readonly<Record<string, unknown>> }
  /** The node has published end-of-stream on every output and will send no more data. */
  | { readonly t: 'outputs-closed'; readonly node: string }
  /** The node's code is active (only for nodes with a health check). */
  | { readonly t: 'heartbeat'; readonly node: string }
  /** This sender counts the restarted `peer` among its samples' holders again. */
  | { readonly t: 'restart-seen'; readonly node: string; readonly peer: string }
  /** The node's last request; answered once every earlier one was served. */
  | { readonly t: 'closing'; readonly node: string }
  /** A dynamic node's process asks for its configuration (answered by it, or by an error RegisterReply). */
  | { readonly t: 'dynamic-config'; readonly node: string; readonly version: number }
  /** The node's counters, at most once a second (bindings/c/src/stats.c); not answered. */
  | { readonly t: 'stats'; readonly node: string; readonly outputs: Readonly<Record<string, OutputStats>>; readonly inputs: Readonly<Record<string, InputStats>> }
  /** A tool (dora topic …) asks for a tap's configuration to read `source` (`node/output`). */
  | { readonly t: 'tap'; readonly source: string; readonly version: number };

/** An output's counters in a `stats` request: cumulative. */
export interface OutputStats {
  readonly messages: number;
  readonly bytes: number;
  /** Its shared-memory samples some receiver holds now. */
  readonly held: number;
}

/** An input's counters in a `stats` request: cumulative, but the latencies cover what arrived since the previous report. */
export interface InputStats {
  readonly messages: number;
  readonly bytes: number;
  readonly dropped: number;
  readonly queued: number;
  readonly latencyCount?: number;
  readonly latencyP50Us?: number;
  readonly latencyP99Us?: number;
}

export type RegisterReply = { readonly t: 'ok' } | { readonly t: 'error'; readonly message: string };

export type DaemonEvent =
  /** Every node is connected: start working (the start barrier). */
  | { readonly t: 'start' }
  /** Stop now; the daemon escalates to SIGTERM/SIGKILL after the grace period. */
  | { readonly t: 'stop'; readonly cause: StopCause; readonly restarting?: boolean }
  /** A node exited before the start barrier: stop waiting for its subscriptions. */
  | { readonly t: 'peer-exited'; readonly node: string }
  /** These inputs' sender exited without closing them cleanly (e.g. crashed). */
  | { readonly t: 'inputs-closed'; readonly inputs: readonly string[]; readonly reason: string }
  /**
   * A node was restarted, or a dynamic node joined: its senders count it as a holder again,
   * its receivers reopen their inputs from it (not on a dynamic node's `first` join).
   */
  | { readonly t: 'node-restarted'; readonly node: string; readonly first?: boolean; readonly outputs?: readonly string[] }
  /** A node failed and will not be restarted. */
  | { readonly t: 'node-failed'; readonly node: string };

/** Fails to compile when the messages above and the tags of protocol/facts.json disagree. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const tagsMatchFacts: [Same<NodeRequest['t'], NodeRequestTag>, Same<RegisterReply['t'], RegisterReplyTag>, Same<DaemonEvent['t'], DaemonEventTag>] = [true, true, true];
void tagsMatchFacts;

export function encodeControl(message: NodeRequest | RegisterReply | DaemonEvent): Buffer {
  return Buffer.from(JSON.stringify(message));
}

/** Parses a control frame; returns undefined for anything that is not a tagged object. */
export function decodeControl<T extends { t: string }>(frame: Uint8Array): T | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('utf8'));
    if (value !== null && typeof value === 'object' && typeof (value as { t?: unknown }).t === 'string') return value as T;
  } catch {
    // fall through: malformed frames are the caller's to report
  }
  return undefined;
}

/** Each request's fields and their types: a request that does not match is dropped before the daemon acts on it. */
const REQUEST_FIELDS: { readonly [T in NodeRequest['t']]: Readonly<Record<string, 'string' | 'number' | 'string?' | 'object' | 'object?'>> } = {
  register: { node: 'string', version: 'number', pid: 'number' },
  ready: { node: 'string' },
  log: { node: 'string', level: 'string', message: 'string', target: 'string?', fields: 'object?' },
  'outputs-closed': { node: 'string' },
  heartbeat: { node: 'string' },
  'restart-seen': { node: 'string', peer: 'string' },
  closing: { node: 'string' },
  'dynamic-config': { node: 'string', version: 'number' },
  stats: { node: 'string', outputs: 'object', inputs: 'object' },
  tap: { source: 'string', version: 'number' },
};

/** Parses a node's request; undefined for anything but a known request with fields of the right types. */
export function decodeNodeRequest(frame: Uint8Array): NodeRequest | undefined {
  const message = decodeControl<{ t: string } & Record<string, unknown>>(frame);
  if (!message || !Object.hasOwn(REQUEST_FIELDS, message.t)) return undefined;
  for (const [name, type] of Object.entries(REQUEST_FIELDS[message.t as NodeRequest['t']])) {
    const value = message[name];
    if (type === 'object' || type === 'object?') {
      if ((type === 'object' || value !== undefined) && (value === null || typeof value !== 'object' || Array.isArray(value))) return undefined;
    } else if (type === 'string?' ? value !== undefined && typeof value !== 'string' : typeof value !== type) return undefined;
  }
  return message as unknown as NodeRequest;
}
