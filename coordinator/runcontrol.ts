/**
 * A run's own control endpoint: a ROUTER on `ipc://<run folder>/control`, named in the run
 * folder's `daemon.json`, answering the observing requests of the coordinator's control
 * link (`metrics`, `topics`) with the same replies. It is what makes `dora top` and
 * `dora topic` work on a `dora run`, which has no coordinator. It needs no token: the run
 * folder is 0700, so only the user reaches the socket (README, "What is protected").
 */
import * as zmq from 'zeromq';

/** Requests are small JSON objects; anything larger is refused by ZeroMQ. */
const MAX_REQUEST_BYTES = 64 * 1024;

export type RunControlRequest = { readonly cmd: 'metrics' } | { readonly cmd: 'topics' };

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
          const request = JSON.parse(frame.toString('utf8')) as { cmd?: unknown };
          reply = request.cmd === 'metrics' || request.cmd === 'topics' ? this.answer(request as RunControlRequest) : { ok: false, error: `unknown command ${JSON.stringify(request.cmd)}` };
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
