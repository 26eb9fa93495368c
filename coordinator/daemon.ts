/**
 * The daemon side of one dataflow run on this machine: spawns the nodes, answers
 * their registration, holds the start barrier, drives the built-in timers, turns
 * process exits into INPUT_CLOSED notices, and stops nodes (STOP, then SIGTERM,
 * then SIGKILL). Data never flows through here: nodes publish to each other
 * directly; the daemon only tells each node whom to subscribe to.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { HybridClock } from '../protocol/clock';
import {
  NODE_CONFIG_ENV,
  PROTOCOL_VERSION,
  endpoints,
  eventTopic,
  outputTopic,
  timerTopic,
  type InputWiring,
  type NodeConfig,
} from '../protocol/config';
import { decodeNodeRequest, encodeControl, type DaemonEvent, type RegisterReply } from '../protocol/control';
import { EVENTS_TOPIC_PREFIX } from '../protocol/facts';
import { encodeTimerTick } from '../protocol/tick';
import type { ResolvedDataflow, ResolvedNode, TimerSource } from './dataflow';
import { LogStore, type LogLine } from './logs';
import { RunDir } from './rundir';
import { NodeProcess, commandFor, type Exit } from './spawner';
import { SEGMENT_PREFIX, unlinkDataflowSegments } from './segments';

export type RunStatus = 'running' | 'stopping' | 'succeeded' | 'failed' | 'stopped';
export type NodeStatus = 'running' | 'succeeded' | 'failed' | 'stopped';

export interface NodeOutcome {
  readonly id: string;
  readonly status: NodeStatus;
  /** For a finished node: exit code or signal, or why it could not start. */
  readonly detail?: string;
  /** The node's last stderr lines (most useful when it failed). */
  readonly stderrTail: readonly string[];
}

export interface RunResult {
  readonly id: string;
  readonly status: Exclude<RunStatus, 'running' | 'stopping'>;
  readonly nodes: readonly NodeOutcome[];
}

export interface RunOptions {
  /** Human name, unique among a coordinator's running dataflows. */
  readonly name?: string;
  /** Base folder for run folders; default `<dataflow dir>/out`. Logs go to `<base>/<id>/`. */
  readonly outDir?: string;
  /** Live log lines (e.g. printed by `dora run`). */
  readonly onLine?: (line: LogLine) => void;
  /** Extra environment for every node (after the process's own, before the node's `env`). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Grace after STOP before SIGTERM, and after SIGTERM before SIGKILL. */
export const DEFAULT_GRACE_MS = 2000;
const TERM_TO_KILL_MS = 1500;
/** How long a slow start is tolerated before the daemon names the nodes it is waiting for. */
const SLOW_START_WARNING_MS = 10_000;

interface NodeState {
  readonly spec: ResolvedNode;
  process?: NodeProcess;
  registered: boolean;
  ready: boolean;
  eventsSubscribed: boolean;
  outputsClosed: boolean;
  exit?: Exit;
  status: NodeStatus;
  detail?: string;
}

export class DataflowRun {
  readonly id: string;
  readonly name: string | undefined;
  readonly startedAt = new Date();
  readonly logs: LogStore;
  readonly finished: Promise<RunResult>;
  private statusValue: RunStatus = 'running';
  private readonly nodes = new Map<string, NodeState>();
  private readonly router = new zmq.Router();
  private readonly events = new zmq.XPublisher();
  private readonly clock = new HybridClock();
  private readonly ep: ReturnType<typeof endpoints>;
  private readonly runDir: RunDir;
  private readonly timerSubscriptions = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Events for nodes whose event subscription has not reached us yet. */
  private readonly pendingEvents = new Map<string, DaemonEvent[]>();
  private started = false;
  private stopRequested = false;
  private slowStartTimer?: NodeJS.Timeout;
  private finish!: (result: RunResult) => void;
  private result?: RunResult;

  private constructor(
    readonly dataflow: ResolvedDataflow,
    private readonly options: RunOptions,
  ) {
    this.id = randomUUID();
    this.name = options.name;
    this.runDir = new RunDir(this.id);
    this.ep = endpoints(this.runDir.path, dataflow.nodes.map((n) => n.id));
    this.logs = new LogStore(path.join(options.outDir ?? path.join(dataflow.workingDir, 'out'), this.id));
    if (options.onLine) this.logs.subscribe(options.onLine);
    this.finished = new Promise((resolve) => (this.finish = resolve));
    for (const spec of dataflow.nodes) {
      this.nodes.set(spec.id, { spec, registered: false, ready: false, eventsSubscribed: false, outputsClosed: false, status: 'running' });
    }
  }

