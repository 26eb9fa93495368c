/**
 * A dataflow node's handle on the runtime.
 *
 * Receiving is on demand: a socket read is pending only while the node awaits
 * an event, so a node whose code has finished exits like any program, and its
 * outputs are closed on the way out (`beforeExit`). Each input has a bounded
 * queue that drops its oldest message when full; all inputs and the daemon's
 * control events arrive on one subscriber socket.
 */
import * as fs from 'node:fs';
import * as arrow from 'apache-arrow';
import * as zmq from 'zeromq';
import { DoraError } from '../coordinator/errors';
import { HybridClock } from '../protocol/clock';
import { NODE_CONFIG_ENV, PROTOCOL_VERSION, eventTopic, outputTopic, type NodeConfig } from '../protocol/config';
import { decodeControl, encodeControl, type DaemonEvent, type LogLevel, type NodeRequest, type RegisterReply } from '../protocol/control';
import { decodeDropTokens, encodeDropTokens, toArrowData, type LostRange, type Parameters } from '../protocol';
import type { Event, InputEvent } from './events';
import { SamplePool } from './pool';
import { EventQueue } from './queue';
import { SegmentCache } from './segments';
import { OutputSample, PayloadReader, PayloadWriter } from './transport';

/** How often a waiting node checks that its daemon is still alive. */
const DAEMON_CHECK_MS = 250;
/** How long registration may take before the node gives up. */
const REGISTER_TIMEOUT_MS = 10_000;
/** A node whose daemon is gone and that has not exited by then is exited for it (no orphans). */
const ORPHAN_EXIT_MS = 2_000;
/**
 * How often idle sockets are drained in the background: input messages move into the
 * bounded queues (where a full queue drops, and releases, its oldest), drop tokens into
 * the sample pool. An unref'd timer, so it never keeps a finished node alive.
 */
const PUMP_MS = 5;
/** Unreleased shared-memory inputs beyond which the node asks V8 for a collection (when exposed). */
const HELD_SAMPLES_BEFORE_GC = 32;
const MIN_GC_INTERVAL_MS = 50;

/** Where an input topic's messages come from. */
interface TopicInfo {
  readonly inputs: string[];
  readonly sender: string | undefined;
  readonly output: string | undefined;
  readonly dropEndpoint: string | null;
  /** Next sequence number expected from the sender. */
  expectedSeq: bigint;
}

/** One received shared-memory message: released once every event carrying it is disposed, or unreachable. */
class Lease {
  private refs = 0;
  private released = false;
  constructor(private readonly onRelease: () => void) {}
  retain(): void {
    this.refs++;
  }
  /** One event carrying the message is done with it. */
  drop(): void {
    if (--this.refs <= 0) this.release();
  }
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }
}

export interface NodeOptions {
  /** Configuration to use instead of the daemon-provided `DORA_NODE_CONFIG` (mostly for tests). */
  readonly config?: NodeConfig;
}

