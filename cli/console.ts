/**
 * How node output looks on a terminal: each node's prefix in a colour of its own, and
 * error and warning records in red and yellow, when the output is a terminal (or
 * FORCE_COLOR asks for it); plain text otherwise and whenever NO_COLOR is set
 * (no-color.org).
 */
import type { LogLevel } from '../protocol/facts';

const PALETTE = [36, 32, 35, 34, 33, 96, 92, 95, 94, 93]; // cyan, green, magenta, blue, yellow and their bright forms
const LEVEL_COLOURS: Partial<Record<LogLevel, number>> = { error: 31, warn: 33 };

export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

/** A node's colour: the same node always gets the same one. */
function colourOf(node: string): number {
  let h = 0;
  for (const c of node) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

/** The level of a log record line (`[warn] …`), if it is one. */
export function levelOf(line: string): LogLevel | undefined {
  const m = /^\[(error|warn|info|debug|trace)\]/.exec(line);
  return m ? (m[1] as LogLevel) : undefined;
}

/** `[node] line`, coloured when `colour`. */
export function formatLine(node: string, line: string, colour: boolean): string {
  if (!colour) return `[${node}] ${line}`;
  const level = levelOf(line);
  const body = level && LEVEL_COLOURS[level] ? `\x1b[${LEVEL_COLOURS[level]}m${line}\x1b[0m` : line;
  return `\x1b[${colourOf(node)}m[${node}]\x1b[0m ${body}`;
}
