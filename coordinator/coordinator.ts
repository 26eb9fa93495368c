/**
 * The coordinator behind `dora up`: keeps the dataflows it started (running and
 * finished), and answers the CLI's control requests on 127.0.0.1, those carrying its
 * token only (control.ts). It runs the local daemon in-process; multi-machine
 * deployment would split the two.
 */
import * as fs from 'node:fs';
import * as zmq from 'zeromq';
import { sourceName } from './dataflow';
import { DataflowRun, type RunResult, type NodeOutcome } from './daemon';
import { loadDescriptor } from './descriptor';
import { DoraError, ErrorCode } from './errors';
import type { LogLine } from './logs';
import { removeControlToken, sameToken, writeControlToken, type ControlReply, type ControlRequest, type DataflowSummary } from './control';
import { allLocal, place } from './placement';
import { ClusterHub, LOCAL_MACHINE, type HubOptions } from './cluster/hub';
import { ClusterRun } from './cluster/clusterrun';
import { clusterMetrics, clusterTopics } from './cluster/observe';
import { WatchRelays, watchArgsRefusal } from './cluster/watch';
import type { WatchTool } from './cluster/messages';

/** A dataflow on this machine only, or spread over several (cluster/clusterrun.ts). */
type AnyRun = DataflowRun | ClusterRun;

/** Lines kept in memory per run for `dora start --attach`; the files keep everything. */
const FOLLOW_BUFFER = 10_000;
/** Control requests are a command and a path or two: anything far bigger is not one, and is not read. */
const MAX_REQUEST_BYTES = 1 << 20;
/** The answer to a request without the right token, malformed or not: tells nothing about the coordinator. */
const REFUSED = "refused: this request does not carry the coordinator's token (only the user who started the coordinator can read it, from its state directory)";

interface Entry {
  readonly run: AnyRun;
  readonly lines: string[];
  /** Index of `lines[0]` among all lines the run has printed. */
  firstLine: number;
  result?: RunResult;
}

export class Coordinator {
  private readonly runs = new Map<string, Entry>();
  private server?: zmq.Router;
  private shuttingDown?: Promise<void>;
  /** Daemons of other machines, once listenCluster() was called (`dora coordinator --bind`). */
  private hub?: ClusterHub;
  /** `dora topic echo|hz` of dataflows over several machines, run where their sender is (cluster/watch.ts). */
  private readonly watches = new WatchRelays();

  constructor(private readonly options: { outDir?: string } = {}) {}

  /** Accepts daemons of other machines (`--bind`); until then every node runs on this machine. */
  async listenCluster(options: Omit<HubOptions, 'outDir' | 'onAdopted'>): Promise<void> {
    // dataflows its daemons still run after a restart of this coordinator: listed, read and stopped as its own
    const onAdopted = (run: ClusterRun) => {
      const { entry, onLine } = this.newEntry();
      this.track(run, entry);
      return onLine;
    };
    const hub = new ClusterHub({ ...options, outDir: this.options.outDir, onAdopted });
    await hub.listen();
    this.hub = hub;
  }

  async startDataflow(file: string, name?: string): Promise<AnyRun> {
    if (name !== undefined && [...this.runs.values()].some((e) => e.run.name === name && !e.result)) {
      throw new DoraError(`a running dataflow is already named "${name}"`, { code: ErrorCode.CONTROL });
    }
    const dataflow = loadDescriptor(file);
    const { entry, onLine } = this.newEntry();
    // placed before anything starts: a machine that is not connected is reported where the file names it
    const placement = this.hub ? this.hub.place(dataflow) : place(dataflow, [{ machine: LOCAL_MACHINE, labels: {} }], LOCAL_MACHINE);
    const run =
      this.hub && !allLocal(placement, this.hub.localMachine)
        ? await this.hub.start(dataflow, fs.readFileSync(file, 'utf8'), placement, { name, onLine })
        : await DataflowRun.start(dataflow, { name, outDir: this.options.outDir, onLine });
    this.track(run, entry);
    return run;
  }

  /** A run's entry before the run exists, and the sink of its lines (kept for `dora start --attach`, `dora logs --follow`). */
  private newEntry(): { entry: Omit<Entry, 'run'> & { run?: AnyRun }; onLine: (line: LogLine) => void } {
    const lines: string[] = [];
    const entry = { lines, firstLine: 0 } as Omit<Entry, 'run'> & { run?: AnyRun };
    const onLine = (l: LogLine) => {
      lines.push(`${l.time} [${l.node}] ${l.line}`); // LogStore stamps every line it passes on
      if (lines.length > FOLLOW_BUFFER) {
        lines.shift();
        entry.firstLine++;
      }
    };
    return { entry, onLine };
  }

