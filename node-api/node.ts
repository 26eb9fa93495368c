/**
 * A dataflow node's handle on the runtime: a thin binding of the node core
 * (libdora_node_api, the C library every language binds). The core joins the
 * dataflow, keeps the bounded input queues, sends, and runs the shared-memory pool
 * and its drop tokens; this class adds what only JavaScript needs: waiting without
 * blocking the event loop, arrow-js values, and releasing events on garbage collection.
 *
 * Waiting: Node's own event loop watches the descriptors libzmq signals when
 * messages may have arrived (dora_wait_descriptors, through koffi's libuv poll
 * handles), so no thread sits between libzmq's I/O thread and this one; then every
 * waiting event is taken with synchronous calls, so a burst costs one wake-up. When
 * a signal comes while the node's code is busy, the core drains into its bounded
 * queues (a full queue drops its oldest) and applies drop tokens. The handles keep
 * the process alive only while its code awaits an event, so a node whose code has
 * finished exits like any program, closing its outputs on the way out
 * (`beforeExit`). docs/architecture.md compares the other ways measured.
 */
import * as fs from 'node:fs';
import { DoraError } from '../protocol/errors';
import { ErrorCode, LOG_LEVELS, NODE_CONFIG_ENV, PROTOCOL_VERSION, type LogLevel, type NodeConfig } from '../protocol/facts';
import type { Parameters } from '../protocol';
import type { Event } from './events';
import { callAsync, core, coreError, pollReadable, type PollHandle } from './native';
import { EventReader } from './receive';
import { OutputSample, Sender } from './send';

/** How often a waiting node lets the core check that its daemon lives. */
const DAEMON_CHECK_MS = 250;
/** A node whose daemon is gone and that has not exited by then is exited for it (no orphans). */
const ORPHAN_EXIT_MS = 2_000;
/** Unreleased shared-memory inputs beyond which the node asks V8 for a collection (when exposed). */
const HELD_SAMPLES_BEFORE_GC = 32;
const MIN_GC_INTERVAL_MS = 50;
/** Room for the core's error message when joining fails on a worker thread. */
const ERROR_CAPACITY = 4096;

/** How `new Node(options)` joins its dataflow; every field is optional (a node the daemon started needs none). */
export interface NodeOptions {
  /**
   * A dynamic node's id (`path: dynamic` in the YAML): a process the user starts (a
   * terminal, a notebook) joins the running dataflow that declares it. The daemon's
   * configuration wins when it started this process (`DORA_NODE_CONFIG`), as in dora.
   */
  readonly nodeId?: string;
  /**
   * Which running dataflow a dynamic node joins when several declare it: an id or a name
   * (`dora start --name`). Default: `$DORA_DATAFLOW`, else the only one that declares it.
   */
  readonly dataflow?: string;
  /** Configuration to use instead of the daemon-provided `DORA_NODE_CONFIG` (mostly for tests). */
  readonly config?: NodeConfig;
}

/** Room for a dynamic node's configuration on the first try (the core says when it needs more). */
const DYNAMIC_CONFIG_CAPACITY = 1 << 16;

/** Reads and checks the configuration the daemon passes in the environment. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const raw = env[NODE_CONFIG_ENV];
  if (!raw) {
    throw new DoraError(
      `${NODE_CONFIG_ENV} is not set: this program is a dora node and must be started by dora, ` +
        'e.g. list it as a node in a dataflow YAML file and run `dora run dataflow.yml`; ' +
        "or, for a dynamic node (`path: dynamic`), name it: new Node({ nodeId: '<node id>' })",
      { code: ErrorCode.CONFIG },
    );
  }
  return parseConfig(raw, NODE_CONFIG_ENV);
}

/**
 * Asks the daemon of the running dataflow that declares dynamic node `nodeId` for its
 * configuration (the core finds the dataflow in the user's runtime directory; a short
 * synchronous request, answered at once by the daemon).
 */
function dynamicConfig(nodeId: string, dataflow: string | undefined): { config: NodeConfig; text: string } {
  const c = core();
  let capacity = DYNAMIC_CONFIG_CAPACITY;
  for (;;) {
    const out = Buffer.alloc(capacity);
    const length = Number(c.dora_dynamic_config(nodeId, dataflow ?? null, out, capacity));
    if (length < 0) throw coreError();
    if (length < capacity) {
      const text = out.toString('utf8', 0, length);
      return { config: parseConfig(text, `the configuration of dynamic node "${nodeId}"`), text };
    }
    capacity = length + 1;
  }
}

