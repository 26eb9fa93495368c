/**
 * The coordinator's cluster: the daemons connected to it (server.ts), the dataflows spread
 * over them (clusterrun.ts), and the routing between the two: messages of a daemon go to
 * the run they belong to, requests that expect an answer (prepare, logs) wait for it.
 *
 * A daemon registering reports the parts it runs: a coordinator that restarted rebuilds
 * their dataflows from these reports (takeOver), so they can be listed, read and stopped
 * again (a dataflow is rebuilt if some part of it still runs, or ended unheard: while no
 * coordinator was there; the reports of its other ended parts are merged into it). A report is taken over only if it is sane: the machine runs some of the dataflow's
 * nodes, its key is the one the dataflow's parts trust for that machine, and it agrees with
 * what the other parts (or this coordinator) say of the dataflow; the first report of a
 * dataflow defines it. A part of a dataflow that has ended, or from which its machine was
 * declared lost, is stopped: its nodes count as failed (or were replaced) already.
 */
import * as os from 'node:os';
import type { ResolvedDataflow } from '../dataflow';
import { parseDescriptor } from '../descriptor';
import type { LogLine } from '../logs';
import { DoraError, ErrorCode } from '../errors';
import { place, type MachineInfo, type Placement } from '../placement';
import { ClusterRun, REJOIN_MS, type ClusterContext } from './clusterrun';
import { coordinatorKeys, type KeyPair } from './keys';
import type { DaemonMessage, ExportEndpoint, PartReport, PartSpec, WatchTool } from './messages';
import type { WatchOutput } from './watch';
import { ClusterServer, type ConnectedDaemon } from './server';

/** The coordinator's own machine id when not given (`deploy.machine: local` places a node there). */
export const LOCAL_MACHINE = 'local';

export interface DaemonSummary {
  readonly machine: string;
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Milliseconds since its last heartbeat (0 for the coordinator's own daemon). */
  readonly heartbeatAgeMs: number;
  /** `<dataflow>/<node>` of the nodes running there. */
  readonly nodes: readonly string[];
  readonly local: boolean;
}

export interface HubOptions {
  readonly bind: string;
  readonly port: number;
  readonly insecure: boolean;
  readonly machine?: string;
  readonly dataAddress?: string;
  readonly outDir?: string;
  readonly log?: (line: string) => void;
  /** A dataflow rebuilt from daemons' reports after a restart: where its log lines go. */
  readonly onAdopted?: (run: ClusterRun) => (line: LogLine) => void;
}

export class ClusterHub {
  readonly localMachine: string;
  readonly keys: KeyPair;
  private readonly server: ClusterServer;
  private readonly runs = new Map<string, ClusterRun>();
  /**
   * Runs being launched: the parts launched first speak (statuses, events for other
   * machines' nodes, `ready`) while the others are still being launched, and what they say
   * must reach the run (dropped, a sender's `peer-exited` left it waiting at its barrier).
   */
  private readonly launching = new Map<string, ClusterRun>();
  /** Per lost machine, the dataflows it had a part of: its daemon, back, drops those parts or has them replaced. */
  private readonly staleParts = new Map<string, Set<string>>();
  private readonly prepares = new Map<string, { resolve: (r: { exports?: ExportEndpoint; logDir?: string }) => void; reject: (e: Error) => void }>();
  private readonly logRequests = new Map<number, { resolve: (text: string) => void; reject: (e: Error) => void }>();
  private nextRequest = 1;
  /** `observe` requests waiting for their daemon's answer. */
  private readonly observeRequests = new Map<number, { machine: string; resolve: (reply: object) => void; reject: (e: Error) => void }>();
  /** Watches running on daemons: where their lines go. */
  private readonly watches = new Map<number, { machine: string; output: WatchOutput }>();
  /** Random start: a daemon still running a watch of a previous coordinator never mistakes a new one's for it. */
  private nextWatch = 1 + Math.floor(Math.random() * 2 ** 30);
  /** After a restart: reports of parts that have ended, of dataflows no running part has reported yet (absorbed if one does). */
  private readonly endedParts = new Map<string, Map<string, { daemon: ConnectedDaemon; report: PartReport }>>();
  private readonly dataAddress: string;
  private readonly log: (line: string) => void;

