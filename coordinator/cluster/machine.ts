/**
 * `dora daemon`: the daemon of one machine of a cluster. It registers with the coordinator
 * (DEALER over TCP, CURVE with this daemon's keys and the coordinator's public key), sends
 * heartbeats, and runs the parts of dataflows the coordinator places here: each a
 * DataflowRun of the nodes on this machine, whose messages for the other machines go back
 * through the coordinator. A refused or unanswered registration ends it with the reason
 * (usually: its key is not authorised, or the coordinator's key is wrong).
 *
 * A coordinator that goes away (its process ended, or the link is silent for LOST_AFTER_MS:
 * ZMTP heartbeats) does not end anything here: the parts keep running (their data between
 * machines does not go through the coordinator), and what they would tell it is held, up
 * to HELD_MAX messages (the oldest log lines go first), until a coordinator answers again.
 * The daemon then registers again with a report of every part it runs (messages.ts
 * `PartReport`), from which a restarted coordinator rebuilds its dataflows, and sends what
 * it held. It keeps doing so for as long as it runs: stopping the daemon stops its parts.
 */
import * as net from 'node:net';
import * as zmq from 'zeromq';
import { DataflowRun } from '../daemon';
import { parseDescriptor } from '../descriptor';
import { DoraError, ErrorCode } from '../errors';
import { decode, encode, CLUSTER_PROTOCOL_VERSION, type CoordinatorMessage, type DaemonMessage, type ExportEndpoint, type PartReport, type PartSpec } from './messages';
import { authorizeCommand, keyProof, registrationContext, type KeyPair } from './keys';
import { HEARTBEAT_MS, LOST_AFTER_MS } from './server';
import { HeldMessages } from './held';
import { Watch, watchArgsRefusal } from './watch';

/** A watch's lines wait in the watch (bounded) while this many messages wait to go to the coordinator. */
const WATCH_QUEUE_LIMIT = 16;
/** How long registration may take before the daemon gives up with a diagnosis. */
const REGISTER_TIMEOUT_MS = 5000;
/** Messages of the parts held while the coordinator is away (held.ts says which go beyond). */
const HELD_MAX = 10_000;
/** How long an ended part is kept (and reported) once a coordinator has heard of its end. */
const FORGET_AFTER_MS = 60_000;

interface Part {
  readonly run: DataflowRun;
  readonly spec: PartSpec;
  readonly exports?: ExportEndpoint;
  /** Its `finished` was sent to a coordinator that was there (not held). */
  endHeard: boolean;
}

export interface MachineOptions {
  readonly machine: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly host: string;
  readonly port: number;
  /** CURVE keys of this daemon and the coordinator's public key; undefined with `--insecure`. */
  readonly keys?: KeyPair;
  readonly coordinatorKey?: string;
  /** The address other machines reach this one's data sockets on (default: the one it reaches the coordinator from). */
  readonly dataAddress?: string;
  readonly outDir?: string;
  readonly log: (line: string) => void;
}

export class MachineDaemon {
  private readonly dealer = new zmq.Dealer();
  private readonly runs = new Map<string, Part>();
  /** `dora topic echo|hz` of outputs of this machine, for CLIs at the coordinator (watch.ts). */
  private readonly watches = new Map<number, Watch>();
  /** Stale parts that were dropped: what they still say is not sent. */
  private readonly muted = new WeakSet<DataflowRun>();
  private readonly queue: Buffer[] = [];
  private sending = false;
  private heartbeat?: NodeJS.Timeout;
  /** Registered once (start() succeeded). */
  private registered = false;
  /** A coordinator has accepted this daemon and was not lost since: messages go out; otherwise they are held. */
  private online = false;
  /** The link to the coordinator is up (ZMTP handshake done, no disconnect since). */
  private connected = false;
  private offlineSince = 0;
  private readonly held = new HeldMessages(HELD_MAX);
  private retry?: NodeJS.Timeout;
  private lastRefusal = '';
  private closed = false;
  private dataAddress = '';
  readonly ended: Promise<void>;
  private end!: () => void;

  constructor(private readonly options: MachineOptions) {
    this.ended = new Promise((resolve) => (this.end = resolve));
  }