function parseConfig(raw: string, what: string): NodeConfig {
  let config: NodeConfig;
  try {
    config = JSON.parse(raw) as NodeConfig;
  } catch (cause) {
    throw new DoraError(`${what} is not valid JSON`, { code: ErrorCode.CONFIG, cause });
  }
  if (config.protocolVersion !== PROTOCOL_VERSION) {
    throw new DoraError(
      `the daemon speaks protocol version ${config.protocolVersion}, this node API version ${PROTOCOL_VERSION}: install matching dora-ts versions`,
      { code: ErrorCode.PROTOCOL_VERSION },
    );
  }
  return config;
}

interface Joined {
  readonly ctx: bigint;
  readonly reader: EventReader;
  readonly sender: Sender;
  /** The core's wait descriptors in this event loop; ref'd only while next() waits. */
  readonly polls: readonly PollHandle[];
}

/** The node's context in the core, open (sockets bound) from construction on. */
interface Opened {
  readonly ctx: bigint;
  readonly sender: Sender;
}

/**
 * A node of a dataflow: `new Node()` joins the dataflow that started this process (or,
 * with `nodeId`, a running one as a dynamic node); `for await (const event of node)`
 * receives its events until STOP or all inputs close; `sendOutput` sends on its outputs.
 * Close it with `close()` or `await using` (it also closes when the process ends).
 */
export class Node implements AsyncIterable<Event>, AsyncDisposable {
  /** The configuration the node runs with (from the daemon's `DORA_NODE_CONFIG`, or the options). */
  readonly config: NodeConfig;
  private readonly opened: Opened;
  private readonly ready: Promise<Joined>;
  /** Set once joined: the hot paths skip awaiting `ready`. */
  private joined: Joined | undefined;
  private readonly outputs: ReadonlySet<string>;
  private receiving = false;
  /** Ends the pending wait, if any. */
  private wake: (() => void) | undefined;
  private ended = false;
  private closing?: Promise<void>;
  private closed = false;
  /** Ends waits every DAEMON_CHECK_MS, so the core checks its daemon (unref'd). */
  private daemonCheck?: NodeJS.Timeout;
  private flushScheduled = false;
  private lastGc = 0;
  private collectTimer?: NodeJS.Timeout;
  /** Set once the daemon is found gone: the process exits when it fires. */
  private orphanExit?: NodeJS.Timeout;
  private readonly onBeforeExit = () => void this.close();

  constructor(options: NodeOptions = {}) {
    const dynamic = !options.config && process.env[NODE_CONFIG_ENV] === undefined && options.nodeId !== undefined;
    const fetched = dynamic ? dynamicConfig(options.nodeId!, options.dataflow) : undefined;
    this.config = options.config ?? fetched?.config ?? configFromEnv();
    this.outputs = new Set(this.config.outputs);
    const c = core();
    const error = Buffer.alloc(ERROR_CAPACITY);
    const code = new Int32Array(1);
    const text = options.config ? JSON.stringify(options.config) : (fetched?.text ?? null);
    const ctx = c.dora_init_context(text, error, ERROR_CAPACITY, code) as bigint | null;
    if (!ctx) throw new DoraError(cString(error), { code: code[0] });
    this.opened = { ctx, sender: new Sender(ctx, this.config.sharedMemoryThreshold) };
    this.ready = this.join();
    this.ready.catch(() => undefined); // surfaced by the first next()/sendOutput()
    process.once('beforeExit', this.onBeforeExit);
  }

  /** This node's id in the dataflow. */
  get id(): string {
    return this.config.nodeId;
  }

  /** The id (a UUID) of the running dataflow this node belongs to. */
  get dataflowId(): string {
    return this.config.dataflowId;
  }

  /**
   * How many times the daemon has restarted this node under its `restart_policy` (0 on its
   * first run); for a dynamic node, how many times it joined the dataflow before.
   */
  get restartCount(): number {
    return this.config.restartCount ?? 0;
  }

