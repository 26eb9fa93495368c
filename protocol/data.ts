/**
 * The data message: what travels on the data plane after the topic frame.
 *
 *   frame 1  header: magic, version, kind, payload location, timestamp,
 *            parameters and (for data) the Arrow layout and where the payload is
 *   frame 2  the payload bytes, only when the payload travels inline
 *
 * docs/protocol.md specifies the bytes; tests/vectors/ holds examples.
 */
import { readLayout, writeLayout, type ArrowLayout } from './arrow';
import { ErrorCode, MAGIC, MessageKind, PayloadLocation, PROTOCOL_VERSION } from './facts';
import { readParameters, writeParameters, type Parameters } from './parameters';
import { ByteReader, ByteWriter, WireError } from './wire';

export { MessageKind, PayloadLocation } from './facts';

/** "DORA" — the first four bytes of every binary message (protocol/facts.json). */
export const DATA_MAGIC = Uint8Array.from(MAGIC);

/** Where a shared-memory payload lives. */
export interface ShmHandle {
  /** Segment name under /dev/shm, without the leading slash. */
  readonly segment: string;
  /** The sender's id for this sample; receivers return it in a drop token. */
  readonly sample: bigint;
  /** Byte offset of the payload in the segment (a multiple of 64). */
  readonly offset: number;
  /** Payload length in bytes. */
  readonly length: number;
}

export type DataHeader =
  | {
      readonly kind: 'data';
      readonly timestamp: bigint;
      /** Per-output sequence number, counting from 0; a receiver that sees a gap knows messages were lost. */
      readonly seq: bigint;
      readonly parameters: Parameters;
      readonly layout: ArrowLayout;
      /** Inline payloads give their length, so truncation is detected. */
      readonly payload: { readonly location: 'inline'; readonly length: number } | ({ readonly location: 'shm' } & ShmHandle);
    }
  | { readonly kind: 'eos'; readonly timestamp: bigint };

export function encodeDataHeader(header: DataHeader): Uint8Array {
  const w = new ByteWriter(header.kind === 'eos' ? 24 : 256);
  w.raw(DATA_MAGIC).u16(PROTOCOL_VERSION);
  if (header.kind === 'eos') {
    w.u8(MessageKind.EndOfStream).u8(PayloadLocation.None).u64(header.timestamp);
    return w.finish();
  }
  const p = header.payload;
  w.u8(MessageKind.Data).u8(p.location === 'inline' ? PayloadLocation.Inline : PayloadLocation.SharedMemory).u64(header.timestamp).u64(header.seq);
  writeParameters(w, header.parameters);
  if (p.location === 'inline') w.u64(p.length);
  else w.str16(p.segment).u64(p.sample).u64(p.offset).u64(p.length);
  writeLayout(w, header.layout);
  return w.finish();
}

/** Checks magic and version; shared by every binary message. */
export function readPreamble(r: ByteReader, what: string): void {
  const magic = r.raw(4, `${what} magic`);
  if (!magic.every((b, i) => b === DATA_MAGIC[i])) throw new WireError(`${what}: not a dora-ts message (bad magic)`);
  const version = r.u16(`${what} version`);
  if (version !== PROTOCOL_VERSION) {
    throw new WireError(`${what}: protocol version ${version}, this node speaks version ${PROTOCOL_VERSION}; run every node with the same dora-ts release`, ErrorCode.PROTOCOL_VERSION);
  }
}

export function decodeDataHeader(frame: Uint8Array): DataHeader {
  const r = new ByteReader(frame);
  readPreamble(r, 'data header');
  const kind = r.u8('message kind');
  const location = r.u8('payload location');
  const timestamp = r.u64('timestamp');
  if (kind === MessageKind.EndOfStream) {
    if (location !== PayloadLocation.None) throw new WireError(`end-of-stream message with payload location ${location}`);
    r.end('end-of-stream message');
    return { kind: 'eos', timestamp };
  }
  if (kind !== MessageKind.Data) throw new WireError(`unknown message kind ${kind}`);
  const seq = r.u64('sequence number');
  const parameters = readParameters(r);
  let payload: Extract<DataHeader, { kind: 'data' }>['payload'];
  if (location === PayloadLocation.Inline) payload = { location: 'inline', length: r.size('payload length') };
  else if (location === PayloadLocation.SharedMemory) {
    payload = { location: 'shm', segment: r.str16('segment name'), sample: r.u64('sample id'), offset: r.size('payload offset'), length: r.size('payload length') };
  } else throw new WireError(`unknown payload location ${location}`);
  const layout = readLayout(r);
  r.end('data header');
  return { kind: 'data', timestamp, seq, parameters, layout, payload };
}
