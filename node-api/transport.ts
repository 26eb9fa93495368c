/**
 * The payload transport: how a message's Arrow data becomes ZeroMQ frames and
 * back. Small payloads travel inside the message; payloads at or above the
 * dataflow's threshold are written once into a pooled shared-memory sample and
 * only a handle travels, so receivers read the sender's bytes in place.
 */
import type * as arrow from 'apache-arrow';
import { decodeArrow, decodeDataHeader, encodeDataHeader, prepareArrow, WireError, type ArrowLayout, type Parameters } from '../protocol';
import type { Sample, SamplePool } from './pool';
import type { SegmentCache } from './segments';

/** A buffer the sender fills in place and then sends without any copy (see Node.allocateOutput). */
export class OutputSample {
  /** @internal */
  constructor(
    /** The bytes to fill; inside shared memory when the size is at or above the threshold. */
    readonly bytes: Uint8Array,
    /** @internal */ readonly sample: Sample | undefined,
  ) {}
}

export interface Outgoing {
  readonly frames: Uint8Array[];
  /** The shared-memory sample carrying the payload, if any: the sender tracks who holds it. */
  readonly sample?: Sample;
}

export type Decoded =
  | {
      readonly kind: 'data';
      readonly timestamp: bigint;
      readonly seq: bigint;
      readonly parameters: Parameters;
      readonly data: arrow.Data;
      /** Set for shared-memory payloads: the sample id to return in a drop token. */
      readonly sample?: bigint;
      /** Set for shared-memory payloads: call once the message's events are disposed (see SharedView.done). */
      readonly done?: () => void;
    }
  | { readonly kind: 'eos'; readonly timestamp: bigint };

export class PayloadWriter {
  constructor(
    private readonly pool: SamplePool | undefined,
    /** Payloads of at least this many bytes go through shared memory. */
    private readonly threshold: number,
  ) {}

  /** A sample of `size` bytes to fill in place: shared memory at or above the threshold. */
  allocate(size: number): OutputSample {
    if (this.pool && size >= this.threshold && size > 0) {
      const sample = this.pool.acquire(size);
      return new OutputSample(new Uint8Array(sample.segment.buffer, sample.offset, size), sample);
    }
    return new OutputSample(new Uint8Array(size), undefined);
  }

  /** Returns an allocated sample that will not be sent. */
  discard(sample: OutputSample): void {
    if (sample.sample) this.pool?.discard(sample.sample);
  }

  encode(data: arrow.Data, parameters: Parameters, timestamp: bigint, seq: bigint): Outgoing {
    const prepared = prepareArrow(data);
    if (this.pool && prepared.payloadSize >= this.threshold && prepared.payloadSize > 0) {
      const sample = this.pool.acquire(prepared.payloadSize);
      prepared.writePayload(new Uint8Array(sample.segment.buffer, sample.offset, prepared.payloadSize));
      return { frames: [this.shmHeader(prepared.layout, parameters, timestamp, seq, sample, prepared.payloadSize)], sample };
    }
    // A fresh buffer per message: zeromq.js sends large buffers without copying, after send() resolves.
    const payload = Buffer.allocUnsafeSlow(prepared.payloadSize);
    prepared.writePayload(payload);
    const header = encodeDataHeader({ kind: 'data', timestamp, seq, parameters, layout: prepared.layout, payload: { location: 'inline', length: prepared.payloadSize } });
    return { frames: prepared.payloadSize > 0 ? [header, payload] : [header] };
  }

  /** Frames for a sample filled in place: a uint8 array over its bytes, no copy. */
  encodeSample(sample: OutputSample, parameters: Parameters, timestamp: bigint, seq: bigint): Outgoing {
    const length = sample.bytes.byteLength;
    const layout: ArrowLayout = {
      format: 'C',
      name: '',
      nullable: true,
      length,
      nullCount: 0,
      offset: 0,
      buffers: [null, { offset: 0, length }],
      children: [],
    };
    if (sample.sample) return { frames: [this.shmHeader(layout, parameters, timestamp, seq, sample.sample, length)], sample: sample.sample };
    const header = encodeDataHeader({ kind: 'data', timestamp, seq, parameters, layout, payload: { location: 'inline', length } });
    return { frames: length > 0 ? [header, sample.bytes] : [header] };
  }

  endOfStream(timestamp: bigint): Uint8Array[] {
    return [encodeDataHeader({ kind: 'eos', timestamp })];
  }

  private shmHeader(layout: ArrowLayout, parameters: Parameters, timestamp: bigint, seq: bigint, sample: Sample, length: number): Uint8Array {
    return encodeDataHeader({
      kind: 'data',
      timestamp,
      seq,
      parameters,
      layout,
      payload: { location: 'shm', segment: sample.segment.name, sample: sample.id, offset: sample.offset, length },
    });
  }
}

export class PayloadReader {
  constructor(private readonly segments: SegmentCache) {}

  /**
   * Reads frames (after the topic); throws WireError on anything malformed. For a
   * shared-memory payload, `onUnreachable` runs once no view of it can be reached.
   */
  decode(frames: readonly Uint8Array[], onUnreachable: (sample: bigint) => void): Decoded {
    const header = decodeDataHeader(frames[0] ?? new Uint8Array(0));
    if (header.kind === 'eos') {
      if (frames.length > 1) throw new WireError(`end-of-stream message has ${frames.length + 1} frames, expected 2`);
      return { kind: 'eos', timestamp: header.timestamp };
    }
    const p = header.payload;
    if (p.location === 'inline') {
      const payload = frames[1] ?? new Uint8Array(0);
      if (payload.byteLength !== p.length) throw new WireError(`payload frame holds ${payload.byteLength} bytes, the header announced ${p.length}`);
      if (frames.length > 2) throw new WireError(`data message has ${frames.length + 1} frames, expected at most 3`);
      return { kind: 'data', timestamp: header.timestamp, seq: header.seq, parameters: header.parameters, data: decodeArrow(header.layout, payload) };
    }
    if (frames.length > 1) throw new WireError(`shared-memory message has ${frames.length + 1} frames, expected 2`);
    if (p.offset % 64 !== 0) throw new WireError(`shared-memory payload offset ${p.offset} is not a multiple of 64`);
    const sample = p.sample;
    const view = this.segments.view(p.segment, p.offset, p.length, () => onUnreachable(sample));
    // If decoding fails the view is simply dropped; the finalizer still returns the sample.
    const data = decodeArrow(header.layout, view.bytes);
    return { kind: 'data', timestamp: header.timestamp, seq: header.seq, parameters: header.parameters, data, sample, done: view.done };
  }
}
