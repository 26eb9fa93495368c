/**
 * A dataflow spread over several machines, as the coordinator sees it: one part per
 * machine (a DataflowRun there: the coordinator's own in this process, the others in their
 * daemons), which it creates in two steps (each binds what other machines subscribe to,
 * then all spawn), and between which it relays what crosses machines: events for a node,
 * node status, restart acknowledgements, the start barrier (every part ready, then start
 * for all), stop, and the end of each part. A lost machine's nodes are reported failed,
 * naming the machine, to the parts that remain; those with a restart policy wait for the
 * machine to come back instead (up to machineReturnWaitMs) and are respawned there by a
 * replacement part, as restarts.
 *
 * A coordinator that restarts under running daemons rebuilds each of their dataflows
 * from the reports they register with (adopt, then absorb for each machine's): what it
 * relays to a machine that has not reported yet waits for it; a machine that does not
 * rejoin within REJOIN_MS, or rejoins without its part, is lost; the part the coordinator
 * ran itself ended with its process, so its nodes are lost with its machine.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { ResolvedDataflow } from '../dataflow';
import { DataflowRun, DEFAULT_GRACE_MS, type NodeOutcome, type RunResult, type RunStatus } from '../daemon';
import { DoraError, ErrorCode } from '../errors';
import { mergeLogs, readLogs as readLogFiles, type LogLine } from '../logs';
import type { Placement } from '../placement';
import type { KeyPair } from './keys';
import type { ExportEndpoint, NodeStatusUpdate, PartMessage, PartReport, PartSpec, WatchTool } from './messages';
import { LOST_AFTER_MS } from './server';
import { Watch, type WatchOutput } from './watch';

/** How long a daemon has to bind its part's sockets. */
const PREPARE_TIMEOUT_MS = 15_000;
/** After a coordinator's restart, how long a machine of a dataflow it rebuilt has to report its part. */
export const REJOIN_MS = 5 * LOST_AFTER_MS;

/**
 * How long nodes with a restart policy wait for their lost machine to come back before they
 * fail (after their restart delay): DORA_MACHINE_RETURN_WAIT_MS, default 30 s.
 */
export function machineReturnWaitMs(): number {
  const value = Number(process.env.DORA_MACHINE_RETURN_WAIT_MS);
  return Number.isFinite(value) && value >= 0 && process.env.DORA_MACHINE_RETURN_WAIT_MS !== '' ? value : 30_000;
}

/** A lost machine whose nodes wait for it to come back. */
interface Awaiting {
  readonly why: string;
  readonly since: number;
  /** The nodes to respawn, with their restart counts (this restart included) and restart delay. */
  readonly nodes: Map<string, { restarts: number; windowRestarts: number; delayMs: number }>;
  readonly timer: NodeJS.Timeout;
  /** Its daemon is back and its replacement part is being prepared. */
  replacing: boolean;
}

/** What a cluster run needs of the coordinator: its local daemon's identity and the connected daemons. */
export interface ClusterContext {
  readonly localMachine: string;
  /** The coordinator's key pair: its own part's data key pair derives from it. */
  readonly localKeys: KeyPair;
  /** Public key of a connected daemon. */
  readonly keyOf: (machine: string) => string | undefined;
  readonly localDataAddress: string;
  readonly outDir?: string;
  /** Sends to a remote daemon; false when it is not connected. */
  readonly sendPrepare: (machine: string, spec: PartSpec) => Promise<{ exports?: ExportEndpoint; logDir?: string }>;
  readonly sendLaunch: (machine: string, dataflow: string, exports: readonly ExportEndpoint[]) => void;
  readonly sendPart: (machine: string, dataflow: string, message: PartMessage) => void;
  /** Tells a daemon that came back to kill its stale part of a dataflow. */
  readonly sendDrop: (machine: string, dataflow: string) => void;
  readonly requestLogs: (machine: string, dataflow: string, node: string) => Promise<string>;
  /** A remote part's `metrics` or `topics` reply (observe.ts merges them); rejects after `timeoutMs`. */
  readonly observe: (machine: string, dataflow: string, what: 'metrics' | 'topics', timeoutMs: number) => Promise<object>;
  /** Runs `dora topic <tool>` on a remote machine against its part (watch.ts). */
  readonly watch: (machine: string, dataflow: string, tool: WatchTool, topic: string, args: readonly string[], output: WatchOutput) => { stop: () => void };
  /** The coordinator's own log (a machine lost, back, its nodes restarted). */
  readonly log?: (line: string) => void;
}

