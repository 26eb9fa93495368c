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
/**
 * `echo --arrow` (a recording across machines) prints each message whole: a line up to
 * this long passes (a message of about 6 MiB in base64), a longer one is dropped, not cut
 * (half a message is none), and counted; up to twice that may wait per batch.
 */
const MAX_MESSAGE_LINE = 8 << 20;
/** How long a stopped tool has to close its tap before it is killed. */
const KILL_AFTER_MS = 2000;

/** The options a watched tool accepts: flags and their numeric values, nothing else reaches its command line. */
const OPTIONS: Readonly<Record<WatchTool, Readonly<Record<string, boolean>>>> = {
  echo: { '--json': false, '--count': true, '--arrow': false },
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

  private readonly maxLine: number;
  private readonly maxPending: number;

  /**
   * Runs `dora topic <tool> <runFolder> <topic> <args>`; `output` gets its lines in batches,
   * and its end. While `clear()` says the way out is busy, lines wait (within the bounds).
   */
  constructor(
    tool: WatchTool,
    runFolder: string,
    topic: string,
    args: readonly string[],
    private readonly output: WatchOutput,
    private readonly clear: () => boolean = () => true,
  ) {
    const whole = args.includes('--arrow');
    this.maxLine = whole ? MAX_MESSAGE_LINE : MAX_LINE_BYTES;
    this.maxPending = whole ? 2 * MAX_MESSAGE_LINE : MAX_PENDING_CHARS;
    const cli = path.join(__dirname, '..', '..', 'cli', `main${path.extname(__filename)}`);
    const { program, args: argv } = commandFor({ resolvedPath: cli, args: ['topic', tool, runFolder, topic, ...args] });
    this.child = spawn(program, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', DORA_WATCH_PART: runFolder } }); // the tool reads this part, not the whole dataflow (cli/observe/runs.ts)
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
    // the line so far, in pieces (a whole message may come in a hundred chunks), at most maxLine characters of it
    let pieces: string[] = [];
    let size = 0;
    let over = false;
    const add = (piece: string) => {
      if (size + piece.length > this.maxLine) {
        over = true;
        piece = piece.slice(0, this.maxLine - size);
      }
      if (piece.length > 0) pieces.push(piece), (size += piece.length);
    };
    const end = () => {
      this.push(fd, pieces.join(''), over);
      pieces = [];
      size = 0;
      over = false;
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      let from = 0;
      for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', from)) {
        add(chunk.slice(from, nl));
        end();
        from = nl + 1;
      }
      add(chunk.slice(from));
    });
    // a last line without its newline: the tool was stopped while writing it; half a whole message is none
    stream.on('end', () => size > 0 && (this.maxLine === MAX_MESSAGE_LINE ? this.dropped++ : end()));
  }

  /** A line the tool printed; `over`: it was longer than maxLine (cut, or for a whole message, dropped). */
  private push(fd: 1 | 2, line: string, over: boolean): void {
    const whole = this.maxLine === MAX_MESSAGE_LINE;
    if (this.pending.length >= MAX_PENDING || this.pendingChars >= this.maxPending || (over && whole)) {
      this.dropped++;
      return;
    }
    const text = over ? `${line}… (cut)` : line;
    this.pendingChars += text.length;
    this.pending.push({ fd, line: text });
  }

  private flush(ended?: { code: number | null; error?: string }): void {
    if (this.pending.length === 0 && this.dropped === 0 && !ended) return;
    if (!ended && !this.clear()) return; // the next tick; meanwhile the bounds hold
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

/** Lines, and characters, kept at the coordinator for a CLI between its reads; one read takes at most READ_CHARS. */
const RELAY_BUFFER = 2000;
const RELAY_BUFFER_CHARS = 32 << 20;
const READ_CHARS = 8 << 20;
/** A CLI that has not read its watch for this long has gone: the watch is stopped. */
const RELAY_IDLE_MS = 3000;

interface Relay {
  lines: WatchLine[];
  chars: number;
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
    const relay: Relay = { lines: [], chars: 0, dropped: 0, lastRead: Date.now(), stop: () => undefined };
    this.relays.set(id, relay);
    const handle = start((lines, dropped, ended) => {
      relay.dropped += dropped;
      for (const line of lines) {
        if (relay.lines.length >= RELAY_BUFFER || relay.chars + line.line.length > RELAY_BUFFER_CHARS) relay.dropped++;
        else relay.lines.push(line), (relay.chars += line.line.length);
      }
      if (ended) relay.ended = ended;
      relay.wake?.();
    });
    relay.stop = () => handle.stop(); // a Watch's method: called on it
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
    let n = 0;
    for (let chars = 0; n < relay.lines.length && (n === 0 || chars + relay.lines[n].line.length <= READ_CHARS); n++) chars += relay.lines[n].line.length;
    const lines = relay.lines.splice(0, n);
    relay.chars -= lines.reduce((a, l) => a + l.line.length, 0);
    const last = relay.lines.length === 0;
    const chunk: WatchChunk = { lines, dropped: relay.dropped, ...(relay.ended && last ? { ended: relay.ended } : {}) };
    relay.dropped = 0;
    if (relay.ended && last) this.relays.delete(id);
    return chunk;
  }

  /**
   * Stops a watch. With `drain`, what the tool printed until it ended (its last counts
   * among it) is still kept for its reader, who reads until `ended`; else it is gone at once.
   */
  close(id: number, drain = false): void {
    const relay = this.relays.get(id);
    if (!drain) this.relays.delete(id); // drained: read() lets it go with its end
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
