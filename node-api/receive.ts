/**
 * Receiving through the core: the core hands each event over as one record
 * (dora_next_event_record; its layout, RECORD, is protocol/facts.json's eventRecord,
 * generated into C and TypeScript alike), and this module turns
 * a record into an {@link Event}. Shared-memory payloads stay where they are: the
 * event's arrow-js data views the sender's segment through one ArrayBuffer per
 * mapping, and the event keeps the core's event handle, whose release returns the
 * sample to its sender (a drop token).
 */
import * as arrow from 'apache-arrow';
import { arrowDecoder, ByteReader, readLayout, readParameters, WireError } from '../protocol';
import { EVENT_TYPES, RECORD, RECORD_FLAGS, type StopCause } from '../protocol/facts';
import type { Event, InputEvent } from './events';
import { core, view } from './native';

/** Event types by number (enum DoraEventType). */
const TYPES = EVENT_TYPES;
/** Record flag: the payload is in shared memory, and the event handle must be freed. */
const FLAG_SHARED = RECORD_FLAGS.SHARED;
/** Record flag: the layout is the one of this input's previous record. */
const FLAG_SAME_LAYOUT = RECORD_FLAGS.SAME_LAYOUT;

const utf8 = new TextDecoder();
/** Inline payloads are copied into arenas of this size (see EventReader.keep). */
const ARENA_BYTES = 64 * 1024;
/**
 * Larger inline payloads (from another machine: inline at any size) get a buffer of their
 * own, taken back when their event is disposed, for the next one: a fresh 4 MiB buffer per
 * message cost more in page faults and garbage collection than the copy itself (a
 * receiver's profile at 4 MiB: 40% of its time). At most this many wait for reuse.
 */
const SPARE_BUFFERS = 4;
/** Disposing an event whose payload was copied (inline) releases nothing. */
const nothingToRelease = (): void => undefined;

/**
 * One ArrayBuffer per mapped segment, shared by every message in it: V8 counts each
 * foreign ArrayBuffer as newly allocated external memory, and a fresh one per message
 * forced a full collection every message or two at 16 MiB. Each ArrayBuffer holds a
 * reference on its mapping, dropped once the ArrayBuffer is garbage collected: the
 * core unmaps a segment only when nothing here can reach it (touching unmapped memory
 * would kill the process).
 */
class MappingViews {
  private readonly views = new Map<bigint, WeakRef<ArrayBuffer>>();
  private readonly finalizer: FinalizationRegistry<bigint>;

  constructor(private readonly ctx: bigint) {
    const c = core();
    // The callback reaches the map (of weak references), never a registered buffer.
    const views = this.views;
    this.finalizer = new FinalizationRegistry((mapping) => {
      const ref = views.get(mapping);
      if (ref && ref.deref() === undefined) views.delete(mapping);
      c.dora_mapping_release(ctx, mapping);
    });
  }

  get(mapping: bigint, address: bigint, length: number): ArrayBuffer {
    const existing = this.views.get(mapping)?.deref();
    if (existing) return existing;
    core().dora_mapping_retain(this.ctx, mapping);
    const buffer = view(address, length);
    this.views.set(mapping, new WeakRef(buffer));
    this.finalizer.register(buffer, mapping);
    return buffer;
  }

  get size(): number {
    return this.views.size;
  }
}

/** Turns records into events and tracks the shared-memory events not yet released. */
export class EventReader {
  private buffer: Uint8Array;
  private dv: DataView;
  private readonly mappings: MappingViews;
  private readonly released: FinalizationRegistry<bigint>;
  private arena = new Uint8Array(0);
  private arenaAt = 0;
  /** Buffers of disposed large inline payloads, for the next ones (see SPARE_BUFFERS). */
  private readonly spare: ArrayBuffer[] = [];
  /** Shared-memory events neither disposed nor collected yet. */
  held = 0;
  private readonly onRelease: () => void;
  /** Per input, a decoder for the layout of its last message. */
  private readonly decoders: ((payload: Uint8Array) => arrow.Data)[] = [];

  private reader: ByteReader;

  constructor(
    ctx: bigint,
    private readonly inputIds: readonly string[],
    /** Called when an event is released: its sample's drop token waits for the core's next drain. */
    onRelease: () => void,
    capacity = 64 * 1024,
  ) {
    this.buffer = new Uint8Array(capacity);
    this.dv = new DataView(this.buffer.buffer);
    this.reader = new ByteReader(this.buffer);
    this.mappings = new MappingViews(ctx);
    const c = core();
    // An event dropped without being disposed returns its sample once its data is unreachable.
    this.released = new FinalizationRegistry((event) => {
      this.held--;
      c.free_dora_event(event);
      onRelease();
    });
    this.onRelease = onRelease;
  }

  /** Where the core writes the next record. */
  get record(): Uint8Array {
    return this.buffer;
  }

  /** Makes room for a record of `length` bytes (the core asked for more than there was). */
  grow(length: number): void {
    this.buffer = new Uint8Array(length);
    this.dv = new DataView(this.buffer.buffer);
    this.reader = new ByteReader(this.buffer);
  }

