/**
 * Where `dora ui` gets a dataflow's state, numbers and logs, and where its stop goes: the
 * coordinator for the dataflows it started (`dora start`), the run's own control socket
 * (coordinator/runcontrol.ts, found through the run folder as `dora top` finds it) for those
 * of a `dora run`, which have no coordinator. Looked up anew on every request, so the page
 * follows dataflows that start and end while it is open.
 */
import { controlRequest } from '../../coordinator/control';
import type { MetricsReply } from '../../coordinator/metrics';
import { liveRuns, requestRun, type LiveRun } from '../observe/runs';

/** What the page shows of a dataflow (a subset of the coordinator's DataflowSummary). */
export interface UiDataflow {
  readonly id: string;
  readonly name: string | null;
  readonly status: string;
  readonly file: string;
  readonly nodes: readonly { readonly id: string; readonly status: string; readonly pid: number | null; readonly restarts: number }[];
}

/** A dataflow and where to ask about it: `run` for a `dora run`, else the coordinator. */
export interface Listed {
  readonly dataflow: UiDataflow;
  readonly run?: LiveRun;
}

/** `dora run` dataflows seen by this server, to say "ended" once their run folder is gone. */
const seenRuns = new Map<string, UiDataflow>();

/** The coordinator's dataflows (none when no coordinator runs) and every `dora run` of this user. */
export async function listDataflows(): Promise<{ listed: Listed[]; coordinatorError?: string }> {
  let managed: UiDataflow[] = [];
  let coordinatorError: string | undefined;
  try {
    managed = (await controlRequest({ cmd: 'list' })).dataflows ?? [];
  } catch (err) {
    coordinatorError = (err as Error).message;
  }
  const known = new Set(managed.map((d) => d.id));
  const running = liveRuns().filter((r) => !known.has(r.id));
  const foreground = (await Promise.all(running.map(describeRun))).filter((l): l is Listed => l !== undefined);
  const live = new Set(foreground.map((l) => l.dataflow.id));
  // a `dora run` that ended: still listed, as stopped, so an open page says so
  const ended = [...seenRuns.values()].filter((d) => !live.has(d.id) && !known.has(d.id)).map((d) => ({ dataflow: { ...d, status: 'stopped' } }));
  return { listed: [...managed.map((dataflow) => ({ dataflow })), ...ended, ...foreground], ...(coordinatorError ? { coordinatorError } : {}) };
}

/** A `dora run` as the page shows it: its nodes from its own metrics (undefined when it no longer answers). */
async function describeRun(run: LiveRun): Promise<Listed | undefined> {
  let metrics: MetricsReply;
  try {
    metrics = await requestRun<MetricsReply>(run, { cmd: 'metrics' });
  } catch {
    return undefined;
  }
  const dataflow: UiDataflow = {
    id: run.id,
    name: run.name ?? null,
    status: 'running',
    file: run.file ?? '', // older run folders do not name it
    nodes: metrics.nodes.map((n) => ({ id: n.id, status: n.status, pid: n.pid ?? null, restarts: n.restarts })),
  };
  seenRuns.set(run.id, dataflow);
  return { dataflow, run };
}

/** The dataflow `ref` names (id, id prefix or name, as the CLI takes them), else the newest running one. */
export function pick(listed: readonly Listed[], ref: string): Listed | undefined {
  const all = listed.slice().reverse();
  const by = (f: (d: UiDataflow) => boolean) => all.find((l) => f(l.dataflow));
  return ref
    ? (by((d) => d.id === ref) ?? by((d) => d.name === ref && d.status === 'running') ?? by((d) => d.name === ref) ?? by((d) => d.id.startsWith(ref)))
    : (by((d) => d.status === 'running') ?? all[0]);
}

/** The numbers of `metrics` (coordinator/metrics.ts) for a listed dataflow. */
export async function metricsOf(l: Listed): Promise<MetricsReply> {
  if (l.run) return requestRun<MetricsReply>(l.run, { cmd: 'metrics' });
  if (seenRuns.has(l.dataflow.id)) throw new Error('the dataflow has ended');
  return (await controlRequest({ cmd: 'metrics', dataflow: l.dataflow.id })) as unknown as MetricsReply;
}

/** The stored log text of one node (or all). */
export async function logsOf(l: Listed, node: string | undefined): Promise<string> {
  const request = node ? { node } : {};
  if (l.run) return (await requestRun<{ text: string }>(l.run, { cmd: 'logs', ...request })).text;
  if (seenRuns.has(l.dataflow.id)) return '';
  return (await controlRequest({ cmd: 'logs', dataflow: l.dataflow.id, ...request })).text ?? '';
}

/** Stops the dataflow; returns its state after the request. */
export async function stopIt(l: Listed): Promise<UiDataflow> {
  if (l.run) {
    await requestRun(l.run, { cmd: 'stop' });
    return { ...l.dataflow, status: 'stopping' };
  }
  const reply = await controlRequest({ cmd: 'stop', dataflow: l.dataflow.id }, { timeoutMs: 20_000 });
  return reply.dataflow ?? l.dataflow;
}