  /** Whether this process is a restart of the node (dora's `is_restart()`). */
  get isRestart(): boolean {
    return this.restartCount > 0;
  }

  /** The node's own entry of the dataflow YAML. */
  nodeConfig(): Readonly<Record<string, unknown>> {
    return this.config.nodeDescriptor;
  }

  /** The whole dataflow descriptor, as parsed from YAML. */
  dataflowDescriptor(): Record<string, unknown> {
    return JSON.parse(fs.readFileSync(this.config.dataflowDescriptorFile, 'utf8')) as Record<string, unknown>;
  }

  /** Per input, how many messages were dropped because its queue was full. */
  get droppedMessages(): ReadonlyMap<string, number> {
    const dropped = new Map<string, number>();
    const ctx = this.joined && !this.closed ? this.joined.ctx : undefined;
    for (const input of this.config.inputs) {
      const n = ctx === undefined ? 0 : Number(core().dora_dropped_messages(ctx, input.id));
      if (n > 0) dropped.set(input.id, n);
    }
    return dropped;
  }

  /**
   * The next event, or null once the stream has ended (after STOP, or when every
   * input is closed) or when `timeoutMs` passes first. Only one call may be pending.
   */
  async next(timeoutMs?: number): Promise<Event | null> {
    if (this.receiving) throw new DoraError('next() is already pending: events must be read by one consumer at a time', { code: ErrorCode.USAGE });
    this.receiving = true;
    try {
      const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
      // The timeout also bounds the wait for the start barrier.
      // (closed while it joins: the join gives up, and the stream has ended)
      const joined = this.joined ?? (await (deadline === Infinity ? this.ready : this.joinedWithin(timeoutMs!)).catch((err: unknown) => (this.closing ? undefined : Promise.reject(err))));
      if (!joined) return null;
      const { ctx, reader } = joined;
      for (;;) {
        if (this.ended || this.closed) return null;
        const event = this.take(ctx, reader);
        if (event) return event;
        if (core().dora_event_stream_ended(ctx)) {
          this.ended = true;
          return null;
        }
        const remaining = deadline - performance.now();
        if (remaining <= 0) return null;
        // Idle with undisposed events: V8 would not collect (and release them) until it allocates again.
        if (reader.held > HELD_SAMPLES_BEFORE_GC) this.collectSoon();
        // The core may need a call before anything arrives: an input_timeout, a health-check heartbeat.
        const wake = Number(core().dora_wake_after_ms(ctx));
        await this.wait(wake >= 0 ? Math.min(remaining, wake) : remaining);
      }
    } finally {
      this.receiving = false;
    }
  }

