/**
 * The CLI ⇄ coordinator control protocol: one JSON request, one JSON reply, over
 * a ZeroMQ REQ socket to the coordinator's ROUTER on 127.0.0.1.
 *
 * Every local user can connect to 127.0.0.1, so every request carries a token: a
 * random secret the coordinator writes, 0600, to the state directory of the user who
 * started it. Only that user can read it, so only that user can drive the coordinator
 * (which runs the nodes of every dataflow it starts as that user).
 */
import type { EdgeMetrics, NodeMetrics, TopicInfo } from './metrics';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as net from 'node:net';
import * as zmq from 'zeromq';
import { ControlError } from './errors';
import type { NodeStatus, RunStatus } from './daemon';
import { stateDir } from './userdirs';
import type { DaemonSummary } from './cluster/hub';
import type { WatchTool } from './cluster/messages';
import type { WatchChunk } from './cluster/watch';

/** Default control port of `dora up` (dora's own coordinator uses others, so both can run side by side). */
export const DEFAULT_CONTROL_PORT = 6280;

export function controlPort(env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env.DORA_COORDINATOR_PORT;
  if (!fromEnv) return DEFAULT_CONTROL_PORT;
  const port = Number(fromEnv);
  if (!/^\d+$/.test(fromEnv) || port < 1 || port > 65535) throw new ControlError(`DORA_COORDINATOR_PORT="${fromEnv}" is not a TCP port (1-65535)`);
  return port;
}

/** Whether something accepts TCP connections on 127.0.0.1:port: a refused connection answers at once, ZeroMQ would retry until its timeout. */
export function listening(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ host: '127.0.0.1', port });
    const done = (up: boolean) => (probe.destroy(), resolve(up));
    probe.setTimeout(timeoutMs, () => done(false));
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
  });
}

export type ControlRequest =
  | { readonly cmd: 'ping' }
  | { readonly cmd: 'start'; readonly file: string; readonly name?: string }
  | { readonly cmd: 'list' }
  | { readonly cmd: 'logs'; readonly dataflow: string; readonly node?: string }
  | { readonly cmd: 'follow'; readonly dataflow: string; readonly from: number }
  | { readonly cmd: 'stop'; readonly dataflow: string; readonly graceMs?: number }
  /** Stops a dataflow and starts its file again under the same name. */
  | { readonly cmd: 'restart'; readonly dataflow: string; readonly graceMs?: number }
  /** One node of a running dataflow: `restart` and `stop` act on it, `info` describes it. */
  | { readonly cmd: 'node'; readonly action: 'info' | 'restart' | 'stop'; readonly dataflow: string; readonly node: string; readonly graceMs?: number }
  /** What `dora top` and the web view show: coordinator/metrics.ts (a run answers it on its own control socket too). */
  | { readonly cmd: 'metrics'; readonly dataflow: string }
  /** Every output with its readers and traffic (`dora topic list/info`). */
  | { readonly cmd: 'topics'; readonly dataflow: string }
  /** `dora topic echo|hz` of a dataflow over several machines: runs the tool on the machine of `topic`'s sender (cluster/watch.ts). */
  | { readonly cmd: 'watch'; readonly dataflow: string; readonly tool: WatchTool; readonly topic: string; readonly args: readonly string[] }
  /** What a watch printed since the last read (waits up to waitMs for something). */
  | { readonly cmd: 'watch-read'; readonly watch: number; readonly waitMs?: number }
  /** Stops a watch; with `drain`, its last lines (up to its end) can still be read. */
  | { readonly cmd: 'unwatch'; readonly watch: number; readonly drain?: boolean }
  /** The daemons connected to the coordinator (its own among them). */
  | { readonly cmd: 'daemons' }
  | { readonly cmd: 'down' };

export interface DataflowSummary {
  readonly id: string;
  readonly name: string | null;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly file: string;
  readonly logDir: string;
  readonly nodes: readonly NodeSummary[];
}