  /** Binds the daemon's sockets and spawns every node; resolves once all are spawned. */
  static async start(dataflow: ResolvedDataflow, options: RunOptions = {}): Promise<DataflowRun> {
    const run = new DataflowRun(dataflow, options);
    await run.launch();
    return run;
  }

  get status(): RunStatus {
    return this.statusValue;
  }

  /** Current per-node state (also while running). */
  nodeOutcomes(): NodeOutcome[] {
    return [...this.nodes.values()].map((n) => ({
      id: n.spec.id,
      status: n.status,
      detail: n.detail,
      stderrTail: this.logs.stderrTail(n.spec.id),
    }));
  }

  /**
   * Stops the dataflow: every node gets STOP; nodes still running after `graceMs`
   * get SIGTERM, and SIGKILL shortly after. Resolves when every node has exited.
   */
  async stop(graceMs = DEFAULT_GRACE_MS): Promise<RunResult> {
    if (!this.result && !this.stopRequested) {
      this.stopRequested = true;
      this.statusValue = 'stopping';
      this.stopTimers();
      for (const n of this.nodes.values()) if (n.status === 'running') this.publish(n.spec.id, { t: 'stop', cause: 'MANUAL' });
      const term = setTimeout(() => this.signalAll('SIGTERM'), graceMs);
      const kill = setTimeout(() => this.signalAll('SIGKILL'), graceMs + TERM_TO_KILL_MS);
      void this.finished.then(() => {
        clearTimeout(term);
        clearTimeout(kill);
      });
    }
    return this.finished;
  }

  /** Kills every node at once (SIGKILL), e.g. on a second Ctrl-C. */
  kill(): Promise<RunResult> {
    this.stopRequested = true;
    this.statusValue = 'stopping';
    this.stopTimers();
    this.signalAll('SIGKILL');
    return this.finished;
  }

  private async launch(): Promise<void> {
    this.router.linger = 0;
    this.events.linger = 0;
    this.events.verbosity = 'allSubs'; // every subscriber's subscription is reported, not just the first per topic
    this.runDir.create();
    await this.router.bind(this.ep.daemonRequests);
    await this.events.bind(this.ep.daemonEvents);
    void this.serveRequests();
    void this.watchSubscriptions();

    const descriptorFile = path.join(this.logs.dir, 'dataflow.json');
    fs.writeFileSync(descriptorFile, JSON.stringify(this.dataflow.raw, null, 2), { mode: 0o600 });
    for (const state of this.nodes.values()) this.spawn(state, descriptorFile);
    this.slowStartTimer = setTimeout(() => this.warnSlowStart(), SLOW_START_WARNING_MS);
    this.slowStartTimer.unref();
  }

  private spawn(state: NodeState, descriptorFile: string): void {
    const spec = state.spec;
    const config = this.configFor(spec, descriptorFile);
    const env = { ...process.env, ...this.options.env, ...spec.env, [NODE_CONFIG_ENV]: JSON.stringify(config) };
    const proc = new NodeProcess({
      command: commandFor(spec, env),
      cwd: this.dataflow.workingDir,
      env,
      onLine: (stream, line) => this.logs.append({ node: spec.id, stream, line }),
    });
    state.process = proc;
    void proc.exited.then((exit) => this.onExit(state, exit));
  }

  private configFor(spec: ResolvedNode, descriptorFile: string): NodeConfig {
    const inputs: InputWiring[] = spec.inputs.map((input) =>
      input.source.kind === 'timer'
        ? { id: input.id, queueSize: input.queueSize, endpoint: this.ep.daemonEvents, topic: timerTopic(input.source.name), source: input.source.name, dropEndpoint: null }
        : {
            id: input.id,
            queueSize: input.queueSize,
            endpoint: this.ep.nodeData(input.source.node),
            topic: outputTopic(input.source.node, input.source.output),
            source: `${input.source.node}/${input.source.output}`,
            dropEndpoint: this.ep.nodeDrops(input.source.node),
          },
    );
    const subscribers: Record<string, string[]> = {};
    for (const output of spec.outputs) {
      subscribers[output] = this.dataflow.nodes
        .filter((n) => n.inputs.some((i) => i.source.kind === 'node' && i.source.node === spec.id && i.source.output === output))
        .map((n) => n.id);
    }
    return {
      protocolVersion: PROTOCOL_VERSION,
      dataflowId: this.id,
      nodeId: spec.id,
      daemonPid: process.pid,
      daemonRequests: this.ep.daemonRequests,
      daemonEvents: this.ep.daemonEvents,
      dataEndpoint: spec.outputs.length > 0 ? this.ep.nodeData(spec.id) : null,
      dropEndpoint: spec.outputs.length > 0 ? this.ep.nodeDrops(spec.id) : null,
      sharedMemoryThreshold: this.dataflow.sharedMemoryThreshold,
      segmentPrefix: `${SEGMENT_PREFIX}${this.id}-`,
      outputs: spec.outputs,
      subscribers,
      inputs,
      nodeDescriptor: spec.raw,
      dataflowDescriptorFile: descriptorFile,
    };
  }

