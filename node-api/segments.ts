/**
 * The receiver's side of shared memory: read-only mappings of senders' segments,
 * cached by name, and the tracking that makes unmapping safe. FinalizationRegistries
 * learn when ArrayBuffers over a mapping became unreachable. A mapping is unmapped
 * only when none of its ArrayBuffers can be reached any more, and only if it has
 * been idle for a while.
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
  /** Per offset: the buffer the next message there may share, and how many messages over it are not done yet. */
  readonly current: Map<number, { readonly buffer: WeakRef<ArrayBuffer>; pending: number }>;
}

/** One message's bytes in a mapped segment. */
export interface SharedView {
  readonly bytes: Uint8Array;
  /**
   * The message is done with (its events were disposed): its bytes will not be read
   * again, so its ArrayBuffer may carry the next message, and `onUnreachable` will not run.
   */
  done(): void;
}

/**
 * Each message gets an ArrayBuffer over just its bytes. Why messages share them: V8
 * counts every ArrayBuffer over foreign memory as newly allocated external memory, so
 * a fresh 16 MiB view per message forced a full garbage collection every few messages
 * (milliseconds each). A message gets the buffer of the last message at the same
 * offset when that one and every other over the buffer is done (disposed) and the
 * buffer is large enough; a fresh one otherwise. So a message whose events are not
 * disposed is still tracked by its own buffer's reachability.
 */
export class SegmentCache {
  private readonly mappings = new Map<string, Mapping>();
  private tick = 0;
  /** Buffer reachability, per mapping: unmapping is safe once none is reachable. */
  private readonly buffers = new FinalizationRegistry<Mapping>((mapping) => {
    mapping.live--;
    this.evict();
  });
  /** The safety net for messages whose events were never disposed. */
  private readonly messages = new FinalizationRegistry<() => void>((onUnreachable) => onUnreachable());

  /**
   * A view of `length` bytes at `offset` in segment `name`, zero copy. Unless `done()`
   * is called first, `onUnreachable` runs once nothing can reach the view (or any
   * view derived from its buffer).
   */
  view(name: string, offset: number, length: number, onUnreachable: () => void): SharedView {
    let mapping = this.mappings.get(name);
    if (!mapping) {
      let segment: Segment;
      try {
        segment = Segment.open(name);
      } catch (err) {
        const reason = err instanceof ShmError && err.errno === 2 ? 'does not exist' : (err as Error).message;
        throw new WireError(`shared-memory segment ${JSON.stringify(name)} ${reason}`);
      }
      mapping = { segment, live: 0, lastUsed: 0, current: new Map() };
      this.mappings.set(name, mapping);
    }
    mapping.lastUsed = ++this.tick;
    if (offset + length > mapping.segment.size) {
      throw new WireError(`payload [${offset}, ${offset + length}) lies outside the ${mapping.segment.size}-byte segment ${name}`);
    }
    let current = mapping.current.get(offset);
    let buffer = current && current.pending === 0 ? current.buffer.deref() : undefined;
    if (!buffer || !current || buffer.byteLength < length) {
      buffer = mapping.segment.viewAt(offset, length);
      mapping.live++;
      this.buffers.register(buffer, mapping);
      current = { buffer: new WeakRef(buffer), pending: 0 };
      mapping.current.set(offset, current);
    }
    const slot = current;
    slot.pending++;
    let finished = false;
    const view: SharedView = {
      bytes: new Uint8Array(buffer, 0, length),
      done: () => {
        if (finished) return;
        finished = true;
        slot.pending--;
        this.messages.unregister(view);
      },
    };
    this.messages.register(buffer, onUnreachable, view); // the view is its own unregister token (held weakly)
    return view;
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
