/**
 * A run's own control endpoint: a ROUTER on `ipc://<run folder>/control`, named in the run
 * folder's `daemon.json`, answering the observing requests of the coordinator's control
 * link (`metrics`, `topics`, `logs`, `stop`) with the same replies. It is what makes
 * `dora top`, `dora topic` and `dora ui` work on a `dora run`, which has no coordinator. It
 * needs no token: the run folder is 0700, so only the user reaches the socket (README,
 * "What is protected"), who could as well press Ctrl-C.
 */
import * as zmq from 'zeromq';

/** Requests are small JSON objects; anything larger is refused by ZeroMQ. */
const MAX_REQUEST_BYTES = 64 * 1024;

export type RunControlRequest =
  | { readonly cmd: 'metrics' }
  | { readonly cmd: 'topics' }
  /** The stored log lines of one node, or of all. */
  | { readonly cmd: 'logs'; readonly node?: string }
  /** Starts stopping the run; the reply does not wait for it (the socket goes with the run). */
  | { readonly cmd: 'stop'; readonly graceMs?: number };

/** The request, when it is one of RunControlRequest with fields of the right types. */
export function parseRunControl(request: { cmd?: unknown; node?: unknown; graceMs?: unknown }): RunControlRequest | string {
  switch (request.cmd) {
    case 'metrics':
    case 'topics':
      return { cmd: request.cmd };
    case 'logs':
      if (request.node !== undefined && typeof request.node !== 'string') return 'logs: "node" must be a string';
      return request.node === undefined ? { cmd: 'logs' } : { cmd: 'logs', node: request.node };
    case 'stop':
      if (request.graceMs !== undefined && !(typeof request.graceMs === 'number' && Number.isFinite(request.graceMs) && request.graceMs >= 0)) return 'stop: "graceMs" must be a number of milliseconds';
      return request.graceMs === undefined ? { cmd: 'stop' } : { cmd: 'stop', graceMs: request.graceMs };
  }
  return `unknown command ${JSON.stringify(request.cmd)}`;
}

export class RunControl {
  private readonly socket = new zmq.Router();

  constructor(private readonly answer: (request: RunControlRequest) => object) {
    this.socket.linger = 0;
    this.socket.maxMessageSize = MAX_REQUEST_BYTES;
  }

  async bind(endpoint: string): Promise<void> {
    await this.socket.bind(endpoint);
    void this.serve();
  }

  close(): void {
    this.socket.close();
  }

  private async serve(): Promise<void> {
    try {
      for await (const [identity, frame] of this.socket) {
        let reply: object;
        try {
          const request = parseRunControl(JSON.parse(frame.toString('utf8')) as Parameters<typeof parseRunControl>[0]);
          reply = typeof request === 'string' ? { ok: false, error: request } : this.answer(request);
        } catch (err) {
          reply = { ok: false, error: err instanceof Error ? err.message : String(err) };
        }
        await this.socket.send([identity, JSON.stringify(reply)]);
      }
    } catch {
      // closed at the end of the run
    }
  }
}
