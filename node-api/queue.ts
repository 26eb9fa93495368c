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

/**
 * A FIFO over a growable ring: O(1) at both ends. (Array#shift copies the whole
 * array once it is large, which made a deep input queue quadratic.)
 */
class Ring<T> {
  private items: (T | undefined)[] = new Array(16);
  private head = 0;
  length = 0;

  push(item: T): void {
    if (this.length === this.items.length) this.grow();
    this.items[(this.head + this.length) & (this.items.length - 1)] = item;
    this.length++;
  }

  peek(): T | undefined {
    return this.length > 0 ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined; // the event may hold a shared-memory sample: let it go
    this.head = (this.head + 1) & (this.items.length - 1);
    this.length--;
    return item;
  }

  private grow(): void {
    const items: (T | undefined)[] = new Array(this.items.length * 2);
    for (let i = 0; i < this.length; i++) items[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = items;
    this.head = 0;
  }
}

export class EventQueue {
  private seq = 0;
  private readonly inputs = new Map<string, { capacity: number; entries: Ring<Entry<InputEvent>> }>();
  private readonly control = new Ring<Entry<Event>>();
  /** Messages dropped because their queue was full, per input. */
  readonly dropped = new Map<string, number>();

  constructor(capacities: Iterable<[input: string, capacity: number]>) {
    for (const [id, capacity] of capacities) this.inputs.set(id, { capacity: Math.max(1, capacity), entries: new Ring() });
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
    let best: Ring<Entry<Event>> | undefined = this.control.length > 0 ? this.control : undefined;
    for (const q of this.inputs.values()) {
      if (q.entries.length > 0 && (!best || q.entries.peek()!.seq < best.peek()!.seq)) best = q.entries;
    }
    return best?.shift()?.event;
  }
}