export class ClusterRun {
  readonly id: string;
  readonly startedAt: Date;
  readonly finished: Promise<RunResult>;
  readonly machines: readonly string[];
  /** Each part's key, and where its senders serve receivers on other machines. */
  exports: readonly ExportEndpoint[] = [];
  private local?: DataflowRun;
  private readonly status_ = new Map<string, NodeStatusUpdate>();
  private readonly ready = new Set<string>();
  private readonly results = new Map<string, RunResult>();
  private readonly lost = new Map<string, string>();
  private readonly awaiting = new Map<string, Awaiting>();
  /** Each machine's daemon key when the dataflow started (its peers' data sockets admit only those). */
  private readonly peerKeys = new Map<string, string>();
  private readonly logDirs = new Map<string, string>();
  private stopping = false;
  private started = false;
  private done?: RunResult;
  private finish!: (result: RunResult) => void;
  /** What every part was created with (a report must agree with it). */
  private spec?: PartSpec;
  /** Rebuilt after a restart: the machines whose report has not come yet, and what waits for them. */
  private readonly unreported = new Map<string, PartMessage[]>();
  private rejoinTimer?: NodeJS.Timeout;
  /** Rebuilt: parts that reported ready but not started (started once any part says it was). */
  private readonly unstarted = new Set<string>();

  private constructor(
    readonly dataflow: ResolvedDataflow,
    readonly name: string | undefined,
    readonly placement: Placement,
    private readonly yaml: string,
    private readonly context: ClusterContext,
    private readonly onLine: (line: LogLine) => void,
    rebuilt?: { id: string; startedAt: Date },
  ) {
    this.id = rebuilt?.id ?? randomUUID();
    this.startedAt = rebuilt?.startedAt ?? new Date();
    this.machines = [...new Set(placement.values())].sort();
    this.finished = new Promise((resolve) => (this.finish = resolve));
  }

  /**
   * Prepares every machine's part, then launches them all; a part that cannot be prepared
   * stops the others. `created` is called with the run before anything is prepared: the
   * parts launched first speak while the others are still being launched.
   */
  static async start(
    dataflow: ResolvedDataflow,
    yaml: string,
    placement: Placement,
    context: ClusterContext,
    options: { name?: string; onLine: (line: LogLine) => void; created?: (run: ClusterRun) => void },
  ): Promise<ClusterRun> {
    const run = new ClusterRun(dataflow, options.name, placement, yaml, context, options.onLine);
    options.created?.(run);
    await run.launch();
    return run;
  }

  /**
   * A dataflow a restarted coordinator learns of from the first report of one of its parts
   * (`dataflow` parsed from the report's descriptor): its machines are awaited, its own
   * machine's nodes are lost (they ended with the coordinator's process).
   */
  static adopt(dataflow: ResolvedDataflow, report: PartReport, context: ClusterContext, onLine: (line: LogLine) => void): ClusterRun {
    const spec = report.spec;
    const run = new ClusterRun(dataflow, spec.name, new Map(Object.entries(spec.placement)), spec.yaml, context, onLine, { id: spec.dataflow, startedAt: new Date(report.startedAt) });
    run.spec = spec;
    for (const m of run.machines) if (m !== context.localMachine) run.unreported.set(m, []);
    run.rejoinTimer = setTimeout(() => {
      for (const m of [...run.unreported.keys()]) run.lose(m, `its daemon did not report its part within ${REJOIN_MS / 1000} s of the coordinator's restart`);
    }, REJOIN_MS);
    run.rejoinTimer.unref();
    if (run.machines.includes(context.localMachine)) run.logDirs.set(context.localMachine, path.join(context.outDir ?? path.join(dataflow.workingDir, 'out'), run.id));
    if (run.machines.includes(context.localMachine)) run.lose(context.localMachine, "its nodes ran in the coordinator's process, which ended (the coordinator restarted)");
    return run;
  }

