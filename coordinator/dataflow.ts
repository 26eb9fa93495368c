/**
 * The resolved dataflow: what the descriptor loader produces after the YAML has
 * passed schema and semantic validation, and what the daemon consumes. Every
 * reference has been checked, every path made absolute, every timer parsed.
 */

import type { DescriptorIssue, SourcePosition } from './errors';
import type { PortType } from './types';

/** Default capacity of an input queue (dora's default). */
export const DEFAULT_QUEUE_SIZE = 10;

/** Seconds between health checks when the dataflow does not say (dora's default). */
export const DEFAULT_HEALTH_CHECK_INTERVAL_S = 5;

/** dora's restart fields of a node, durations in milliseconds. */
export interface RestartPolicy {
  readonly policy: 'never' | 'on-failure' | 'always';
  /** At most this many restarts (per window when `windowMs` is set); 0 = unlimited. */
  readonly maxRestarts: number;
  /** Delay before the first restart, doubled at each further one. */
  readonly delayMs: number;
  /** Upper bound of the doubling delay. */
  readonly maxDelayMs?: number;
  /** The restart count starts again from zero this long after a window's first restart. */
  readonly windowMs?: number;
}

/** A built-in timer input such as `dora/timer/millis/100` or `dora/timer/hz/30`. */
export interface TimerSource {
  readonly kind: 'timer';
  /** The source string as written, e.g. `dora/timer/millis/100`; also the timer's identity. */
  readonly name: string;
  /** Tick period in nanoseconds (always >= 1). */
  readonly intervalNs: bigint;
}

/** An input fed by another node's output. */
export interface NodeOutputSource {
  readonly kind: 'node';
  readonly node: string;
  readonly output: string;
}

