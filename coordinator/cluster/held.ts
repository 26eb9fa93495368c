/**
 * What a daemon's parts would tell the coordinator while it is away, held until a
 * coordinator accepts the daemon again, bounded. Past the bound the message that matters
 * least goes: the oldest log line (logs are also in the part's files), else the oldest
 * status update (the daemon's registration report carries each node's current status),
 * else the oldest message. Order is kept among what stays.
 */
import type { DaemonMessage } from './messages';

/** Lower goes first; messages of the same rank go oldest first. */
function rank(message: DaemonMessage): number {
  if (message.t !== 'part') return 2;
  if (message.message.t === 'line') return 0;
  if (message.message.t === 'status') return 1;
  return 2;
}

export class HeldMessages {
  private readonly messages: DaemonMessage[] = [];
  /** How many messages of each rank are held: finding the one to drop scans only when one is there. */
  private readonly counts = [0, 0, 0];
  private droppedCount = 0;

  constructor(readonly max: number) {}

  get length(): number {
    return this.messages.length;
  }

  /** How many were dropped since the last take(). */
  get dropped(): number {
    return this.droppedCount;
  }

  push(message: DaemonMessage): void {
    this.messages.push(message);
    this.counts[rank(message)]++;
    if (this.messages.length <= this.max) return;
    const least = this.counts.findIndex((n) => n > 0);
    const at = this.messages.findIndex((m) => rank(m) === least);
    this.messages.splice(at, 1);
    this.counts[least]--;
    this.droppedCount++;
  }

  /** Everything held, oldest first; the holder starts empty again. */
  take(): DaemonMessage[] {
    this.counts.fill(0);
    this.droppedCount = 0;
    return this.messages.splice(0);
  }
}
