/** Helpers for integration tests: temp dataflows, running the real CLI, finding leftovers. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { reclaimStaleRuns } from '../../coordinator/rundir';

export const ROOT = path.resolve(__dirname, '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const NODES = path.join(ROOT, 'tests/fixtures/nodes');

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  // What daemons killed by a test left in the runtime directory (a next daemon would reclaim it too).
  reclaimStaleRuns();
});

/** A fresh temp folder holding `dataflow.yml` with the given text; removed after the test file. */
export function tempDataflow(yaml: string): { dir: string; file: string; record: (name: string) => string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-test-'));
  tempDirs.push(dir);
  const file = path.join(dir, 'dataflow.yml');
  fs.writeFileSync(file, yaml);
  return { dir, file, record: (name) => path.join(dir, `${name}.jsonl`) };
}

export interface Result {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts the CLI; `done` resolves with its output when it exits. */
export function startDora(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): { child: ChildProcess; done: Promise<Result> } {
  // the CLI's output is matched as plain text: no colour a terminal running jest would ask for
  const env = { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined, ...options.env };
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Result>((resolve) =>
    child.on('close', (code, signal) => {
      for (const m of (stdout + stderr).matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g)) seenDataflows.add(m[0]);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, done };
}

export function dora(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Result> {
  return startDora(args, options).done;
}

/** Parsed JSON lines written by the recorder node. */
export function readRecord(file: string): Array<Record<string, any>> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as Record<string, any>);
}

/** PIDs of live processes whose command line mentions `needle` (e.g. a temp dir), from /proc. */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const env = fs.readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(needle) || env.includes(needle)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Unix sockets of a dataflow still open, in its runtime folder `<runtime dir>/<id>/` (from /proc/net/unix). */
export function doraSockets(dataflowId: string): string[] {
  return fs
    .readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[7] ?? '')
    .filter((p) => p.includes(`/${dataflowId}/`));
}

/** Ids of the dataflows this test file has run (read from the CLI's output). */
const seenDataflows = new Set<string>();

/**
 * What the dataflows this test file ran left behind: socket names and /dev/shm
 * segments. Scoped to this file's dataflows, since test files run in parallel.
 */
export function leftovers(): string[] {
  const shm = fs.readdirSync('/dev/shm').filter((name) => [...seenDataflows].some((id) => name.startsWith(`dora-ts-${id}-`)));
  const sockets = [...seenDataflows].flatMap((id) => doraSockets(id));
  return [...sockets, ...shm.map((name) => `/dev/shm/${name}`)];
}

/** /dev/shm segments of one dataflow. */
export function segmentsOf(dataflowId: string): string[] {
  return fs.readdirSync('/dev/shm').filter((name) => name.startsWith(`dora-ts-${dataflowId}-`));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export function node(id: string, script: string, extra = ''): string {
  return `  - id: ${id}\n    path: ${path.join(NODES, script)}\n${extra}`;
}