/** Log levels of dora's records, least severe first; `stdout` ranks below them all (printed lines). */
export const LOG_LEVELS_OR_STDOUT = ['stdout', 'trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevelOrStdout = (typeof LOG_LEVELS_OR_STDOUT)[number];

/**
 * `dora/logs`, `dora/logs/<level>` or `dora/logs/<level>/<node>`: other nodes' log records
 * (records at `level` or above; printed lines only when `level` is `stdout`), as JSON strings.
 * Fed by the daemon; never closes by itself, like a timer.
 */
export interface LogsSource {
  readonly kind: 'logs';
  /** The source string as written. */
  readonly name: string;
  /** The lowest level delivered; `stdout` (all, printed lines included) when not written. */
  readonly level: LogLevelOrStdout;
  /** Only this node's records, when given. */
  readonly node?: string;
}

export type InputSource = TimerSource | NodeOutputSource | LogsSource;

/** An input source as written in the YAML. */
export function sourceName(source: InputSource): string {
  return source.kind === 'node' ? `${source.node}/${source.output}` : source.name;
}

export interface ResolvedInput {
  /** The input id as declared under the receiving node's `inputs`. */
  readonly id: string;
  readonly source: InputSource;
  /** Capacity of the receiver-side queue; the oldest message is dropped when full (10 × `queue_size` under `backpressure`). */
  readonly queueSize: number;
  /** `queue_policy` as written; `backpressure` only widens the queue (see queueSize). */
  readonly queuePolicy?: 'drop_oldest' | 'backpressure';
  /** `input_timeout`: closed after this long without a message (armed by the first one). */
  readonly timeoutMs?: number;
}

/**
 * One of a node's in-process operators (dora's `operator:` / `operators:`): code loaded
 * into the node's runtime process instead of a process of its own.
 */
export interface ResolvedOperator {
  /** Unique in its node; `op` for a single `operator:` without an `id` (dora's default). */
  readonly id: string;
  readonly kind: 'python' | 'shared-library';
  /** The `python` file or `shared-library` name as written. */
  readonly source: string;
  /** Absolute path of the Python file, or of the library file (`<dir>/lib<name>.so`). */
  readonly resolvedPath: string;
  /** Shell command run by `dora build`, in the YAML file's directory. */
  readonly build?: string;
  /** Inputs under the operator's own ids (the node has them as `<operator>/<input>`). */
  readonly inputs: readonly ResolvedInput[];
  /** Outputs under the operator's own ids (the node has them as `<operator>/<output>`). */
  readonly outputs: readonly string[];
}

export interface ResolvedNode {
  readonly id: string;
  /** `path` as written in the YAML (empty for a node of operators). */
  readonly path: string;
  /**
   * `path: dynamic`: not spawned by the daemon; a process the user starts joins the
   * running dataflow as this node, and may leave and join again (coordinator/dynamic.ts).
   */
  readonly dynamic: boolean;
  /**
   * The executable or script: an absolute path when `path` names a file relative to the
   * YAML file (or is absolute); otherwise the bare name, looked up on PATH at spawn time.
   */
  readonly resolvedPath: string;
  /** Arguments, already split shell-style when written as a string. */
  readonly args: readonly string[];
  /** Environment additions; numbers and booleans are stringified. */
  readonly env: Readonly<Record<string, string>>;
  /** Shell command run by `dora build`, in the YAML file's directory. */
  readonly build?: string;
  /** For a node of operators: the union of its operators' inputs, as `<operator>/<input>`. */
  readonly inputs: readonly ResolvedInput[];
  /** For a node of operators: the union of its operators' outputs, as `<operator>/<output>`. */
  readonly outputs: readonly string[];
  /** Set for a node declared with `operator:` or `operators:`: its process is an operator runtime. */
  readonly operators?: readonly ResolvedOperator[];
  readonly restart: RestartPolicy;
  /** Declared output types (`output_types`), by output, as URNs. */
  readonly outputTypes: Readonly<Record<string, PortType>>;
  /** `health_check_timeout`: killed when silent towards its daemon for longer. */
  readonly healthCheckTimeoutMs?: number;
  /** `cpu_affinity`: the CPUs its process may run on. */
  readonly cpuAffinity?: readonly number[];
  /** What becomes of its printed lines and log records. */
  readonly logging: NodeLogging;
  /** `deploy` (its own, else the dataflow's): where it runs; absent: on the coordinator's machine. */
  readonly deploy?: ResolvedDeploy;
  /** The node's entry exactly as parsed from YAML (handed to the node as its config). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Where a node runs (`deploy`); positions say where the values are written, for placement errors. */
export interface ResolvedDeploy {
  /** The machine id of the daemon it runs on. */
  readonly machine?: string;
  readonly machineAt?: SourcePosition;
  /** Labels its daemon must have (values as strings). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly labelsAt?: SourcePosition;
  /** The folder it runs in on that machine, as written (relative to the dataflow file's folder). */
  readonly workingDir?: string;
}

/** dora's logging fields of a node. */
export interface NodeLogging {
  /** `send_stdout_as`: the output carrying its printed lines. */
  readonly sendStdoutAs?: string;
  /** `send_logs_as`: the output carrying its log records as JSON. */
  readonly sendLogsAs?: string;
  /** `min_log_level`: records below are dropped (`stdout`, the default, drops nothing). */
  readonly minLevel: LogLevelOrStdout;
  /** `max_log_size` in bytes: the log file is rotated when it reaches this size. */
  readonly maxLogBytes?: number;
  /** `max_rotated_files` (default 5). */
  readonly maxRotatedFiles: number;
}

/** Rotated log files kept when `max_rotated_files` is not written (dora's default). */
export const DEFAULT_MAX_ROTATED_FILES = 5;

export interface ResolvedDataflow {
  /** Problems that do not stop the dataflow (e.g. incompatible port types when not strict), in file order. */
  readonly warnings: readonly DescriptorIssue[];
  /** Absolute path of the YAML file (or a label such as `<inline>` for text). */
  readonly file: string;
  /** Directory that relative paths are resolved against. */
  readonly workingDir: string;
  readonly nodes: readonly ResolvedNode[];
  /** Distinct timers used by any input, by name. */
  readonly timers: readonly TimerSource[];
  /** Payloads of at least this many bytes travel through shared memory. */
  readonly sharedMemoryThreshold: number;
  /** How often the daemon checks nodes that have a health check. */
  readonly healthCheckIntervalMs: number;
  /** `exit_when_nodes_finish`: timers and `dora/logs` inputs do not keep a node from finishing. */
  readonly exitWhenNodesFinish: boolean;
  /** The whole descriptor as parsed from YAML, as plain JSON data. */
  readonly raw: Readonly<Record<string, unknown>>;
}