  private track(run: AnyRun, entry: Omit<Entry, 'run'> & { run?: AnyRun }): void {
    entry.run = run;
    this.runs.set(run.id, entry as Entry);
    void run.finished.then((result) => (entry.result = result));
  }

  /** Finds a dataflow by id, id prefix or name (newest first). */
  find(ref: string): AnyRun {
    const entries = [...this.runs.values()].reverse();
    const hit =
      this.runs.get(ref)?.run ??
      entries.find((e) => e.run.name === ref && !e.result)?.run ??
      entries.find((e) => e.run.name === ref)?.run ??
      entries.find((e) => e.run.id.startsWith(ref))?.run;
    if (!hit) throw new DoraError(`no dataflow with id or name "${ref}" (see \`dora list\`)`, { code: ErrorCode.CONTROL });
    return hit;
  }

  /**
   * Starts `dora topic <tool>` of `topic` on the machine of its sender, for a dataflow over
   * several machines (a tap reads shared memory, which stays on its machine).
   */
  private watch(ref: string, tool: WatchTool, topic: string, args: readonly string[]): { watch: number; machine: string } {
    const run = this.find(ref);
    if (!(run instanceof ClusterRun)) throw new DoraError(`dataflow ${run.id} runs on this machine only: \`dora topic ${tool}\` reads it directly`, { code: ErrorCode.CONTROL });
    if (run.status !== 'running') throw new DoraError(`dataflow ${run.id} is ${run.status}`, { code: ErrorCode.CONTROL });
    const [node, output] = [topic.slice(0, topic.indexOf('/')), topic.slice(topic.indexOf('/') + 1)];
    const spec = run.dataflow.nodes.find((n) => n.id === node);
    if (!spec || !spec.outputs.includes(output)) {
      throw new DoraError(`dataflow ${run.id} has no output "${topic}" (outputs: ${run.dataflow.nodes.flatMap((n) => n.outputs.map((o) => `${n.id}/${o}`)).join(', ') || 'none'})`, { code: ErrorCode.CONTROL });
    }
    const refusal = watchArgsRefusal(tool, args);
    if (refusal) throw new DoraError(refusal, { code: ErrorCode.CONTROL });
    const machine = run.machineOf(node)!;
    const watch = this.watches.open((output) => run.watchPart(machine, tool, topic, args, output));
    return { watch, machine };
  }

  list(): DataflowSummary[] {
    return [...this.runs.values()].map(({ run }) => summarize(run));
  }