  /** The event in the record the core just wrote. */
  read(): Event {
    const dv = this.dv;
    const type = TYPES[dv.getUint8(RECORD.type)];
    const layoutLength = dv.getUint32(RECORD.layoutLength, true);
    const parametersLength = dv.getUint32(RECORD.parametersLength, true);
    const messageAt = RECORD.body + layoutLength + parametersLength;
    const message = () => utf8.decode(this.buffer.subarray(messageAt, messageAt + dv.getUint32(RECORD.messageLength, true)));
    switch (type) {
      case 'STOP':
        return { type, cause: message() as StopCause };
      case 'ERROR':
        return { type, error: message() };
      case 'INPUT_CLOSED':
      case 'INPUT_RECOVERED':
        return { type, id: this.inputIds[dv.getUint16(RECORD.input, true)] };
      case 'NODE_RESTARTED':
      case 'NODE_FAILED':
        return { type, id: message() };
      case 'INPUT':
        return this.input(layoutLength, parametersLength, messageAt + dv.getUint32(RECORD.messageLength, true));
      default:
        throw new WireError(`the node core returned an unknown event type ${dv.getUint8(RECORD.type)}`);
    }
  }

  private input(layoutLength: number, parametersLength: number, messageEnd: number): InputEvent {
    const dv = this.dv;
    const record = this.buffer;
    const index = dv.getUint16(RECORD.input, true);
    const id = this.inputIds[index];
    const timestamp = dv.getBigUint64(RECORD.timestamp, true);
    let decode = this.decoders[index];
    if (decode === undefined || (dv.getUint8(RECORD.flags) & FLAG_SAME_LAYOUT) === 0) {
      decode = this.decoders[index] = arrowDecoder(readLayout(this.reader.select(RECORD.body, RECORD.body + layoutLength)));
    }
    const at = RECORD.body + layoutLength;
    const parameters = parametersLength > 4 ? readParameters(this.reader.select(at, at + parametersLength)) : {};
    const metadata = { timestamp, parameters };
    if ((dv.getUint8(RECORD.flags) & FLAG_SHARED) === 0) {
      // Inline: the record holds a copy of the payload; take it out of the reused record buffer.
      const at = (messageEnd + 7) & ~7;
      const payload = record.subarray(at, at + dv.getUint32(RECORD.inlineLength, true));
      if (payload.byteLength < ARENA_BYTES) return { type: 'INPUT', id, data: new arrow.Vector([decode(this.keep(payload))]), metadata, [Symbol.dispose]: nothingToRelease };
      const storage = this.takeSpare(payload.byteLength);
      const bytes = new Uint8Array(storage, 0, payload.byteLength);
      bytes.set(payload);
      let disposed = false;
      return {
        type: 'INPUT',
        id,
        data: new arrow.Vector([decode(bytes)]),
        metadata,
        // done with the data, as for shared memory: its buffer may carry a later message
        [Symbol.dispose]: () => {
          if (disposed) return;
          disposed = true;
          if (this.spare.length < SPARE_BUFFERS) this.spare.push(storage);
        },
      };
    }
    const event = dv.getBigUint64(RECORD.event, true);
    const mappingAddress = dv.getBigUint64(RECORD.mappingAddress, true);
    const buffer = this.mappings.get(dv.getBigUint64(RECORD.mapping, true), mappingAddress, Number(dv.getBigUint64(RECORD.mappingLength, true)));
    const offset = Number(dv.getBigUint64(RECORD.payloadAddress, true) - mappingAddress);
    let data: arrow.Vector;
    try {
      data = new arrow.Vector([decode(new Uint8Array(buffer, offset, Number(dv.getBigUint64(RECORD.payloadLength, true))))]);
    } catch (err) {
      core().free_dora_event(event);
      throw err;
    }
    this.held++;
    this.released.register(data, event, data);
    let disposed = false;
    return {
      type: 'INPUT',
      id,
      data,
      metadata,
      [Symbol.dispose]: () => {
        if (disposed) return;
        disposed = true;
        if (this.released.unregister(data)) {
          this.held--;
          core().free_dora_event(event);
          this.onRelease();
        }
      },
    };
  }

  /**
   * A lasting copy of an inline payload: a slice of an arena shared by consecutive
   * messages (at 8-byte aligned offsets, so typed views need no copy), rather than an
   * ArrayBuffer of its own per message, which costs an allocation and its accounting.
   * An arena lives as long as any message in it.
   */
  private keep(bytes: Uint8Array): Uint8Array {
    const n = bytes.byteLength;
    if (this.arenaAt + n > this.arena.byteLength) {
      this.arena = new Uint8Array(Math.max(ARENA_BYTES, n));
      this.arenaAt = 0;
    }
    const at = this.arenaAt;
    this.arena.set(bytes, at);
    this.arenaAt = (at + n + 7) & ~7;
    return this.arena.subarray(at, at + n);
  }

  /** A buffer of at least `length` bytes: a spare one that fits, else a new one. */
  private takeSpare(length: number): ArrayBuffer {
    const i = this.spare.findIndex((b) => b.byteLength >= length);
    if (i >= 0) return this.spare.splice(i, 1)[0];
    return new ArrayBuffer(length);
  }

  /** Segments of other nodes this node has views of. */
  get mapped(): number {
    return this.mappings.size;
  }
}