  /** Connects and registers; throws with the reason when the coordinator refuses or does not answer. */
  async start(): Promise<void> {
    const { host, port, keys, coordinatorKey } = this.options;
    this.dataAddress = this.options.dataAddress ?? (await localAddressTowards(host, port));
    this.dealer.linger = 0;
    this.dealer.maxMessageSize = 64 << 20;
    // a coordinator that is gone without closing the link (a cut cable) is noticed too
    this.dealer.heartbeatInterval = HEARTBEAT_MS;
    this.dealer.heartbeatTimeout = LOST_AFTER_MS;
    this.dealer.events.on('handshake', () => {
      this.connected = true;
      if (this.registered && !this.online) this.register(); // a coordinator is there again
    });
    this.dealer.events.on('disconnect', () => {
      this.connected = false;
      this.goOffline('the link to it closed');
    });
    if (keys && coordinatorKey) {
      this.dealer.curveServerKey = coordinatorKey;
      this.dealer.curvePublicKey = keys.publicKey;
      this.dealer.curveSecretKey = keys.secretKey;
    }
    this.dealer.connect(`tcp://${host}:${port}`);
    const answer = this.nextMessage(REGISTER_TIMEOUT_MS);
    this.queue.push(encode(this.registration()));
    void this.pump();
    const reply = await answer;
    if (!reply) {
      this.close();
      const why = keys
        ? `is this daemon's public key ${keys.publicKey} authorised there (\`${authorizeCommand(keys.publicKey)}\` on the coordinator's machine), and is --coordinator-key the coordinator's public key?`
        : 'is it running with --insecure too?';
      throw new DoraError(`the coordinator at ${host}:${port} did not accept this daemon within ${REGISTER_TIMEOUT_MS / 1000} s: ${why}`, { code: ErrorCode.CONTROL });
    }
    if (reply.t === 'refused') {
      this.close();
      throw new DoraError(`the coordinator at ${host}:${port} refused this daemon: ${reply.message}`, { code: ErrorCode.CONTROL });
    }
    this.registered = true;
    this.online = true;
    this.options.log(`registered with the coordinator at ${host}:${port} as machine ${this.options.machine} (data address ${this.dataAddress})`);
    this.heartbeat = setInterval(() => {
      if (this.online) this.send({ t: 'heartbeat', nodes: this.runningNodes() });
    }, HEARTBEAT_MS);
    // a registration (or its answer) lost on a link that came back: ask again
    this.retry = setInterval(() => {
      if (this.registered && !this.online && this.connected) this.register();
    }, LOST_AFTER_MS);
    void this.serve();
  }

