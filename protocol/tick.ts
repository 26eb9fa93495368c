/**
 * A timer tick: a data message with an empty null array and no parameters
 * (dora's ticks carry an empty array too). The daemon encodes one per tick.
 */
import { encodeDataHeader } from './data';

const EMPTY_NULL_ARRAY = { format: 'n', name: '', nullable: true, length: 0, nullCount: 0, offset: 0, buffers: [], children: [] } as const;

/** `seq` counts the timer's ticks from 0. */
export function encodeTimerTick(timestamp: bigint, seq: bigint): Uint8Array {
  return encodeDataHeader({ kind: 'data', timestamp, seq, parameters: {}, layout: EMPTY_NULL_ARRAY, payload: { location: 'inline', length: 0 } });
}
