/**
 * A watch: `dora topic echo|hz` of an output of a dataflow spread over several machines,
 * run on the machine of the output's sender. A tap reads a sender's shared memory, which
 * never leaves its machine, so the daemon there (or the coordinator, for its own part) runs
 * the tool as a child process against its part's run folder, exactly as a user of that
 * machine would, and what it prints is sent back to the CLI that asked, through the
 * coordinator.
 *
 * Bounded on every side: lines are cut at MAX_LINE_BYTES, at most MAX_PENDING lines wait to
 * be sent (more are counted as dropped, never queued), and the tool is stopped (SIGTERM,
 * then SIGKILL) when the watch is ended.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { commandFor } from '../spawner';
import type { WatchLine, WatchTool } from './messages';

/** Lines are sent in batches this often. */
const FLUSH_MS = 100;
/** Lines waiting to be sent: beyond this the tool prints faster than anyone reads, and lines are dropped. */
export const MAX_PENDING = 500;
/** A line longer than this is cut (an echo of a large message is summarised anyway). */
const MAX_LINE_BYTES = 16 * 1024;
/** Characters waiting to be sent, at most: with FLUSH_MS, about 2.5 MB/s over the cluster link. */
const MAX_PENDING_CHARS = 256 * 1024;
/** How long a stopped tool has to close its tap before it is killed. */
const KILL_AFTER_MS = 2000;

/** The options a watched tool accepts: flags and their numeric values, nothing else reaches its command line. */
const OPTIONS: Readonly<Record<WatchTool, Readonly<Record<string, boolean>>>> = {
  echo: { '--json': false, '--count': true },
  hz: { '--json': false, '--window': true, '--duration': true },
};

/** Why `args` are not options of `tool`, if they are not. */
export function watchArgsRefusal(tool: WatchTool, args: readonly string[]): string | undefined {
  const allowed = OPTIONS[tool];
  if (!allowed) return `unknown tool ${JSON.stringify(tool)}`;
  for (let i = 0; i < args.length; i++) {
    const takesValue = allowed[args[i]];
    if (takesValue === undefined) return `dora topic ${tool} does not take ${JSON.stringify(args[i])} across machines`;
    if (takesValue && !/^\d+(\.\d+)?$/.test(args[++i] ?? '')) return `${args[i - 1]} needs a number`;
  }
  return undefined;
}

export interface WatchOutput {
  (lines: WatchLine[], dropped: number, ended?: { code: number | null; error?: string }): void;
}

export class Watch {
  private readonly child: ChildProcess;
  private pending: WatchLine[] = [];
  private pendingChars = 0;
  private dropped = 0;
  private readonly timer: NodeJS.Timeout;
  private ended = false;
  private killTimer?: NodeJS.Timeout;

  /** Runs `dora topic <tool> <runFolder> <topic> <args>`; `output` gets its lines in batches, and its end. */
  constructor(tool: WatchTool, runFolder: string, topic: string, args: readonly string[], private readonly output: WatchOutput) {
    const cli = path.join(__dirname, '..', '..', 'cli', `main${path.extname(__filename)}`);
    const { program, args: argv } = commandFor({ resolvedPath: cli, args: ['topic', tool, runFolder, topic, ...args] });
    this.child = spawn(program, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    this.lines(this.child.stdout!, 1);
    this.lines(this.child.stderr!, 2);
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.child.once('error', (err) => this.finish(null, `cannot run dora topic ${tool}: ${err.message}`));
    this.child.once('close', (code) => this.finish(code));
  }

  /** Stops the tool (it leaves its tap, the sender releases what it held); its end is still reported. */
  stop(): void {
    if (this.ended || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    this.killTimer = setTimeout(() => this.child.kill('SIGKILL'), KILL_AFTER_MS);
    this.killTimer.unref();
  }

  private lines(stream: NodeJS.ReadableStream, fd: 1 | 2): void {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      if (partial.length > MAX_LINE_BYTES) {
        this.push(fd, partial);
        partial = '';
      }
      for (const line of parts) this.push(fd, line);
    });
    stream.on('end', () => partial && this.push(fd, partial));
  }

