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
export const CLUSTER_PROTOCOL_VERSION = 2;

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
  /** Restarts in its current restart window, and that window's age (the coordinator's respawn budget after a machine loss). */
  readonly windowRestarts?: number;
  readonly windowAgeMs?: number;
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
  /** To the part running `receiver`: lines of a node elsewhere for its routed input (send_stdout_as, send_logs_as, dora/logs), in order; `end`: the input's route ends after them. */
  | { readonly t: 'routed'; readonly receiver: string; readonly input: string; readonly texts: readonly string[]; readonly end?: boolean }
  /** Coordinator → the part running `node`: `dora node stop|restart`. */
  | { readonly t: 'node'; readonly action: 'stop' | 'restart'; readonly node: string; readonly graceMs?: number };

/**
 * What a daemon tells a coordinator it registers with about one part it runs (or ran: an
 * ended part is reported until a coordinator has heard its end): enough for a restarted
 * coordinator to rebuild the dataflow (clusterrun.ts `adopt`) and merge the other parts'.
 */
export interface PartReport {
  readonly spec: PartSpec;
  readonly exports?: ExportEndpoint;
  readonly logDir: string;
  /** ISO time the part was created. */
  readonly startedAt: string;
  /** Its own nodes' current status. */
  readonly nodes: readonly NodeStatusUpdate[];
  /** Its nodes are at the start barrier (it said `ready`), and whether it was told `start`. */
  readonly ready: boolean;
  readonly started: boolean;
  /** It was asked to stop. */
  readonly stopping: boolean;
  /** It has ended: what it would have said in `finished`. */
  readonly result?: RunResult;
  /** Its `finished` went out to a coordinator (not held): its end was heard, if that coordinator lived. */
  readonly endHeard?: boolean;
}

/** Daemon → coordinator. */
export type DaemonMessage =
  | { readonly t: 'register'; readonly machine: string; readonly labels: Readonly<Record<string, string>>; readonly version: number; readonly pid: number; readonly dataAddress: string; readonly publicKey: string; readonly parts?: readonly PartReport[]; readonly proof?: string }
  | { readonly t: 'heartbeat'; readonly nodes: number }
  /** A part has reserved its senders' ports and made its key pair: the coordinator launches the parts once all have. */
  | { readonly t: 'prepared'; readonly dataflow: string; readonly exports?: ExportEndpoint; readonly logDir?: string; readonly error?: string }
  /** Answer to `logs`. */
  | { readonly t: 'logs'; readonly dataflow: string; readonly request: number; readonly text?: string; readonly error?: string }
  | { readonly t: 'part'; readonly dataflow: string; readonly message: PartMessage }
  /** Answer to `observe`: the part's own `metrics` or `topics` reply (coordinator/metrics.ts), or why not. */
  | { readonly t: 'observed'; readonly request: number; readonly reply?: object; readonly error?: string }
  /** Output of a `watch` (a tool run on this machine): lines it printed, and once it has ended, how. */
  | { readonly t: 'watched'; readonly watch: number; readonly lines: readonly WatchLine[]; readonly dropped?: number; readonly ended?: { readonly code: number | null; readonly error?: string } };

/** A line a watched tool printed, on its stdout (1) or stderr (2). */
export interface WatchLine {
  readonly fd: 1 | 2;
  readonly line: string;
}

/** The tools a `watch` may run on a daemon's machine (`dora topic <tool>` of one output of a part). */
export type WatchTool = 'echo' | 'hz';

/** What a daemon needs to run its part of a dataflow. */
export interface PartSpec {
  readonly dataflow: string;
  readonly name?: string;
  /** The descriptor: its text, its file name (for messages) and the folder relative paths resolve in. */
  readonly yaml: string;
  readonly file: string;
  readonly workingDir: string;
  readonly placement: Readonly<Record<string, string>>;
  /**
   * The public keys of the dataflow's daemons, by machine id in sorted order: who may report
   * a part of it to a restarted coordinator, or run its replacement part. Each part derives
   * its data key pair from its daemon's (keys.ts partKeyPair).
   */
  readonly peerKeys: readonly string[];
  readonly exitWhenNodesFinish?: boolean;
  /** A replacement part, for a machine that was lost and came back (clusterrun.ts): what it starts from. */
  readonly rejoin?: RejoinSpec;
}

/**
 * A replacement part: the dataflow runs on, so the part starts with every node's last
 * known status (its own nodes that had ended stay ended), respawns `respawn` as restarts
 * (their receivers get NODE_RESTARTED), and is granted its start as soon as it is ready.
 * A stale part of the same dataflow still on that daemon is killed first.
 */
export interface RejoinSpec {
  readonly statuses: readonly NodeStatusUpdate[];
  /** Nodes of this machine to start again, with their restart counts so far (this start included). */
  readonly respawn: Readonly<Record<string, { readonly restarts: number; readonly windowRestarts: number }>>;
  /**
   * The endpoints the lost part's senders bound: the replacement binds the same ones (with
   * the same derived key), so receivers on other machines reconnect by themselves.
   */
  readonly endpoints: Readonly<Record<string, string>>;
}

/** Coordinator → daemon. */
export type CoordinatorMessage =
  /** Registration accepted; `refused` names the reported parts the coordinator did not take over, and why. */
  | { readonly t: 'registered'; readonly machine: string; readonly refused?: readonly { readonly dataflow: string; readonly why: string }[] }
  | { readonly t: 'refused'; readonly message: string }
  /** Create the part (reserve its senders' ports, make its keys); answered by `prepared`. */
  | { readonly t: 'prepare'; readonly spec: PartSpec }
  /** Every part is prepared: spawn the nodes. */
  | { readonly t: 'launch'; readonly dataflow: string; readonly exports: readonly ExportEndpoint[] }
  | { readonly t: 'logs'; readonly dataflow: string; readonly request: number; readonly node?: string }
  | { readonly t: 'part'; readonly dataflow: string; readonly message: PartMessage }
  /** Asks the part of `dataflow` for its `metrics` or `topics` reply; answered by `observed`. */
  | { readonly t: 'observe'; readonly dataflow: string; readonly request: number; readonly what: 'metrics' | 'topics' }
  /**
   * Runs `dora topic <tool>` of `topic` (an output of a node of this machine) against the
   * part of `dataflow` here, the tap reading where the sender's shared memory is; what it
   * prints comes back as `watched`. `args` are the tool's options (`--json`, `--count 5`).
   */
  | { readonly t: 'watch'; readonly watch: number; readonly dataflow: string; readonly tool: WatchTool; readonly topic: string; readonly args: readonly string[] }
  /** Ends a watch (its CLI went away or was done). */
  | { readonly t: 'unwatch'; readonly watch: number }
  /** This machine was declared lost: its part of the dataflow, if it still runs, is killed and forgotten (nothing more is reported). */
  | { readonly t: 'drop'; readonly dataflow: string }
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
