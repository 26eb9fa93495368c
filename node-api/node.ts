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
import { toArrowData, type Parameters } from '../protocol';
import type { Event } from './events';
import { EventQueue } from './queue';
import { InlineTransport, type Transport } from './transport';

/** How often a waiting node checks that its daemon is still alive. */
const DAEMON_CHECK_MS = 250;
/** How long registration may take before the node gives up. */
const REGISTER_TIMEOUT_MS = 10_000;
/** A node whose daemon is gone and that has not exited by then is exited for it (no orphans). */
const ORPHAN_EXIT_MS = 2_000;

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
  private readonly transport: Transport = new InlineTransport();
  private readonly queue: EventQueue;
  private readonly eventTopic: string;
  /** Subscription topic → the input ids it feeds (two inputs may share one source). */
  private readonly topicInputs = new Map<string, string[]>();
  private readonly inputSources = new Map<string, string>();
  private readonly outputTopics = new Map<string, Buffer>();
  private readonly openInputs: Set<string>;
  private readonly ready: Promise<void>;
  private started = false;
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
      const ids = this.topicInputs.get(input.topic) ?? [];
      ids.push(input.id);
      this.topicInputs.set(input.topic, ids);
      this.inputSources.set(input.id, input.source);
    }
    for (const output of config.outputs) {
      this.outputTopics.set(output, Buffer.from(outputTopic(config.nodeId, output)));
      this.expectedSubscribers.set(outputTopic(config.nodeId, output), new Set(config.subscribers[output] ?? []));
    }
    if (config.dataEndpoint !== null && config.outputs.length > 0) this.pub = new zmq.XPublisher();
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
      await this.ready;
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
    const topic = this.outputTopics.get(output);
    if (!topic) {
      const declared = this.config.outputs.length > 0 ? this.config.outputs.map((o) => `"${o}"`).join(', ') : 'none';
      throw new DoraError(`"${output}" is not an output of node "${this.id}" (declared outputs: ${declared})`);
    }
    await this.ready;
    if (this.closing) throw new DoraError(`node "${this.id}" is closed: outputs can no longer be sent`);
    this.checkDaemon();
    if (this.daemonGone) throw new DoraError(`the dora daemon of node "${this.id}" is gone`);
    const frames = this.transport.encode(toArrowData(data), parameters, this.clock.now());
    await this.pub!.send([topic, ...frames]);
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
    this.sub.connect(config.daemonEvents);
    this.sub.subscribe(this.eventTopic);
    const connected = new Set([config.daemonEvents]);
    for (const input of config.inputs) {
      if (!connected.has(input.endpoint)) {
        this.sub.connect(input.endpoint);
        connected.add(input.endpoint);
      }
    }
    for (const topic of this.topicInputs.keys()) this.sub.subscribe(topic);

    if (this.pub) {
      this.pub.verbosity = 'allSubs';
      this.pub.linger = 1000; // flush end-of-stream to live receivers on close, without hanging on dead ones
      await this.pub.bind(config.dataEndpoint!);
    }
    this.requests.linger = 1000;
    this.requests.connect(config.daemonRequests);
    await this.register();

    // Start barrier, part 1: everyone who will read our outputs has subscribed.
    await this.awaitSubscribers();
    this.request({ t: 'ready', node: this.id });
    // Part 2: the daemon says every node is ready. Data that overtakes the start event is queued, not lost.
    while (!this.started) {
      if (this.daemonGone) throw new DoraError(`the dora daemon went away while node "${this.id}" was starting`);
      await this.receiveOne(DAEMON_CHECK_MS);
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
    while (!satisfied()) {
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
    const inputs = this.topicInputs.get(topic);
    if (!inputs) return;
    let decoded;
    try {
      decoded = this.transport.decode(frames.slice(1));
    } catch (err) {
      // A malformed message is reported with its sender and dropped; it never reaches the node's code.
      this.log('warn', `dropped a malformed message from ${this.inputSources.get(inputs[0])}: ${(err as Error).message}`);
      return;
    }
    this.clock.observe(decoded.timestamp);
    if (decoded.kind === 'eos') {
      for (const id of inputs) this.closeInput(id);
      return;
    }
    const data = arrow.makeVector(decoded.data);
    const metadata = { timestamp: decoded.timestamp, parameters: decoded.parameters };
    for (const id of inputs) {
      if (this.openInputs.has(id)) this.queue.pushInput({ type: 'INPUT', id, data, metadata });
    }
  }

  private onDaemonEvent(event: DaemonEvent): void {
    switch (event.t) {
      case 'start':
        this.started = true;
        break;
      case 'stop':
        this.queue.pushControl({ type: 'STOP', cause: event.cause });
        break;
      case 'inputs-closed':
        for (const id of event.inputs) this.closeInput(id);
        break;
      case 'peer-exited':
        for (const nodes of this.expectedSubscribers.values()) nodes.delete(event.node);
        break;
    }
  }

  private closeInput(id: string): void {
    if (this.openInputs.delete(id)) this.queue.pushControl({ type: 'INPUT_CLOSED', id });
  }

  /** The daemon is our parent: if the parent changed, it is gone and this node must not linger. */
  private checkDaemon(): void {
    if (this.daemonGone || process.ppid === this.config.daemonPid) return;
    this.daemonGone = true;
    // Nothing can be delivered any more: never let pending messages hold the exit.
    for (const socket of [this.sub, this.requests, this.pub]) if (socket && !socket.closed) socket.linger = 0;
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
    if (initialized && this.pub && !this.daemonGone) {
      const eos = this.transport.endOfStream(this.clock.now());
      for (const topic of this.outputTopics.values()) await this.pub.send([topic, ...eos]);
      this.request({ t: 'outputs-closed', node: this.id });
    }
    this.pub?.close();
    this.sub.close();
    this.requests.close();
  }
}

function isTimeout(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'EAGAIN';
}
