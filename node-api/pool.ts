/**
 * The sender's pool of shared-memory samples. A sample is a whole segment; it is
 * handed out again only once every receiver it was sent to has released it (drop
 * tokens), or has left the dataflow. Free segments are kept for reuse, so a steady
 * stream of large messages creates no new segments after warm-up.
 */
import { Segment } from './shm';

/** Smallest segment created: small enough for many, large enough to be reused across sizes. */
const MIN_SEGMENT = 64 * 1024;
/**
 * Free segments kept per pool, at least; the pool keeps as many as were ever in flight
 * at once (receivers' queues bound that), so bursts do not churn segments.
 */
const MIN_KEPT_FREE = 16;

export interface Sample {
  /** Unique per sender (never reused), so a stale drop token cannot release a later sample. */
  readonly id: bigint;
  readonly segment: Segment;
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
  /** Segments created since the pool started (for tests and diagnostics). */
  created = 0;
  /** Most samples ever outstanding at once. */
  peakOutstanding = 0;

  constructor(private readonly prefix: string) {}

  /** A writable sample of at least `size` bytes: a free segment when one fits, else a new one. */
  acquire(size: number): Sample {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const s = this.free[i].size;
      // Reuse a segment that fits without wasting more than 4x the space.
      if (s >= size && s <= Math.max(MIN_SEGMENT, size * 4) && (best < 0 || s < this.free[best].size)) best = i;
    }
    const segment = best >= 0 ? this.free.splice(best, 1)[0] : this.createSegment(size);
    return { id: this.nextId++, segment };
  }

  /**
   * Records that `sample` is being sent to `holders` (call it before sending: a drop
   * token may come back at once); with no holders it is free again at once.
   */
  sent(sample: Sample, holders: Iterable<string>, tag?: { output: string; seq: bigint }): void {
    const set = new Set(holders);
    if (set.size === 0) this.recycle(sample.segment);
    else {
      this.outstanding.set(sample.id, { sample, holders: set, output: tag?.output, seq: tag?.seq });
      this.peakOutstanding = Math.max(this.peakOutstanding, this.outstanding.size);
    }
  }

  /** Returns a sample that was acquired but not sent. */
  discard(sample: Sample): void {
    this.recycle(sample.segment);
  }

  /** A receiver released a sample (a drop token). Unknown ids are ignored. */
  release(id: bigint, holder: string): void {
    const entry = this.outstanding.get(id);
    if (!entry || !entry.holders.delete(holder)) return;
    if (entry.holders.size === 0) {
      this.outstanding.delete(id);
      this.recycle(entry.sample.segment);
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

  get freeCount(): number {
    return this.free.length;
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
    this.outstanding.clear();
  }

  private createSegment(size: number): Segment {
    this.created++;
    // Round up to a power of two so that slightly varying sizes reuse the same segments.
    const rounded = Math.max(MIN_SEGMENT, 2 ** Math.ceil(Math.log2(size)));
    return Segment.create(this.prefix, rounded);
  }

  private recycle(segment: Segment): void {
    // + 1: the sample being filled while the peak was outstanding is a segment too.
    if (this.free.length < Math.max(MIN_KEPT_FREE, this.peakOutstanding + 1)) this.free.push(segment);
    else segment.unlink();
  }
}