/** Reads and checks the configuration the daemon passes in the environment. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const raw = env[NODE_CONFIG_ENV];
  if (!raw) {
    throw new DoraError(
      `${NODE_CONFIG_ENV} is not set: this program is a dora node and must be started by dora, ` +
        'e.g. list it as a node in a dataflow YAML file and run `dora run dataflow.yml`',
    );
  }
  let config: NodeConfig;
  try {
    config = JSON.parse(raw) as NodeConfig;
  } catch (cause) {
    throw new DoraError(`${NODE_CONFIG_ENV} is not valid JSON`, { cause });
  }
  if (config.protocolVersion !== PROTOCOL_VERSION) {
    throw new DoraError(
      `the daemon speaks protocol version ${config.protocolVersion}, this node API version ${PROTOCOL_VERSION}: install matching dora-ts versions`,
    );
  }
  return config;
}

export class Node implements AsyncIterable<Event>, AsyncDisposable {
  readonly config: NodeConfig;
  private readonly sub = new zmq.Subscriber();
  private readonly requests = new zmq.Dealer();
  private readonly pub: zmq.XPublisher | undefined;
  private readonly clock = new HybridClock();
  private readonly pool: SamplePool | undefined;
  private readonly writer: PayloadWriter;
  private readonly segments = new SegmentCache();
  private readonly reader = new PayloadReader(this.segments);
  private readonly queue: EventQueue;
  private readonly eventTopic: string;
  /** Subscription topic → the input ids it feeds (two inputs may share one source) and its sender. */
  private readonly topics = new Map<string, TopicInfo>();
  private readonly inputSources = new Map<string, string>();
  private readonly outputTopics = new Map<string, Buffer>();
  private readonly outputSeq = new Map<string, bigint>();
  /** Receivers of each output that are still running. */
  private readonly liveSubscribers = new Map<string, Set<string>>();
  /** Drop tokens arrive here (senders only). */
  private readonly drops: zmq.Pull | undefined;
  /** Drop tokens leave through these, one per sender (receivers only). */
  private readonly dropSockets = new Map<string, zmq.Push>();
  private readonly pendingTokens = new Map<string, { samples: bigint[]; lost: LostRange[] }>();
  private flushScheduled = false;
  private heldSamples = 0;
  private lastGc = 0;
  private lastDaemonCheck = 0;
  /** `ready` has resolved: the hot paths skip awaiting it. */
  private initialized = false;
  private pump?: NodeJS.Timeout;
  private pumping?: Promise<void>;
  private readingDrops = false;
  private readonly openInputs: Set<string>;
  private readonly ready: Promise<void>;
  private started = false;
  /** The daemon sent STOP (possibly before the start barrier was passed). */
  private stopRequested = false;
  private ended = false;
  private receiving = false;
  private daemonGone = false;
  private closing?: Promise<void>;
  private expectedSubscribers = new Map<string, Set<string>>();
  private readonly onBeforeExit = () => void this.close();

  constructor(options: NodeOptions = {}) {
    this.config = options.config ?? configFromEnv();
    const config = this.config;
    this.eventTopic = eventTopic(config.nodeId);
    this.queue = new EventQueue(config.inputs.map((i) => [i.id, i.queueSize]));
    this.openInputs = new Set(config.inputs.map((i) => i.id));
    for (const input of config.inputs) {
      let info = this.topics.get(input.topic);
      if (!info) {
        const slash = input.source.indexOf('/');
        const isTimer = input.dropEndpoint === null;
        info = {
          inputs: [],
          sender: isTimer ? undefined : input.source.slice(0, slash),
          output: isTimer ? undefined : input.source.slice(slash + 1),
          dropEndpoint: input.dropEndpoint,
          expectedSeq: 0n,
        };
        this.topics.set(input.topic, info);
      }
      info.inputs.push(input.id);
      this.inputSources.set(input.id, input.source);
    }
    for (const output of config.outputs) {
      this.outputTopics.set(output, Buffer.from(outputTopic(config.nodeId, output)));
      this.outputSeq.set(output, 0n);
      this.expectedSubscribers.set(outputTopic(config.nodeId, output), new Set(config.subscribers[output] ?? []));
      this.liveSubscribers.set(output, new Set(config.subscribers[output] ?? []));
    }
    if (config.dataEndpoint !== null && config.outputs.length > 0) this.pub = new zmq.XPublisher();
    if (config.dropEndpoint && config.outputs.length > 0) {
      this.drops = new zmq.Pull();
      this.pool = new SamplePool(config.segmentPrefix);
      // Segments are unlinked however the process ends (mappings elsewhere stay valid).
      process.once('exit', () => this.pool?.close());
    }
    this.writer = new PayloadWriter(this.pool, config.sharedMemoryThreshold);
    this.ready = this.init();
    this.ready.catch(() => undefined); // surfaced by the first next()/sendOutput()
    process.once('beforeExit', this.onBeforeExit);
  }

  /** This node's id in the dataflow. */
  get id(): string {
    return this.config.nodeId;
  }

  get dataflowId(): string {
    return this.config.dataflowId;
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
    return this.queue.dropped;
  }

  /**
   * The next event, or null once the stream has ended (after STOP, or when every
   * input is closed) or when `timeoutMs` passes first. Only one call may be pending.
   */
  async next(timeoutMs?: number): Promise<Event | null> {
    if (this.receiving) throw new DoraError('next() is already pending: events must be read by one consumer at a time');
    this.receiving = true;
    try {
      if (!this.initialized) await this.ready;
      if (this.pumping) await this.pumping; // one reader of the socket at a time
      const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
      for (;;) {
        if (this.ended) return null;
        await this.drain();
        const event = this.queue.shift();
        if (event) {
          if (event.type === 'STOP' || event.type === 'ERROR') this.ended = true;
          return event;
        }
        if (this.config.inputs.length > 0 && this.openInputs.size === 0) {
          this.ended = true;
          return null;
        }
        const remaining = deadline - performance.now();
        if (remaining <= 0) return null;
        await this.receiveOne(Math.min(DAEMON_CHECK_MS, remaining));
      }
    } finally {
      this.receiving = false;
    }
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
    const topic = this.topicOf(output);
    if (!this.initialized) await this.ready;
    if (this.closing) throw new DoraError(`node "${this.id}" is closed: outputs can no longer be sent`);
    this.checkDaemonNow();
    if (this.daemonGone) throw new DoraError(`the dora daemon of node "${this.id}" is gone`);
    if (this.pool && this.pool.outstandingCount > 0) await this.readDropTokens(); // returned samples are reusable right away
    const seq = this.outputSeq.get(output)!;
    this.outputSeq.set(output, seq + 1n);
    const timestamp = this.clock.now();
    const out =
      data instanceof OutputSample ? this.writer.encodeSample(data, parameters, timestamp, seq) : this.writer.encode(toArrowData(data), parameters, timestamp, seq);
    // Recorded before sending: a receiver's drop token may come back at once.
    if (out.sample) this.pool!.sent(out.sample, this.liveSubscribers.get(output)!, { output, seq });
    await this.pub!.send([topic, ...out.frames]);
  }

  /**
   * A buffer of `byteLength` bytes to fill in place and pass to sendOutput, which
   * then sends it as a uint8 array without copying it (at or above the shared-memory
   * threshold the buffer is the shared memory the receivers will read).
   */
  allocateOutput(output: string, byteLength: number): OutputSample {
    this.topicOf(output);
    if (!Number.isSafeInteger(byteLength) || byteLength < 0) throw new DoraError(`allocateOutput: invalid size ${byteLength}`);
    return this.writer.allocate(byteLength);
  }

  private topicOf(output: string): Buffer {
    const topic = this.outputTopics.get(output);
    if (!topic) {
      const declared = this.config.outputs.length > 0 ? this.config.outputs.map((o) => `"${o}"`).join(', ') : 'none';
      throw new DoraError(`"${output}" is not an output of node "${this.id}" (declared outputs: ${declared})`);
    }
    return topic;
  }

  /**
   * Shared-memory diagnostics: segments this node created, its samples some receiver
   * still holds, free samples kept for reuse, and segments of other nodes it has mapped.
   */
  get sharedMemoryStats(): { created: number; outstanding: number; peakOutstanding: number; free: number; mapped: number } {
    const pool = this.pool;
    return { created: pool?.created ?? 0, outstanding: pool?.outstandingCount ?? 0, peakOutstanding: pool?.peakOutstanding ?? 0, free: pool?.freeCount ?? 0, mapped: this.segments.size };
  }

  /** Sends a log record to the dataflow's logs under this node's id. */
  log(level: LogLevel, message: string, target?: string): void {
    this.request({ t: 'log', node: this.id, level, message, target });
  }

  /**
   * Closes every output (receivers get INPUT_CLOSED) and releases the sockets.
   * Called automatically when the process is about to exit; idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async init(): Promise<void> {
    const config = this.config;
    // A SUB socket has nothing worth flushing, and its queued subscriptions to a dead
    // publisher would otherwise hold the process at exit forever.
    this.sub.linger = 0;
    this.sub.receiveHighWaterMark = 0; // see sendHighWaterMark below
    this.sub.connect(config.daemonEvents);
    this.sub.subscribe(this.eventTopic);
    const connected = new Set([config.daemonEvents]);
    for (const input of config.inputs) {
      if (!connected.has(input.endpoint)) {
        this.sub.connect(input.endpoint);
        connected.add(input.endpoint);
      }
    }
    for (const topic of this.topics.keys()) this.sub.subscribe(topic);

    if (this.pub) {
      this.pub.verbosity = 'allSubs';
      this.pub.linger = 1000; // flush end-of-stream to live receivers on close, without hanging on dead ones
      // Receivers own the queueing policy (drop the oldest) and drain their socket in the
      // background. ZeroMQ must never drop on its own: it would drop silently, and a lost
      // end-of-stream would leave the receiver waiting forever.
      this.pub.sendHighWaterMark = 0;
      await this.pub.bind(config.dataEndpoint!);
    }
    if (this.drops) {
      this.drops.linger = 0;
      await this.drops.bind(config.dropEndpoint!);
    }
    this.requests.linger = 1000;
    this.requests.connect(config.daemonRequests);
    await this.register();

    // Start barrier, part 1: everyone who will read our outputs has subscribed.
    await this.awaitSubscribers();
    this.request({ t: 'ready', node: this.id });
    // Part 2: the daemon says every node is ready. Data that overtakes the start event is queued, not lost.
    // A stop during start-up (Ctrl-C while nodes load) ends the wait: the stream then yields STOP.
    while (!this.started && !this.stopRequested) {
      if (this.daemonGone) throw new DoraError(`the dora daemon went away while node "${this.id}" was starting`);
      await this.receiveOne(DAEMON_CHECK_MS);
    }
    this.pump = setInterval(() => this.pumpOnce(), PUMP_MS);
    this.pump.unref();
    this.initialized = true;
  }

  /** Background drain of whatever is waiting, unless next() is reading the socket itself. */
  private pumpOnce(): void {
    if (this.closing || this.daemonGone) return;
    if (!this.receiving && !this.pumping && !this.ended && this.sub.readable) {
      this.pumping = this.drain()
        .catch(() => undefined)
        .finally(() => (this.pumping = undefined));
    }
    void this.readDropTokens();
  }

  private async readDropTokens(): Promise<void> {
    const drops = this.drops;
    if (!drops || this.readingDrops || drops.closed) return;
    this.readingDrops = true;
    try {
      while (drops.readable) {
        const [frame] = await drops.receive();
        try {
          const tokens = decodeDropTokens(frame);
          for (const id of tokens.samples) this.pool!.release(id, tokens.receiver);
          for (const l of tokens.lost) this.pool!.releaseLost(tokens.receiver, l.output, l.first, l.last);
        } catch (err) {
          this.log('warn', `ignored malformed drop tokens: ${(err as Error).message}`);
        }
      }
    } catch {
      // socket closed while reading
    } finally {
      this.readingDrops = false;
    }
  }

  private async register(): Promise<void> {
    await this.requests.send(encodeControl({ t: 'register', node: this.id, version: PROTOCOL_VERSION, pid: process.pid }));
    this.requests.receiveTimeout = DAEMON_CHECK_MS;
    const deadline = performance.now() + REGISTER_TIMEOUT_MS;
    let frames: Buffer[] | undefined;
    while (!frames) {
      try {
        frames = await this.requests.receive();
      } catch (err) {
        if (!isTimeout(err)) throw err;
        this.checkDaemon();
        if (this.daemonGone) throw new DoraError(`the dora daemon went away while node "${this.id}" was starting`);
        if (performance.now() > deadline) {
          throw new DoraError(`node "${this.id}" could not register with the dora daemon at ${this.config.daemonRequests} within ${REGISTER_TIMEOUT_MS / 1000}s`);
        }
      }
    }
    const reply = decodeControl<RegisterReply>(frames[0]);
    if (!reply) throw new DoraError(`node "${this.id}": malformed registration reply from the daemon`);
    if (reply.t === 'error') throw new DoraError(`node "${this.id}": the daemon refused registration: ${reply.message}`);
  }

  private async awaitSubscribers(): Promise<void> {
    if (!this.pub) return;
    const pub = this.pub;
    const seen = new Map<string, number>();
    const satisfied = () => [...this.expectedSubscribers].every(([topic, nodes]) => (seen.get(topic) ?? 0) >= nodes.size);
    pub.receiveTimeout = DAEMON_CHECK_MS;
    while (!satisfied() && !this.stopRequested) {
      // Daemon events (e.g. a subscriber exited before subscribing) also bear on the count.
      while (this.sub.readable) this.dispatch(await this.sub.receive());
      try {
        const [frame] = await pub.receive();
        if (frame.length > 0 && frame[0] === 1) {
          const topic = frame.subarray(1).toString('latin1');
          seen.set(topic, (seen.get(topic) ?? 0) + 1);
        }
      } catch (err) {
        if (!isTimeout(err)) throw err;
        this.checkDaemon();
        if (this.daemonGone) throw new DoraError(`the dora daemon went away while node "${this.id}" was starting`);
      }
    }
  }

  /** Moves every message already waiting on the socket into the queues (so full queues drop the oldest). */
  private async drain(): Promise<void> {
    while (this.sub.readable) this.dispatch(await this.sub.receive());
  }

  /** Waits up to `timeoutMs` for one message; on timeout, checks that the daemon is alive. */
  private async receiveOne(timeoutMs: number): Promise<void> {
    this.sub.receiveTimeout = Math.max(1, Math.ceil(timeoutMs));
    try {
      this.dispatch(await this.sub.receive());
    } catch (err) {
      if (!isTimeout(err)) throw err;
      this.checkDaemon();
    }
  }

  private dispatch(frames: Buffer[]): void {
    const topic = frames[0]?.toString('latin1') ?? '';
    if (topic === this.eventTopic) {
      const event = decodeControl<DaemonEvent>(frames[1] ?? Buffer.alloc(0));
      if (event) this.onDaemonEvent(event);
      return;
    }
    const info = this.topics.get(topic);
    if (!info) return;
    let decoded;
    let lease: Lease | undefined;
    let viewDone: (() => void) | undefined;
    const makeLease = (sample: bigint) => {
      lease = new Lease(() => {
        this.heldSamples--;
        viewDone?.();
        this.returnSample(info, sample);
      });
      this.heldSamples++;
      return lease;
    };
    try {
      decoded = this.reader.decode(frames.slice(1), (sample) => (lease ?? makeLease(sample)).release());
    } catch (err) {
      // A malformed message is reported with its sender and dropped; it never reaches the node's code.
      this.log('warn', `dropped a malformed message from ${this.inputSources.get(info.inputs[0])}: ${(err as Error).message}`);
      return;
    }
    if (decoded.kind === 'data') viewDone = decoded.done;
    this.clock.observe(decoded.timestamp);
    if (decoded.kind === 'eos') {
      for (const id of info.inputs) this.closeInput(id);
      return;
    }
    if (decoded.seq > info.expectedSeq && info.output !== undefined) {
      // Messages lost in transit: their samples must not stay held on our account.
      this.queueToken(info, { lost: { output: info.output, first: info.expectedSeq, last: decoded.seq - 1n } });
    }
    if (decoded.seq >= info.expectedSeq) info.expectedSeq = decoded.seq + 1n;
    if (decoded.sample !== undefined) lease ??= makeLease(decoded.sample);
    const data = arrow.makeVector(decoded.data);
    const metadata = { timestamp: decoded.timestamp, parameters: decoded.parameters };
    const held = lease;
    let taken = 0;
    for (const id of info.inputs) {
      if (!this.openInputs.has(id)) continue;
      taken++;
      held?.retain();
      let disposed = false;
      const event: InputEvent = {
        type: 'INPUT',
        id,
        data,
        metadata,
        [Symbol.dispose]: () => {
          if (!disposed) (disposed = true), held?.drop();
        },
      };
      this.queue.pushInput(event)?.[Symbol.dispose]();
    }
    if (taken === 0) held?.release(); // no open input takes it
    if (this.heldSamples > HELD_SAMPLES_BEFORE_GC) this.collectUnreachable();
  }

  /** Returns a shared-memory sample to its sender (batched per sender until the next turn). */
  private returnSample(info: TopicInfo, sample: bigint): void {
    this.queueToken(info, { sample });
  }

  private queueToken(info: TopicInfo, token: { sample?: bigint; lost?: LostRange }): void {
    if (!info.dropEndpoint || !info.sender || this.daemonGone) return;
    const pending = this.pendingTokens.get(info.dropEndpoint) ?? { samples: [], lost: [] };
    if (token.sample !== undefined) pending.samples.push(token.sample);
    if (token.lost) pending.lost.push(token.lost);
    this.pendingTokens.set(info.dropEndpoint, pending);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushTokens());
    }
  }

  private flushTokens(): void {
    this.flushScheduled = false;
    for (const [endpoint, tokens] of this.pendingTokens) {
      let socket = this.dropSockets.get(endpoint);
      if (!socket) {
        socket = new zmq.Push();
        socket.linger = 0; // a sender that is gone has released everything anyway
        socket.sendHighWaterMark = 0;
        socket.connect(endpoint);
        this.dropSockets.set(endpoint, socket);
      }
      if (!socket.closed) socket.send(encodeDropTokens({ receiver: this.id, samples: tokens.samples, lost: tokens.lost })).catch(() => undefined);
    }
    this.pendingTokens.clear();
  }

  /** Many samples held: let V8 find the events nobody references any more (their finalizers return the samples). */
  private collectUnreachable(): void {
    const gc = (globalThis as { gc?: () => void }).gc;
    const now = performance.now();
    if (!gc || now - this.lastGc < MIN_GC_INTERVAL_MS) return;
    this.lastGc = now;
    gc();
  }

  private onDaemonEvent(event: DaemonEvent): void {
    switch (event.t) {
      case 'start':
        this.started = true;
        break;
      case 'stop':
        this.stopRequested = true;
        this.queue.pushControl({ type: 'STOP', cause: event.cause });
        break;
      case 'inputs-closed':
        for (const id of event.inputs) this.closeInput(id);
        break;
      case 'peer-exited':
        for (const nodes of this.expectedSubscribers.values()) nodes.delete(event.node);
        for (const nodes of this.liveSubscribers.values()) nodes.delete(event.node);
        this.pool?.releaseAll(event.node);
        break;
    }
  }

  private closeInput(id: string): void {
    if (this.openInputs.delete(id)) this.queue.pushControl({ type: 'INPUT_CLOSED', id });
  }

  /** checkDaemon at most every DAEMON_CHECK_MS: process.ppid is a system call, too slow for every send. */
  private checkDaemonNow(): void {
    const now = performance.now();
    if (now - this.lastDaemonCheck < DAEMON_CHECK_MS) return;
    this.lastDaemonCheck = now;
    this.checkDaemon();
  }

  /** The daemon is our parent: if the parent changed, it is gone and this node must not linger. */
  private checkDaemon(): void {
    if (this.daemonGone || process.ppid === this.config.daemonPid) return;
    this.daemonGone = true;
    // Nothing can be delivered any more: never let pending messages hold the exit.
    for (const socket of [this.sub, this.requests, this.pub, this.drops, ...this.dropSockets.values()]) if (socket && !socket.closed) socket.linger = 0;
    this.queue.pushControl({ type: 'ERROR', error: `the dora daemon (pid ${this.config.daemonPid}) is gone; node "${this.id}" is shutting down` });
    setTimeout(() => process.exit(1), ORPHAN_EXIT_MS).unref();
  }

  private request(message: NodeRequest): void {
    this.requests.send(encodeControl(message)).catch(() => undefined);
  }

  private async shutdown(): Promise<void> {
    process.removeListener('beforeExit', this.onBeforeExit);
    const initialized = await this.ready.then(
      () => true,
      () => false,
    );
    clearInterval(this.pump);
    if (initialized && this.pub && !this.daemonGone) {
      const eos = this.writer.endOfStream(this.clock.now());
      for (const topic of this.outputTopics.values()) await this.pub.send([topic, ...eos]);
      this.request({ t: 'outputs-closed', node: this.id });
    }
    if (this.pendingTokens.size > 0) this.flushTokens();
    // Give receivers a moment to take (and return) what was just sent: samples still
    // held when the pool closes stay in place until the run ends.
    const deadline = performance.now() + RELEASE_WAIT_MS;
    while (initialized && this.pool && this.pool.outstandingCount > 0 && !this.daemonGone && performance.now() < deadline) {
      await this.drain().catch(() => undefined); // peer-exited events release too
      await this.readDropTokens();
      await new Promise((r) => setTimeout(r, 5));
      this.checkDaemon();
    }
    this.pub?.close();
    this.sub.close();
    this.requests.close();
    this.drops?.close();
    for (const socket of this.dropSockets.values()) socket.close();
    this.pool?.close();
  }
}

/** How long a closing node waits for receivers to return its shared-memory samples. */
const RELEASE_WAIT_MS = 2000;

function isTimeout(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'EAGAIN';
}