  constructor(private readonly options: HubOptions) {
    this.localMachine = options.machine ?? LOCAL_MACHINE;
    this.keys = coordinatorKeys(); // the local part's data key pair derives from it, even when the control link is --insecure
    this.log = options.log ?? ((line) => process.stderr.write(`dora coordinator: ${line}\n`));
    this.dataAddress = options.dataAddress ?? concreteAddress(options.bind);
    this.server = new ClusterServer({
      reserved: [this.localMachine],
      log: this.log,
      onMessage: (machine, message) => this.onMessage(machine, message),
      onLost: (machine, why) => {
        for (const run of this.runs.values()) {
          if (!run.machines.includes(machine)) continue;
          run.lose(machine, why);
          this.staleParts.set(machine, (this.staleParts.get(machine) ?? new Set()).add(run.id));
        }
        for (const [id, r] of this.observeRequests) if (r.machine === machine) (this.observeRequests.delete(id), r.reject(new DoraError(`machine ${machine} was lost`, { code: ErrorCode.CONTROL })));
        for (const [id, w] of this.watches) if (w.machine === machine) (this.watches.delete(id), w.output([], 0, { code: null, error: `machine ${machine} was lost (${why})` }));
        for (const [key, p] of this.prepares) if (key.endsWith(`\0${machine}`)) p.reject(new DoraError(`machine ${machine} was lost`, { code: ErrorCode.CONTROL }));
      },
      onRegistered: (daemon, parts) => {
        const machine = daemon.machine;
        const stale = this.staleParts.get(machine) ?? new Set<string>();
        this.staleParts.delete(machine);
        const refused = this.takeOver(daemon, parts, stale);
        // after its `registered` (sent once this returns): the daemon may have kept its parts
        // running (it was stopped, or cut off): each is replaced, or killed
        queueMicrotask(() => {
          for (const dataflow of stale) if (!this.runs.get(dataflow)?.rejoin(machine)) this.server.send(machine, { t: 'drop', dataflow });
        });
        return refused;
      },
    });
  }

  async listen(): Promise<void> {
    if (this.options.insecure) this.log(`WARNING: --insecure: daemons connect to ${this.options.bind}:${this.options.port} over plain TCP, without keys: anyone who can reach it can join the cluster and run processes as this user`);
    await this.server.bind(this.options.bind, this.options.port, this.options.insecure ? undefined : this.keys);
    this.log(`cluster listening on ${this.server.endpoint}${this.options.insecure ? ' (INSECURE)' : ` (CURVE; coordinator public key ${this.keys.publicKey})`}`);
  }

  machines(): MachineInfo[] {
    return [{ machine: this.localMachine, labels: {} }, ...this.server.list().map((d) => ({ machine: d.machine, labels: d.labels }))];
  }

  place(dataflow: ResolvedDataflow): Placement {
    return place(dataflow, this.machines(), this.localMachine);
  }

  async start(dataflow: ResolvedDataflow, yaml: string, placement: Placement, options: { name?: string; onLine: (line: LogLine) => void }): Promise<ClusterRun> {
    let created: ClusterRun | undefined;
    const run = await ClusterRun.start(dataflow, yaml, placement, this.context(), {
      ...options,
      created: (r) => this.launching.set((created = r).id, r),
    }).finally(() => created && this.launching.delete(created.id));
    this.runs.set(run.id, run);
    this.log(`dataflow ${run.id} started on machines ${run.machines.join(', ')}${run.exports.flatMap((e) => Object.entries(e.endpoints).map(([node, endpoint]) => `; ${e.machine} serves other machines on ${endpoint} (node ${node}, key ${e.serverKey})`)).join('')}`);
    void run.finished.then(() => setTimeout(() => this.runs.delete(run.id), 60_000).unref());
    return run;
  }

  daemons(nodesOf: (machine: string) => string[]): DaemonSummary[] {
    const now = performance.now();
    return [
      { machine: this.localMachine, address: this.dataAddress, labels: {}, heartbeatAgeMs: 0, nodes: nodesOf(this.localMachine), local: true },
      ...this.server.list().map((d: ConnectedDaemon) => ({
        machine: d.machine,
        address: d.address,
        labels: d.labels,
        heartbeatAgeMs: Math.round(now - d.lastHeartbeat),
        nodes: nodesOf(d.machine),
        local: false,
      })),
    ];
  }

  close(notify = true): void {
    this.server.close(notify);
  }