  private async serveRequests(): Promise<void> {
    try {
      for await (const [identity, frame] of this.router) {
        const request = decodeNodeRequest(frame);
        if (!request) continue; // malformed: no reply, nothing to misread
        const state = this.nodes.get(request.node);
        if (!state) continue;
        switch (request.t) {
          case 'register': {
            const reply: RegisterReply =
              request.version === PROTOCOL_VERSION
                ? { t: 'ok' }
                : { t: 'error', message: `protocol version ${request.version} is not supported by this daemon (it speaks version ${PROTOCOL_VERSION}); use matching dora-ts versions` };
            state.registered = reply.t === 'ok';
            await this.router.send([identity, encodeControl(reply)]);
            break;
          }
          case 'ready':
            state.ready = true;
            this.maybeStart();
            break;
          case 'log':
            this.logs.append({ node: state.spec.id, stream: 'log', line: `[${request.level}]${request.target ? ` ${request.target}:` : ''} ${request.message}` });
            break;
          case 'outputs-closed':
            state.outputsClosed = true;
            break;
          case 'closing':
            // Served in order: every earlier request of this node has been handled.
            await this.router.send([identity, encodeControl({ t: 'ok' })]);
            break;
        }
      }
    } catch {
      // socket closed at the end of the run
    }
  }

  private async watchSubscriptions(): Promise<void> {
    try {
      for await (const [frame] of this.events) {
        if (frame.length === 0 || frame[0] !== 1) continue; // 1 = subscribe, 0 = unsubscribe
        const topic = frame.subarray(1).toString('utf8');
        const node = topic.startsWith(EVENTS_TOPIC_PREFIX) ? topic.slice(EVENTS_TOPIC_PREFIX.length, -1) : undefined;
        const state = node !== undefined ? this.nodes.get(node) : undefined;
        if (state) {
          state.eventsSubscribed = true;
          for (const event of this.pendingEvents.get(state.spec.id) ?? []) this.publish(state.spec.id, event);
          this.pendingEvents.delete(state.spec.id);
        } else this.timerSubscriptions.set(topic, (this.timerSubscriptions.get(topic) ?? 0) + 1);
        this.maybeStart();
      }
    } catch {
      // socket closed at the end of the run
    }
  }

  /** The start barrier: every live node is ready and subscribed to its events and timers. */
  private maybeStart(): void {
    if (this.started || this.stopRequested) return;
    const live = [...this.nodes.values()].filter((n) => n.status === 'running');
    if (!live.every((n) => n.ready && n.eventsSubscribed)) return;
    for (const timer of this.dataflow.timers) {
      const users = live.filter((n) => n.spec.inputs.some((i) => i.source.kind === 'timer' && i.source.name === timer.name)).length;
      if ((this.timerSubscriptions.get(timerTopic(timer.name)) ?? 0) < users) return;
    }
    this.started = true;
    clearTimeout(this.slowStartTimer);
    for (const n of live) this.publish(n.spec.id, { t: 'start' });
    for (const timer of this.dataflow.timers) this.startTimer(timer);
  }

  private startTimer(timer: TimerSource): void {
    const topic = Buffer.from(timerTopic(timer.name));
    const intervalMs = Number(timer.intervalNs) / 1e6;
    const origin = performance.now();
    let tick = 0;
    let sent = 0n;
    const schedule = () => {
      // Deadlines are computed from the origin so the rate does not drift; missed ticks are skipped, not bursted.
      const now = performance.now();
      tick = Math.max(tick + 1, Math.floor((now - origin) / intervalMs) + 1);
      const handle = setTimeout(fire, Math.max(0, origin + tick * intervalMs - performance.now()));
      this.timers.push(handle);
    };
    const fire = () => {
      if (this.stopRequested || this.result) return;
      this.timers.length = 0;
      void this.events.send([topic, encodeTimerTick(this.clock.now(), sent++)]).catch(() => undefined);
      schedule();
    };
    schedule();
  }

