/**
 * `dora daemon`: the daemon of one machine of a cluster. It registers with the coordinator
 * (DEALER over TCP, CURVE with this daemon's keys and the coordinator's public key), sends
 * heartbeats, and runs the parts of dataflows the coordinator places here: each a
 * DataflowRun of the nodes on this machine, whose messages for the other machines go back
 * through the coordinator. A refused or unanswered registration ends it with the reason
 * (usually: its key is not authorised, or the coordinator's key is wrong).
 */
import * as net from 'node:net';
import * as zmq from 'zeromq';
import { DataflowRun } from '../daemon';
import { parseDescriptor } from '../descriptor';
import { DoraError, ErrorCode } from '../errors';
import { decode, encode, CLUSTER_PROTOCOL_VERSION, type CoordinatorMessage, type DaemonMessage, type PartSpec } from './messages';
import type { KeyPair } from './keys';
import { HEARTBEAT_MS } from './server';

/** How long registration may take before the daemon gives up with a diagnosis. */
const REGISTER_TIMEOUT_MS = 5000;

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
  private readonly runs = new Map<string, DataflowRun>();
  private readonly queue: Buffer[] = [];
  private sending = false;
  private heartbeat?: NodeJS.Timeout;
  private registered = false;
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
    if (keys && coordinatorKey) {
      this.dealer.curveServerKey = coordinatorKey;
      this.dealer.curvePublicKey = keys.publicKey;
      this.dealer.curveSecretKey = keys.secretKey;
    }
    this.dealer.connect(`tcp://${host}:${port}`);
    const answer = this.nextMessage(REGISTER_TIMEOUT_MS);
    this.register();
    const reply = await answer;
    if (!reply) {
      this.close();
      const why = keys
        ? `is this daemon's public key ${keys.publicKey} authorised there (\`dora cluster authorize ${keys.publicKey}\` on the coordinator's machine), and is --coordinator-key the coordinator's public key?`
        : 'is it running with --insecure too?';
      throw new DoraError(`the coordinator at ${host}:${port} did not accept this daemon within ${REGISTER_TIMEOUT_MS / 1000} s: ${why}`, { code: ErrorCode.CONTROL });
    }
    if (reply.t === 'refused') {
      this.close();
      throw new DoraError(`the coordinator at ${host}:${port} refused this daemon: ${reply.message}`, { code: ErrorCode.CONTROL });
    }
    this.registered = true;
    this.options.log(`registered with the coordinator at ${host}:${port} as machine ${this.options.machine} (data address ${this.dataAddress})`);
    this.heartbeat = setInterval(() => this.send({ t: 'heartbeat', nodes: this.runningNodes() }), HEARTBEAT_MS);
    void this.serve();
  }

  /** Stops every part running here (their nodes get STOP, then signals), then disconnects. */
  async shutdown(graceMs?: number): Promise<void> {
    await Promise.all([...this.runs.values()].map((run) => run.stop(graceMs)));
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.dealer.close();
    this.end();
  }

  private register(): void {
    this.send({
      t: 'register',
      machine: this.options.machine,
      labels: this.options.labels,
      version: CLUSTER_PROTOCOL_VERSION,
      pid: process.pid,
      dataAddress: this.dataAddress,
      publicKey: this.options.keys?.publicKey ?? '',
    });
  }

  private async nextMessage(timeoutMs: number): Promise<CoordinatorMessage | undefined> {
    const timer = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs).unref());
    const message = this.dealer.receive().then(([frame]) => decode<CoordinatorMessage>(frame), () => undefined);
    return Promise.race([message, timer]);
  }

  private send(message: DaemonMessage): void {
    if (this.closed) return;
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
    return [...this.runs.values()].reduce((sum, run) => sum + run.nodeOutcomes().filter((n) => n.status === 'running').length, 0);
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
        // a coordinator that does not know us (it restarted): register again
        if (this.registered) this.register();
        break;
      case 'registered':
        break;
      case 'prepare':
        await this.prepare(message.spec);
        break;
      case 'launch': {
        const run = this.runs.get(message.dataflow);
        if (run) void run.launchPart(message.exports).catch((err: Error) => this.options.log(`dataflow ${message.dataflow}: ${err.message}`));
        break;
      }
      case 'part':
        this.runs.get(message.dataflow)?.receive(message.message);
        break;
      case 'logs': {
        const run = this.runs.get(message.dataflow);
        this.send(run ? { t: 'logs', dataflow: message.dataflow, request: message.request, text: run.readLogs(message.node) } : { t: 'logs', dataflow: message.dataflow, request: message.request, error: `machine ${this.options.machine} has no part of dataflow ${message.dataflow}` });
        break;
      }
      case 'shutdown':
        this.options.log('the coordinator is shutting down: stopping the dataflows here');
        await Promise.all([...this.runs.values()].map((run) => run.stop()));
        break;
    }
  }

  private async prepare(spec: PartSpec): Promise<void> {
    const send = (m: DaemonMessage) => this.send(m);
    try {
      const dataflow = parseDescriptor(spec.yaml, spec.file, spec.workingDir, { checkPaths: false });
      const { run, exports } = await DataflowRun.prepare(dataflow, {
        name: spec.name,
        outDir: this.options.outDir,
        onLine: (line) => send({ t: 'part', dataflow: spec.dataflow, message: { t: 'line', line } }),
        ...(spec.exitWhenNodesFinish !== undefined ? { exitWhenNodesFinish: spec.exitWhenNodesFinish } : {}),
        part: {
          id: spec.dataflow,
          machine: this.options.machine,
          placement: new Map(Object.entries(spec.placement)),
          dataAddress: this.dataAddress,
          send: (message) => send({ t: 'part', dataflow: spec.dataflow, message }),
        },
      });
      this.runs.set(spec.dataflow, run);
      void run.finished.then(() => setTimeout(() => this.runs.delete(spec.dataflow), 60_000).unref());
      send({ t: 'prepared', dataflow: spec.dataflow, ...(exports ? { exports } : {}), logDir: run.logDir });
    } catch (err) {
      send({ t: 'prepared', dataflow: spec.dataflow, error: `machine ${this.options.machine}: ${(err as Error).message}` });
    }
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