  async handle(request: ControlRequest): Promise<ControlReply> {
    try {
      switch (request.cmd) {
        case 'ping':
          return { ok: true, pid: process.pid };
        case 'start': {
          const run = await this.startDataflow(request.file, request.name);
          return { ok: true, dataflow: summarize(run) };
        }
        case 'list':
          return { ok: true, dataflows: this.list() };
        case 'logs': {
          const run = this.find(request.dataflow);
          if (request.node !== undefined && !run.nodeIds().includes(request.node)) {
            throw new DoraError(`dataflow ${run.id} has no node "${request.node}" (nodes: ${run.nodeIds().join(', ')})`, { code: ErrorCode.CONTROL });
          }
          return { ok: true, text: await run.readLogs(request.node), logDir: run.logDir };
        }
        case 'follow': {
          const run = this.find(request.dataflow);
          const entry = this.runs.get(run.id)!;
          const from = Math.max(request.from, entry.firstLine);
          return { ok: true, lines: entry.lines.slice(from - entry.firstLine), next: entry.firstLine + entry.lines.length, dataflow: summarize(run) };
        }
        case 'stop': {
          const run = this.find(request.dataflow);
          await run.stop(request.graceMs);
          return { ok: true, dataflow: summarize(run) };
        }
        case 'restart': {
          const old = this.find(request.dataflow);
          await old.stop(request.graceMs);
          const run = await this.startDataflow(old.dataflow.file, old.name);
          return { ok: true, dataflow: summarize(run) };
        }
        case 'node': {
          const run = this.find(request.dataflow);
          if (request.action === 'stop') run.stopNode(request.node, request.graceMs);
          else if (request.action === 'restart') run.restartNode(request.node, request.graceMs);
          else if (!run.nodeIds().includes(request.node)) throw new DoraError(`no node "${request.node}" in dataflow ${run.id} (nodes: ${run.nodeIds().join(', ')})`, { code: ErrorCode.CONTROL });
          return { ok: true, dataflow: summarize(run) };
        }
        case 'metrics': {
          const run = this.find(request.dataflow);
          return run instanceof ClusterRun ? await clusterMetrics(run) : run.metrics();
        }
        case 'topics': {
          const run = this.find(request.dataflow);
          return run instanceof ClusterRun ? await clusterTopics(run) : run.topics();
        }
        case 'watch':
          return { ok: true, ...this.watch(request.dataflow, request.tool, request.topic, request.args) };
        case 'watch-read':
          return { ok: true, watched: await this.watches.read(request.watch, Math.min(request.waitMs ?? 1000, 5000)) };
        case 'unwatch':
          this.watches.close(request.watch, request.drain === true);
          return { ok: true };
        case 'daemons': {
          const nodesOf = (machine: string) =>
            [...this.runs.values()].flatMap(({ run }) =>
              run.nodeOutcomes().flatMap((n) => (n.status === 'running' && (run instanceof ClusterRun ? run.machineOf(n.id) : this.hub?.localMachine ?? LOCAL_MACHINE) === machine ? [`${run.name ?? run.id}/${n.id}`] : [])),
            );
          const local = { machine: LOCAL_MACHINE, address: '127.0.0.1', labels: {}, heartbeatAgeMs: 0, nodes: nodesOf(LOCAL_MACHINE), local: true };
          return { ok: true, daemons: this.hub ? this.hub.daemons(nodesOf) : [local] };
        }
        case 'down':
          setImmediate(() => void this.shutdown());
          return { ok: true };
      }
      return { ok: false, error: `unknown command ${JSON.stringify((request as { cmd?: unknown }).cmd)}` };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }

  /**
   * Serves control requests on `tcp://127.0.0.1:<port>` until `down`. The token file is
   * written once the port is ours, so a second coordinator that fails to bind does not
   * replace the first one's token.
   */
  async listen(port: number): Promise<void> {
    const server = new zmq.Router();
    server.linger = 0;
    server.maxMessageSize = MAX_REQUEST_BYTES;
    await server.bind(`tcp://127.0.0.1:${port}`);
    this.server = server;
    const token = writeControlToken(port);
    try {
      for await (const [identity, , frame] of server) {
        let request: (ControlRequest & { token?: unknown }) | undefined;
        try {
          request = JSON.parse(frame.toString('utf8')) as ControlRequest;
        } catch {
          // answered below
        }
        if (!sameToken(request?.token, token)) {
          await server.send([identity, '', JSON.stringify({ ok: false, error: REFUSED })]);
          continue;
        }
        void this.handle(request!).then((reply) => server.send([identity, '', JSON.stringify(reply)]).catch(() => undefined));
      }
    } catch {
      // closed by shutdown()
    } finally {
      removeControlToken(port, token);
    }
  }

  /**
   * Gives up without stopping anything (the control port could not be bound): the daemons
   * that registered keep their dataflows for a coordinator that can serve them.
   */
  abandon(): void {
    this.hub?.close(false);
  }

  /** Stops every running dataflow, then closes the control socket. */
  shutdown(graceMs?: number): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.watches.closeAll();
      await Promise.all([...this.runs.values()].filter((e) => !e.result).map((e) => e.run.stop(graceMs)));
      this.hub?.close();
      this.server?.close();
    })();
    return this.shuttingDown;
  }
}

function summarize(run: AnyRun): DataflowSummary {
  return {
    id: run.id,
    name: run.name ?? null,
    status: run.status,
    startedAt: run.startedAt.toISOString(),
    file: run.dataflow.file,
    logDir: run.logDir,
    nodes: run.nodeOutcomes().map((n: NodeOutcome) => {
      const spec = run.dataflow.nodes.find((s) => s.id === n.id)!;
      return {
        id: n.id,
        status: n.status,
        detail: n.detail ?? null,
        stderrTail: [...n.stderrTail],
        restarts: n.restarts,
        pid: n.pid ?? null,
        killed: n.killed ?? false,
        inputs: spec.inputs.map((i) => `${i.id} <- ${sourceName(i.source)}`),
        outputs: [...spec.outputs],
        restartPolicy: spec.restart.policy,
        ...(run instanceof ClusterRun ? { machine: run.machineOf(n.id) } : {}),
      };
    }),
  };
}
