/**
 * The node's receive buffer: one bounded queue per input that drops its oldest
 * message when full (dora's `queue_size`), plus an unbounded queue for the rare
 * control events, delivered together in arrival order.
 */
import type { Event, InputEvent } from './events';

interface Entry<E> {
  readonly seq: number;
  readonly event: E;
}

export class EventQueue {
  private seq = 0;
  private readonly inputs = new Map<string, { capacity: number; entries: Entry<InputEvent>[] }>();
  private readonly control: Entry<Event>[] = [];
  /** Messages dropped because their queue was full, per input. */
  readonly dropped = new Map<string, number>();

  constructor(capacities: Iterable<[input: string, capacity: number]>) {
    for (const [id, capacity] of capacities) this.inputs.set(id, { capacity: Math.max(1, capacity), entries: [] });
  }

  /** Queues an input event; returns the event dropped to make room, if the queue was full. */
  pushInput(event: InputEvent): InputEvent | undefined {
    const queue = this.inputs.get(event.id);
    if (!queue) return event;
    let dropped: InputEvent | undefined;
    if (queue.entries.length >= queue.capacity) {
      dropped = queue.entries.shift()!.event;
      this.dropped.set(event.id, (this.dropped.get(event.id) ?? 0) + 1);
    }
    queue.entries.push({ seq: this.seq++, event });
    return dropped;
  }

  pushControl(event: Event): void {
    this.control.push({ seq: this.seq++, event });
  }

  get size(): number {
    let n = this.control.length;
    for (const q of this.inputs.values()) n += q.entries.length;
    return n;
  }

  /** Removes and returns the oldest event across all queues. */
  shift(): Event | undefined {
    let best: Entry<Event>[] | undefined = this.control.length > 0 ? this.control : undefined;
    for (const q of this.inputs.values()) {
      if (q.entries.length > 0 && (!best || q.entries[0].seq < best[0].seq)) best = q.entries;
    }
    return best?.shift()?.event;
  }
}
