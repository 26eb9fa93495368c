/**
 * The payload transport: how a message's Arrow data becomes ZeroMQ frames and
 * back. Everything about where payload bytes live (inside the frame here; in
 * shared memory for large payloads) stays behind this one interface.
 */
import type * as arrow from 'apache-arrow';
import { decodeArrow, decodeDataHeader, encodeDataHeader, prepareArrow, WireError, type Parameters } from '../protocol';

export type Decoded =
  | { readonly kind: 'data'; readonly timestamp: bigint; readonly parameters: Parameters; readonly data: arrow.Data }
  | { readonly kind: 'eos'; readonly timestamp: bigint };

export interface Transport {
  /** Frames (after the topic) carrying `data`. */
  encode(data: arrow.Data, parameters: Parameters, timestamp: bigint): Uint8Array[];
  /** Frames (after the topic) telling receivers the output is closed. */
  endOfStream(timestamp: bigint): Uint8Array[];
  /** Reads frames (after the topic); throws WireError on anything malformed. */
  decode(frames: readonly Uint8Array[]): Decoded;
}

/** Every payload travels inside the ZeroMQ message, as a frame after the header. */
export class InlineTransport implements Transport {
  encode(data: arrow.Data, parameters: Parameters, timestamp: bigint): Uint8Array[] {
    const prepared = prepareArrow(data);
    // A fresh buffer per message: zeromq.js sends large buffers without copying, after send() resolves.
    const payload = Buffer.allocUnsafeSlow(prepared.payloadSize);
    prepared.writePayload(payload);
    return [encodeDataHeader({ kind: 'data', timestamp, parameters, layout: prepared.layout, payload: { location: 'inline', length: prepared.payloadSize } }), payload];
  }

  endOfStream(timestamp: bigint): Uint8Array[] {
    return [encodeDataHeader({ kind: 'eos', timestamp })];
  }

  decode(frames: readonly Uint8Array[]): Decoded {
    const header = decodeDataHeader(frames[0] ?? new Uint8Array(0));
    if (header.kind === 'eos') return { kind: 'eos', timestamp: header.timestamp };
    if (header.payload.location !== 'inline') throw new WireError('shared-memory payloads are not enabled on this link');
    const payload = frames[1] ?? new Uint8Array(0);
    if (payload.byteLength !== header.payload.length) {
      throw new WireError(`payload frame holds ${payload.byteLength} bytes, the header announced ${header.payload.length}`);
    }
    if (frames.length > 2) throw new WireError(`data message has ${frames.length + 1} frames, expected at most 3`);
    return { kind: 'data', timestamp: header.timestamp, parameters: header.parameters, data: decodeArrow(header.layout, payload) };
  }
}
