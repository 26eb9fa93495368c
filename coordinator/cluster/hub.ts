/**
 * The coordinator's cluster: the daemons connected to it (server.ts), the dataflows spread
 * over them (clusterrun.ts), and the routing between the two: messages of a daemon go to
 * the run they belong to, requests that expect an answer (prepare, logs) wait for it.
 */
import * as os from 'node:os';
import type { ResolvedDataflow } from '../dataflow';
import type { LogLine } from '../logs';
import { DoraError, ErrorCode } from '../errors';
import { place, type MachineInfo, type Placement } from '../placement';
import { ClusterRun, type ClusterContext } from './clusterrun';
import { coordinatorKeys, type KeyPair } from './keys';
import type { DaemonMessage, ExportEndpoint, PartSpec } from './messages';
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
}

export class ClusterHub {
  readonly localMachine: string;
  readonly keys: KeyPair;
  private readonly server: ClusterServer;
  private readonly runs = new Map<string, ClusterRun>();
  private readonly prepares = new Map<string, { resolve: (r: { exports?: ExportEndpoint; logDir?: string }) => void; reject: (e: Error) => void }>();
  private readonly logRequests = new Map<number, { resolve: (text: string) => void; reject: (e: Error) => void }>();
  private nextRequest = 1;
  private readonly dataAddress: string;
  private readonly log: (line: string) => void;

  constructor(private readonly options: HubOptions) {
    this.localMachine = options.machine ?? LOCAL_MACHINE;
    this.keys = coordinatorKeys();
    this.log = options.log ?? ((line) => process.stderr.write(`dora coordinator: ${line}\n`));
    this.dataAddress = options.dataAddress ?? concreteAddress(options.bind);
    this.server = new ClusterServer({
      reserved: [this.localMachine],
      log: this.log,
      onMessage: (machine, message) => this.onMessage(machine, message),
      onLost: (machine, why) => {
        for (const run of this.runs.values()) run.lose(machine, why);
        for (const [key, p] of this.prepares) if (key.endsWith(`\0${machine}`)) p.reject(new DoraError(`machine ${machine} was lost`, { code: ErrorCode.CONTROL }));
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
    const run = await ClusterRun.start(dataflow, yaml, placement, this.context(), options);
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

  close(): void {
    this.server.close();
  }

  private context(): ClusterContext {
    return {
      localMachine: this.localMachine,
      localDataAddress: this.dataAddress,
      outDir: this.options.outDir,
      sendPrepare: (machine, spec: PartSpec) =>
        new Promise((resolve, reject) => {
          this.prepares.set(`${spec.dataflow}\0${machine}`, { resolve, reject });
          if (!this.server.send(machine, { t: 'prepare', spec })) reject(new DoraError(`machine ${machine} is not connected`, { code: ErrorCode.CONTROL }));
        }),
      sendLaunch: (machine, dataflow, exports) => this.server.send(machine, { t: 'launch', dataflow, exports }),
      sendPart: (machine, dataflow, message) => this.server.send(machine, { t: 'part', dataflow, message }),
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
    };
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
        this.runs.get(message.dataflow)?.fromPart(machine, message.message);
        break;
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
