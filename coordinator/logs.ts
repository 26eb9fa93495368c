/**
 * Per-run log storage: every line a node prints (and every record it logs through
 * the node API) is appended to `<dir>/log_<node>.txt`, dora's layout, and offered
 * to live listeners. The last stderr lines of each node are kept in memory for
 * crash reports. Logs hold what nodes print, so only their user may read them:
 * files 0600, folders 0700 where we create them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface LogLine {
  readonly node: string;
  readonly stream: 'stdout' | 'stderr' | 'log';
  readonly line: string;
}

const STDERR_TAIL = 20;

export class LogStore {
  private files = new Map<string, number>();
  private tails = new Map<string, string[]>();
  private listeners = new Set<(line: LogLine) => void>();

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  fileFor(node: string): string {
    return path.join(this.dir, `log_${node}.txt`);
  }

  append(entry: LogLine): void {
    let fd = this.files.get(entry.node);
    if (fd === undefined) {
      fd = fs.openSync(this.fileFor(entry.node), 'a', 0o600);
      this.files.set(entry.node, fd);
    }
    fs.writeSync(fd, entry.line + '\n');
    if (entry.stream === 'stderr') {
      const tail = this.tails.get(entry.node) ?? [];
      tail.push(entry.line);
      if (tail.length > STDERR_TAIL) tail.shift();
      this.tails.set(entry.node, tail);
    }
    for (const listener of this.listeners) listener(entry);
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
    for (const fd of this.files.values()) fs.closeSync(fd);
    this.files.clear();
  }
}

/** Reads a node's stored log, or every node's when `node` is omitted (each line prefixed by its node). */
export function readLogs(dir: string, node?: string): string {
  if (node !== undefined) {
    const file = path.join(dir, `log_${node}.txt`);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  }
  if (!fs.existsSync(dir)) return '';
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('log_') && f.endsWith('.txt'))
    .sort()
    .map((f) => {
      const id = f.slice(4, -4);
      return fs
        .readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => `[${id}] ${l}\n`)
        .join('');
    })
    .join('');
}
