/**
 * A data message holding one string (an Arrow utf8 array of one element), inline: what
 * the daemon sends for a node's printed lines (`send_stdout_as`) and log records
 * (`send_logs_as`, `dora/logs`), as the node would have sent it.
 */
import { BUFFER_ALIGNMENT } from './facts';
import { encodeDataHeader } from './data';

/** The header frame and the payload frame; `seq` counts the messages of the topic from 0. */
export function encodeTextMessage(timestamp: bigint, seq: bigint, text: string): [Uint8Array, Uint8Array] {
  const bytes = Buffer.from(text, 'utf8');
  // offsets [0, n] (int32) at 0, the characters at the next aligned offset; padding is zero
  const valuesAt = BUFFER_ALIGNMENT;
  const payload = new Uint8Array(valuesAt + bytes.length);
  new DataView(payload.buffer).setInt32(4, bytes.length, true);
  payload.set(bytes, valuesAt);
  const layout = {
    format: 'u',
    name: '',
    nullable: true,
    length: 1,
    nullCount: 0,
    offset: 0,
    buffers: [null, { offset: 0, length: 8 }, { offset: valuesAt, length: bytes.length }],
    children: [],
  };
  const header = encodeDataHeader({ kind: 'data', timestamp, seq, parameters: {}, layout, payload: { location: 'inline', length: payload.length } });
  return [header, payload];
}

/** The end of a topic's stream: its receivers' inputs close. */
export function encodeEndOfStream(timestamp: bigint): Uint8Array {
  return encodeDataHeader({ kind: 'eos', timestamp });
}