  /**
   * Why a machine's report cannot be merged into this run: it must describe the same
   * dataflow (descriptor, placement, keys) and run some of its nodes.
   */
  disagreement(machine: string, spec: PartSpec): string | undefined {
    const mine = this.spec;
    if (!mine) return 'the dataflow is still being created';
    for (const [node, m] of Object.entries(mine.placement)) {
      if (spec.placement?.[node] !== m) return `its placement puts node "${node}" on ${JSON.stringify(spec.placement?.[node] ?? null)}, the dataflow's on ${m}`;
    }
    if (Object.keys(spec.placement ?? {}).length !== Object.keys(mine.placement).length) return 'its placement names other nodes than the dataflow';
    if (spec.yaml !== mine.yaml || spec.file !== mine.file || spec.workingDir !== mine.workingDir) return 'its descriptor is not the dataflow\'s';
    if ((spec.name ?? null) !== (mine.name ?? null)) return `its name ${JSON.stringify(spec.name ?? null)} is not the dataflow's ${JSON.stringify(mine.name ?? null)}`;
    if (JSON.stringify(spec.peerKeys) !== JSON.stringify(mine.peerKeys)) return "its machines' keys are not the dataflow's";
    if (!this.machines.includes(machine) || machine === this.context.localMachine) return `no node of dataflow ${this.id} is placed on machine ${machine}`;
    return undefined;
  }

  /** Why `machine` was declared lost from this run, if it was (a report of it then comes too late: its nodes count as failed). */
  lostReason(machine: string): string | undefined {
    return this.lost.get(machine);
  }

  get ended(): boolean {
    return this.done !== undefined;
  }

  /** Rebuilt after a restart, and `machine` has not reported its part yet. */
  awaits(machine: string): boolean {
    return this.unreported.has(machine);
  }

  /** Merges a machine's report (checked with disagreement()): its nodes' status, the barrier, its end; then sends what waited for it. */
  absorb(machine: string, report: PartReport): void {
    for (const update of report.nodes ?? []) if (this.placement.get(update.node) === machine) this.status_.set(update.node, update);
    if (typeof report.logDir === 'string') this.logDirs.set(machine, report.logDir);
    if (report.exports && !this.exports.some((e) => e.machine === machine)) this.exports = [...this.exports, report.exports];
    const waiting = this.unreported.get(machine) ?? [];
    this.unreported.delete(machine);
    if (this.unreported.size === 0) clearTimeout(this.rejoinTimer);
    if (report.result) this.results.set(machine, report.result);
    if (report.ready) this.ready.add(machine);
    if (report.ready && !report.started) this.unstarted.add(machine);
    if (report.started) this.started = true;
    for (const message of waiting) this.toPart(machine, message);
    if (this.started) {
      // the start these parts waited for went down with the previous coordinator
      for (const m of this.unstarted) this.toPart(m, { t: 'start' });
      this.unstarted.clear();
    }
    if (report.stopping && !this.stopping) void this.stop();
    else if (this.stopping && !report.stopping) this.toPart(machine, { t: 'stop' });
    this.maybeStart();
    this.maybeDone();
  }

