/**
 * Errors are values with context: each class carries the fields a user needs to
 * find the fault (file, position, node, field) and renders them in `message`, and
 * a code of the error catalogue (protocol/facts.json).
 */
import { DoraError } from '../protocol/errors';
import { ErrorCode } from '../protocol/facts';

export { DoraError, ErrorCode };

/** A position in a source file; line and column are 1-based. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/** One problem found in a dataflow descriptor. */
export interface DescriptorIssue {
  /** File the problem is in. */
  readonly file: string;
  /** Where in the file, when known. */
  readonly position?: SourcePosition;
  /** JSON-pointer-like path to the offending value, e.g. `/nodes/1/inputs/tick`. */
  readonly path: string;
  /** Node id the problem belongs to, when it belongs to one. */
  readonly node?: string;
  /** What is wrong, in one sentence. */
  readonly message: string;
  /** An optional hint on how to fix it. */
  readonly hint?: string;
}

/** Formats an issue as `file:line:col: node "x": message (hint)`. */
export function formatIssue(issue: DescriptorIssue): string {
  const where = issue.position ? `${issue.file}:${issue.position.line}:${issue.position.column}` : issue.file;
  const node = issue.node !== undefined ? ` node "${issue.node}":` : '';
  const at = issue.path ? ` at ${issue.path}:` : '';
  const hint = issue.hint ? ` (hint: ${issue.hint})` : '';
  return `${where}:${node}${at} ${issue.message}${hint}`;
}

/** The descriptor is invalid; carries every issue found, not just the first. */
export class DescriptorError extends DoraError {
  override name = 'DescriptorError';
  readonly file: string;
  readonly issues: readonly DescriptorIssue[];
  constructor(file: string, issues: readonly DescriptorIssue[]) {
    const n = issues.length;
    super(`${file}: ${n} error${n === 1 ? '' : 's'} in dataflow descriptor\n` + issues.map((i) => '  ' + formatIssue(i)).join('\n'), { code: ErrorCode.DESCRIPTOR });
    this.file = file;
    this.issues = issues;
  }
}

/** A node could not be spawned or failed while the dataflow ran. */
export class NodeError extends DoraError {
  override name = 'NodeError';
  constructor(
    readonly dataflow: string,
    readonly node: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`node "${node}" (dataflow ${dataflow}): ${message}`, { code: ErrorCode.NODE, cause: options?.cause });
  }
}

/** The CLI could not reach or talk to the coordinator. */
export class ControlError extends DoraError {
  override name = 'ControlError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: ErrorCode.CONTROL, cause: options?.cause });
  }
}
