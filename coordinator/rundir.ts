/**
 * A dataflow's folder in the user's runtime directory (userdirs.ts): the unix sockets of
 * its daemon and nodes, which only the user can reach because the folders are 0700,
 * and `daemon.json`, naming the daemon that owns it. The daemon removes the folder when
 * the run ends; a daemon killed before that leaves it, and the next daemon to start
 * reclaims it, with the dataflow's shared-memory segments, once the owner is gone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unlinkDataflowSegments } from './segments';
import { runtimeDir } from './userdirs';

/**
 * What `daemon.json` holds. Dynamic nodes read it too (bindings/c/src/dynamic.c): they
 * find the running dataflows that declare them here, and ask the daemon at `requests`.
 */
export interface DaemonRecord {
  readonly pid: number;
  /** /proc/<pid>/stat field 22: with the pid, tells the daemon from a later process given the same pid. */
  readonly startTime: string | null;
  readonly dataflow: string;
  /** The dataflow's name, when it has one (`dora start --name`). */
  readonly name?: string | null;
  /** The daemon's request endpoint (ROUTER). */
  readonly requests?: string;
  /** Ids of the dataflow's dynamic nodes (`path: dynamic`). */
  readonly dynamicNodes?: readonly string[];
  /** The run's control endpoint (coordinator/runcontrol.ts: metrics, topics). */
  readonly control?: string;
  /** The dataflow file it runs (`dora record` of a running dataflow keeps a copy for `dora replay`). */
  readonly file?: string;
  /** This run is this machine's part of a dataflow over several machines: that dataflow's id, and this machine's id. */
  readonly part?: { readonly dataflow: string; readonly machine: string };
}

/** What a daemon adds to its `daemon.json` beside its identity. */
export type DaemonDetails = Pick<DaemonRecord, 'name' | 'requests' | 'dynamicNodes' | 'control' | 'file' | 'part'>;

const DAEMON_FILE = 'daemon.json';
/** Dataflow ids are UUIDs; nothing else in the runtime directory is ours to remove. */
const DATAFLOW_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A folder still without its daemon.json is being created unless it is older than this. */
const CREATION_GRACE_MS = 60_000;

export class RunDir {
  /** The folder's path; nothing is created before create(). */
  readonly path: string;

  constructor(
    readonly dataflowId: string,
    root: string = runtimeDir(),
    /** The folder exists already: claim() made it. */
    private readonly claimed = false,
  ) {
    this.path = path.join(root, dataflowId);
  }

  /**
   * One machine's part of a dataflow spread over several: named by the dataflow's id, so
   * that a dynamic node there finds it by that id (DORA_DATAFLOW), unless another part of
   * the same dataflow has that folder on this host (machines simulated on one host, or a
   * replacement part beside the stale one): then by an id of its own (`fallback`).
   */
  static claim(dataflowId: string, fallback: string, root: string = runtimeDir()): RunDir {
    try {
      fs.mkdirSync(path.join(root, dataflowId), { mode: 0o700 });
      return new RunDir(dataflowId, root, true);
    } catch {
      return new RunDir(fallback, root);
    }
  }

  /** Creates the folder (0700) and its daemon.json naming this process. */
  create(details: DaemonDetails = {}): void {
    if (!this.claimed) fs.mkdirSync(this.path, { mode: 0o700 });
    const record: DaemonRecord = { pid: process.pid, startTime: startTime(process.pid) ?? null, dataflow: this.dataflowId, ...details };
    // Written aside and renamed: a dynamic node reading it never sees half of it.
    const file = path.join(this.path, DAEMON_FILE);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(record) + '\n', { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
  }

  /** Removes the folder; failing that, the next daemon's reclaim will. */
  remove(): void {
    try {
      fs.rmSync(this.path, { recursive: true, force: true });
    } catch {
      // reclaimed later
    }
  }
}

export interface Reclaimed {
  /** Ids of the dataflows whose folders were removed. */
  readonly dataflows: readonly string[];
  /** Shared-memory segments removed with them. */
  readonly segments: number;
}

/** Removes the folders, and shared-memory segments, of dataflows whose daemon is gone. */
export function reclaimStaleRuns(root: string = runtimeDir()): Reclaimed {
  const dataflows: string[] = [];
  let segments = 0;
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    if (!DATAFLOW_ID.test(name) || !isDirectory(dir) || daemonAlive(dir, name)) continue;
    fs.rmSync(dir, { recursive: true, force: true });
    segments += unlinkDataflowSegments(name).length;
    dataflows.push(name);
  }
  return { dataflows, segments };
}

function daemonAlive(dir: string, dataflow: string): boolean {
  let record: Partial<DaemonRecord>;
  try {
    record = JSON.parse(fs.readFileSync(path.join(dir, DAEMON_FILE), 'utf8')) as Partial<DaemonRecord>;
  } catch {
    return youngerThan(dir, CREATION_GRACE_MS);
  }
  if (record.dataflow !== dataflow || typeof record.pid !== 'number') return youngerThan(dir, CREATION_GRACE_MS);
  const now = startTime(record.pid);
  return now !== undefined && (record.startTime == null || now === record.startTime);
}

/** Start time of a live process (/proc/<pid>/stat field 22), undefined when it is gone or a zombie. */
export function startTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name, which may itself hold spaces and parentheses: field 3 is the state.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] === 'Z' ? undefined : fields[19];
}

function isDirectory(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

function youngerThan(p: string, ms: number): boolean {
  try {
    return Date.now() - fs.lstatSync(p).mtimeMs < ms;
  } catch {
    return false;
  }
}
