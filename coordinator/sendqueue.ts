/**
 * Sends on one ZeroMQ socket in order, one send at a time. zeromq.js refuses a second
 * send while one is pending (it throws EBUSY, synchronously), which a burst of messages
 * from several sources (control events, timer ticks, a node's printed lines) reaches.
 */
import type * as zmq from 'zeromq';

type Frames = (Buffer | Uint8Array | string)[];

export class SendQueue {
  private queue: Frames[] = [];
  private head = 0;
  private busy = false;

  constructor(private readonly socket: zmq.Writable) {}

  /** Messages queued and not yet handed to the socket. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Queues a multipart message; it is sent after every message queued before it. */
  send(frames: Frames): void {
    this.queue.push(frames);
    if (!this.busy) void this.pump();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    while (this.head < this.queue.length) {
      const frames = this.queue[this.head];
      this.queue[this.head++] = [];
      try {
        await this.socket.send(frames);
      } catch {
        // the socket was closed at the end of the run: nobody is listening any more
      }
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head); // drop the sent part without shifting one by one
        this.head = 0;
      }
    }
    this.queue = [];
    this.head = 0;
    this.busy = false;
  }
}