  /**
   * Until the core's descriptors signal, `ms` pass (a timer only for a finite deadline:
   * one per message would cost), the daemon check comes round, or close() ends it.
   * The poll handles are ref'd meanwhile: a node awaiting an event stays alive.
   */
  private wait(ms: number): Promise<void> {
    const polls = this.joined!.polls;
    return new Promise((resolve) => {
      const timer = ms === Infinity ? undefined : setTimeout(() => this.wake?.(), Math.ceil(ms));
      for (const poll of polls) poll.ref();
      this.wake = () => {
        if (timer) clearTimeout(timer);
        for (const poll of polls) poll.unref();
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** A wait descriptor signalled: end the wait, or, while the node's code is busy, let the core drain. */
  private onSignal(): void {
    if (this.wake) this.wake();
    else if (this.joined && !this.closed) core().dora_pump(this.joined.ctx);
  }

  /**
   * Released samples go back to their senders at the next turn of the event loop. A
   * pending next() takes over (its next look at the core drains and flushes): draining
   * here would consume the descriptors' signal for a message that just arrived, and the
   * wait would sleep through it until the message after.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.wake) this.wake();
      else if (this.joined && !this.closed) core().dora_pump(this.joined.ctx);
    });
  }

  /** The next event the core has ready, without waiting. */
  private take(ctx: bigint, reader: EventReader): Event | undefined {
    const c = core();
    let length = Number(c.dora_next_event_record(ctx, reader.record, reader.record.byteLength));
    if (length > reader.record.byteLength) {
      reader.grow(length);
      length = Number(c.dora_next_event_record(ctx, reader.record, reader.record.byteLength));
    }
    if (length === 0) return undefined;
    if (length < 0) throw coreError();
    const event = reader.read();
    if (event.type === 'STOP' || event.type === 'ERROR') this.ended = true;
    if (event.type === 'ERROR') this.exitIfOrphaned();
    if (reader.held > HELD_SAMPLES_BEFORE_GC) this.collectUnreachable();
    return event;
  }

  [Symbol.asyncIterator](): AsyncIterator<Event> {
    return {
      next: async () => {
        const event = await this.next();
        return event ? { value: event, done: false } : { value: undefined, done: true };
      },
    };
  }

  /**
   * Sends `data` on one of this node's declared outputs. Accepts arrow-js
   * `Vector`/`Data`, typed arrays, `Uint8Array`/`Buffer` and JSON-like arrays.
   * Resolves once the message is queued; it never waits for slow receivers.
   */
  async sendOutput(output: string, data: unknown, parameters: Parameters = {}): Promise<void> {
    this.checkOutput(output);
    const { sender } = this.joined ?? (await this.ready);
    if (this.closing) throw new DoraError(`node "${this.id}" is closed: outputs can no longer be sent`, { code: ErrorCode.NO_CONTEXT });
    try {
      sender.send(output, data, parameters);
    } catch (err) {
      this.exitIfOrphaned();
      throw err;
    }
  }

  /**
   * A buffer of `byteLength` bytes to fill in place and pass to sendOutput, which
   * then sends it as a uint8 array without copying it (at or above the shared-memory
   * threshold the buffer is the shared memory the receivers will read).
   */
  allocateOutput(output: string, byteLength: number): OutputSample {
    this.checkOutput(output);
    if (!Number.isSafeInteger(byteLength) || byteLength < 0) throw new DoraError(`allocateOutput: invalid size ${byteLength}`, { code: ErrorCode.INVALID_ARGUMENT });
    if (this.closing) throw new DoraError(`node "${this.id}" is closed: outputs can no longer be sent`, { code: ErrorCode.NO_CONTEXT });
    // Possible before the node has joined (the core allows it), so a sender can fill its first sample meanwhile.
    return this.opened.sender.allocate(byteLength);
  }

  private checkOutput(output: string): void {
    if (!this.outputs.has(output)) {
      const declared = this.config.outputs.length > 0 ? this.config.outputs.map((o) => `"${o}"`).join(', ') : 'none';
      throw new DoraError(`"${output}" is not an output of node "${this.id}" (declared outputs: ${declared})`, { code: ErrorCode.UNDECLARED_OUTPUT });
    }
  }

  /**
   * Shared-memory diagnostics: segments this node created, its samples some receiver
   * still holds, free samples kept for reuse, and segments of other nodes it has mapped.
   */
  get sharedMemoryStats(): { created: number; outstanding: number; peakOutstanding: number; free: number; mapped: number } {
    const stats = new BigUint64Array(5);
    if (this.joined && !this.closed) core().dora_shared_memory_stats(this.joined.ctx, stats);
    const [created, outstanding, peakOutstanding, free] = [...stats].map(Number);
    return { created, outstanding, peakOutstanding, free, mapped: this.joined?.reader.mapped ?? 0 };
  }

  /**
   * Sends a log record to the dataflow's logs under this node's id; `fields` (JSON values)
   * travel with it, to `send_logs_as` and `dora/logs` receivers as the entry's `fields`.
   */
  log(level: LogLevel, message: string, target?: string, fields?: Readonly<Record<string, unknown>>): void {
    if (!LOG_LEVELS.includes(level)) throw new DoraError(`log level must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`, { code: ErrorCode.INVALID_ARGUMENT });
    const f = fields && Object.keys(fields).length > 0 ? JSON.stringify(fields) : '';
    const joined = this.joined;
    if (!joined || this.closed) {
      // Not connected (yet, or any more): the node's stderr still reaches its log.
      process.stderr.write(`[${level}]${target ? ` ${target}:` : ''} ${message}${f ? ` ${f}` : ''}\n`);
      return;
    }
    const c = core();
    const t = target ?? '';
    if (c.dora_log_with_fields(joined.ctx, level, Buffer.byteLength(level), message, Buffer.byteLength(message), t, Buffer.byteLength(t), f, Buffer.byteLength(f)) !== 0) {
      throw coreError();
    }
  }

  /**
   * Closes every output (receivers get INPUT_CLOSED) and releases the node's
   * resources. Called automatically when the process is about to exit; idempotent.
   * A dynamic node leaves the dataflow (its receivers' inputs stay open) and may join it
   * again with a new Node. Closed while it still waits for the dataflow's start, the node
   * gives up joining at once; a pending next() then returns null.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Joins the dataflow on a worker thread: registration and the start barrier wait for other nodes. */
  private async join(): Promise<Joined> {
    const c = core();
    const { ctx, sender } = this.opened;
    const error = Buffer.alloc(ERROR_CAPACITY);
    const code = new Int32Array(1); // the worker thread's error code, handed over with its message
    if ((await callAsync<number>(c.dora_join_dataflow, ctx, error, ERROR_CAPACITY, code)) !== 0) {
      await callAsync(c.free_dora_context, ctx);
      throw new DoraError(cString(error), { code: code[0] });
    }
    const fds = new Int32Array(2);
    const n = c.dora_wait_descriptors(ctx, fds, fds.length) as number;
    if (n < 0) throw coreError();
    const polls = [...fds.subarray(0, n)].map((fd) => pollReadable(fd, () => this.onSignal()));
    this.joined = { ctx, reader: new EventReader(ctx, this.config.inputs.map((i) => i.id), () => this.scheduleFlush()), sender, polls };
    if (this.closing) return this.joined; // closed while joining: shutdown() frees it
    this.daemonCheck = setInterval(() => this.wake?.(), DAEMON_CHECK_MS);
    this.daemonCheck.unref();
    return this.joined;
  }

  /** Many samples held: let V8 find the events nobody references any more (their finalizers return the samples). */
  /** The joined node, or undefined when `ms` pass first (joining goes on). */
  private joinedWithin(ms: number): Promise<Joined | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    return Promise.race([this.ready, timeout]).finally(() => clearTimeout(timer));
  }

  /** A collection once the minimum interval has passed (unref'd: it never keeps a node alive). */
  private collectSoon(): void {
    if (this.collectTimer) return;
    const wait = Math.max(0, MIN_GC_INTERVAL_MS - (performance.now() - this.lastGc));
    this.collectTimer = setTimeout(() => {
      this.collectTimer = undefined;
      this.collectUnreachable();
    }, wait);
    this.collectTimer.unref();
  }

  private collectUnreachable(): void {
    const gc = (globalThis as { gc?: () => void }).gc;
    const now = performance.now();
    if (!gc || now - this.lastGc < MIN_GC_INTERVAL_MS) return;
    this.lastGc = now;
    gc();
  }

  /**
   * The daemon is our parent: if it is gone and the node's code does not exit, exit for it.
   * Not a dynamic node's: its process is the user's (a notebook may go on without the dataflow).
   */
  private exitIfOrphaned(): void {
    if (this.orphanExit || this.config.dynamic || process.ppid === this.config.daemonPid) return;
    this.orphanExit = setTimeout(() => process.exit(1), ORPHAN_EXIT_MS);
    this.orphanExit.unref();
  }

  private async shutdown(): Promise<void> {
    process.removeListener('beforeExit', this.onBeforeExit);
    // Still joining (a dynamic node's dataflow may wait for other nodes): it gives up, and frees the context.
    if (!this.joined) core().dora_cancel_join(this.opened.ctx);
    let joined: Joined;
    try {
      joined = await this.ready;
    } catch {
      return; // joining failed and freed the context
    }
    clearInterval(this.daemonCheck);
    clearTimeout(this.collectTimer);
    this.closed = true;
    this.wake?.();
    for (const poll of joined.polls) poll.close();
    // Closing flushes end-of-stream and waits (briefly) for receivers to return samples: off the event loop.
    await callAsync(core().free_dora_context, joined.ctx);
  }
}

/** A NUL-terminated string the core wrote into `buffer`. */
function cString(buffer: Buffer): string {
  const end = buffer.indexOf(0);
  return buffer.toString('utf8', 0, end < 0 ? buffer.length : end);
}
