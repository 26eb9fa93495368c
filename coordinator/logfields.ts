/**
 * dora's logging fields of the descriptor, checked and resolved: `send_stdout_as`,
 * `send_logs_as`, `min_log_level`, `max_log_size`, `max_rotated_files` on a node, and the
 * `dora/logs[/<level>[/<node>]]` input sources. Problems come back as issues relative to
 * the node (or input) for descriptor.ts to place in the file.
 */
import { DEFAULT_MAX_ROTATED_FILES, LOG_LEVELS_OR_STDOUT, type LogLevelOrStdout, type LogsSource, type NodeLogging } from './dataflow';

/** One problem, at a path below the entry being checked. */
export interface FieldIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly hint?: string;
}

/** The logging fields of a node as written (after the schema has checked their types). */
export interface RawLogFields {
  readonly outputs?: readonly string[] | null;
  readonly send_stdout_as?: string;
  readonly send_logs_as?: string;
  readonly min_log_level?: LogLevelOrStdout;
  readonly max_log_size?: string | number;
  readonly max_rotated_files?: number;
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `max_log_size` in bytes: a number of bytes, or "50MB", "512K", "1GiB" (powers of 1024, as dora). */
export function parseLogSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$/i.exec(value);
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]);
  return bytes >= 1 ? bytes : undefined;
}

/** Resolves a node's logging fields; routed outputs must be declared outputs. */
export function resolveLogging(node: RawLogFields): { logging: NodeLogging; issues: FieldIssue[] } {
  const issues: FieldIssue[] = [];
  const outputs = node.outputs ?? [];
  for (const field of ['send_stdout_as', 'send_logs_as'] as const) {
    const output = node[field];
    if (output !== undefined && !outputs.includes(output)) {
      issues.push({ path: [field], message: `\`${field}\`: \`${output}\` is not an output of this node`, hint: `add \`${output}\` to \`outputs\`` });
    }
  }
  let maxLogBytes: number | undefined;
  if (node.max_log_size !== undefined) {
    maxLogBytes = parseLogSize(node.max_log_size);
    if (maxLogBytes === undefined) {
      issues.push({ path: ['max_log_size'], message: `\`max_log_size\` ${JSON.stringify(node.max_log_size)} is not a size of at least one byte`, hint: 'write bytes, or a number with K, M or G (powers of 1024), e.g. "50MB"' });
    }
  }
  return {
    logging: {
      ...(node.send_stdout_as !== undefined ? { sendStdoutAs: node.send_stdout_as } : {}),
      ...(node.send_logs_as !== undefined ? { sendLogsAs: node.send_logs_as } : {}),
      minLevel: node.min_log_level ?? 'stdout',
      ...(maxLogBytes !== undefined ? { maxLogBytes } : {}),
      maxRotatedFiles: node.max_rotated_files ?? DEFAULT_MAX_ROTATED_FILES,
    },
    issues,
  };
}

export const LOGS_HELP = 'log inputs are `dora/logs` (every other node\'s records), `dora/logs/<level>` (at that level or above) and `dora/logs/<level>/<node>` (one node\'s); levels: ' + LOG_LEVELS_OR_STDOUT.join(', ');

/** Whether a source names the built-in log inputs (`dora/logs…`). */
export function isLogsSource(text: string): boolean {
  return text === 'dora/logs' || text.startsWith('dora/logs/');
}

/**
 * Parses `dora/logs`, `dora/logs/<level>`, `dora/logs/<level>/<node>` for the input of node
 * `receiver`; an issue when the level or node is wrong, or names the receiver itself.
 */
export function parseLogsSource(
  name: string,
  receiver: string,
  nodeIds: readonly string[],
  suggest: (word: string, candidates: readonly string[]) => string | undefined,
): LogsSource | { message: string; hint?: string } {
  const parts = name.split('/');
  if (parts.length > 4 || parts.slice(2).some((p) => p === '')) return { message: `\`${name}\` is not a log input`, hint: LOGS_HELP };
  const level = parts[2] ?? 'stdout';
  if (!(LOG_LEVELS_OR_STDOUT as readonly string[]).includes(level)) {
    const suggestion = suggest(level, LOG_LEVELS_OR_STDOUT);
    return { message: `\`${name}\`: unknown log level \`${level}\``, hint: suggestion ? `did you mean \`${suggestion}\`?` : `levels: ${LOG_LEVELS_OR_STDOUT.join(', ')}` };
  }
  const node = parts[3];
  if (node !== undefined && !nodeIds.includes(node)) {
    const suggestion = suggest(node, nodeIds);
    return { message: `\`${name}\` refers to node \`${node}\`, which does not exist`, hint: suggestion ? `did you mean \`dora/logs/${level}/${suggestion}\`?` : `nodes: ${nodeIds.slice(0, 20).join(', ')}` };
  }
  if (node === receiver) return { message: `\`${name}\`: a node never receives its own log records`, hint: 'print or handle them where they are made, or receive them in another node' };
  return { kind: 'logs', name, level: level as LogLevelOrStdout, ...(node !== undefined ? { node } : {}) };
}