  private push(fd: 1 | 2, line: string): void {
    if (this.pending.length >= MAX_PENDING || this.pendingChars >= MAX_PENDING_CHARS) {
      this.dropped++;
      return;
    }
    const text = line.length > MAX_LINE_BYTES ? `${line.slice(0, MAX_LINE_BYTES)}… (cut)` : line;
    this.pendingChars += text.length;
    this.pending.push({ fd, line: text });
  }

  private flush(ended?: { code: number | null; error?: string }): void {
    if (this.pending.length === 0 && this.dropped === 0 && !ended) return;
    const lines = this.pending;
    const dropped = this.dropped;
    this.pending = [];
    this.pendingChars = 0;
    this.dropped = 0;
    this.output(lines, dropped, ended);
  }

  private finish(code: number | null, error?: string): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    clearTimeout(this.killTimer);
    // the streams' last data comes before 'close'
    this.flush({ code, ...(error ? { error } : {}) });
  }
}

/** What a CLI reads of a watch at a time. */
export interface WatchChunk {
  readonly lines: readonly WatchLine[];
  /** Lines lost since the previous read (the tool printed faster than they were read). */
  readonly dropped: number;
  readonly ended?: { readonly code: number | null; readonly error?: string };
}

/** Lines kept at the coordinator for a CLI between its reads. */
const RELAY_BUFFER = 2000;
/** A CLI that has not read its watch for this long has gone: the watch is stopped. */
const RELAY_IDLE_MS = 3000;

interface Relay {
  lines: WatchLine[];
  dropped: number;
  ended?: { code: number | null; error?: string };
  lastRead: number;
  stop: () => void;
  wake?: () => void;
}

/**
 * The coordinator's side of the watches: what each tool printed, buffered (bounded) until
 * its CLI reads it (`watch-read`, a long poll); a watch no CLI reads any more is stopped.
 */
export class WatchRelays {
  private readonly relays = new Map<number, Relay>();
  private next = 1;
  private sweeper?: NodeJS.Timeout;

  /** Starts a watch: `start` runs it and returns how to stop it. */
  open(start: (output: WatchOutput) => { stop: () => void }): number {
    const id = this.next++;
    const relay: Relay = { lines: [], dropped: 0, lastRead: Date.now(), stop: () => undefined };
    this.relays.set(id, relay);
    relay.stop = start((lines, dropped, ended) => {
      const room = Math.max(0, RELAY_BUFFER - relay.lines.length);
      relay.lines.push(...lines.slice(0, room));
      relay.dropped += dropped + Math.max(0, lines.length - room);
      if (ended) relay.ended = ended;
      relay.wake?.();
    }).stop;
    this.sweeper ??= setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
    return id;
  }

  /** What the watch printed since the last read; waits up to `waitMs` for something. */
  async read(id: number, waitMs: number): Promise<WatchChunk> {
    const relay = this.relays.get(id);
    if (!relay) return { lines: [], dropped: 0, ended: { code: null, error: `no watch ${id} (it ended, or was not read for ${RELAY_IDLE_MS / 1000} s)` } };
    relay.lastRead = Date.now();
    if (relay.lines.length === 0 && relay.dropped === 0 && !relay.ended) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        relay.wake = () => (clearTimeout(timer), resolve());
      });
      relay.wake = undefined;
      relay.lastRead = Date.now();
    }
    const chunk: WatchChunk = { lines: relay.lines, dropped: relay.dropped, ...(relay.ended ? { ended: relay.ended } : {}) };
    relay.lines = [];
    relay.dropped = 0;
    if (relay.ended) this.relays.delete(id);
    return chunk;
  }

  close(id: number): void {
    const relay = this.relays.get(id);
    this.relays.delete(id);
    relay?.stop();
  }

  closeAll(): void {
    for (const id of [...this.relays.keys()]) this.close(id);
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, relay] of this.relays) if (now - relay.lastRead > RELAY_IDLE_MS) this.close(id);
    if (this.relays.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
