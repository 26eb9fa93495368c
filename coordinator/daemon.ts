/**
 * The daemon side of one dataflow run on this machine: spawns the nodes, answers
 * their registration, holds the start barrier, drives the built-in timers, turns
 * process exits into INPUT_CLOSED notices, and stops nodes (STOP, then SIGTERM,
 * then SIGKILL). Data never flows through here: nodes publish to each other
 * directly; the daemon only tells each node whom to subscribe to. Dynamic nodes
 * (coordinator/dynamic.ts) are not spawned: their processes join and leave.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
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
import { decodeNodeRequest, encodeControl, type DaemonEvent, type NodeRequest, type RegisterReply } from '../protocol/control';
import { EVENTS_TOPIC_PREFIX } from '../protocol/facts';
import { encodeTimerTick } from '../protocol/tick';
import type { ResolvedDataflow, ResolvedNode, TimerSource } from './dataflow';
import { DoraError, ErrorCode } from './errors';
import { pinned } from './affinity';
import { LogStore, readLogs, type LogLine } from './logs';
import { LogRouting } from './logrouting';
import { RunDir, startTime } from './rundir';
import { SendQueue } from './sendqueue';
import { arrowFormat, formatPortType } from './types';
import { NodeProcess, commandFor, type Exit } from './spawner';
import { STOP_ALL_PREFIX, runtimeCommand } from './operators';
import { SEGMENT_PREFIX, unlinkDataflowSegments } from './segments';
import { ProcessWatch, isRunning, joinedProcess, type JoinedProcess } from './dynamic';
import { Taps, tapNodeConfig } from './taps';
import { Metrics, describeTopics, type MetricsReply, type TopicsReply } from './metrics';
import { RunControl, type RunControlRequest } from './runcontrol';
import type { Placement } from './placement';
import type { ExportEndpoint, NodeStatusUpdate, PartMessage, RejoinSpec } from './cluster/messages';
import { remoteReceivers } from './cluster/crossings';
import { partKeyPair, type KeyPair } from './cluster/keys';

export type RunStatus = 'running' | 'stopping' | 'succeeded' | 'failed' | 'stopped';
/**
 * `restarting`: exited, to be started again under its restart policy. `waiting`: a dynamic
 * node that is not in the dataflow (it has not joined yet, or has left); it may join while
 * the dataflow runs, and does not hold it open.
 */
export type NodeStatus = 'running' | 'restarting' | 'waiting' | 'succeeded' | 'failed' | 'stopped';

export interface NodeOutcome {
  readonly id: string;
  readonly status: NodeStatus;
  /** For a finished node: exit code or signal, or why it could not start. */
  readonly detail?: string;
  /** The node's last stderr lines (most useful when it failed). */
  readonly stderrTail: readonly string[];
  /** How many times it was restarted (a dynamic node: joined again). */
  readonly restarts: number;
  /** Its current process, while it runs. */
  readonly pid?: number;
  /** A planned stop had to kill it (SIGKILL after the grace period). */
  readonly killed?: boolean;
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
  /** Overrides the descriptor's `exit_when_nodes_finish` (`dora run --exit-when-nodes-finish`). */
  readonly exitWhenNodesFinish?: boolean;
  /** This run is one machine's part of a dataflow spread over several (coordinator/cluster/). */
  readonly part?: PartOptions;
}

/**
 * One machine's part of a dataflow: it spawns the nodes placed on `machine` and mirrors the
 * others' status; what concerns nodes elsewhere goes through `send` (to the coordinator,
 * which relays it to their part), and what the other parts say comes in through receive().
 */
export interface PartOptions {
  /** The dataflow's id, shared by all its parts. */
  readonly id: string;
  readonly machine: string;
  readonly placement: Placement;
  /** This daemon's CURVE keys: the part's data key pair is derived from them (keys.ts partKeyPair); a random one without. */
  readonly keys?: KeyPair;
  /** The address other machines reach this one's nodes' data sockets on. */
  readonly dataAddress: string;
  readonly send: (message: PartMessage) => void;
  /** A replacement part for a machine that was lost and came back: it joins the running dataflow. */
  readonly rejoin?: RejoinSpec;
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
  /** Has been sent `start` (its current process). */
  started: boolean;
  exit?: Exit;
  status: NodeStatus;
  detail?: string;
  /** Restarts so far, and those of the current restart window (which began at windowStart). */
  restarts: number;
  windowRestarts: number;
  windowStart?: number;
  restartTimer?: NodeJS.Timeout;
  /** Senders that have not yet said they count this restarted node as a holder again. */
  awaitingSenders: Set<string>;
  /** Last request from the node (health checks). */
  lastSeen: number;
  /** Why the daemon killed it, when it did. */
  killReason?: 'health' | 'stop-timeout';
  /** `dora node stop` / `dora node restart`: what to do when it has exited. */
  manual?: 'stop' | 'restart';
  /** A dynamic node's joins so far, and its process while it is in the dataflow. */
  joins: number;
  joined?: JoinedProcess;
  /** A dynamic node that registered during start-up: announced to its peers once the dataflow has started. */
  joinPending: boolean;
  /** exit_when_nodes_finish: its timers and `dora/logs` inputs have been closed. */
  drained?: boolean;
}

export class DataflowRun {
  readonly id: string;
  readonly name: string | undefined;
  readonly startedAt = new Date();
  readonly logs: LogStore;
  readonly finished: Promise<RunResult>;
  /** exit_when_nodes_finish, as the descriptor or the caller says. */
  readonly exitWhenNodesFinish: boolean;
  private statusValue: RunStatus = 'running';
  private readonly nodes = new Map<string, NodeState>();
  private readonly router = new zmq.Router();
  private readonly events = new zmq.XPublisher();
  /** Everything published on `events`, in order (events, ticks, inputs the daemon feeds). */
  private readonly outbox = new SendQueue(this.events);
  private readonly clock = new HybridClock();
  private readonly ep: ReturnType<typeof endpoints>;
  private readonly runDir: RunDir;
  /** Subscriptions seen per topic: timers' and those of the inputs the daemon feeds (logrouting.ts). */
  private readonly timerSubscriptions = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Printed lines and log records: filtered, routed to inputs, written. */
  private readonly routing: LogRouting;
  /** Events for nodes whose event subscription has not reached us yet. */
  private readonly pendingEvents = new Map<string, DaemonEvent[]>();
  private started = false;
  private stopRequested = false;
  private slowStartTimer?: NodeJS.Timeout;
  private healthTimer?: NodeJS.Timeout;
  private descriptorFile = '';
  /** Joined dynamic nodes' processes: one that ends has left the dataflow. */
  private readonly processWatch = new ProcessWatch<NodeState>((state) => this.leave(state, 'left: its process ended without closing the node'));
  private readonly daemonStartTime = startTime(process.pid) ?? null;
  /** Tools reading an output (dora topic echo, ...): taps.ts. */
  /** Each node's reported counters, and its process's CPU and memory: `metrics`. */
  private readonly observed: Metrics;
  /** The run's own control endpoint (metrics, topics, logs, stop): also there under `dora run`. */
  private readonly control = new RunControl((request) => this.answerControl(request));
  private readonly taps = new Taps({
    refusal: (node, output) => this.tapRefusal(node, output),
    publishToNode: (node, event) => this.publish(node, event),
    publishToTap: (id, event) => this.outbox.send([eventTopic(id), encodeControl(event)]),
    running: (node) => {
      const state = this.nodes.get(node);
      return state?.status === 'running' && (state.process !== undefined || state.joined !== undefined);
    },
  });
  private finish!: (result: RunResult) => void;
  private result?: RunResult;
  /** Names this machine's run folder and shared-memory segments: the dataflow's id, or for a part sharing its host with another part, one of its own (RunDir.claim). */
  private readonly localId: string;
  private readonly part?: PartOptions;
  /**
   * A part: its CURVE key pair (made at prepare, written for its nodes into the run folder at
   * launch), the endpoints its senders with receivers elsewhere bind, and what the other parts
   * said at prepare (their keys, their senders' endpoints).
   */
  private partKeys?: KeyPair;
  private readonly ownEndpoints = new Map<string, string>();
  private otherParts: readonly ExportEndpoint[] = [];
  /** A part: it has told the coordinator its nodes are at the barrier, and the coordinator said start. */
  private readySent = false;
  private startGranted = false;
  /** A part: launchPart() was called (before that, nothing runs and a stop just ends it). */
  private launched = false;