  private async launch(): Promise<void> {
    const peerKeys = this.machines.map((m) => (m === this.context.localMachine ? this.context.localKeys.publicKey : this.context.keyOf(m)!));
    this.machines.forEach((m, i) => this.peerKeys.set(m, peerKeys[i]));
    const spec: PartSpec = (this.spec = {
      dataflow: this.id,
      ...(this.name !== undefined ? { name: this.name } : {}),
      yaml: this.yaml,
      file: this.dataflow.file,
      workingDir: this.dataflow.workingDir,
      placement: Object.fromEntries(this.placement),
      peerKeys,
    });
    const prepared = await Promise.allSettled(
      this.machines.map(async (machine) => {
        if (machine !== this.context.localMachine) {
          const reply = await withTimeout(this.context.sendPrepare(machine, spec), PREPARE_TIMEOUT_MS, `machine ${machine} did not prepare its part within ${PREPARE_TIMEOUT_MS / 1000} s`);
          if (reply.logDir) this.logDirs.set(machine, reply.logDir);
          return reply.exports;
        }
        const { run, exports } = await DataflowRun.prepare(this.dataflow, {
          name: this.name,
          outDir: this.context.outDir,
          onLine: this.onLine,
          part: {
            id: this.id,
            machine,
            placement: this.placement,
            keys: this.context.localKeys,
            dataAddress: this.context.localDataAddress,
            send: (message) => setImmediate(() => this.fromPart(machine, message)),
          },
        });
        this.local = run;
        this.logDirs.set(machine, run.logs.dir);
        return exports;
      }),
    );
    const failed = prepared.flatMap((p, i) => (p.status === 'rejected' ? [`machine ${this.machines[i]}: ${(p.reason as Error).message}`] : []));
    if (failed.length > 0) {
      for (const m of this.machines) if (m !== this.context.localMachine) this.context.sendPart(m, this.id, { t: 'kill' });
      if (this.local) {
        this.local.receive({ t: 'kill' }); // prepared, never launched: it just ends
        await this.local.finished;
      }
      throw new DoraError(`the dataflow could not be prepared on every machine:\n  ${failed.join('\n  ')}`, { code: ErrorCode.CONTROL });
    }
    const exports = prepared.flatMap((p) => (p.status === 'fulfilled' && p.value ? [p.value] : []));
    this.exports = exports;
    for (const m of this.machines) if (m !== this.context.localMachine) this.context.sendLaunch(m, this.id, exports);
    if (this.local) await this.local.launchPart(exports);
  }

  get status(): RunStatus {
    return this.done?.status ?? (this.stopping ? 'stopping' : 'running');
  }

  get logDir(): string {
    const local = this.logDirs.get(this.context.localMachine);
    return local ?? [...this.logDirs.entries()].map(([m, d]) => `${m}:${d}`).join(' ');
  }

  nodeIds(): string[] {
    return this.dataflow.nodes.map((n) => n.id);
  }

  machineOf(node: string): string | undefined {
    return this.placement.get(node);
  }

  nodeOutcomes(): NodeOutcome[] {
    if (this.done) return [...this.done.nodes];
    return this.dataflow.nodes.map((spec) => {
      const s = this.status_.get(spec.id);
      return {
        id: spec.id,
        status: s?.status ?? (spec.dynamic ? 'waiting' : 'running'),
        ...(s?.detail !== undefined ? { detail: s.detail } : {}),
        stderrTail: s?.stderrTail ?? [],
        restarts: s?.restarts ?? 0,
        ...(s?.pid !== undefined && s.status === 'running' ? { pid: s.pid } : {}),
        ...(s?.killed ? { killed: true } : {}),
      };
    });
  }

  stop(graceMs = DEFAULT_GRACE_MS): Promise<RunResult> {
    if (!this.done && !this.stopping) {
      this.stopping = true;
      this.giveUpWaiting('not restarted: the dataflow was stopped');
      this.toParts({ t: 'stop', graceMs });
    }
    return this.finished;
  }

  kill(): Promise<RunResult> {
    this.stopping = true;
    this.giveUpWaiting('not restarted: the dataflow was killed');
    this.toParts({ t: 'kill' });
    return this.finished;
  }

  stopNode(node: string, graceMs?: number): void {
    this.toPart(this.ownerOf(node), { t: 'node', action: 'stop', node, graceMs });
  }