  private context(): ClusterContext {
    return {
      localMachine: this.localMachine,
      localKeys: this.keys,
      keyOf: (machine) => this.server.get(machine)?.publicKey,
      localDataAddress: this.dataAddress,
      outDir: this.options.outDir,
      sendPrepare: (machine, spec: PartSpec) =>
        new Promise((resolve, reject) => {
          this.prepares.set(`${spec.dataflow}\0${machine}`, { resolve, reject });
          if (!this.server.send(machine, { t: 'prepare', spec })) reject(new DoraError(`machine ${machine} is not connected`, { code: ErrorCode.CONTROL }));
        }),
      sendLaunch: (machine, dataflow, exports) => this.server.send(machine, { t: 'launch', dataflow, exports }),
      sendPart: (machine, dataflow, message) => this.server.send(machine, { t: 'part', dataflow, message }),
      sendDrop: (machine, dataflow) => this.server.send(machine, { t: 'drop', dataflow }),
      log: this.log,
      requestLogs: (machine, dataflow, node) =>
        new Promise((resolve, reject) => {
          const request = this.nextRequest++;
          this.logRequests.set(request, { resolve, reject });
          if (!this.server.send(machine, { t: 'logs', dataflow, request, node })) {
            this.logRequests.delete(request);
            reject(new DoraError(`machine ${machine} is not connected`, { code: ErrorCode.CONTROL }));
          }
          setTimeout(() => {
            if (this.logRequests.delete(request)) reject(new DoraError(`machine ${machine} did not send the log of ${node}`, { code: ErrorCode.CONTROL }));
          }, 10_000).unref();
        }),
      observe: (machine, dataflow, what, timeoutMs) =>
        new Promise((resolve, reject) => {
          const request = this.nextRequest++;
          this.observeRequests.set(request, { machine, resolve, reject });
          if (!this.server.send(machine, { t: 'observe', dataflow, request, what })) {
            this.observeRequests.delete(request);
            reject(new DoraError(`machine ${machine} is not connected`, { code: ErrorCode.CONTROL }));
          }
          setTimeout(() => {
            if (this.observeRequests.delete(request)) reject(new DoraError(`machine ${machine} did not answer within ${timeoutMs} ms`, { code: ErrorCode.TIMEOUT }));
          }, timeoutMs).unref();
        }),
      watch: (machine, dataflow, tool: WatchTool, topic, args, output) => {
        const watch = this.nextWatch++;
        this.watches.set(watch, { machine, output });
        if (!this.server.send(machine, { t: 'watch', watch, dataflow, tool, topic, args })) {
          this.watches.delete(watch);
          setImmediate(() => output([], 0, { code: null, error: `machine ${machine} is not connected` }));
        }
        return { stop: () => void (this.watches.has(watch) && this.server.send(machine, { t: 'unwatch', watch })) };
      },
    };
  }

  /** A daemon registered with the parts it runs: each is merged into its dataflow, rebuilt here if unknown; returns those refused. */
  private takeOver(daemon: ConnectedDaemon, parts: readonly PartReport[], stale: ReadonlySet<string>): { dataflow: string; why: string }[] {
    const refused: { dataflow: string; why: string }[] = [];
    const reported = new Set<string>();
    for (const report of parts) {
      const id = typeof report?.spec?.dataflow === 'string' ? report.spec.dataflow : '?';
      reported.add(id);
      if (stale.has(id)) {
        // this coordinator declared the machine lost from it: its part there is replaced or dropped (onRegistered)
        const lost = this.runs.get(id)?.lostReason(daemon.machine);
        refused.push({ dataflow: id, why: `machine ${daemon.machine} was lost from it${lost ? ` (${lost})` : ''}: its part there is stopped (and replaced where its nodes wait for the machine)` });
        continue;
      }
      const why = this.takeOverPart(daemon, report);
      if (why === undefined) continue;
      refused.push({ dataflow: id, why });
      this.log(`machine ${daemon.machine}: its part of dataflow ${id} is not taken over: ${why}`);
    }
    for (const run of this.runs.values()) {
      if (!reported.has(run.id) && run.awaits(daemon.machine) && !this.endedParts.get(run.id)?.has(daemon.machine)) run.lose(daemon.machine, 'its daemon registered again without its part of this dataflow (it had ended, or the daemon was restarted)');
    }
    return refused;
  }

