/**
 * The sender's pool of shared-memory samples. A large sample is a whole segment; a
 * small one (up to SLAB_MAX_SAMPLE) is a slot of a slab segment shared with others
 * of its size class, so a burst of small messages does not create (and make every
 * receiver map) a segment per message. A sample is handed out again only once every
 * receiver it was sent to has released it (drop tokens), or has left the dataflow.
 * Free segments and slots are kept for reuse, so a steady stream creates no new
 * segments after warm-up.
 */
import { Segment } from './shm';

/** Smallest segment created: small enough for many, large enough to be reused across sizes. */
const MIN_SEGMENT = 64 * 1024;
/**
 * Free segments kept per pool, at least; the pool keeps as many as were ever in flight
 * at once (receivers' queues bound that), so bursts do not churn segments.
 */
const MIN_KEPT_FREE = 16;
/** Samples up to this size are slots of slab segments. */
const SLAB_MAX_SAMPLE = 256 * 1024;
/** Smallest slot; slots are powers of two, so every offset is 64-byte aligned as the protocol asks. */
const MIN_SLOT = 4096;
/** A slab holds at least this many slots and at least 1 MiB. */
const SLOTS_PER_SLAB = 16;

export interface Sample {
  /** Unique per sender (never reused), so a stale drop token cannot release a later sample. */
  readonly id: bigint;
  readonly segment: Segment;
  /** Where the sample starts in the segment (0 for a whole segment). */
  readonly offset: number;
  /** Bytes available from offset. */
  readonly capacity: number;
}

interface Slot {
  readonly slab: Slab;
  readonly offset: number;
}

interface Slab {
  readonly segment: Segment;
  readonly slotSize: number;
  /** Slots handed out and not yet back. */
  inUse: number;
}

interface Outstanding {
  readonly sample: Sample;
  /** Receivers (node ids) that still hold it. */
  readonly holders: Set<string>;
  /** The output and sequence number it was sent with, for receivers that report lost messages. */
  readonly output?: string;
  readonly seq?: bigint;
}

export class SamplePool {
  private nextId = 1n;
  private readonly free: Segment[] = [];
  private readonly outstanding = new Map<bigint, Outstanding>();
  private readonly slabs: Slab[] = [];
  /** Free slots per slot size. */
  private readonly freeSlots = new Map<number, Slot[]>();
  /** Slot of each sample id taken from a slab, until it comes back. */
  private readonly slotOf = new Map<bigint, Slot>();
  /** Segments created since the pool started, slabs included (for tests and diagnostics). */
  created = 0;
  /** Most samples ever outstanding at once. */
  peakOutstanding = 0;

  constructor(private readonly prefix: string) {}

  /** A writable sample of at least `size` bytes: a free slot or segment when one fits, else a new one. */
  acquire(size: number): Sample {
    if (size <= SLAB_MAX_SAMPLE) return this.acquireSlot(size);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const s = this.free[i].size;
      // Reuse a segment that fits without wasting more than 4x the space.
      if (s >= size && s <= Math.max(MIN_SEGMENT, size * 4) && (best < 0 || s < this.free[best].size)) best = i;
    }
    const segment = best >= 0 ? this.free.splice(best, 1)[0] : this.createSegment(size);
    return { id: this.nextId++, segment, offset: 0, capacity: segment.size };
  }

  private acquireSlot(size: number): Sample {
    const slotSize = Math.max(MIN_SLOT, 2 ** Math.ceil(Math.log2(size)));
    let slots = this.freeSlots.get(slotSize);
    if (!slots) this.freeSlots.set(slotSize, (slots = []));
    if (slots.length === 0) {
      this.created++;
      const segment = Segment.create(this.prefix, Math.max(1 << 20, slotSize * SLOTS_PER_SLAB));
      const slab: Slab = { segment, slotSize, inUse: 0 };
      this.slabs.push(slab);
      // Reversed, so that pop() hands out the lowest offsets first.
      for (let offset = segment.size - slotSize; offset >= 0; offset -= slotSize) slots.push({ slab, offset });
    }
    const slot = slots.pop()!;
    slot.slab.inUse++;
    const id = this.nextId++;
    this.slotOf.set(id, slot);
    return { id, segment: slot.slab.segment, offset: slot.offset, capacity: slotSize };
  }

  /**
   * Records that `sample` is being sent to `holders` (call it before sending: a drop
   * token may come back at once); with no holders it is free again at once.
   */
  sent(sample: Sample, holders: Iterable<string>, tag?: { output: string; seq: bigint }): void {
    const set = new Set(holders);
    if (set.size === 0) this.recycle(sample);
    else {
      this.outstanding.set(sample.id, { sample, holders: set, output: tag?.output, seq: tag?.seq });
      this.peakOutstanding = Math.max(this.peakOutstanding, this.outstanding.size);
    }
  }

  /** Returns a sample that was acquired but not sent. */
  discard(sample: Sample): void {
    this.recycle(sample);
  }

  /** A receiver released a sample (a drop token). Unknown ids are ignored. */
  release(id: bigint, holder: string): void {
    const entry = this.outstanding.get(id);
    if (!entry || !entry.holders.delete(holder)) return;
    if (entry.holders.size === 0) {
      this.outstanding.delete(id);
      this.recycle(entry.sample);
    }
  }

  /** A receiver never got the messages of `output` with first <= seq <= last (lost in transit). */
  releaseLost(holder: string, output: string, first: bigint, last: bigint): void {
    for (const [id, o] of [...this.outstanding]) {
      if (o.output === output && o.seq !== undefined && o.seq >= first && o.seq <= last) this.release(id, holder);
    }
  }

  /** A receiver left the dataflow (exited or crashed): it holds nothing any more. */
  releaseAll(holder: string): void {
    for (const id of [...this.outstanding.keys()]) this.release(id, holder);
  }

  get outstandingCount(): number {
    return this.outstanding.size;
  }

  /** Free whole segments and free slab slots. */
  get freeCount(): number {
    let n = this.free.length;
    for (const slots of this.freeSlots.values()) n += slots.length;
    return n;
  }

  /** Unlinks every segment (receivers' existing mappings stay valid). */
  /**
   * Unlinks the free segments. Samples still held are left in place: a receiver may
   * not have opened them yet (unlinking would lose the message); the daemon removes
   * every segment of the dataflow when the run ends.
   */
  close(): void {
    for (const s of this.free) s.unlink();
    this.free.length = 0;
    for (const slab of this.slabs) if (slab.inUse === 0) slab.segment.unlink();
    this.slabs.length = 0;
    this.freeSlots.clear();
    this.outstanding.clear();
  }

  private createSegment(size: number): Segment {
    this.created++;
    // Round up to a power of two so that slightly varying sizes reuse the same segments.
    const rounded = Math.max(MIN_SEGMENT, 2 ** Math.ceil(Math.log2(size)));
    return Segment.create(this.prefix, rounded);
  }

  private recycle(sample: Sample): void {
    const slot = this.slotOf.get(sample.id);
    if (slot) {
      // Slabs stay for the life of the pool: at most the peak in flight, in slots.
      this.slotOf.delete(sample.id);
      slot.slab.inUse--;
      this.freeSlots.get(slot.slab.slotSize)!.push(slot);
      return;
    }
    // + 1: the sample being filled while the peak was outstanding is a segment too.
    if (this.free.length < Math.max(MIN_KEPT_FREE, this.peakOutstanding + 1)) this.free.push(sample.segment);
    else sample.segment.unlink();
  }
}