  restartNode(node: string, graceMs?: number): void {
    this.toPart(this.ownerOf(node), { t: 'node', action: 'restart', node, graceMs });
  }

  /** One node's log (from its machine), or every node's, merged in time order as readLogs does. */
  async readLogs(node?: string): Promise<string> {
    const one = (id: string) => {
      const machine = this.ownerOf(id);
      // (a rebuilt run's own part ended with the previous coordinator: its files are still here)
      if (machine === this.context.localMachine) return Promise.resolve(this.local ? this.local.readLogs(id) : readLogFiles(this.logDirs.get(machine) ?? '', id));
      return this.lost.has(machine) ? Promise.resolve(`(machine ${machine} was lost: its log is on that machine)\n`) : this.context.requestLogs(machine, this.id, id);
    };
    if (node !== undefined) return one(node);
    const texts = await Promise.all(this.nodeIds().sort().map(async (id) => [id, await one(id).catch((err: Error) => `(${err.message})\n`)] as const));
    return mergeLogs(texts);
  }

  /** One machine's part's `metrics` or `topics` reply: this machine's own, or asked of its daemon. */
  observePart(machine: string, what: 'metrics' | 'topics', timeoutMs: number): Promise<object> {
    if (this.lost.has(machine)) return Promise.reject(new DoraError(`machine ${machine} was lost (${this.lost.get(machine)})`, { code: ErrorCode.CONTROL }));
    if (machine !== this.context.localMachine) return this.context.observe(machine, this.id, what, timeoutMs);
    if (!this.local) return Promise.reject(new DoraError(`machine ${machine} has no part of dataflow ${this.id}`, { code: ErrorCode.CONTROL }));
    return Promise.resolve(what === 'metrics' ? this.local.metrics() : this.local.topics());
  }

  /** Runs `dora topic <tool>` of `topic` on the machine of its sender (watch.ts). */
  watchPart(machine: string, tool: WatchTool, topic: string, args: readonly string[], output: WatchOutput): { stop: () => void } {
    if (machine !== this.context.localMachine) return this.context.watch(machine, this.id, tool, topic, args, output);
    if (!this.local) throw new DoraError(`machine ${machine} has no part of dataflow ${this.id}`, { code: ErrorCode.CONTROL });
    return new Watch(tool, this.local.runFolderId, topic, args, output);
  }

  /** A message of one machine's part. */
  fromPart(machine: string, message: PartMessage): void {
    if (this.lost.has(machine)) return; // a stale part that came back with its daemon: it is dropped or replaced
    switch (message.t) {
      case 'event':
        this.toPart(this.ownerOf(message.node), message);
        break;
      case 'status':
        this.status_.set(message.update.node, message.update);
        for (const m of this.machines) if (m !== machine) this.toPart(m, message);
        break;
      case 'restart-seen':
        this.toPart(this.ownerOf(message.peer), message);
        break;
      case 'routed':
        this.toPart(this.ownerOf(message.receiver), message);
        break;
      case 'ready':
        this.ready.add(machine);
        if (this.started) this.toPart(machine, { t: 'start' }); // a replacement part joins the running dataflow
        this.maybeStart();
        break;
      case 'stop':
        void this.stop(message.graceMs);
        break;
      case 'line':
        this.onLine(message.line);
        break;
      case 'finished':
        this.results.set(machine, message.result);
        // a part that could not start: the dataflow does not start anywhere
        if (!this.started && message.result.status === 'failed') void this.stop();
        this.maybeDone();
        break;
      default:
        break;
    }
  }