  private constructor(
    readonly dataflow: ResolvedDataflow,
    private readonly options: RunOptions,
  ) {
    this.part = options.part;
    this.id = this.part?.id ?? randomUUID();
    this.runDir = this.part ? RunDir.claim(this.id, randomUUID()) : new RunDir(this.id);
    this.localId = this.runDir.dataflowId;
    this.name = options.name;
    this.ep = endpoints(this.runDir.path, dataflow.nodes.map((n) => n.id));
    this.logs = new LogStore(path.join(options.outDir ?? path.join(dataflow.workingDir, 'out'), this.id));
    if (options.onLine) this.logs.subscribe(options.onLine);
    this.exitWhenNodesFinish = options.exitWhenNodesFinish ?? dataflow.exitWhenNodesFinish;
    const part = this.part;
    this.routing = new LogRouting(
      dataflow,
      this.logs,
      (frames) => this.outbox.send(frames),
      () => this.clock.now(),
      part && {
        isLocal: (node) => part.placement.get(node) === part.machine,
        forward: (receiver, input, texts, end) => part.send({ t: 'routed', receiver, input, texts, ...(end ? { end } : {}) }),
      },
    );
    this.finished = new Promise((resolve) => (this.finish = resolve));
    this.observed = new Metrics(dataflow, () => this.nodeOutcomes());
    for (const spec of dataflow.nodes) {
      this.nodes.set(spec.id, {
        spec,
        registered: false,
        ready: false,
        eventsSubscribed: false,
        outputsClosed: false,
        started: false,
        status: spec.dynamic ? 'waiting' : 'running',
        restarts: 0,
        windowRestarts: 0,
        awaitingSenders: new Set(),
        lastSeen: 0,
        joins: 0,
        joinPending: false,
      });
    }
    if (this.part?.rejoin) this.rejoinFrom(this.part.rejoin);
  }

  /**
   * A replacement part starts from the dataflow as it is: every node's last known status
   * (its own nodes that had ended stay ended and are not spawned), and the restart counts of
   * the nodes it respawns (respawn() counts this one), so that each announces itself as a
   * restart when it registers.
   */
  private rejoinFrom(rejoin: RejoinSpec): void {
    for (const update of rejoin.statuses) {
      const state = this.nodes.get(update.node);
      if (state) Object.assign(state, { status: update.status, detail: update.detail, outputsClosed: update.outputsClosed, restarts: update.restarts });
    }
    for (const [id, counts] of Object.entries(rejoin.respawn)) {
      const state = this.nodes.get(id);
      if (!state || !this.isLocal(state)) continue;
      Object.assign(state, { status: 'restarting', restarts: counts.restarts - 1, windowRestarts: counts.windowRestarts, windowStart: performance.now() });
    }
  }

  /** Binds the daemon's sockets and spawns every node; resolves once all are spawned. */
  static async start(dataflow: ResolvedDataflow, options: RunOptions = {}): Promise<DataflowRun> {
    const run = new DataflowRun(dataflow, options);
    try {
      await run.launch();
    } catch (err) {
      await run.abort();
      throw err;
    }
    return run;
  }

  /**
   * A machine's part of a dataflow, first step: makes the part's key pair and reserves, for
   * each of its nodes with receivers on other machines, the TCP port that node binds on
   * every (re)start; says both (the other parts' nodes need them in their configuration).
   */
  static async prepare(dataflow: ResolvedDataflow, options: RunOptions & { part: PartOptions }): Promise<{ run: DataflowRun; exports?: ExportEndpoint }> {
    const run = new DataflowRun(dataflow, options);
    try {
      const { placement, machine, dataAddress, rejoin } = options.part;
      run.partKeys = options.part.keys ? partKeyPair(options.part.keys, options.part.id) : zmq.curveKeyPair();
      for (const spec of dataflow.nodes) {
        if (placement.get(spec.id) !== machine || Object.keys(run.remoteOutputs(spec)).length === 0) continue;
        // a replacement part takes back its lost part's endpoints: receivers elsewhere reconnect there
        const before = rejoin?.endpoints[spec.id];
        run.ownEndpoints.set(spec.id, before !== undefined ? await reclaimPort(before, dataAddress, spec.id) : await reservePort(dataAddress, spec.id));
      }
      return { run, exports: { machine, serverKey: run.partKeys.publicKey, endpoints: Object.fromEntries(run.ownEndpoints) } };
    } catch (err) {
      await run.abort();
      throw err;
    }
  }

  /**
   * Second step, once every part is prepared: spawns this machine's nodes, whose
   * configurations name the other parts' keys and senders' endpoints. A part that cannot
   * launch ends at once, failed, and says so (the coordinator then stops the others).
   */
  async launchPart(exports: readonly ExportEndpoint[]): Promise<void> {
    if (this.launched || this.result) return;
    this.launched = true;
    try {
      const { placement, machine } = this.part!;
      this.otherParts = exports.filter((e) => e.machine !== machine);
      for (const spec of this.dataflow.nodes) {
        const there = placement.get(spec.id)!;
        if (there === machine || Object.keys(this.remoteOutputs(spec)).length === 0) continue;
        if (!this.otherParts.some((e) => e.machine === there && e.endpoints[spec.id]))
          throw new DoraError(`machine ${there} reserved no data endpoint for node "${spec.id}", yet nodes of other machines receive from it`, { code: ErrorCode.SYSTEM });
      }
      await this.launch();
    } catch (err) {
      await this.abort();
      this.endUnlaunched(`could not be started on machine ${this.part!.machine}: ${(err as Error).message}`);
    }
  }

  /** A part that never ran its nodes (it failed to launch, or was stopped before): its result, all its nodes failed or stopped. */
  private endUnlaunched(detail: string, status: 'failed' | 'stopped' = 'failed'): void {
    if (this.result) return;
    const nodes = this.localNodes().map((n) => ({ id: n.spec.id, status, detail, stderrTail: [], restarts: 0 }));
    this.result = { id: this.id, status, nodes };
    this.statusValue = status;
    this.part?.send({ t: 'finished', result: this.result });
    this.finish(this.result);
  }

  /** Undoes a launch that failed half-way: nothing it started may outlive it. */
  private async abort(): Promise<void> {
    this.stopRequested = true;
    this.stopTimers();
    this.processWatch.close();
    this.taps.close();
    this.observed.close();
    this.control.close();
    clearTimeout(this.slowStartTimer);
    clearInterval(this.healthTimer);
    const spawned = [...this.nodes.values()].flatMap((n) => (n.process ? [n.process] : []));
    for (const p of spawned) p.kill('SIGKILL');
    await Promise.all(spawned.map((p) => p.exited));
    if (this.result) return; // every node had been spawned and has exited: complete() cleaned up
    this.router.close();
    this.events.close();
    unlinkDataflowSegments(this.localId);
    this.runDir.remove();
    this.logs.close();
  }

  get status(): RunStatus {
    return this.statusValue;
  }

