/**
 * The CLI ⇄ coordinator control protocol: one JSON request, one JSON reply, over
 * a ZeroMQ REQ socket to the coordinator's ROUTER on 127.0.0.1.
 */
import * as zmq from 'zeromq';
import { ControlError } from './errors';
import type { NodeStatus, RunStatus } from './daemon';

/** Default control port of `dora up` (dora's own coordinator uses others, so both can run side by side). */
export const DEFAULT_CONTROL_PORT = 6280;

export function controlPort(env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env.DORA_COORDINATOR_PORT;
  return fromEnv ? Number(fromEnv) : DEFAULT_CONTROL_PORT;
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
    };

/** Sends one request to the coordinator; throws ControlError when it cannot be reached. */
export async function controlRequest(request: ControlRequest, options: { port?: number; timeoutMs?: number } = {}): Promise<Extract<ControlReply, { ok: true }>> {
  const port = options.port ?? controlPort();
  const socket = new zmq.Request();
  socket.linger = 0;
  socket.receiveTimeout = options.timeoutMs ?? 15_000;
  socket.connect(`tcp://127.0.0.1:${port}`);
  try {
    await socket.send(JSON.stringify(request));
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