  /**
   * A machine's daemon is gone: its nodes are failed, which the other parts are told as if
   * they had crashed (their receivers' inputs close, their senders stop waiting for them).
   * Nodes whose restart policy would restart them after a crash are `restarting` instead:
   * their receivers' inputs stay open while they wait for the machine to come back (rejoin).
   */
  lose(machine: string, why: string): void {
    if (!this.machines.includes(machine) || this.results.has(machine) || this.done) return;
    const waiting = this.awaiting.get(machine);
    if (waiting) waiting.replacing = false; // lost again before its replacement ran: it waits for the next return
    if (this.lost.has(machine)) return;
    this.lost.set(machine, why);
    this.unreported.delete(machine);
    if (this.unreported.size === 0) clearTimeout(this.rejoinTimer);
    const waitMs = machineReturnWaitMs();
    const respawn = new Map<string, { restarts: number; windowRestarts: number; delayMs: number }>();
    const failed: string[] = [];
    for (const spec of this.dataflow.nodes) {
      if (this.placement.get(spec.id) !== machine) continue;
      const previous = this.status_.get(spec.id);
      if (previous && previous.status !== 'running' && previous.status !== 'restarting') continue; // it had ended
      const detail = `lost with machine ${machine} (${why})`;
      // the coordinator's own machine is lost only when it restarted: nothing brings its part back
      const budget = machine === this.context.localMachine ? '' : this.respawnBudget(spec.id, previous);
      if (typeof budget === 'string') {
        if (budget) failed.push(`${spec.id} (${budget})`);
        else failed.push(spec.id);
        this.setStatus({ node: spec.id, status: 'failed', detail: budget ? `${detail}; not restarted: ${budget}` : detail, outputsClosed: false, restarts: previous?.restarts ?? 0, stderrTail: previous?.stderrTail ?? [], lost: true }, machine);
        continue;
      }
      respawn.set(spec.id, budget);
      this.setStatus({ node: spec.id, status: 'restarting', detail: `${detail}; restarted when it comes back (waiting up to ${Math.round((budget.delayMs + waitMs) / 1000)} s)`, outputsClosed: false, restarts: previous?.restarts ?? 0, stderrTail: previous?.stderrTail ?? [], lost: true }, machine);
    }
    if (respawn.size === 0) {
      this.say(`[error] machine ${machine} was lost (${why}): its nodes ${failed.join(', ')} are failed`);
      this.endLost(machine);
      return;
    }
    const longest = Math.max(...[...respawn.values()].map((n) => n.delayMs)) + waitMs;
    const timer = setTimeout(() => this.giveUpWaiting(`machine ${machine} did not come back within ${Math.round(longest / 1000)} s`, machine), longest);
    timer.unref();
    this.awaiting.set(machine, { why, since: performance.now(), nodes: respawn, timer, replacing: false });
    this.say(`[warn] machine ${machine} was lost (${why}): its nodes ${[...respawn.keys()].join(', ')} wait up to ${Math.round(longest / 1000)} s for it to come back to be restarted${failed.length ? `; ${failed.join(', ')} failed` : ''}`);
  }

  /**
   * A daemon registered: if it runs a machine this dataflow lost, its stale part is killed,
   * and when nodes wait for it, a replacement part respawns them (after what remains of their
   * restart delay). The others' data links are moved to the replacement's export socket.
   */
  rejoin(machine: string): boolean {
    const waiting = this.awaiting.get(machine);
    if (!waiting || this.done) return false; // nothing to bring back: the caller drops its stale part
    if (waiting.replacing) return true;
    const key = this.context.keyOf(machine);
    if (key !== this.peerKeys.get(machine)) {
      this.giveUpWaiting(`machine ${machine} came back with another daemon key (${key}), which the other machines' data sockets do not admit`, machine);
      return false;
    }
    waiting.replacing = true;
    const backAt = performance.now();
    const delayMs = Math.max(0, waiting.since + Math.max(...[...waiting.nodes.values()].map((n) => n.delayMs)) - backAt);
    setTimeout(() => void this.replace(machine, waiting, backAt), delayMs).unref();
    return true;
  }

