/**
 * The base of every error this project raises on purpose: a message for people and a
 * code of the error catalogue (protocol/facts.json, the same numbers as the C
 * library's DORA_E_* and Python's DoraError.code) for programs.
 */
import { ErrorCode, errorName } from './facts';

/** An error of dora-ts: `message` for people, `code` (ErrorCode) for programs. */
export class DoraError extends Error {
  /** Always `DoraError` (subclasses give their own). */
  override name = 'DoraError';
  /** The error's number in the catalogue (ErrorCode). */
  readonly code: ErrorCode;

  constructor(message: string, options: { readonly code: ErrorCode; readonly cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
  }

  /** The code's name in the catalogue, e.g. `UNDECLARED_OUTPUT`. */
  get codeName(): string {
    return errorName(this.code);
  }
}
