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
    let record: Partial<DaemonRecord> & { control?: string; file?: string };
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
    runs.push({ run: { id: name, name: record.name ?? undefined, requests: record.requests, control: record.control, file: record.file }, mtime });
  }
  return runs.sort((a, b) => a.mtime - b.mtime).map((r) => r.run);
}

const describe = (r: LiveRun) => (r.name ? `${r.id} (${r.name})` : r.id);

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
