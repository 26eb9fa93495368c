/** The binary codec: round trips that the golden vectors do not single out. */
import * as arrow from 'apache-arrow';
import { ByteReader, ByteWriter, decodeArrow, decodeDataHeader, encodeDataHeader, prepareArrow, toArrowData, WireError } from '../protocol';

test('ByteWriter grows while writing every kind of field', () => {
  const w = new ByteWriter(4);
  for (let i = 0; i < 100; i++) w.u8(i).u16(i).u32(i).u64(BigInt(i)).i64(-i).f64(i / 2).str16(`s${i}`).raw(new Uint8Array([i]));
  const r = new ByteReader(w.finish());
  for (let i = 0; i < 100; i++) {
    expect([r.u8(''), r.u16(''), r.u32(''), r.u64(''), r.i64(''), r.f64(''), r.str16(''), r.raw(1, '')[0]]).toEqual([i, i, i, BigInt(i), BigInt(-i), i / 2, `s${i}`, i]);
  }
  r.end('');
});

test('a header with a large layout and many parameters round-trips', () => {
  const rows = Array.from({ length: 10 }, (_, i) => ({ a: i, b: `x${i}`, c: [i, i + 1], d: { e: i % 2 === 0 } }));
  const prepared = prepareArrow(toArrowData(rows));
  const parameters = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`key${i}`, i % 2 ? `value ${i}` : [i, i + 0.5]]));
  const header = encodeDataHeader({ kind: 'data', timestamp: 5n, seq: 9n, parameters, layout: prepared.layout, payload: { location: 'inline', length: prepared.payloadSize } });
  const decoded = decodeDataHeader(header);
  expect(decoded.kind === 'data' && decoded.parameters).toEqual(parameters);
  expect(decoded.kind === 'data' && decoded.layout).toEqual(prepared.layout);
  const payload = new Uint8Array(prepared.payloadSize);
  prepared.writePayload(payload);
  const back = arrow.makeVector(decodeArrow(prepared.layout, payload));
  expect(back.get(3)!.toJSON()).toMatchObject({ a: 3n, b: 'x3' });
  expect([...back.get(3)!.toJSON().c]).toEqual([3n, 4n]);
  expect(back.get(3)!.toJSON().d.toJSON()).toEqual({ e: false });
});

test('parameters keep integers, floats, strings, booleans, lists and dates apart', () => {
  const parameters = { int: 3, big: 2n ** 60n, float: 0.5, s: 'x', yes: true, ints: [1, 2], floats: [0.5, 1], strings: ['a'], bools: [true, false], when: new Date(1700000000123) };
  const header = encodeDataHeader({ kind: 'data', timestamp: 0n, seq: 0n, parameters, layout: prepareArrow(toArrowData([])).layout, payload: { location: 'inline', length: 0 } });
  const decoded = decodeDataHeader(header);
  expect(decoded.kind === 'data' && decoded.parameters).toEqual(parameters);
  expect(() => encodeDataHeader({ kind: 'data', timestamp: 0n, seq: 0n, parameters: { bad: [1, 'a'] } as never, layout: prepareArrow(toArrowData([])).layout, payload: { location: 'inline', length: 0 } })).toThrow(WireError);
});

test('another protocol version is refused with a clear error', () => {
  const header = encodeDataHeader({ kind: 'eos', timestamp: 1n });
  header[4] = 2;
  expect(() => decodeDataHeader(header)).toThrow(/protocol version 2, this node speaks version 1/);
});

test('sliced arrays are sent from their logical start', () => {
  const data = toArrowData([1, null, 3, 4, null, 6, 7, 8, 9, 10]).slice(3, 5);
  const prepared = prepareArrow(data);
  const payload = new Uint8Array(prepared.payloadSize);
  prepared.writePayload(payload);
  expect([...arrow.makeVector(decodeArrow(prepared.layout, payload))]).toEqual([4n, null, 6n, 7n, 8n]);
});
