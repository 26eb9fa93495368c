/**
 * Per-run log storage: every line a node prints (and every record it logs through
 * the node API) is appended to `<dir>/log_<node>.txt`, dora's layout, and offered
 * to live listeners. The last stderr lines of each node are kept in memory for
 * crash reports. Logs hold what nodes print, so only their user may read them:
 * files 0600, folders 0700 where we create them.
 *
 * A node with `max_log_size` has its file rotated when it reaches that size:
 * `log_<node>.txt` becomes `log_<node>.txt.1`, the older ones shift up by one, and the
 * one beyond `max_rotated_files` is deleted. (dora puts the number before the extension;
 * here it goes after, because node ids may contain '.' and `log_a.1.txt` could be the
 * current log of a node called `a.1`.)
 *
 * Every line in a file starts with the time it was stored, ISO 8601 in UTC with
 * milliseconds and a space (`2026-11-30T13:44:30.123Z [info] ready`): the time the
 * daemon read the printed line or received the record, so lines of different nodes can
 * be merged in order. Lines without one (files of older versions, lines appended by
 * hand) are still read; they take the time of the line before them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface LogLine {
  readonly node: string;
  readonly stream: 'stdout' | 'stderr' | 'log';
  readonly line: string;
  /** When it was stored (ISO 8601, UTC, milliseconds); set by LogStore.append when not given. */
  readonly time?: string;
}

/** The timestamp at the start of a stored line. */
const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /;

/** A stored or followed line taken apart: `[<time> ][\[<node>\] ]<text>`. */
export interface ParsedLogLine {
  readonly time?: string;
  readonly node?: string;
  readonly text: string;
}

/** Splits a line as `dora logs` prints it; `withNode` when it carries a `[node] ` prefix. */
export function parseLogLine(line: string, withNode: boolean): ParsedLogLine {
  const stamp = STAMP.exec(line);
  let text = stamp ? line.slice(stamp[0].length) : line;
  let node: string | undefined;
  if (withNode) {
    const prefix = /^\[([^\]]*)\] /.exec(text);
    if (prefix) {
      node = prefix[1];
      text = text.slice(prefix[0].length);
    }
  }
  return { ...(stamp ? { time: stamp[1] } : {}), ...(node !== undefined ? { node } : {}), text };
}

/** When a node's log file is rotated. */
export interface Rotation {
  /** The file is rotated once it holds this many bytes. */
  readonly maxBytes: number;
  /** Rotated files kept. */
  readonly maxFiles: number;
}

const STDERR_TAIL = 20;

interface OpenFile {
  fd: number;
  bytes: number;
}

export class LogStore {
  private files = new Map<string, OpenFile>();
  private rotations = new Map<string, Rotation>();
  private tails = new Map<string, string[]>();
  private listeners = new Set<(line: LogLine) => void>();

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  fileFor(node: string): string {
    return path.join(this.dir, `log_${node}.txt`);
  }

  /** Rotates the node's file at `rotation.maxBytes` from now on. */
  rotate(node: string, rotation: Rotation): void {
    this.rotations.set(node, rotation);
  }

  append(line: LogLine): void {
    const entry = line.time === undefined ? { ...line, time: new Date().toISOString() } : line;
    let file = this.files.get(entry.node);
    if (file === undefined) {
      const name = this.fileFor(entry.node);
      const fd = fs.openSync(name, 'a', 0o600);
      file = { fd, bytes: fs.fstatSync(fd).size };
      this.files.set(entry.node, file);
    }
    file.bytes += fs.writeSync(file.fd, `${entry.time} ${entry.line}\n`);
    const rotation = this.rotations.get(entry.node);
    if (rotation && file.bytes >= rotation.maxBytes) this.rotateNow(entry.node, file, rotation);
    if (entry.stream === 'stderr') this.remember(entry.node, entry.line);
    for (const listener of this.listeners) listener(entry);
  }

  /** Keeps a stderr line for crash reports without writing it (a line `min_log_level` filtered out). */
  remember(node: string, line: string): void {
    const tail = this.tails.get(node) ?? [];
    tail.push(line);
    if (tail.length > STDERR_TAIL) tail.shift();
    this.tails.set(node, tail);
  }

  private rotateNow(node: string, file: OpenFile, rotation: Rotation): void {
    fs.closeSync(file.fd);
    const current = this.fileFor(node);
    const rotated = (n: number) => `${current}.${n}`;
    fs.rmSync(rotated(rotation.maxFiles), { force: true });
    for (let n = rotation.maxFiles - 1; n >= 1; n--) {
      if (fs.existsSync(rotated(n))) fs.renameSync(rotated(n), rotated(n + 1));
    }
    fs.renameSync(current, rotated(1));
    file.fd = fs.openSync(current, 'a', 0o600);
    file.bytes = 0;
  }

  /** The last stderr lines of a node, oldest first. */
  stderrTail(node: string): readonly string[] {
    return this.tails.get(node) ?? [];
  }

  subscribe(listener: (line: LogLine) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    for (const file of this.files.values()) fs.closeSync(file.fd);
    this.files.clear();
  }
}

/** A node's log files, oldest first: its rotated files (highest number first), then the current one. */
function filesOf(dir: string, node: string, names: readonly string[]): string[] {
  const current = `log_${node}.txt`;
  const rotated = names
    .filter((f) => f.startsWith(`${current}.`) && /^\d+$/.test(f.slice(current.length + 1)))
    .sort((a, b) => Number(b.slice(current.length + 1)) - Number(a.slice(current.length + 1)));
  return [...rotated, ...(names.includes(current) ? [current] : [])].map((f) => path.join(dir, f));
}

/**
 * Reads a node's stored log, or every node's when `node` is omitted: then each line gets
 * its node's prefix after its timestamp (`<time> [node] text`), and the nodes' lines are
 * merged in time order (a line without a timestamp keeps its place after the line before it).
 */
export function readLogs(dir: string, node?: string): string {
  if (!fs.existsSync(dir)) return '';
  const names = fs.readdirSync(dir);
  const read = (id: string) => filesOf(dir, id, names).map((f) => fs.readFileSync(f, 'utf8')).join('');
  if (node !== undefined) return read(node);
  const ids = names.filter((f) => f.startsWith('log_') && f.endsWith('.txt')).sort().map((f) => f.slice(4, -4));
  return mergeLogs(ids.map((id) => [id, read(id)]));
}

/** Several nodes' logs as one, in time order: `<time> [node] line` (a line without a time takes its predecessor's). */
export function mergeLogs(logs: readonly (readonly [node: string, text: string])[]): string {
  const lines: { time: string; order: number; text: string }[] = [];
  for (const [id, text] of logs) {
    let time = '';
    for (const l of text.split('\n')) {
      if (l.length === 0) continue;
      const parsed = parseLogLine(l, false);
      time = parsed.time ?? time;
      lines.push({ time, order: lines.length, text: parsed.time !== undefined ? `${parsed.time} [${id}] ${parsed.text}\n` : `[${id}] ${l}\n` });
    }
  }
  lines.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.order - b.order));
  return lines.map((l) => l.text).join('');
}
