/**
 * Drop tokens: how a receiver tells a sender that it no longer holds
 * shared-memory samples, so the sender may reuse their memory.
 *
 * Sent on a PUSH socket connected to the sender's drop endpoint, one frame:
 *   magic "DORA", u16 version, u8 kind = 3, u8 reserved = 0,
 *   str16 receiver node id,
 *   u32 n, n × u64 sample id                       samples released
 *   u32 m, m × (str16 output, u64 first, u64 last)  sequence ranges the receiver never
 *                                                   got (lost in transit): the sender
 *                                                   releases that output's samples
 *                                                   with first <= seq <= last
 */
import { DATA_MAGIC, readPreamble } from './data';
import { MAX_DROP_TOKEN_ENTRIES, MessageKind, PROTOCOL_VERSION } from './facts';
import { ByteReader, ByteWriter, WireError } from './wire';

export interface LostRange {
  readonly output: string;
  readonly first: bigint;
  readonly last: bigint;
}

export interface DropTokens {
  readonly receiver: string;
  readonly samples: readonly bigint[];
  readonly lost: readonly LostRange[];
}

/** More than this in one frame is refused (a hostile count would allocate a lot). */
const MAX_ENTRIES = MAX_DROP_TOKEN_ENTRIES;

export function encodeDropTokens(tokens: DropTokens): Uint8Array {
  const w = new ByteWriter(32 + tokens.samples.length * 8);
  w.raw(DATA_MAGIC).u16(PROTOCOL_VERSION).u8(MessageKind.DropTokens).u8(0).str16(tokens.receiver);
  w.u32(tokens.samples.length);
  for (const id of tokens.samples) w.u64(id);
  w.u32(tokens.lost.length);
  for (const l of tokens.lost) w.str16(l.output).u64(l.first).u64(l.last);
  return w.finish();
}

export function decodeDropTokens(frame: Uint8Array): DropTokens {
  const r = new ByteReader(frame);
  readPreamble(r, 'drop tokens');
  const kind = r.u8('message kind');
  if (kind !== MessageKind.DropTokens) throw new WireError(`expected drop tokens (kind ${MessageKind.DropTokens}), got kind ${kind}`);
  if (r.u8('reserved') !== 0) throw new WireError('drop tokens: reserved byte must be 0');
  const receiver = r.str16('receiver node id');
  const n = r.u32('sample count');
  if (n > MAX_ENTRIES || n * 8 > r.remaining) throw new WireError(`drop tokens: ${n} samples exceed the frame`);
  const samples = Array.from({ length: n }, () => r.u64('sample id'));
  const m = r.u32('lost range count');
  if (m > MAX_ENTRIES || m * 18 > r.remaining) throw new WireError(`drop tokens: ${m} lost ranges exceed the frame`);
  const lost = Array.from({ length: m }, () => {
    const output = r.str16('output');
    const first = r.u64('first lost sequence number');
    const last = r.u64('last lost sequence number');
    if (last < first) throw new WireError(`drop tokens: lost range [${first}, ${last}] is empty`);
    return { output, first, last };
  });
  r.end('drop tokens');
  return { receiver, samples, lost };
}
