/**
 * The dataflows running on this machine, found the way dynamic nodes find them: each has a
 * folder in the user's runtime directory (0700: only the user reaches it, README "What is
 * protected") holding `daemon.json`, which names its live daemon, its request socket and
 * its control socket. That covers `dora start` (the coordinator's daemon) and `dora run`
 * (the CLI's) alike, without a coordinator.
 */
import * as fs from 'node:fs';
import * as zmq from 'zeromq';
import * as path from 'node:path';
import type { DaemonRecord } from '../../coordinator/rundir';
import type { RunControlRequest } from '../../coordinator/runcontrol';
import { startTime } from '../../coordinator/rundir';
import { runtimeDir } from '../../coordinator/userdirs';
import { DoraError, ErrorCode } from '../../coordinator/errors';
import { controlRequest, type DataflowSummary } from '../../coordinator/control';

const DATAFLOW_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface LiveRun {
  readonly id: string;
  readonly name: string | undefined;
  /** The daemon's request endpoint (taps ask it for their configuration). */
  readonly requests: string;
  /** The run's control endpoint (`metrics`, `topics`, `logs`, `stop`: coordinator/runcontrol.ts). */
  readonly control: string | undefined;
  /** The dataflow file it runs, when its daemon.json says. */
  readonly file: string | undefined;
  /** This machine's part of a dataflow over several machines: that dataflow's id and this machine's id. */
  readonly part?: { readonly dataflow: string; readonly machine: string };
}

/** Every dataflow whose daemon lives, oldest folder first. */
export function liveRuns(root: string = runtimeDir()): LiveRun[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  const runs: { run: LiveRun; mtime: number }[] = [];
  for (const name of names) {
    if (!DATAFLOW_ID.test(name)) continue;
    let record: Partial<DaemonRecord>;
    let mtime: number;
    try {
      const file = path.join(root, name, 'daemon.json');
      record = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof record;
      mtime = fs.statSync(file).mtimeMs;
    } catch {
      continue;
    }
    if (record.dataflow !== name || typeof record.pid !== 'number' || !record.requests) continue;
    const now = startTime(record.pid);
    if (now === undefined || (record.startTime != null && now !== record.startTime)) continue;
    runs.push({ run: { id: name, name: record.name ?? undefined, requests: record.requests, control: record.control, file: record.file, ...(record.part ? { part: record.part } : {}) }, mtime });
  }
  return runs.sort((a, b) => a.mtime - b.mtime).map((r) => r.run);
}

const describe = (r: LiveRun) => (r.name ? `${r.id} (${r.name})` : r.id);

/** Set by a daemon's watch (coordinator/cluster/watch.ts) to the part's run folder its tool reads. */
export const WATCH_PART_ENV = 'DORA_WATCH_PART';

/** The running dataflow `arg` names (its id or name); without `arg`, the only one running. */
export function findRun(arg: string | undefined, root?: string): LiveRun {
  const runs = liveRuns(root);
  if (runs.length === 0) throw new DoraError('no dataflow is running on this machine (started with `dora start` or `dora run`)', { code: ErrorCode.INVALID_ARGUMENT });
  if (arg === undefined) {
    if (runs.length === 1) return runs[0];
    throw new DoraError(`${runs.length} dataflows are running: name one (${runs.map(describe).join(', ')})`, { code: ErrorCode.INVALID_ARGUMENT });
  }
  const byId = runs.find((r) => r.id === arg) ?? (arg.length >= 4 && runs.filter((r) => r.id.startsWith(arg)).length === 1 ? runs.find((r) => r.id.startsWith(arg)) : undefined);
  if (byId) return byId;
  // a dataflow over several machines, by its id: its part on this machine (its nodes here only)
  const parts = runs.filter((r) => r.part?.dataflow === arg);
  if (parts.length === 1) return parts[0];
  const byName = runs.filter((r) => r.name === arg);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) throw new DoraError(`${byName.length} running dataflows are named "${arg}": use an id (${byName.map((r) => r.id).join(', ')})`, { code: ErrorCode.INVALID_ARGUMENT });
  throw new DoraError(`no running dataflow has the id or name "${arg}" (running: ${runs.map(describe).join(', ')})`, { code: ErrorCode.INVALID_ARGUMENT });
}

const ANSWER_MS = 5000;