  private takeOverPart(daemon: ConnectedDaemon, report: PartReport): string | undefined {
    const machine = daemon.machine;
    const spec = report?.spec;
    if (!spec || typeof spec.dataflow !== 'string' || typeof spec.yaml !== 'string' || typeof spec.placement !== 'object' || spec.placement === null || !Array.isArray(report.nodes)) return 'its report is malformed';
    const placed = Object.values(spec.placement);
    if (!placed.includes(machine)) return `no node of it is placed on machine ${machine}`;
    // the dataflow's parts trust one key per machine (sorted by machine id, as ClusterRun.launch lists them)
    const machines = [...new Set(placed)].sort();
    const trusted = Array.isArray(spec.peerKeys) ? spec.peerKeys[machines.indexOf(machine)] : undefined;
    if (trusted !== daemon.publicKey) return `machine ${machine}'s key in it is not this daemon's`;
    let run = this.runs.get(spec.dataflow);
    if (!run && report.result && report.endHeard) {
      // an ended part whose end the previous coordinator heard: it matters only if another part of its dataflow still runs
      const ended = this.endedParts.get(spec.dataflow) ?? new Map<string, { daemon: ConnectedDaemon; report: PartReport }>();
      if (ended.size === 0) setTimeout(() => this.endedParts.delete(spec.dataflow), REJOIN_MS).unref();
      this.endedParts.set(spec.dataflow, ended.set(machine, { daemon, report }));
      return undefined;
    }
    if (run) {
      const lost = run.lostReason(machine);
      const ended = run.ended && !report.result;
      if (lost !== undefined || ended) {
        this.server.send(machine, { t: 'part', dataflow: spec.dataflow, message: { t: 'kill' } });
        return lost !== undefined ? `machine ${machine} was lost from it (${lost}): its part there is stopped` : 'it has ended: its part there is stopped';
      }
      const why = run.disagreement(machine, spec);
      if (why) return why;
    } else {
      let dataflow: ResolvedDataflow;
      try {
        dataflow = parseDescriptor(spec.yaml, spec.file, spec.workingDir, { checkPaths: false });
      } catch (err) {
        return `its descriptor does not parse here: ${(err as Error).message}`;
      }
      const ids = dataflow.nodes.map((n) => n.id).sort();
      if (JSON.stringify(ids) !== JSON.stringify(Object.keys(spec.placement).sort())) return 'its placement does not name the nodes of its descriptor';
      const early: LogLine[] = [];
      let sink: ((line: LogLine) => void) | undefined;
      const adopted = ClusterRun.adopt(dataflow, report, this.context(), (line) => (sink ? sink(line) : early.push(line)));
      run = adopted;
      this.runs.set(run.id, run);
      this.log(`dataflow ${run.id}${run.name !== undefined ? ` (${run.name})` : ''} taken over from the report of machine ${machine}: machines ${run.machines.join(', ')}`);
      sink = this.options.onAdopted?.(adopted) ?? (() => undefined);
      for (const line of early.splice(0)) sink(line);
      void run.finished.then(() => setTimeout(() => this.runs.delete(adopted.id), 60_000).unref());
      run.absorb(machine, report);
      // the parts of it that had ended and were reported before it
      for (const [m, ended] of this.endedParts.get(run.id) ?? []) {
        const why = this.takeOverPart(ended.daemon, ended.report);
        if (why !== undefined) this.log(`machine ${m}: its part of dataflow ${run.id} is not taken over: ${why}`);
      }
      this.endedParts.delete(run.id);
      return undefined;
    }
    run.absorb(machine, report);
    return undefined;
  }

  private onMessage(machine: string, message: DaemonMessage): void {
    switch (message.t) {
      case 'prepared': {
        const key = `${message.dataflow}\0${machine}`;
        const pending = this.prepares.get(key);
        this.prepares.delete(key);
        if (message.error) pending?.reject(new DoraError(message.error, { code: ErrorCode.CONTROL }));
        else pending?.resolve({ ...(message.exports ? { exports: message.exports } : {}), ...(message.logDir ? { logDir: message.logDir } : {}) });
        break;
      }
      case 'logs': {
        const pending = this.logRequests.get(message.request);
        this.logRequests.delete(message.request);
        if (message.error !== undefined) pending?.reject(new DoraError(message.error, { code: ErrorCode.CONTROL }));
        else pending?.resolve(message.text ?? '');
        break;
      }
      case 'part':
        (this.runs.get(message.dataflow) ?? this.launching.get(message.dataflow))?.fromPart(machine, message.message);
        break;
      case 'observed': {
        const pending = this.observeRequests.get(message.request);
        if (!pending || pending.machine !== machine) break;
        this.observeRequests.delete(message.request);
        if (message.error !== undefined || !message.reply) pending.reject(new DoraError(message.error ?? `machine ${machine} sent no reply`, { code: ErrorCode.CONTROL }));
        else pending.resolve(message.reply);
        break;
      }
      case 'watched': {
        const w = this.watches.get(message.watch);
        if (!w || w.machine !== machine) break;
        if (message.ended) this.watches.delete(message.watch);
        w.output([...message.lines], message.dropped ?? 0, message.ended);
        break;
      }
      default:
        break;
    }
  }
}

/** An address other machines can reach for a bind address: itself, or for a wildcard the first external IPv4 address. */
function concreteAddress(bind: string): string {
  if (bind !== '0.0.0.0' && bind !== '*' && bind !== '::') return bind;
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}
