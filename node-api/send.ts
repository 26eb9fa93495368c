/**
 * Sending through the core. arrow-js data is laid out here (docs/protocol.md's
 * Arrow layout, which only the TypeScript side can read off arrow-js objects) and
 * written once: into a shared-memory sample of the core at or above the dataflow's
 * threshold, else into a scratch buffer the core copies into the message. The core
 * does everything else: header, sequence numbers, clock, pool and drop tokens.
 */
import { ByteWriter, DoraError, ErrorCode, prepareArrow, toArrowData, writeLayout, writeParameters, type Parameters } from '../protocol';
import { core, coreError, view } from './native';

/** A buffer the sender fills in place and then sends without any copy (see Node.allocateOutput). */
export class OutputSample {
  /** @internal The core's DoraOutputSample, for shared-memory samples; undefined once sent. */
  native: bigint | undefined;
  /** @internal */
  sent = false;

  /** @internal */
  constructor(
    /** The bytes to fill; inside shared memory when the size is at or above the threshold. */
    readonly bytes: Uint8Array,
    native: bigint | undefined,
  ) {
    this.native = native;
  }
}

/** Arrow format strings of the typed arrays sent as they are (docs/protocol.md). */
const TYPED_ARRAY_FORMATS = new Map<unknown, string>([
  [Uint8Array, 'C'],
  [Int8Array, 'c'],
  [Uint16Array, 'S'],
  [Int16Array, 's'],
  [Uint32Array, 'I'],
  [Int32Array, 'i'],
  [Float32Array, 'f'],
  [Float64Array, 'g'],
  [BigInt64Array, 'l'],
  [BigUint64Array, 'L'],
]);

/** Sends on one node's outputs through its core context. */
export class Sender {
  private readonly writer = new ByteWriter(1024);
  /**
   * The encoded layout of the last typed array sent: a node sends the same shape again
   * and again, and laying it out costs tens of microseconds while V8 still interprets
   * the code (as it does at 100 messages a second).
   */
  private lastLayout: { format: string; length: number; bytes: Uint8Array } = { format: '', length: -1, bytes: new Uint8Array(0) };
  private scratch = new Uint8Array(4096);
  /** [segment address, segment length], written by the core. */
  private readonly location = new BigUint64Array(2);
  /**
   * One ArrayBuffer per segment of this node's pool (see receive.ts for why). The
   * core keeps its pool's segments mapped until the context is freed.
   */
  private readonly segments = new Map<bigint, ArrayBuffer>();

  constructor(
    private readonly ctx: bigint,
    /** Payloads of at least this many bytes go through shared memory. */
    private readonly threshold: number,
  ) {}

  /** A sample of `size` bytes to fill in place: shared memory at or above the threshold. */
  allocate(size: number): OutputSample {
    if (size === 0 || size < this.threshold) return new OutputSample(new Uint8Array(size), undefined);
    const { sample, bytes } = this.acquire(size);
    return new OutputSample(bytes, sample);
  }

  send(output: string, data: unknown, parameters: Parameters): void {
    const c = core();
    const w = this.writer.reset();
    if (hasEntries(parameters)) writeParameters(w, parameters);
    const parametersLength = w.length;
    let rc: number;
    if (data instanceof OutputSample) {
      if (data.sent) throw new DoraError('this output sample was already sent: allocate a new one per message', { code: ErrorCode.USAGE });
      data.sent = true;
      const native = data.native;
      data.native = undefined;
      if (native !== undefined) {
        rc = c.dora_send_output_sample_encoded(this.ctx, output, Buffer.byteLength(output), native, null, 0, w.written(), parametersLength);
      } else {
        rc = this.sendEncoded(output, this.typedArrayLayout('C', data.bytes.length, data.bytes.byteLength), w.written(), data.bytes);
      }
    } else if (ArrayBuffer.isView(data) && TYPED_ARRAY_FORMATS.has(data.constructor)) {
      // A typed array goes as it is: the core copies it once (into shared memory at or above the threshold).
      const array = data as Uint8Array;
      const layout = this.typedArrayLayout(TYPED_ARRAY_FORMATS.get(data.constructor)!, array.length, array.byteLength);
      rc = this.sendEncoded(output, layout, w.written(), array);
    } else {
      const prepared = prepareArrow(toArrowData(data));
      writeLayout(w, prepared.layout);
      const size = prepared.payloadSize;
      if (size > 0 && size >= this.threshold) {
        const { sample, bytes } = this.acquire(size);
        prepared.writePayload(bytes);
        const all = w.written();
        rc = c.dora_send_output_sample_encoded(
          this.ctx,
          output,
          Buffer.byteLength(output),
          sample,
          all.subarray(parametersLength),
          all.length - parametersLength,
          all,
          parametersLength,
        );
      } else {
        if (this.scratch.byteLength < size) this.scratch = new Uint8Array(Math.max(size, this.scratch.byteLength * 2));
        const payload = this.scratch.subarray(0, size);
        prepared.writePayload(payload);
        const all = w.written();
        rc = this.sendEncoded(output, all.subarray(parametersLength), all.subarray(0, parametersLength), payload);
      }
    }
    if (rc !== 0) throw coreError();
  }

  /** Sends a payload the core copies, with its encoded layout and parameters. */
  private sendEncoded(output: string, layout: Uint8Array, parameters: Uint8Array, payload: ArrayBufferView): number {
    return core().dora_send_output_encoded(this.ctx, output, Buffer.byteLength(output), layout, layout.length, parameters, parameters.length, payload, payload.byteLength);
  }

  /** The encoded layout of a primitive array of `length` values over `byteLength` bytes, with no nulls. */
  private typedArrayLayout(format: string, length: number, byteLength: number): Uint8Array {
    const last = this.lastLayout;
    if (last.format === format && last.length === length) return last.bytes;
    const w = new ByteWriter(64);
    writeLayout(w, { format, name: '', nullable: true, length, nullCount: 0, offset: 0, buffers: [null, { offset: 0, length: byteLength }], children: [] });
    this.lastLayout = { format, length, bytes: w.finish() };
    return this.lastLayout.bytes;
  }

  private acquire(size: number): { sample: bigint; bytes: Uint8Array } {
    const c = core();
    const sample = c.dora_allocate_output(this.ctx, size) as bigint | null;
    if (!sample) throw coreError();
    const data = c.dora_output_sample_data(sample) as bigint;
    if (c.dora_output_sample_segment(this.ctx, sample, this.location) !== 0) throw coreError();
    const [address, length] = this.location;
    let buffer = this.segments.get(address);
    if (!buffer) {
      buffer = view(address, Number(length));
      this.segments.set(address, buffer);
    }
    return { sample, bytes: new Uint8Array(buffer, Number(data - address), size) };
  }
}

function hasEntries(parameters: Parameters): boolean {
  for (const key in parameters) if (parameters[key] !== undefined) return true;
  return false;
}