  private async replace(machine: string, waiting: Awaiting, backAt: number): Promise<void> {
    if (this.done || this.stopping || this.awaiting.get(machine) !== waiting || !waiting.replacing) return;
    const spec: PartSpec = {
      ...this.spec!,
      rejoin: {
        statuses: [...this.status_.values()],
        respawn: Object.fromEntries([...waiting.nodes].map(([id, n]) => [id, { restarts: n.restarts, windowRestarts: n.windowRestarts }])),
        endpoints: this.exports.find((e) => e.machine === machine)?.endpoints ?? {},
      },
    };
    let reply: { exports?: ExportEndpoint; logDir?: string };
    try {
      reply = await withTimeout(this.context.sendPrepare(machine, spec), PREPARE_TIMEOUT_MS, `machine ${machine} did not prepare its replacement part within ${PREPARE_TIMEOUT_MS / 1000} s`);
    } catch (err) {
      if (!waiting.replacing) return; // lost again meanwhile: still waiting
      this.context.sendDrop(machine, this.id);
      this.giveUpWaiting(`its replacement part could not be prepared: ${(err as Error).message}`, machine);
      return;
    }
    if (this.done || this.awaiting.get(machine) !== waiting) {
      this.context.sendDrop(machine, this.id); // stopped meanwhile
      return;
    }
    // same derived key, same endpoints: the other machines' nodes admit it and reconnect by themselves
    const before = this.exports.find((e) => e.machine === machine);
    if (before && JSON.stringify(reply.exports ?? null) !== JSON.stringify(before)) {
      this.context.sendDrop(machine, this.id);
      this.giveUpWaiting(`its replacement part serves with another key or at other endpoints than the other machines' nodes know`, machine);
      return;
    }
    clearTimeout(waiting.timer);
    this.awaiting.delete(machine);
    this.lost.delete(machine);
    this.ready.delete(machine);
    if (reply.logDir) this.logDirs.set(machine, reply.logDir);
    this.context.sendLaunch(machine, this.id, this.exports);
    this.say(`[info] machine ${machine} is back after ${Math.round(backAt - waiting.since)} ms: restarting ${[...waiting.nodes.keys()].join(', ')} there (its part prepared ${Math.round(performance.now() - backAt)} ms after it came back)`);
  }

  /**
   * The restart counts of a lost node that its restart policy restarts (a loss is a
   * failure), or why not: an empty string for no restart policy. dora's rules, as for a
   * crash on its machine: the dataflow is not stopping and had started, its inputs are not
   * all closed, and max_restarts within restart_window is not reached.
   */
  private respawnBudget(id: string, previous: NodeStatusUpdate | undefined): { restarts: number; windowRestarts: number; delayMs: number } | string {
    const spec = this.dataflow.nodes.find((n) => n.id === id)!;
    const policy = spec.restart;
    if (policy.policy === 'never' || spec.dynamic) return '';
    if (this.stopping) return 'the dataflow is stopping';
    if (!this.started) return 'the dataflow had not started';
    const fed = spec.inputs.filter((i) => i.source.kind === 'node');
    if (fed.length > 0 && (fed.length === spec.inputs.length || this.dataflow.exitWhenNodesFinish)) {
      const ended = (node: string) => {
        const s = this.status_.get(node);
        return s !== undefined && s.status !== 'running' && s.status !== 'restarting';
      };
      if (fed.every((i) => i.source.kind === 'node' && i.source.node !== id && ended(i.source.node))) return 'all its inputs have closed';
    }
    let windowRestarts = previous?.windowRestarts ?? 0;
    if (policy.windowMs !== undefined && (previous?.windowAgeMs ?? 0) >= policy.windowMs) windowRestarts = 0;
    if (policy.maxRestarts > 0 && windowRestarts >= policy.maxRestarts) return `gave up after ${windowRestarts} restart(s) (max_restarts ${policy.maxRestarts})`;
    const delayMs = Math.min(policy.delayMs * 2 ** windowRestarts, policy.maxDelayMs ?? Infinity);
    return { restarts: (previous?.restarts ?? 0) + 1, windowRestarts: windowRestarts + 1, delayMs };
  }