  private stopTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private publish(node: string, event: DaemonEvent): void {
    if (!this.nodes.get(node)?.eventsSubscribed) {
      // PUB drops what it sends before the subscription has arrived: hold it until then.
      const pending = this.pendingEvents.get(node) ?? [];
      pending.push(event);
      this.pendingEvents.set(node, pending);
      return;
    }
    void this.events.send([eventTopic(node), encodeControl(event)]).catch(() => undefined);
  }

  private onExit(state: NodeState, exit: Exit): void {
    state.exit = exit;
    const id = state.spec.id;
    if (exit.spawnError) {
      state.status = 'failed';
      const unbuilt = state.spec.build !== undefined && (exit.spawnError as NodeJS.ErrnoException).code === 'ENOENT';
      state.detail = `could not be started: ${exit.spawnError.message}${unbuilt ? ` (it has a build command: run \`dora build ${this.dataflow.file}\` first)` : ''}`;
    } else if (exit.code === 0) {
      state.status = 'succeeded';
      state.detail = 'exited with status 0';
    } else {
      state.status = this.stopRequested ? 'stopped' : 'failed';
      state.detail = exit.signal ? `killed by ${exit.signal}` : `exited with status ${exit.code}`;
    }
    if (state.status === 'failed') {
      this.logs.append({ node: id, stream: 'log', line: `[error] node ${id} ${state.detail}` });
      if (!this.started && !this.stopRequested) {
        // A dataflow that cannot start completely does not start at all.
        this.logs.append({ node: id, stream: 'log', line: `[error] stopping the dataflow: node ${id} failed before the dataflow started` });
        void this.stop();
      }
    }

    // Downstream inputs whose sender left without closing them cleanly get INPUT_CLOSED from here.
    if (!state.outputsClosed) {
      for (const other of this.nodes.values()) {
        if (other.status !== 'running') continue;
        const inputs = other.spec.inputs.filter((i) => i.source.kind === 'node' && i.source.node === id).map((i) => i.id);
        if (inputs.length > 0) this.publish(other.spec.id, { t: 'inputs-closed', inputs, reason: `node ${id} ${state.detail}` });
      }
    }
    {
      // Its publishers may still be waiting for its subscriptions at the barrier, and
      // may hold shared-memory samples on its account: it holds nothing any more.
      for (const other of this.nodes.values()) {
        if (other.status === 'running' && state.spec.inputs.some((i) => i.source.kind === 'node' && i.source.node === other.spec.id)) {
          this.publish(other.spec.id, { t: 'peer-exited', node: id });
        }
      }
    }
    this.maybeStart(); // an exited node no longer holds the barrier
    if ([...this.nodes.values()].every((n) => n.status !== 'running')) void this.complete();
  }

  private signalAll(signal: NodeJS.Signals): void {
    for (const n of this.nodes.values()) if (n.status === 'running') n.process?.kill(signal);
  }

  private warnSlowStart(): void {
    const waiting = [...this.nodes.values()].filter((n) => n.status === 'running' && !(n.ready && n.eventsSubscribed)).map((n) => n.spec.id);
    if (waiting.length === 0) return;
    for (const id of waiting) {
      this.logs.append({ node: id, stream: 'log', line: `[warn] dataflow has not started after ${SLOW_START_WARNING_MS / 1000}s: still waiting for this node to connect through the node API` });
    }
  }

  private async complete(): Promise<void> {
    if (this.result) return;
    this.stopTimers();
    clearTimeout(this.slowStartTimer);
    const nodes = this.nodeOutcomes();
    const status = nodes.some((n) => n.status === 'failed') ? 'failed' : this.stopRequested ? 'stopped' : 'succeeded';
    this.result = { id: this.id, status, nodes };
    this.statusValue = status;
    this.router.close();
    this.events.close();
    // Nodes unlink their own segments on the way out; this catches those of nodes that crashed.
    const leftovers = unlinkDataflowSegments(this.id);
    if (leftovers.length > 0) this.logs.append({ node: 'dora', stream: 'log', line: `[info] removed ${leftovers.length} shared-memory segment(s) left by nodes that did not exit cleanly` });
    this.runDir.remove();
    this.logs.close();
    this.finish(this.result);
  }
}

/** A one-paragraph report of a failed run: each failed node, its exit and its last stderr lines. */
export function describeFailure(result: RunResult): string {
  const failed = result.nodes.filter((n) => n.status === 'failed');
  return failed
    .map((n) => {
      const tail = n.stderrTail.length > 0 ? `\n  last stderr lines:\n${n.stderrTail.map((l) => `    ${l}`).join('\n')}` : '';
      return `node "${n.id}" failed: ${n.detail ?? 'unknown'}${tail}`;
    })
    .join('\n');
}
