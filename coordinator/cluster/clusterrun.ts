/**
 * A dataflow spread over several machines, as the coordinator sees it: one part per
 * machine (a DataflowRun there: the coordinator's own in this process, the others in their
 * daemons), which it creates in two steps (each binds what other machines subscribe to,
 * then all spawn), and between which it relays what crosses machines: events for a node,
 * node status, restart acknowledgements, the start barrier (every part ready, then start
 * for all), stop, and the end of each part. A lost machine's nodes are reported failed,
 * naming the machine, to the parts that remain.
 */
import { randomUUID } from 'node:crypto';
import type { ResolvedDataflow } from '../dataflow';
import { DataflowRun, DEFAULT_GRACE_MS, type NodeOutcome, type RunResult, type RunStatus } from '../daemon';
import { DoraError, ErrorCode } from '../errors';
import { mergeLogs, type LogLine } from '../logs';
import type { Placement } from '../placement';
import type { ExportEndpoint, NodeStatusUpdate, PartMessage, PartSpec } from './messages';

/** How long a daemon has to bind its part's sockets. */
const PREPARE_TIMEOUT_MS = 15_000;

/** What a cluster run needs of the coordinator: its local daemon's identity and the connected daemons. */
export interface ClusterContext {
  readonly localMachine: string;
  readonly localDataAddress: string;
  readonly outDir?: string;
  /** Sends to a remote daemon; false when it is not connected. */
  readonly sendPrepare: (machine: string, spec: PartSpec) => Promise<{ exports?: ExportEndpoint; logDir?: string }>;
  readonly sendLaunch: (machine: string, dataflow: string, exports: readonly ExportEndpoint[]) => void;
  readonly sendPart: (machine: string, dataflow: string, message: PartMessage) => void;
  readonly requestLogs: (machine: string, dataflow: string, node: string) => Promise<string>;
}

export class ClusterRun {
  readonly id = randomUUID();
  readonly startedAt = new Date();
  readonly finished: Promise<RunResult>;
  readonly machines: readonly string[];
  /** Each part's key, and where its senders serve receivers on other machines. */
  exports: readonly ExportEndpoint[] = [];
  private local?: DataflowRun;
  private readonly status_ = new Map<string, NodeStatusUpdate>();
  private readonly ready = new Set<string>();
  private readonly results = new Map<string, RunResult>();
  private readonly lost = new Map<string, string>();
  private readonly logDirs = new Map<string, string>();
  private stopping = false;
  private started = false;
  private done?: RunResult;
  private finish!: (result: RunResult) => void;

  private constructor(
    readonly dataflow: ResolvedDataflow,
    readonly name: string | undefined,
    readonly placement: Placement,
    private readonly yaml: string,
    private readonly context: ClusterContext,
    private readonly onLine: (line: LogLine) => void,
  ) {
    this.machines = [...new Set(placement.values())].sort();
    this.finished = new Promise((resolve) => (this.finish = resolve));
  }

  /** Prepares every machine's part, then launches them all; a part that cannot be prepared stops the others. */
  static async start(dataflow: ResolvedDataflow, yaml: string, placement: Placement, context: ClusterContext, options: { name?: string; onLine: (line: LogLine) => void }): Promise<ClusterRun> {
    const run = new ClusterRun(dataflow, options.name, placement, yaml, context, options.onLine);
    await run.launch();
    return run;
  }

  private async launch(): Promise<void> {
    const spec: PartSpec = {
      dataflow: this.id,
      ...(this.name !== undefined ? { name: this.name } : {}),
      yaml: this.yaml,
      file: this.dataflow.file,
      workingDir: this.dataflow.workingDir,
      placement: Object.fromEntries(this.placement),
    };
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
      this.toParts({ t: 'stop', graceMs });
    }
    return this.finished;
  }

  kill(): Promise<RunResult> {
    this.stopping = true;
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
      if (machine === this.context.localMachine) return Promise.resolve(this.local?.readLogs(id) ?? '');
      return this.lost.has(machine) ? Promise.resolve(`(machine ${machine} was lost: its log is on that machine)\n`) : this.context.requestLogs(machine, this.id, id);
    };
    if (node !== undefined) return one(node);
    const texts = await Promise.all(this.nodeIds().sort().map(async (id) => [id, await one(id).catch((err: Error) => `(${err.message})\n`)] as const));
    return mergeLogs(texts);
  }

  /** A message of one machine's part. */
  fromPart(machine: string, message: PartMessage): void {
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
      case 'ready':
        this.ready.add(machine);
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
   */
  lose(machine: string, why: string): void {
    if (!this.machines.includes(machine) || this.results.has(machine) || this.done) return;
    this.lost.set(machine, why);
    const nodes: NodeOutcome[] = [];
    for (const spec of this.dataflow.nodes) {
      if (this.placement.get(spec.id) !== machine) continue;
      const previous = this.status_.get(spec.id);
      const ended = previous && previous.status !== 'running' && previous.status !== 'restarting';
      const update: NodeStatusUpdate = ended
        ? previous
        : { node: spec.id, status: 'failed', detail: `lost with machine ${machine} (${why})`, outputsClosed: false, restarts: previous?.restarts ?? 0, stderrTail: previous?.stderrTail ?? [], lost: true };
      this.status_.set(spec.id, update);
      if (!ended) for (const m of this.machines) if (m !== machine) this.toPart(m, { t: 'status', update });
      nodes.push({ id: spec.id, status: update.status, ...(update.detail ? { detail: update.detail } : {}), stderrTail: update.stderrTail, restarts: update.restarts });
    }
    this.onLine({ node: 'dora', stream: 'log', line: `[error] machine ${machine} was lost (${why}): its nodes ${nodes.map((n) => n.id).join(', ')} are failed` });
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