  /** Current per-node state (also while running). */
  nodeOutcomes(): NodeOutcome[] {
    return this.localNodes().map((n) => ({
      id: n.spec.id,
      status: n.status,
      detail: n.detail,
      stderrTail: this.logs.stderrTail(n.spec.id),
      restarts: n.spec.dynamic ? Math.max(0, n.joins - 1) : n.restarts,
      ...(n.status === 'running' && (n.process ?? n.joined) !== undefined ? { pid: (n.process ?? n.joined)!.pid } : {}),
      ...(n.killReason === 'stop-timeout' ? { killed: true } : {}),
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
      for (const n of this.localNodes()) {
        if (n.status === 'running') this.publish(n.spec.id, { t: 'stop', cause: 'MANUAL' });
        else if (n.status === 'restarting') this.finalize(n, `${n.detail ?? 'exited'}; not restarted: the dataflow is stopping`); // restarts are cancelled by a stop
      }
      const term = setTimeout(() => this.signalAll('SIGTERM'), graceMs);
      const kill = setTimeout(() => (this.signalAll('SIGKILL', 'stop-timeout'), this.abandonDynamic()), graceMs + TERM_TO_KILL_MS);
      void this.finished.then(() => {
        clearTimeout(term);
        clearTimeout(kill);
      });
      this.maybeComplete(); // nothing may be running: no dynamic node has joined a dataflow of dynamic nodes
    }
    return this.finished;
  }

  /**
   * A stale part (its machine was declared lost and it came back, clusterrun.ts): every node
   * killed at once; resolves when their processes have exited (the run then ends on its own).
   */
  async killNodes(): Promise<void> {
    const processes = this.localNodes().flatMap((n) => (n.process ? [n.process.exited] : []));
    void this.kill();
    await Promise.all(processes);
  }

  /** Kills every node at once (SIGKILL), e.g. on a second Ctrl-C. */
  kill(): Promise<RunResult> {
    this.stopRequested = true;
    this.statusValue = 'stopping';
    this.stopTimers();
    for (const n of this.localNodes()) if (n.status === 'restarting') this.finalize(n, `${n.detail ?? 'exited'}; not restarted: the dataflow was killed`);
    this.signalAll('SIGKILL');
    this.abandonDynamic();
    this.maybeComplete();
    return this.finished;
  }

  /** The run's own control requests (runcontrol.ts), as the coordinator answers them. */
  private answerControl(request: RunControlRequest): object {
    switch (request.cmd) {
      case 'metrics':
        return this.metrics();
      case 'topics':
        return this.topics();
      case 'logs':
        if (request.node !== undefined && !this.nodeIds().includes(request.node)) return { ok: false, error: `dataflow ${this.id} has no node "${request.node}" (nodes: ${this.nodeIds().join(', ')})` };
        return { ok: true, text: this.readLogs(request.node), logDir: this.logs.dir };
      case 'stop':
        void this.stop(request.graceMs);
        return { ok: true };
    }
  }

  /** What `dora top` and the web view show (coordinator/metrics.ts). */
  metrics(): MetricsReply {
    return this.observed.snapshot();
  }

  /** Every output with its readers and traffic (`dora topic list/info`). */
  topics(): TopicsReply {
    return describeTopics(
      this.dataflow,
      this.observed,
      this.taps.counts(),
      (node) => this.routing.routedOutputs(this.nodes.get(node)!.spec),
      (node, output) => {
        const type = this.nodes.get(node)!.spec.outputTypes[output];
        return type === undefined ? null : formatPortType(type);
      },
    );
  }

  /** The name of this machine's run folder (for a part, not the dataflow's id): what `dora topic` finds it by here. */
  get runFolderId(): string {
    return this.localId;
  }

/** Where its node logs are written. */
  get logDir(): string {
    return this.logs.dir;
  }

  /** One node's log, or every node's (of this machine: a part's folder holds only its own), merged in time order. */
  readLogs(node?: string): string {
    return readLogs(this.logs.dir, node);
  }

  /** The ids of the nodes, in descriptor order. */
  nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  /**
   * Stops one node (`dora node stop`): STOP, then SIGTERM and SIGKILL after the grace
   * period. It is not restarted; its receivers see its inputs close.
   */
  stopNode(id: string, graceMs = DEFAULT_GRACE_MS): void {
    const state = this.running(id);
    state.manual = 'stop';
    this.escalate(state, graceMs);
  }

  /**
   * Restarts one node (`dora node restart`) whatever its restart policy: STOP, then
   * SIGTERM and SIGKILL after the grace period, then a new process at once. Does not
   * count towards `max_restarts`.
   */
  restartNode(id: string, graceMs = DEFAULT_GRACE_MS): void {
    const state = this.running(id);
    if (state.spec.dynamic) {
      throw new DoraError(`node "${id}" is a dynamic node: the daemon did not start its process and cannot restart it; stop it (\`dora node stop\`) and start it again by hand`, {
        code: ErrorCode.INVALID_ARGUMENT,
      });
    }
    if (!this.started) throw new DoraError(`node "${id}" cannot be restarted before the dataflow has started`, { code: ErrorCode.INVALID_ARGUMENT });
    state.manual = 'restart';
    this.escalate(state, graceMs, true);
  }

  private running(id: string): NodeState {
    const state = this.nodes.get(id);
    if (!state) throw new DoraError(`no node "${id}" in this dataflow (nodes: ${this.nodeIds().join(', ')})`, { code: ErrorCode.INVALID_ARGUMENT });
    if (!this.isLocal(state)) throw new DoraError(`node "${id}" runs on machine ${this.machineOf(id)}, not here`, { code: ErrorCode.INVALID_ARGUMENT });
    if (this.result || this.stopRequested) throw new DoraError(`the dataflow is ${this.statusValue}`, { code: ErrorCode.INVALID_ARGUMENT });
    if (state.status !== 'running') throw new DoraError(`node "${id}" is not running (${state.status}${state.detail ? `: ${state.detail}` : ''})`, { code: ErrorCode.INVALID_ARGUMENT });
    return state;
  }

  private escalate(state: NodeState, graceMs: number, restarting = false): void {
    const proc = state.process;
    this.publish(state.spec.id, { t: 'stop', cause: 'MANUAL', ...(restarting ? { restarting } : {}) });
    const term = setTimeout(() => proc?.kill('SIGTERM'), graceMs);
    const kill = setTimeout(() => {
      if (proc?.running) state.killReason = 'stop-timeout';
      proc?.kill('SIGKILL');
    }, graceMs + TERM_TO_KILL_MS);
    void proc?.exited.then(() => (clearTimeout(term), clearTimeout(kill)));
  }

  private async launch(): Promise<void> {
    this.router.linger = 0;
    this.events.linger = 0;
    this.events.verbosity = 'allSubs'; // every subscriber's subscription is reported, not just the first per topic
    this.events.sendHighWaterMark = 0; // an XPUB drops at its high-water mark: never an end of stream of a routed output
    const dynamic = this.localNodes().filter((n) => n.spec.dynamic);
    const control = `ipc://${path.join(this.runDir.path, 'control')}`;
    this.runDir.create({ name: this.name ?? null, requests: this.ep.daemonRequests, control, dynamicNodes: dynamic.map((n) => n.spec.id), file: this.dataflow.file, ...(this.part ? { part: { dataflow: this.part.id, machine: this.part.machine } } : {}) });
    if (this.partKeys) fs.writeFileSync(this.keyFile(), JSON.stringify(this.partKeys) + '\n', { mode: 0o600, flag: 'wx' });
    await this.router.bind(this.ep.daemonRequests);
    await this.control.bind(control);
    await this.events.bind(this.ep.daemonEvents);
    void this.serveRequests();
    void this.watchSubscriptions();

    this.descriptorFile = path.join(this.logs.dir, 'dataflow.json');
    fs.writeFileSync(this.descriptorFile, JSON.stringify(this.dataflow.raw, null, 2), { mode: 0o600 });
    for (const state of this.localNodes()) {
      if (state.spec.dynamic) continue;
      if (this.part?.rejoin) {
        if (state.status === 'restarting') this.respawn(state); // a replacement part: the nodes it brings back, as restarts
      } else this.spawn(state);
    }
    // Senders neither wait for a dynamic node that has not joined nor count it among their samples' holders.
    for (const d of dynamic) {
      for (const sender of new Set(d.spec.inputs.flatMap((i) => (i.source.kind === 'node' ? [i.source.node] : [])))) {
        if (!this.nodes.get(sender)!.spec.dynamic) this.pendingEvent(sender, { t: 'peer-exited', node: d.spec.id });
      }
    }
    this.maybeStart(); // a dataflow of dynamic nodes only has nothing to wait for
    this.slowStartTimer = setTimeout(() => this.warnSlowStart(), SLOW_START_WARNING_MS);
    this.slowStartTimer.unref();
    if (this.dataflow.nodes.some((n) => n.healthCheckTimeoutMs !== undefined)) {
      this.healthTimer = setInterval(() => this.checkHealth(), this.dataflow.healthCheckIntervalMs);
      this.healthTimer.unref();
    }
  }

  private spawn(state: NodeState): void {
    const spec = state.spec;
    Object.assign(state, { registered: false, ready: false, eventsSubscribed: false, outputsClosed: false, started: false, exit: undefined, killReason: undefined, manual: undefined, detail: undefined });
    state.status = 'running';
    const config = this.configFor(spec, this.descriptorFile, state.restarts);
    const env = { ...process.env, ...this.options.env, ...spec.env, [NODE_CONFIG_ENV]: JSON.stringify(config) };
    const base = spec.operators ? runtimeCommand(spec.operators, env) : commandFor(spec, env);
    const command = spec.cpuAffinity ? pinned(base, spec.cpuAffinity) : base;
    if (command instanceof Error) {
      state.process = undefined;
      void Promise.resolve().then(() => this.onExit(state, { code: null, signal: null, spawnError: command }));
      return;
    }
    const proc = new NodeProcess({
      command,
      cwd: spec.deploy?.workingDir !== undefined ? path.resolve(this.dataflow.workingDir, spec.deploy.workingDir) : this.dataflow.workingDir,
      env,
      onLine: (stream, line) => this.routing.printed(spec.id, stream, line),
    });
    state.process = proc;
    void proc.exited.then((exit) => this.onExit(state, exit));
    this.broadcast(state);
  }

  private configFor(spec: ResolvedNode, descriptorFile: string, restartCount: number): NodeConfig {
    const inputs: InputWiring[] = spec.inputs.map((input) => {
      const timeoutMs = input.timeoutMs ?? 0;
      const routed = this.routing.topicOf(spec.id, input.id);
      if (routed !== undefined || input.source.kind === 'logs') {
        // fed by the daemon (logrouting.ts), on its events socket like a timer
        const source = input.source.kind === 'node' ? `${input.source.node}/${input.source.output}` : input.source.name;
        return { id: input.id, queueSize: input.queueSize, endpoint: this.ep.daemonEvents, topic: routed!, source, dropEndpoint: null, timeoutMs, restartable: false };
      }
      if (input.source.kind === 'timer') {
        const topic = timerTopic(input.source.name);
        return { id: input.id, queueSize: input.queueSize, endpoint: this.ep.daemonEvents, topic, source: input.source.name, dropEndpoint: null, timeoutMs, restartable: false };
      }
      const sender = this.nodes.get(input.source.node)!.spec;
      if (!this.isLocal(this.nodes.get(sender.id)!)) {
        // from another machine: straight from the sender, over TCP with CURVE (remote.servers has its key), inline
        const endpoint = this.otherParts.find((e) => e.machine === this.machineOf(sender.id))?.endpoints[sender.id];
        if (endpoint === undefined) throw new DoraError(`no data endpoint for node "${sender.id}" on machine ${this.machineOf(sender.id)}`, { code: ErrorCode.SYSTEM });
        const topic = outputTopic(sender.id, input.source.output);
        return { id: input.id, queueSize: input.queueSize, endpoint, topic, source: `${sender.id}/${input.source.output}`, dropEndpoint: null, timeoutMs, restartable: sender.restart.policy !== 'never' || sender.dynamic };
      }
      return {
        id: input.id,
        queueSize: input.queueSize,
        endpoint: this.ep.nodeData(sender.id),
        topic: outputTopic(sender.id, input.source.output),
        source: `${sender.id}/${input.source.output}`,
        dropEndpoint: this.ep.nodeDrops(sender.id),
        timeoutMs,
        // a dynamic sender's end of stream does not close the input either: it may join again
        restartable: sender.restart.policy !== 'never' || sender.dynamic,
      };
    });
    // Only the daemon sends on routed outputs: the node's own code does not have them.
    const routedOutputs = this.routing.routedOutputs(spec);
    const outputs = spec.outputs.filter((o) => !routedOutputs.includes(o));
    const subscribers: Record<string, string[]> = {};
    for (const output of outputs) {
      subscribers[output] = this.dataflow.nodes
        .filter((n) => n.inputs.some((i) => i.source.kind === 'node' && i.source.node === spec.id && i.source.output === output))
        .map((n) => n.id);
    }
    return {
      protocolVersion: PROTOCOL_VERSION,
      dataflowId: this.id,
      nodeId: spec.id,
      daemonPid: process.pid,
      daemonStartTime: this.daemonStartTime,
      dynamic: spec.dynamic,
      daemonRequests: this.ep.daemonRequests,
      daemonEvents: this.ep.daemonEvents,
      dataEndpoint: outputs.length > 0 ? this.ep.nodeData(spec.id) : null,
      dropEndpoint: outputs.length > 0 ? this.ep.nodeDrops(spec.id) : null,
      sharedMemoryThreshold: this.dataflow.sharedMemoryThreshold,
      segmentPrefix: `${SEGMENT_PREFIX}${this.localId}-`,
      outputs,
      subscribers,
      inputs,
      nodeDescriptor: spec.raw,
      dataflowDescriptorFile: descriptorFile,
      restartCount,
      outputTypes: Object.fromEntries(
        Object.entries(spec.outputTypes).flatMap(([output, type]) => {
          const format = arrowFormat(type);
          return format === undefined ? [] : [[output, { urn: formatPortType(type), format }]];
        }),
      ),
      healthCheckTimeoutMs: spec.healthCheckTimeoutMs ?? 0,
      remote: this.remoteWiring(spec, outputs),
    };
  }

  private async serveRequests(): Promise<void> {
    try {
      for await (const [identity, frame] of this.router) {
        const request = decodeNodeRequest(frame);
        if (!request) continue; // malformed: no reply, nothing to misread
        if (request.t === 'dynamic-config') {
          await this.router.send([identity, this.dynamicConfig(request.node, request.version)]);
          continue;
        }
        if (request.t === 'tap') {
          await this.router.send([identity, this.tapConfig(request.source, request.version)]);
          continue;
        }
        if (Taps.isTap(request.node)) {
          await this.serveTap(identity, request);
          continue;
        }
        const state = this.nodes.get(request.node);
        if (!state) continue;
        if (request.t !== 'stats') state.lastSeen = performance.now(); // sent by the core's watchdog thread: no sign the node's code lives
        switch (request.t) {
          case 'register': {
            const refusal = request.version !== PROTOCOL_VERSION ? versionRefusal(request.version) : state.spec.dynamic ? this.joinRefusal(state) : undefined;
            const reply: RegisterReply = refusal ? { t: 'error', message: refusal } : { t: 'ok' };
            if (!state.spec.dynamic || !refusal) state.registered = !refusal; // a second process refused leaves the joined one be
            await this.router.send([identity, encodeControl(reply)]);
            if (refusal) break;
            if (state.spec.dynamic) this.join(state, request.pid);
            else if (state.restarts > 0) this.announceRestart(state);
            break;
          }
          case 'ready':
            state.ready = true;
            this.maybeStart();
            break;
          case 'heartbeat':
            break; // lastSeen is all it is for
          case 'stats':
            this.observed.report(state.spec.id, (state.process ?? state.joined)?.pid, request.outputs, request.inputs);
            break;
          case 'restart-seen': {
            const peer = typeof request.peer === 'string' ? this.nodes.get(request.peer) : undefined;
            if (peer && !this.isLocal(peer)) this.part!.send({ t: 'restart-seen', node: state.spec.id, peer: peer.spec.id });
            else if (peer?.awaitingSenders.delete(state.spec.id)) this.maybeStart();
            this.taps.seen(state.spec.id, request.peer);
            break;
          }
          case 'log':
            this.routing.record({
              node: state.spec.id,
              level: request.level,
              message: request.message,
              ...(request.target ? { target: request.target } : {}),
              ...(request.fields ? { fields: request.fields } : {}),
            });
            // an operator returned STOP_ALL (operators.ts): its runtime asks for the dataflow to stop
            if (state.spec.operators && request.message.startsWith(STOP_ALL_PREFIX)) this.stopAll();
            break;
          case 'outputs-closed':
            state.outputsClosed = true;
            break;
          case 'closing':
            // Served in order: every earlier request of this node has been handled.
            await this.router.send([identity, encodeControl({ t: 'ok' })]);
            if (state.spec.dynamic) this.leave(state, 'left the dataflow');
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
        if (node !== undefined && Taps.isTap(node)) this.taps.subscribed(node);
        else if (state) {
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

  /**
   * The start barrier: every live spawned node is ready and subscribed to its events and
   * timers (dynamic nodes are not waited for). Afterwards, each restarted or joining node
   * starts once it is ready and every sender of it counts it as a holder again.
   */
  private maybeStart(): void {
    if (this.stopRequested) return;
    if (!this.started) {
      const live = this.localNodes().filter((n) => n.status === 'running' && !n.spec.dynamic);
      // a replacement part's respawned nodes are late: they subscribe to their inputs only once started (the core)
      const early = live.filter((n) => n.restarts === 0);
      if (!live.every((n) => n.ready && n.eventsSubscribed) || !early.every((n) => this.routesSubscribed(n))) return;
      for (const timer of this.dataflow.timers) {
        const users = early.filter((n) => n.spec.inputs.some((i) => i.source.kind === 'timer' && i.source.name === timer.name)).length;
        if ((this.timerSubscriptions.get(timerTopic(timer.name)) ?? 0) < users) return;
      }
      if (this.part && !this.startGranted) {
        // every machine's nodes must be at their barrier: the coordinator says when
        // (a sender's own barrier counts its receivers on other machines: node to node)
        if (!this.readySent) {
          this.readySent = true;
          this.part.send({ t: 'ready' });
        }
        return;
      }
      this.started = true;
      clearTimeout(this.slowStartTimer);
      for (const n of live) if (n.awaitingSenders.size === 0) this.startNode(n); // a replacement part's restarted nodes wait for their senders (below)
      for (const timer of this.dataflow.timers) this.startTimer(timer);
      this.routing.start();
      // Dynamic nodes that joined during start-up: their senders were at their own barriers until now.
      for (const n of this.nodes.values()) if (n.joinPending) (n.joinPending = false), this.announceRestart(n);
    }
    for (const n of this.localNodes()) {
      if (n.status === 'running' && !n.started && !n.joinPending && n.ready && n.eventsSubscribed && n.awaitingSenders.size === 0 && this.routesSubscribed(n)) {
        this.startNode(n);
      }
    }
  }

  /** The node has subscribed to every input the daemon feeds it (routed outputs, `dora/logs`). */
  private routesSubscribed(state: NodeState): boolean {
    return this.routing.topicsOf(state.spec.id).every((topic) => (this.timerSubscriptions.get(topic) ?? 0) > 0);
  }

  private startNode(state: NodeState): void {
    state.started = true;
    state.lastSeen = performance.now(); // health checks count from here
    this.publish(state.spec.id, { t: 'start' });
  }

  /**
   * A restarted node, or a dynamic node that joined, has registered: its senders count it as
   * a holder again (and say so: it is started once they all have), its receivers reopen
   * their inputs from it (on a dynamic node's first join they were open all along).
   */
  private announceRestart(state: NodeState): void {
    const id = state.spec.id;
    const first = state.spec.dynamic && state.joins === 1;
    state.awaitingSenders = new Set(
      state.spec.inputs.flatMap((i) =>
        i.source.kind === 'node' && this.nodes.get(i.source.node)?.status === 'running' && !this.routing.topicOf(id, i.id) ? [i.source.node] : [],
      ),
    );
    const told = new Set<string>();
    for (const other of this.nodes.values()) {
      if (other.status !== 'running' || other === state) continue;
      const receives = other.spec.inputs.some((i) => i.source.kind === 'node' && i.source.node === id);
      if ((receives && !first) || state.awaitingSenders.has(other.spec.id)) {
        told.add(other.spec.id);
        this.publish(other.spec.id, { t: 'node-restarted', node: id, ...(first ? { first } : {}) });
      }
    }
    for (const sender of state.awaitingSenders) if (!told.has(sender)) state.awaitingSenders.delete(sender);
    if (!state.spec.dynamic) this.logs.append({ node: id, stream: 'log', line: `[info] node ${id} restarted (restart ${state.restarts})` });
    this.maybeStart();
  }

  /** Why `node/output` cannot be tapped now (taps.ts), if it cannot. */
  private tapRefusal(node: string, output: string): string | undefined {
    const state = this.nodes.get(node);
    if (!state) return `dataflow ${this.id} has no node "${node}" (nodes: ${this.nodeIds().join(', ')})`;
    if (!state.spec.outputs.includes(output)) return `node "${node}" has no output "${output}" (outputs: ${state.spec.outputs.join(', ') || 'none'})`;
    const machine = this.part?.placement.get(node);
    if (this.part && machine !== this.part.machine) return `node "${node}" runs on machine ${machine}, not on this one (${this.part.machine}): a tap reads its sender's shared memory, on its machine (from the coordinator's machine, \`dora topic echo\` reads it there)`;
    if (this.routing.routedOutputs(state.spec).includes(output)) return `output "${node}/${output}" carries the node's printed lines or logs (send_stdout_as/send_logs_as): read them with dora logs`;
    if (this.stopRequested || this.result) return `the dataflow is ${this.statusValue}`;
    if (!this.started) return 'the dataflow has not started yet';
    if (state.status !== 'running' || !state.started) return `node "${node}" is not running (${state.status}${state.detail ? `: ${state.detail}` : ''})`;
    return undefined;
  }

  /** A tap's configuration (`tap`, docs/protocol.md 6.2), or why not. */
  private tapConfig(source: string, version: number): Buffer {
    if (version !== PROTOCOL_VERSION) return encodeControl({ t: 'error', message: versionRefusal(version) });
    const tap = this.taps.create(source);
    if ('error' in tap) return encodeControl({ t: 'error', message: tap.error });
    const config = tapNodeConfig(tap, source, {
      dataflowId: this.id,
      daemonStartTime: this.daemonStartTime,
      daemonRequests: this.ep.daemonRequests,
      daemonEvents: this.ep.daemonEvents,
      senderData: this.ep.nodeData(tap.node),
      senderDrops: this.ep.nodeDrops(tap.node),
      sharedMemoryThreshold: this.dataflow.sharedMemoryThreshold,
      segmentPrefix: `${SEGMENT_PREFIX}${this.id}-`,
      descriptorFile: this.descriptorFile,
    });
    return Buffer.from(JSON.stringify(config));
  }

  /** A tap's requests: it registers, is ready, leaves; its counters and logs are its own business. */
  private async serveTap(identity: Buffer, request: Exclude<NodeRequest, { t: 'tap' }>): Promise<void> {
    const id = request.node;
    switch (request.t) {
      case 'register': {
        const refusal = request.version !== PROTOCOL_VERSION ? versionRefusal(request.version) : this.taps.register(id, request.pid);
        await this.router.send([identity, encodeControl(refusal ? { t: 'error', message: refusal } : { t: 'ok' })]);
        break;
      }
      case 'ready':
        this.taps.ready(id);
        break;
      case 'closing':
        await this.router.send([identity, encodeControl({ t: 'ok' })]);
        this.taps.leave(id);
        break;
    }
  }

  /** A dynamic node's configuration, or why it cannot join now (`dynamic-config`). */
  private dynamicConfig(node: string, version: number): Buffer {
    const state = this.nodes.get(node);
    const refuse = (message: string) => encodeControl({ t: 'error', message });
    if (!state?.spec.dynamic) {
      const dynamic = this.dataflow.nodes.filter((n) => n.dynamic).map((n) => n.id);
      return refuse(`dataflow ${this.id} has no dynamic node "${node}" (its dynamic nodes: ${dynamic.join(', ') || 'none'})`);
    }
    const refusal = version !== PROTOCOL_VERSION ? versionRefusal(version) : this.joinRefusal(state);
    return refusal ? refuse(refusal) : Buffer.from(JSON.stringify(this.configFor(state.spec, this.descriptorFile, state.joins)));
  }

  /** Why a dynamic node cannot join now, if it cannot. */
  private joinRefusal(state: NodeState): string | undefined {
    if (state.joined && !isRunning(state.joined)) this.leave(state, 'left: its process ended without closing the node');
    if (this.stopRequested || this.result) return `the dataflow is ${this.statusValue}`;
    if (state.status === 'running') return `dynamic node "${state.spec.id}" has joined already (pid ${state.joined?.pid}); close it there first`;
    return undefined;
  }

  /**
   * A dynamic node's process registered: it joins like a restarted node (announced to its
   * peers, started once its senders count it as a holder), told first which of its senders
   * have finished and which of its receivers are not there to wait for.
   */
  private join(state: NodeState, pid: number): void {
    const id = state.spec.id;
    Object.assign(state, { status: 'running', ready: false, started: false, outputsClosed: false, detail: undefined, manual: undefined });
    state.joined = joinedProcess(pid);
    state.joins++;
    this.processWatch.add(state, state.joined);
    const closed = state.spec.inputs.filter((i) => i.source.kind === 'node' && !this.mayStillSend(i.source.node)).map((i) => i.id);
    if (closed.length > 0) this.publish(id, { t: 'inputs-closed', inputs: closed, reason: 'their sender has finished' });
    for (const other of this.nodes.values()) {
      if (other.status === 'running' || other.status === 'restarting') continue;
      if (other.spec.inputs.some((i) => i.source.kind === 'node' && i.source.node === id)) this.publish(id, { t: 'peer-exited', node: other.spec.id });
    }
    this.logs.append({ node: id, stream: 'log', line: `[info] dynamic node ${id} joined (pid ${pid}${state.joins > 1 ? `, join ${state.joins}` : ''})` });
    this.broadcast(state);
    if (this.started) this.announceRestart(state);
    else state.joinPending = true;
  }

  /**
   * A dynamic node has left (closed, or its process ended): its senders release what they
   * hold for it. Its receivers' inputs from it stay open, as for a sender with a restart
   * policy: it may join again (they get NODE_RESTARTED then).
   */
  private leave(state: NodeState, detail: string): void {
    if (!state.spec.dynamic || state.status !== 'running') return;
    const id = state.spec.id;
    this.processWatch.remove(state);
    Object.assign(state, { status: 'waiting', joined: undefined, registered: false, ready: false, eventsSubscribed: false, started: false, joinPending: false, detail });
    this.pendingEvents.delete(id); // addressed to the process that left
    state.awaitingSenders.clear();
    for (const other of this.nodes.values()) other.awaitingSenders.delete(id);
    for (const other of this.nodes.values()) {
      if (other.status === 'running' && state.spec.inputs.some((i) => i.source.kind === 'node' && i.source.node === other.spec.id)) {
        this.publish(other.spec.id, { t: 'peer-exited', node: id });
      }
    }
    this.logs.append({ node: id, stream: 'log', line: `[info] dynamic node ${id} ${detail}` });
    this.broadcast(state);
    this.maybeStart();
    this.maybeComplete();
  }

  /** At the end of a stop: dynamic nodes still in the dataflow are let go, not killed (their processes are the user's). */
  private abandonDynamic(): void {
    for (const n of this.nodes.values()) {
      if (!n.spec.dynamic || n.status !== 'running') continue;
      this.logs.append({ node: n.spec.id, stream: 'log', line: `[warn] dynamic node ${n.spec.id} did not leave after STOP; the daemon does not kill processes it did not start` });
      this.leave(n, 'did not leave after STOP');
    }
  }

  /** Kills nodes with a health check that have been silent for longer than it allows. */
  private checkHealth(): void {
    const now = performance.now();
    for (const n of this.nodes.values()) {
      const timeout = n.spec.healthCheckTimeoutMs;
      if (timeout === undefined || n.status !== 'running' || !n.started || n.killReason || now - n.lastSeen <= timeout) continue;
      n.killReason = 'health';
      this.logs.append({ node: n.spec.id, stream: 'log', line: `[error] node ${n.spec.id} has given no sign of life for ${Math.round(now - n.lastSeen)} ms (health_check_timeout ${timeout} ms): killing it` });
      n.process?.kill('SIGKILL');
    }
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
      this.outbox.send([topic, encodeTimerTick(this.clock.now(), sent++)]);
      schedule();
    };
    schedule();
  }

  private stopTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private pendingEvent(node: string, event: DaemonEvent): void {
    if (!this.isLocal(this.nodes.get(node)!)) return this.part!.send({ t: 'event', node, event }); // its part holds it until it can be published
    const pending = this.pendingEvents.get(node) ?? [];
    pending.push(event);
    this.pendingEvents.set(node, pending);
  }

  private publish(node: string, event: DaemonEvent): void {
    const state = this.nodes.get(node);
    if (state && !this.isLocal(state)) return this.part!.send({ t: 'event', node, event });
    if (!state?.eventsSubscribed) {
      // PUB drops what it sends before the subscription has arrived: hold it until then.
      this.pendingEvent(node, event);
      return;
    }
    this.outbox.send([eventTopic(node), encodeControl(event)]);
  }

  private onExit(state: NodeState, exit: Exit): void {
    state.exit = exit;
    state.process = undefined;
    const id = state.spec.id;
    let failed = false;
    if (exit.spawnError) {
      failed = true;
      const missing = (exit.spawnError as NodeJS.ErrnoException).code === 'ENOENT';
      const unbuilt = state.spec.build !== undefined && missing;
      const hint = state.spec.operators && missing ? ' (the operator runtime is missing: build it with `make -C bindings/c`, or install the Python package for Python operators)' : unbuilt ? ` (it has a build command: run \`dora build ${this.dataflow.file}\` first)` : '';
      state.detail = `could not be started: ${exit.spawnError.message}${hint}`;
    } else if (state.killReason === 'health') {
      failed = true;
      state.detail = `killed after ${state.spec.healthCheckTimeoutMs} ms without a sign of life (health_check_timeout)`;
    } else if (exit.code === 0) {
      state.detail = 'exited with status 0';
    } else {
      failed = !this.stopRequested && state.manual === undefined;
      state.detail =
        state.killReason === 'stop-timeout'
          ? `did not stop within the grace period and was killed (SIGKILL)`
          : exit.signal
            ? `killed by ${exit.signal}`
            : `exited with status ${exit.code}`;
    }
    for (const other of this.nodes.values()) other.awaitingSenders.delete(id); // a gone sender holds nothing
    this.taps.senderExited(id);

    // Its senders may hold shared-memory samples on its account (and wait for its
    // subscription at the barrier): it holds nothing any more.
    for (const other of this.nodes.values()) {
      if (other.status === 'running' && state.spec.inputs.some((i) => i.source.kind === 'node' && i.source.node === other.spec.id)) {
        this.publish(other.spec.id, { t: 'peer-exited', node: id });
      }
    }

    const delayMs = this.restartDelay(state, failed);
    if (delayMs !== undefined) {
      state.status = 'restarting';
      this.broadcast(state);
      this.logs.append({ node: id, stream: 'log', line: `[${failed ? 'error' : 'info'}] node ${id} ${state.detail}; restarting it${delayMs > 0 ? ` in ${delayMs} ms` : ''}` });
      state.restartTimer = setTimeout(() => {
        state.restartTimer = undefined;
        if (state.status !== 'restarting') return;
        // the delay may have outlived the reasons to restart (a stop, closed inputs)
        const why = this.restartsDisabled(state);
        if (why) this.finalize(state, `${state.detail}; not restarted: ${why}`, failed);
        else this.respawn(state);
      }, delayMs);
      return;
    }
    if (!exit.spawnError && state.manual === 'stop') state.detail = `stopped by \`dora node stop\` (${state.detail})`;
    this.finalize(state, state.detail, failed);
  }

  /** The process of a node has ended for good: its outcome, its receivers told, maybe the run's end. */
  private finalize(state: NodeState, detail: string | undefined, failed = state.status === 'failed'): void {
    clearTimeout(state.restartTimer);
    const id = state.spec.id;
    const exit = state.exit;
    state.detail = detail;
    state.status = failed
      ? 'failed'
      : state.manual === 'stop'
        ? 'stopped'
        : exit && exit.code === 0 && !exit.spawnError
          ? 'succeeded'
          : this.stopRequested
            ? 'stopped'
            : 'failed';
    if (state.killReason === 'stop-timeout') this.logs.append({ node: id, stream: 'log', line: `[warn] node ${id} ${state.detail}` });
    if (state.status === 'failed') {
      this.logs.append({ node: id, stream: 'log', line: `[error] node ${id} ${state.detail}` });
      if (!this.started && !this.stopRequested) {
        // A dataflow that cannot start completely does not start at all.
        this.logs.append({ node: id, stream: 'log', line: `[error] stopping the dataflow: node ${id} failed before the dataflow started` });
        this.stopAll();
      }
    }

    this.broadcast(state);
    this.routing.finished(id); // inputs fed by its routed outputs end after its last line
    this.tellReceivers(state);
    this.maybeStart(); // an exited node no longer holds the barrier
    this.maybeComplete();
  }

  /**
   * A node has ended for good (here, or on another machine): this machine's receivers of it
   * are told. Here when the sender left without closing its outputs cleanly, when it has a
   * restart policy (its end of stream awaits this verdict), and when they are restarted
   * processes, which connect late and may have missed its end of stream.
   */
  private tellReceivers(state: NodeState): void {
    const id = state.spec.id;
    const restartable = state.spec.restart.policy !== 'never';
    for (const other of this.localNodes()) {
      if (other.status !== 'running') continue;
      const inputs = other.spec.inputs.filter((i) => i.source.kind === 'node' && i.source.node === id && !this.routing.topicOf(other.spec.id, i.id)).map((i) => i.id);
      if (state.status === 'failed' && other.spec.inputs.some((i) => i.source.kind === 'node' && i.source.node === id)) this.publish(other.spec.id, { t: 'node-failed', node: id });
      if (inputs.length > 0 && (!state.outputsClosed || restartable || other.restarts > 0 || other.spec.dynamic)) this.publish(other.spec.id, { t: 'inputs-closed', inputs, reason: `node ${id} ${state.detail}` });
      const clock = this.clockInputsToClose(other);
      if (clock.length > 0) {
        other.drained = true;
        this.publish(other.spec.id, { t: 'inputs-closed', inputs: clock, reason: 'exit_when_nodes_finish: every input it receives from other nodes has closed' });
      }
    }
  }

  /**
   * A run ends when none of its nodes is running or about to restart (a dynamic node that has
   * not joined, or has left, does not hold it), but a dataflow of dynamic nodes only runs
   * until it is stopped: joining and leaving is all its nodes do.
   */
  private maybeComplete(): void {
    const nodes = this.localNodes();
    if (nodes.some((n) => n.status === 'running' || n.status === 'restarting')) return;
    if (!this.stopRequested && nodes.every((n) => n.spec.dynamic)) return;
    void this.complete();
  }

  /** Whether a node may still send: it runs, will be restarted, or is dynamic (it may join again). */
  private mayStillSend(node: string): boolean {
    const state = this.nodes.get(node);
    return state !== undefined && (state.status === 'running' || state.status === 'restarting' || state.spec.dynamic);
  }

  /**
   * exit_when_nodes_finish: a node that receives from other nodes, all of which have
   * finished for good, has its timer and `dora/logs` inputs closed too (then all its inputs
   * are closed, and it stops with ALL_INPUTS_CLOSED). Nodes with no such input are sources.
   */
  private clockInputsToClose(state: NodeState): string[] {
    if (!this.exitWhenNodesFinish || state.drained) return [];
    const fed = state.spec.inputs.filter((i) => i.source.kind === 'node');
    if (fed.length === 0 || fed.some((i) => i.source.kind === 'node' && this.mayStillSend(i.source.node) && this.nodes.get(i.source.node) !== state)) return [];
    return state.spec.inputs.filter((i) => i.source.kind !== 'node').map((i) => i.id);
  }

  /** Why a node must not be restarted now, if it must not: dora's rules. */
  private restartsDisabled(state: NodeState): string | undefined {
    if (this.stopRequested || this.result) return 'the dataflow is stopping';
    if (state.manual === 'stop') return 'stopped by `dora node stop`';
    if (!this.started) return 'the dataflow had not started';
    const fed = state.spec.inputs.filter((i) => i.source.kind === 'node');
    if (fed.length > 0 && (fed.length === state.spec.inputs.length || this.exitWhenNodesFinish)) {
      const closed = fed.every((i) => {
        const sender = i.source.kind === 'node' ? this.nodes.get(i.source.node) : undefined;
        return sender !== undefined && sender !== state && !this.mayStillSend(sender.spec.id);
      });
      if (closed) return 'all its inputs have closed';
    }
    return undefined;
  }

  /** The delay before restarting an exited node, or undefined when it is not restarted (dora's order of checks). */
  private restartDelay(state: NodeState, failed: boolean): number | undefined {
    if (state.manual === 'restart' && !this.restartsDisabled(state)) return 0;
    const policy = state.spec.restart;
    if (policy.policy === 'never' || (policy.policy === 'on-failure' && !failed)) return undefined;
    const why = this.restartsDisabled(state);
    if (why) {
      if (!this.stopRequested) this.logs.append({ node: state.spec.id, stream: 'log', line: `[info] node ${state.spec.id} is not restarted: ${why}` });
      return undefined;
    }
    const now = performance.now();
    if (policy.windowMs !== undefined && state.windowStart !== undefined && now - state.windowStart >= policy.windowMs) {
      state.windowRestarts = 0;
      state.windowStart = undefined;
    }
    if (policy.maxRestarts > 0 && state.windowRestarts >= policy.maxRestarts) {
      state.detail = `${state.detail}; gave up after ${state.windowRestarts} restart(s) (max_restarts ${policy.maxRestarts})`;
      return undefined;
    }
    const delay = Math.min(policy.delayMs * 2 ** state.windowRestarts, policy.maxDelayMs ?? Infinity);
    state.windowRestarts++;
    state.windowStart ??= now;
    return delay;
  }

  private respawn(state: NodeState): void {
    state.restarts++;
    const id = state.spec.id;
    // Senders that finished while it was down: its new process would wait for their end of stream.
    const closed = state.spec.inputs.filter((i) => i.source.kind === 'node' && !this.mayStillSend(i.source.node)).map((i) => i.id);
    if (closed.length > 0) this.pendingEvent(id, { t: 'inputs-closed', inputs: closed, reason: 'their sender finished while this node was down' });
    // Its new process waits at its barrier for subscribers that will never come: say who is gone.
    for (const other of this.nodes.values()) {
      if (other.status === 'running' || other.status === 'restarting') continue;
      if (other.spec.inputs.some((i) => i.source.kind === 'node' && i.source.node === id)) this.pendingEvent(id, { t: 'peer-exited', node: other.spec.id });
    }
    // Its new process subscribes afresh to the inputs the daemon feeds, and is started once it has.
    for (const topic of this.routing.topicsOf(id)) this.timerSubscriptions.delete(topic);
    state.drained = false;
    this.spawn(state);
  }

  private signalAll(signal: NodeJS.Signals, reason?: NodeState['killReason']): void {
    for (const n of this.localNodes()) {
      if (n.status !== 'running' || !n.process?.running) continue;
      if (reason) n.killReason = reason;
      n.process.kill(signal);
    }
  }

  private warnSlowStart(): void {
    const waiting = this.localNodes().filter((n) => n.status === 'running' && !n.spec.dynamic && !(n.ready && n.eventsSubscribed)).map((n) => n.spec.id);
    if (waiting.length === 0) return;
    for (const id of waiting) {
      this.logs.append({ node: id, stream: 'log', line: `[warn] dataflow has not started after ${SLOW_START_WARNING_MS / 1000}s: still waiting for this node to connect through the node API` });
    }
  }

  private async complete(): Promise<void> {
    if (this.result) return;
    this.stopTimers();
    this.processWatch.close();
    this.taps.close();
    this.observed.close();
    this.control.close();
    clearTimeout(this.slowStartTimer);
    clearInterval(this.healthTimer);
    const nodes = this.nodeOutcomes();
    const status = nodes.some((n) => n.status === 'failed') ? 'failed' : this.stopRequested || nodes.some((n) => n.status === 'stopped') ? 'stopped' : 'succeeded';
    this.result = { id: this.id, status, nodes };
    this.statusValue = status;
    this.router.close();
    this.events.close();
    // Nodes unlink their own segments on the way out; this catches those of nodes that crashed.
    const leftovers = unlinkDataflowSegments(this.localId);
    if (leftovers.length > 0) this.logs.append({ node: 'dora', stream: 'log', line: `[info] removed ${leftovers.length} shared-memory segment(s) left by nodes that did not exit cleanly` });
    this.runDir.remove();
    this.logs.close();
    this.part?.send({ t: 'finished', result: this.result });
    this.finish(this.result);
  }

  // ---- one machine's part of a dataflow (coordinator/cluster/) ----------------------------

  /** A message from the other parts of the dataflow, through the coordinator. */
  receive(message: PartMessage): void {
    switch (message.t) {
      case 'event': {
        const state = this.nodes.get(message.node);
        if (state && this.isLocal(state) && !this.result) this.publish(message.node, message.event);
        break;
      }
      case 'status':
        this.mirror(message.update);
        break;
      case 'restart-seen':
        if (this.nodes.get(message.peer)?.awaitingSenders.delete(message.node)) this.maybeStart();
        break;
      case 'start':
        this.startGranted = true;
        this.maybeStart();
        break;
      case 'stop':
      case 'kill':
        if (!this.launched) void this.abort().then(() => this.endUnlaunched('the dataflow was stopped before it started here', 'stopped'));
        else if (message.t === 'stop') void this.stop(message.graceMs);
        else void this.kill();
        break;
      case 'routed': {
        const state = this.nodes.get(message.receiver);
        if (state && this.isLocal(state) && !this.result) this.routing.relayed(message.receiver, message.input, message.texts, message.end === true);
        break;
      }
      case 'node':
        try {
          if (message.action === 'stop') this.stopNode(message.node, message.graceMs);
          else this.restartNode(message.node, message.graceMs);
        } catch (err) {
          this.logs.append({ node: message.node, stream: 'log', line: `[warn] ${(err as Error).message}` });
        }
        break;
    }
  }

  /** A node of another machine changed status: mirrored here (restart and finishing rules read it), its end told to our receivers. */
  private mirror(update: NodeStatusUpdate): void {
    const state = this.nodes.get(update.node);
    if (!state || this.isLocal(state) || this.result) return;
    const ended = (s: NodeStatus) => s !== 'running' && s !== 'restarting';
    const was = state.status;
    Object.assign(state, { status: update.status, detail: update.detail, outputsClosed: update.outputsClosed, restarts: update.restarts });
    if (update.status !== 'running') for (const other of this.localNodes()) other.awaitingSenders.delete(state.spec.id);
    if (update.lost) {
      // it could not say so itself: its senders here stop waiting for it and release what it held
      for (const other of this.localNodes()) {
        if (other.status === 'running' && state.spec.inputs.some((i) => i.source.kind === 'node' && i.source.node === other.spec.id)) this.publish(other.spec.id, { t: 'peer-exited', node: state.spec.id });
      }
    }
    if (!ended(was) && ended(update.status) && update.lost) this.routing.finished(state.spec.id); // its part cannot end its routes any more
    if (!ended(was) && ended(update.status) && !state.spec.dynamic) this.tellReceivers(state);
    this.maybeStart();
    this.maybeComplete();
  }

  /** Tells the other parts a node of this machine changed status. */
  private broadcast(state: NodeState): void {
    if (!this.part || !this.isLocal(state)) return;
    this.part.send({ t: 'status', update: this.statusUpdate(state) });
  }

  private statusUpdate(state: NodeState): NodeStatusUpdate {
    const proc = state.process ?? state.joined;
    return {
      node: state.spec.id,
      status: state.status,
      ...(state.detail !== undefined ? { detail: state.detail } : {}),
      outputsClosed: state.outputsClosed,
      restarts: state.spec.dynamic ? Math.max(0, state.joins - 1) : state.restarts,
      ...(state.status === 'running' && proc ? { pid: proc.pid } : {}),
      stderrTail: this.logs.stderrTail(state.spec.id),
      ...(state.killReason === 'stop-timeout' ? { killed: true } : {}),
      windowRestarts: state.windowRestarts,
      ...(state.windowStart !== undefined ? { windowAgeMs: Math.round(performance.now() - state.windowStart) } : {}),
    };
  }

  /**
   * A part's state, for a coordinator its daemon registers with again (a restarted one
   * rebuilds the dataflow from it): its nodes' status, the start barrier, its end.
   */
  partState(): { nodes: NodeStatusUpdate[]; launched: boolean; ready: boolean; started: boolean; stopping: boolean; result?: RunResult } {
    return {
      launched: this.launched,
      nodes: this.localNodes().map((state) => this.statusUpdate(state)),
      ready: this.readySent,
      started: this.startGranted,
      stopping: this.stopRequested,
      ...(this.result ? { result: this.result } : {}),
    };
  }

  /** Stops the whole dataflow: here, or on every machine through the coordinator. */
  private stopAll(): void {
    if (this.part) this.part.send({ t: 'stop' });
    else void this.stop();
  }

  private isLocal(state: NodeState): boolean {
    return !this.part || this.part.placement.get(state.spec.id) === this.part.machine;
  }

  private machineOf(node: string): string | undefined {
    return this.part?.placement.get(node);
  }

  /** The nodes this machine runs (all of them, unless this is a part). */
  private localNodes(): NodeState[] {
    return [...this.nodes.values()].filter((n) => this.isLocal(n));
  }

  /** The node's `remote` configuration: its part's keys, where it serves receivers elsewhere, the remote senders it connects to. */
  private remoteWiring(spec: ResolvedNode, outputs: readonly string[]): NodeConfig['remote'] {
    if (!this.part) return null;
    const endpoint = this.ownEndpoints.get(spec.id) ?? null;
    const remote = this.remoteOutputs(spec);
    const subscribers = Object.fromEntries(outputs.flatMap((o) => (remote[o] ? [[o, remote[o]] as const] : [])));
    const servers: Record<string, string> = {};
    for (const input of spec.inputs) {
      if (input.source.kind !== 'node') continue;
      const sender = input.source.node;
      const at = this.otherParts.find((e) => e.machine === this.machineOf(sender));
      const endpoint = at?.endpoints[sender];
      if (at && endpoint !== undefined) servers[endpoint] = at.serverKey;
    }
    if (endpoint === null && Object.keys(servers).length === 0) return null;
    return { keyFile: this.keyFile(), endpoint, clientKeys: this.otherParts.map((e) => e.serverKey), subscribers, servers };
  }

  /**
   * Per output of a node, its receivers on other machines; not the outputs only the daemon
   * sends on (`send_stdout_as`/`send_logs_as`): the node does not have those.
   */
  private remoteOutputs(spec: ResolvedNode): Record<string, string[]> {
    const routed = this.routing.routedOutputs(spec);
    return Object.fromEntries(Object.entries(remoteReceivers(this.dataflow, this.part!.placement, spec.id)).filter(([output]) => !routed.includes(output)));
  }

  /** The part's key pair, for its nodes: 0600 in the run folder (0700), never in the environment (children inherit it). */
  private keyFile(): string {
    return path.join(this.runDir.path, 'part.key');
  }
}

/**
 * Reserves a TCP port on `address` for a node with receivers on other machines: a free port
 * now, which the node binds on every start (a restarted sender is found again where its
 * receivers keep reconnecting). Another process could take it meanwhile: the node then fails
 * to start, naming itself and the endpoint.
 */
async function reservePort(address: string, node: string, wanted = 0): Promise<string> {
  const port = await new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err) => reject(new DoraError(`cannot reserve ${wanted ? `port ${wanted}` : 'a port'} on ${address} for node "${node}"'s data socket: ${err.message}`, { code: ErrorCode.SYSTEM })));
    server.listen({ host: address, port: wanted, exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
  return `tcp://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/**
 * For a replacement part: the endpoint its lost part reserved for `node`, taken again. It
 * must be on this daemon's data address: receivers on other machines were configured with
 * it and only reconnect there.
 */
async function reclaimPort(endpoint: string, address: string, node: string): Promise<string> {
  const match = /^tcp:\/\/\[?([^\]]+?)\]?:(\d+)$/.exec(endpoint);
  if (!match || match[1] !== address) {
    throw new DoraError(`node "${node}" served receivers on other machines at ${endpoint}, and this daemon's data address is now ${address}: they would not find it (start the daemon with --data-address ${match?.[1] ?? '?'})`, { code: ErrorCode.SYSTEM });
  }
  return reservePort(address, node, Number(match[2]));
}

function versionRefusal(version: number): string {
  return `protocol version ${version} is not supported by this daemon (it speaks version ${PROTOCOL_VERSION}); use matching dora-ts versions`;
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