export interface NodeSummary {
  readonly id: string;
  readonly status: NodeStatus;
  readonly detail: string | null;
  readonly stderrTail: string[];
  readonly restarts: number;
  readonly pid: number | null;
  /** A planned stop had to kill it. */
  readonly killed: boolean;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly restartPolicy: string;
  /** The machine it runs on, for a dataflow spread over several. */
  readonly machine?: string;
}

export type ControlReply =
  | { readonly ok: false; readonly error: string }
  | {
      readonly ok: true;
      readonly pid?: number;
      readonly dataflow?: DataflowSummary;
      readonly dataflows?: DataflowSummary[];
      readonly text?: string;
      readonly logDir?: string;
      readonly lines?: string[];
      readonly next?: number;
      /** metrics and topics (coordinator/metrics.ts) */
      readonly at?: number;
      readonly nodes?: readonly NodeMetrics[];
      readonly edges?: readonly EdgeMetrics[];
      readonly topics?: readonly TopicInfo[];
      readonly daemons?: DaemonSummary[];
      /** watch: its id and the machine the tool runs on; watch-read: what it printed. */
      readonly watch?: number;
      readonly machine?: string;
      readonly watched?: WatchChunk;
    };

/** The file holding the token of the coordinator on `port`, in the state directory. */
export function controlTokenFile(port: number): string {
  return path.join(stateDir(), `coordinator-${port}.token`);
}

/** Creates a fresh token and writes it to the port's token file (0600; replaced whole, never half-written); returns it. */
export function writeControlToken(port: number): string {
  const token = randomBytes(32).toString('hex');
  const file = controlTokenFile(port);
  const temp = `${file}.${process.pid}.tmp`;
  fs.rmSync(temp, { force: true });
  fs.writeFileSync(temp, token + '\n', { mode: 0o600, flag: 'wx' });
  fs.renameSync(temp, file);
  return token;
}

/** Removes the port's token file if it still holds `token` (a later coordinator may have replaced it). */
export function removeControlToken(port: number, token: string): void {
  const file = controlTokenFile(port);
  try {
    if (sameToken(fs.readFileSync(file, 'utf8').trim(), token)) fs.rmSync(file);
  } catch {
    // already gone
  }
}

/** Whether a request's token is the coordinator's; compares in constant time. */
export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  // Hashing first gives equal lengths, which timingSafeEqual needs, without leaking the length.
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function readControlToken(port: number): string {
  const file = controlTokenFile(port);
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ControlError(`no dora coordinator of this user is running on 127.0.0.1:${port} (no token in ${file}); start one with \`dora up\``);
    }
    throw new ControlError(`cannot read the coordinator's token ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Sends one request, with the token of the coordinator on that port (read from the
 * state directory unless given); throws ControlError when it cannot be reached or refuses.
 */
export async function controlRequest(request: ControlRequest, options: { port?: number; timeoutMs?: number; token?: string } = {}): Promise<Extract<ControlReply, { ok: true }>> {
  const port = options.port ?? controlPort();
  if (!(await listening(port))) throw new ControlError(`no dora coordinator is running on 127.0.0.1:${port}; start one with \`dora up\`${port === DEFAULT_CONTROL_PORT ? '' : ` (with --port ${port})`}`);
  const token = options.token ?? readControlToken(port);
  const socket = new zmq.Request();
  socket.linger = 0;
  socket.receiveTimeout = options.timeoutMs ?? 15_000;
  socket.connect(`tcp://127.0.0.1:${port}`);
  try {
    await socket.send(JSON.stringify({ ...request, token }));
    let frame: Buffer;
    try {
      [frame] = await socket.receive();
    } catch {
      throw new ControlError(`no dora coordinator is answering on 127.0.0.1:${port}; start one with \`dora up\``);
    }
    const reply = JSON.parse(frame.toString('utf8')) as ControlReply;
    if (!reply.ok) throw new ControlError(reply.error);
    return reply;
  } finally {
    socket.close();
  }
}