  /** Stops every part running here (their nodes get STOP, then signals), then disconnects. */
  async shutdown(graceMs?: number): Promise<void> {
    await Promise.all([...this.runs.values()].map((p) => p.run.stop(graceMs)));
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches.values()) w.stop();
    clearInterval(this.heartbeat);
    clearInterval(this.retry);
    this.dealer.close();
    this.end();
  }

  private registration(): DaemonMessage {
    const { keys, coordinatorKey } = this.options;
    return {
      ...(keys && coordinatorKey ? { proof: keyProof(keys, coordinatorKey, registrationContext(this.options.machine, keys.publicKey)) } : {}),
      t: 'register',
      machine: this.options.machine,
      labels: this.options.labels,
      version: CLUSTER_PROTOCOL_VERSION,
      pid: process.pid,
      dataAddress: this.dataAddress,
      publicKey: this.options.keys?.publicKey ?? '',
      parts: this.reports(),
    };
  }

  /** Registers again (held messages wait for the answer). */
  private register(): void {
    if (this.closed) return;
    this.queue.push(encode(this.registration()));
    if (!this.sending) void this.pump();
  }

  /** What this daemon runs, for the coordinator it registers with. */
  private reports(): PartReport[] {
    return [...this.runs.values()].map(({ run, spec, exports, endHeard }) => {
      const { launched: _, ...state } = run.partState();
      return { spec, ...(exports ? { exports } : {}), logDir: run.logDir, startedAt: run.startedAt.toISOString(), ...state, endHeard };
    });
  }

  /** The coordinator is gone: hold what the parts tell it; parts it was still creating end (nobody would launch them). */
  private goOffline(why: string): void {
    if (!this.online || this.closed) return;
    this.online = false;
    this.offlineSince = performance.now();
    for (const { run } of this.runs.values()) if (!run.partState().launched) run.receive({ t: 'kill' });
    const running = [...this.runs.values()].filter((p) => !p.run.partState().result).length;
    this.options.log(`lost the coordinator (${why}): the ${running} part(s) running here keep running; what they tell it is held until it answers again`);
  }

  /** Accepted by a coordinator again: send what was held. */
  private comeBack(refused: readonly { dataflow: string; why: string }[]): void {
    for (const r of refused) this.options.log(`the coordinator did not take over dataflow ${r.dataflow}: ${r.why}`);
    this.lastRefusal = '';
    if (this.online) return;
    this.online = true;
    const dropped = this.held.dropped;
    const held = this.held.take();
    for (const m of held) this.send(m);
    this.options.log(`registered with the coordinator again after ${Math.round(performance.now() - this.offlineSince)} ms: reported ${this.runs.size} part(s), sent ${held.length} held message(s)${dropped > 0 ? `, ${dropped} dropped (more than ${HELD_MAX} held)` : ''}`);
  }

  private hold(message: DaemonMessage): void {
    if (message.t !== 'part') return; // heartbeats, answers to requests of a coordinator that is gone
    this.held.push(message);
  }

  private async nextMessage(timeoutMs: number): Promise<CoordinatorMessage | undefined> {
    const timer = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs).unref());
    const message = this.dealer.receive().then(([frame]) => decode<CoordinatorMessage>(frame), () => undefined);
    return Promise.race([message, timer]);
  }

  private send(message: DaemonMessage): void {
    if (this.closed) return;
    if (this.registered && !this.online) return this.hold(message);
    if (message.t === 'part' && message.message.t === 'finished') {
      const part = this.runs.get(message.dataflow);
      if (part) part.endHeard = true;
    }
    this.queue.push(encode(message));
    if (!this.sending) void this.pump();
  }

  private async pump(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0 && !this.closed) {
      try {
        await this.dealer.send(this.queue.shift()!);
      } catch {
        // closed
      }
    }
    this.sending = false;
  }

  private runningNodes(): number {
    return [...this.runs.values()].reduce((sum, { run }) => sum + run.nodeOutcomes().filter((n) => n.status === 'running').length, 0);
  }

  private async serve(): Promise<void> {
    try {
      for await (const [frame] of this.dealer) {
        const message = decode<CoordinatorMessage>(frame);
        if (message) await this.handle(message);
      }
    } catch {
      // closed
    }
  }

  private async handle(message: CoordinatorMessage): Promise<void> {
    switch (message.t) {
      case 'refused':
        // a coordinator that does not know this daemon (it restarted, or lost us): hold, register again; its CLIs' watches were the old one's
        for (const w of this.watches.values()) w.stop();
        if (!message.message.startsWith('not registered') && message.message !== this.lastRefusal) this.options.log(`the coordinator refused this daemon: ${message.message}`);
        this.lastRefusal = message.message;
        if (this.online) {
          this.goOffline(message.message);
          this.register();
        }
        break;
      case 'registered':
        this.comeBack(message.refused ?? []);
        break;
      case 'prepare':
        await this.prepare(message.spec);
        break;
      case 'launch': {
        const run = this.runs.get(message.dataflow)?.run;
        if (run) void run.launchPart(message.exports).catch((err: Error) => this.options.log(`dataflow ${message.dataflow}: ${err.message}`));
        break;
      }
      case 'part':
        this.runs.get(message.dataflow)?.run.receive(message.message);
        break;
      case 'drop':
        await this.drop(message.dataflow);
        break;
      case 'logs': {
        const run = this.runs.get(message.dataflow)?.run;
        this.send(run ? { t: 'logs', dataflow: message.dataflow, request: message.request, text: run.readLogs(message.node) } : { t: 'logs', dataflow: message.dataflow, request: message.request, error: `machine ${this.options.machine} has no part of dataflow ${message.dataflow}` });
        break;
      }
      case 'observe': {
        const run = this.runs.get(message.dataflow)?.run;
        const reply = run ? (message.what === 'metrics' ? run.metrics() : run.topics()) : undefined;
        this.send(reply ? { t: 'observed', request: message.request, reply } : { t: 'observed', request: message.request, error: `machine ${this.options.machine} has no part of dataflow ${message.dataflow}` });
        break;
      }
      case 'watch':
        this.watch(message);
        break;
      case 'unwatch':
        this.watches.get(message.watch)?.stop();
        break;
      case 'shutdown':
        this.options.log('the coordinator is shutting down: stopping the dataflows here');
        await Promise.all([...this.runs.values()].map((p) => p.run.stop()));
        // it heard every part end before it said so: none is reported to the next coordinator
        for (const [id, p] of this.runs) if (p.run.partState().result) this.runs.delete(id);
        break;
    }
  }

  /** Runs the tool against this machine's part; its lines go to the coordinator until it ends. */
  private watch(message: Extract<CoordinatorMessage, { t: 'watch' }>): void {
    const run = this.runs.get(message.dataflow)?.run;
    const [node, output] = [message.topic.slice(0, message.topic.indexOf('/')), message.topic.slice(message.topic.indexOf('/') + 1)];
    const refusal = !run
      ? `machine ${this.options.machine} has no part of dataflow ${message.dataflow}`
      : !run.dataflow.nodes.some((n) => n.id === node && n.outputs.includes(output))
        ? `dataflow ${message.dataflow} has no output "${message.topic}"`
        : watchArgsRefusal(message.tool, message.args);
    if (refusal || !run) {
      this.send({ t: 'watched', watch: message.watch, lines: [], ended: { code: null, error: refusal } });
      return;
    }
    const watch = new Watch(message.tool, run.runFolderId, message.topic, message.args, (lines, dropped, ended) => {
      if (ended) this.watches.delete(message.watch);
      this.send({ t: 'watched', watch: message.watch, lines, ...(dropped > 0 ? { dropped } : {}), ...(ended ? { ended } : {}) });
    }, () => this.queue.length < WATCH_QUEUE_LIMIT);
    this.watches.set(message.watch, watch);
  }

  /**
   * The coordinator declared this machine lost (it was stopped, or cut off, for longer than
   * the heartbeats allow): whatever part of the dataflow still runs here is stale. Its nodes
   * are killed, and it reports nothing more (a replacement part may take its place).
   */
  private async drop(dataflow: string): Promise<void> {
    const run = this.runs.get(dataflow)?.run;
    if (!run) return;
    this.runs.delete(dataflow);
    this.muted.add(run);
    if (run.status === 'running' || run.status === 'stopping') this.options.log(`dataflow ${dataflow}: this machine was declared lost; killing its stale part here`);
    await run.killNodes();
  }

  private async prepare(spec: PartSpec): Promise<void> {
    if (spec.rejoin) await this.drop(spec.dataflow);
    let run: DataflowRun | undefined;
    const send = (m: DaemonMessage) => {
      if (!run || !this.muted.has(run)) this.send(m);
    };
    try {
      const dataflow = parseDescriptor(spec.yaml, spec.file, spec.workingDir, { checkPaths: false });
      const prepared = await DataflowRun.prepare(dataflow, {
        name: spec.name,
        outDir: this.options.outDir,
        onLine: (line) => send({ t: 'part', dataflow: spec.dataflow, message: { t: 'line', line } }),
        ...(spec.exitWhenNodesFinish !== undefined ? { exitWhenNodesFinish: spec.exitWhenNodesFinish } : {}),
        part: {
          id: spec.dataflow,
          machine: this.options.machine,
          placement: new Map(Object.entries(spec.placement)),
          ...(this.options.keys ? { keys: this.options.keys } : {}),
          dataAddress: this.dataAddress,
          send: (message) => send({ t: 'part', dataflow: spec.dataflow, message }),
          ...(spec.rejoin ? { rejoin: spec.rejoin } : {}),
        },
      });
      run = prepared.run;
      const exports = prepared.exports;
      const current = run;
      this.runs.set(spec.dataflow, { run, spec, ...(exports ? { exports } : {}), endHeard: false });
      void run.finished.then(() => this.forgetLater(spec.dataflow, current));
      send({ t: 'prepared', dataflow: spec.dataflow, ...(exports ? { exports } : {}), logDir: run.logDir });
    } catch (err) {
      send({ t: 'prepared', dataflow: spec.dataflow, error: `machine ${this.options.machine}: ${(err as Error).message}` });
    }
  }

  /** Forgets an ended part a while after a coordinator heard of its end (until then, it is reported at each registration). */
  private forgetLater(dataflow: string, run: DataflowRun): void {
    setTimeout(() => {
      if (this.runs.get(dataflow)?.run !== run) return; // dropped, or replaced by a newer part
      if (this.online) this.runs.delete(dataflow);
      else this.forgetLater(dataflow, run);
    }, FORGET_AFTER_MS).unref();
  }
}

/** The local address this machine uses to reach host:port (what other machines of that network reach it at). */
function localAddressTowards(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(5000, () => (socket.destroy(), reject(new DoraError(`cannot reach the coordinator at ${host}:${port} (timed out)`, { code: ErrorCode.CONTROL }))));
    socket.once('connect', () => {
      const address = socket.localAddress ?? '127.0.0.1';
      socket.destroy();
      resolve(address.replace(/^::ffff:/, ''));
    });
    socket.once('error', (err) => reject(new DoraError(`cannot reach the coordinator at ${host}:${port}: ${err.message}`, { code: ErrorCode.CONTROL })));
  });
}