/** One request to the run's control endpoint (coordinator/runcontrol.ts); throws its error. */
export async function requestRun<T extends object>(run: LiveRun, request: RunControlRequest): Promise<T> {
  if (!run.control) throw new DoraError(`dataflow ${run.id} was started by a dora-ts without observability (no control endpoint in its run folder)`, { code: ErrorCode.CONTROL });
  const socket = new zmq.Dealer({ linger: 0, receiveTimeout: ANSWER_MS });
  try {
    socket.connect(run.control);
    await socket.send(JSON.stringify(request));
    let frame: Buffer;
    try {
      [frame] = await socket.receive();
    } catch {
      throw new DoraError(`dataflow ${run.id} did not answer within ${ANSWER_MS / 1000} s (has it ended?)`, { code: ErrorCode.TIMEOUT });
    }
    const reply = JSON.parse(frame.toString('utf8')) as { ok: boolean; error?: string };
    if (!reply.ok) throw new DoraError(reply.error ?? 'the dataflow refused the request', { code: ErrorCode.CONTROL });
    return reply as T;
  } finally {
    socket.close();
  }
}

/**
 * A dataflow spread over several machines, seen through the coordinator of this machine:
 * its metrics and topics are merged there from every machine (coordinator/cluster/observe.ts),
 * and its outputs are read on their sender's machine (coordinator/cluster/watch.ts).
 */
export interface ClusterTarget {
  readonly cluster: true;
  readonly id: string;
  readonly name: string | undefined;
  /** Each node's machine. */
  readonly machines: ReadonlyMap<string, string>;
  /** The dataflow file it runs. */
  readonly file: string;
}

/** What `dora top` and `dora topic` observe: a run of this machine (through its folder), or a dataflow over several. */
export type Target = LiveRun | ClusterTarget;

export const isCluster = (t: Target): t is ClusterTarget => 'cluster' in t;

/** The running dataflows over several machines that the coordinator of this user knows (none when none answers). */
async function clusterDataflows(): Promise<DataflowSummary[]> {
  try {
    const dataflows = (await controlRequest({ cmd: 'list' }, { timeoutMs: 3000 })).dataflows ?? [];
    return dataflows.filter((d) => d.status === 'running' && d.nodes.some((n) => n.machine !== undefined));
  } catch {
    return [];
  }
}

/**
 * The running dataflow `arg` names, as findRun() finds it, or a dataflow over several
 * machines that the coordinator knows (whose parts' folders here stand for it, not beside it).
 */
export async function findTarget(arg: string | undefined, root?: string): Promise<Target> {
  // a run folder named exactly: a single machine's run, or the part a daemon's watch names
  // (coordinator/cluster/watch.ts); a part named by its dataflow's id otherwise stands for the whole dataflow
  const exact = arg === undefined ? undefined : liveRuns(root).find((r) => r.id === arg);
  if (exact && (!exact.part || process.env[WATCH_PART_ENV] === exact.id)) return exact;
  const clusters = await clusterDataflows();
  if (clusters.length === 0) return findRun(arg, root);
  const targets: Target[] = clusters.map((d) => ({ cluster: true, id: d.id, name: d.name ?? undefined, machines: new Map(d.nodes.map((n) => [n.id, n.machine ?? ''])), file: d.file }));
  const known = new Set(clusters.map((d) => d.id));
  const all = [...liveRuns(root).filter((r) => !r.part || !known.has(r.part.dataflow)), ...targets];
  const described = (t: Target) => (t.name ? `${t.id} (${t.name})` : t.id);
  if (arg === undefined) {
    if (all.length === 1) return all[0];
    throw new DoraError(`${all.length} dataflows are running: name one (${all.map(described).join(', ')})`, { code: ErrorCode.INVALID_ARGUMENT });
  }
  const prefixed = all.filter((t) => t.id.startsWith(arg));
  const byId = all.find((t) => t.id === arg) ?? (arg.length >= 4 && prefixed.length === 1 ? prefixed[0] : undefined);
  if (byId) return byId;
  const byName = all.filter((t) => t.name === arg);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) throw new DoraError(`${byName.length} running dataflows are named "${arg}": use an id (${byName.map((t) => t.id).join(', ')})`, { code: ErrorCode.INVALID_ARGUMENT });
  throw new DoraError(`no running dataflow has the id or name "${arg}" (running: ${all.map(described).join(', ')})`, { code: ErrorCode.INVALID_ARGUMENT });
}

/** `metrics` or `topics` of a target: from its run's control endpoint, or merged by the coordinator. */
export async function requestTarget<T extends object>(target: Target, cmd: 'metrics' | 'topics'): Promise<T> {
  if (!isCluster(target)) return requestRun<T>(target, { cmd });
  return (await controlRequest({ cmd, dataflow: target.id }, { timeoutMs: 10_000 })) as unknown as T;
}
