/**
 * The receiver's side of shared memory: read-only mappings of senders' segments,
 * cached by name, and the tracking that makes unmapping safe. Every message gets
 * its own ArrayBuffer over the mapping; a FinalizationRegistry learns when the
 * last view of it became unreachable. A mapping is unmapped only when none of its
 * ArrayBuffers can be reached any more, and only if it has been idle for a while.
 */
import { WireError } from '../protocol';
import { Segment, ShmError } from './shm';

/** Idle mappings (no live view) kept for reuse; beyond this the least recently used are unmapped. */
const MAX_IDLE_MAPPINGS = 32;

interface Mapping {
  readonly segment: Segment;
  /** ArrayBuffers over this mapping that may still be reachable. */
  live: number;
  lastUsed: number;
}

export class SegmentCache {
  private readonly mappings = new Map<string, Mapping>();
  private tick = 0;
  private readonly registry = new FinalizationRegistry<{ mapping: Mapping; onUnreachable: () => void }>((held) => {
    held.mapping.live--;
    held.onUnreachable();
    this.evict();
  });

  /**
   * A view of `length` bytes at `offset` in segment `name`, zero copy. `onUnreachable`
   * runs once nothing can reach the view (or any view derived from its buffer).
   */
  view(name: string, offset: number, length: number, onUnreachable: () => void): Uint8Array {
    let mapping = this.mappings.get(name);
    if (!mapping) {
      let segment: Segment;
      try {
        segment = Segment.open(name);
      } catch (err) {
        const reason = err instanceof ShmError && err.errno === 2 ? 'does not exist' : (err as Error).message;
        throw new WireError(`shared-memory segment ${JSON.stringify(name)} ${reason}`);
      }
      mapping = { segment, live: 0, lastUsed: 0 };
      this.mappings.set(name, mapping);
    }
    mapping.lastUsed = ++this.tick;
    if (offset + length > mapping.segment.size) {
      throw new WireError(`payload [${offset}, ${offset + length}) lies outside the ${mapping.segment.size}-byte segment ${name}`);
    }
    const buffer = mapping.segment.view();
    mapping.live++;
    this.registry.register(buffer, { mapping, onUnreachable });
    return new Uint8Array(buffer, offset, length);
  }

  /** Mappings currently held (for tests and diagnostics). */
  get size(): number {
    return this.mappings.size;
  }

  private evict(): void {
    const idle = [...this.mappings].filter(([, m]) => m.live === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [name, m] of idle.slice(0, Math.max(0, idle.length - MAX_IDLE_MAPPINGS))) {
      m.segment.unmap();
      this.mappings.delete(name);
    }
  }
}