  /** Nodes waiting for a lost machine (one, or all) fail: it did not come back in time, or the dataflow ends. */
  private giveUpWaiting(why: string, only?: string): void {
    for (const [machine, waiting] of [...this.awaiting]) {
      if (only !== undefined && machine !== only) continue;
      clearTimeout(waiting.timer);
      this.awaiting.delete(machine);
      for (const id of waiting.nodes.keys()) {
        const previous = this.status_.get(id)!;
        this.setStatus({ ...previous, status: 'failed', detail: `lost with machine ${machine} (${waiting.why}); ${why}` }, machine);
      }
      this.say(`[error] machine ${machine} was lost (${waiting.why}): its nodes ${[...waiting.nodes.keys()].join(', ')} are failed: ${why}`);
      this.endLost(machine);
    }
  }

  /** A line about the dataflow as a whole: in its log stream and the coordinator's log. */
  private say(line: string): void {
    this.onLine({ node: 'dora', stream: 'log', line });
    this.context.log?.(`dataflow ${this.id}: ${line}`);
  }

  /** A node of a lost machine has a new status: recorded, and told to the other parts. */
  private setStatus(update: NodeStatusUpdate, machine: string): void {
    this.status_.set(update.node, update);
    for (const m of this.machines) if (m !== machine) this.toPart(m, { t: 'status', update });
  }

  /** A lost machine's part is over: its nodes' last statuses are its result. */
  private endLost(machine: string): void {
    const nodes: NodeOutcome[] = this.dataflow.nodes
      .filter((spec) => this.placement.get(spec.id) === machine)
      .map((spec) => {
        const s = this.status_.get(spec.id);
        return { id: spec.id, status: s?.status ?? 'failed', ...(s?.detail ? { detail: s.detail } : {}), stderrTail: s?.stderrTail ?? [], restarts: s?.restarts ?? 0 };
      });
    this.results.set(machine, { id: this.id, status: 'failed', nodes });
    this.maybeStart(); // the start barrier no longer waits for it
    this.maybeDone();
  }

  /** Every part's nodes are at the barrier (or the part has ended): start them all. */
  private maybeStart(): void {
    if (this.started || this.stopping || !this.machines.every((m) => this.ready.has(m) || this.results.has(m))) return;
    this.started = true;
    this.toParts({ t: 'start' });
  }

  private maybeDone(): void {
    if (this.done || !this.machines.every((m) => this.results.has(m))) return;
    const byId = new Map([...this.results.values()].flatMap((r) => r.nodes.map((n) => [n.id, n] as const)));
    const nodes = this.dataflow.nodes.map((spec) => byId.get(spec.id) ?? { id: spec.id, status: 'failed' as const, detail: 'its machine reported nothing', stderrTail: [], restarts: 0 });
    const status = nodes.some((n) => n.status === 'failed') ? 'failed' : this.stopping || nodes.some((n) => n.status === 'stopped') ? 'stopped' : 'succeeded';
    this.done = { id: this.id, status, nodes };
    this.finish(this.done);
  }

  private ownerOf(node: string): string {
    const machine = this.placement.get(node);
    if (machine === undefined) throw new DoraError(`no node "${node}" in dataflow ${this.id} (nodes: ${this.nodeIds().join(', ')})`, { code: ErrorCode.CONTROL });
    return machine;
  }

  private toParts(message: PartMessage): void {
    for (const m of this.machines) this.toPart(m, message);
  }

  private toPart(machine: string, message: PartMessage): void {
    if (this.results.has(machine) && message.t !== 'kill') return; // that part has ended
    if (this.lost.has(machine)) return; // its part is gone (a replacement gets the statuses it needs)
    const unreported = this.unreported.get(machine);
    if (unreported) return void unreported.push(message); // after a restart, until its daemon reports
    if (machine === this.context.localMachine) {
      const local = this.local;
      if (local) setImmediate(() => local.receive(message));
    } else this.context.sendPart(machine, this.id, message);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DoraError(message, { code: ErrorCode.CONTROL })), ms)))]).finally(() => clearTimeout(timer));
}
