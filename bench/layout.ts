/**
 * `npm run bench:layout`: the payload layout decision, measured. Per message, how long
 * it takes to encode an Arrow array into a payload and to decode it back into arrow-js
 * arrays, for our serialized C Data Interface layout and for the Arrow IPC stream format,
 * in one process (the transport is the same for both). Medians over many repetitions.
 */
import * as arrow from 'apache-arrow';
import { decodeArrow, decodeDataHeader, encodeDataHeader, prepareArrow } from '../protocol';

function median(fn: () => void, budgetMs = 300): number {
  for (let i = 0; i < 20; i++) fn(); // warm-up
  const times: number[] = [];
  const end = performance.now() + budgetMs;
  while (performance.now() < end || times.length < 20) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] * 1000;
}

function cases(): [string, arrow.Data][] {
  const out: [string, arrow.Data][] = [];
  for (const size of [8, 4096, 65536, 1 << 20, 4 << 20]) {
    out.push([`uint8 × ${size}`, arrow.makeData({ type: new arrow.Uint8(), data: new Uint8Array(size).fill(3), length: size })]);
  }
  const rows = 1000;
  const struct = arrow.vectorFromArray(
    Array.from({ length: rows }, (_, i) => ({ x: i * 0.5, y: -i * 0.25, label: `object-${i}`, score: i % 100 })),
    new arrow.Struct([
      new arrow.Field('x', new arrow.Float64()),
      new arrow.Field('y', new arrow.Float64()),
      new arrow.Field('label', new arrow.Utf8()),
      new arrow.Field('score', new arrow.Int32()),
    ]),
  ).data[0];
  out.push([`struct{x,y,label,score} × ${rows}`, struct]);
  return out;
}

function main(): void {
  console.log('| payload | C Data layout: encode (µs) | decode (µs) | Arrow IPC: encode (µs) | decode (µs) |');
  console.log('|---|---|---|---|---|');
  for (const [name, data] of cases()) {
    let header = new Uint8Array(0);
    let payload = new Uint8Array(0);
    const encodeC = median(() => {
      const prepared = prepareArrow(data);
      payload = new Uint8Array(prepared.payloadSize);
      prepared.writePayload(payload);
      header = encodeDataHeader({ kind: 'data', timestamp: 1n, seq: 0n, parameters: {}, layout: prepared.layout, payload: { location: 'inline', length: prepared.payloadSize } });
    });
    const decodeC = median(() => {
      const h = decodeDataHeader(header);
      if (h.kind !== 'data') throw new Error('unexpected');
      arrow.makeVector(decodeArrow(h.layout, payload));
    });
    const table = new arrow.Table({ value: arrow.makeVector(data) });
    let ipc = new Uint8Array(0);
    const encodeIpc = median(() => {
      ipc = arrow.tableToIPC(table, 'stream');
    });
    const decodeIpc = median(() => {
      arrow.tableFromIPC(ipc).getChild('value');
    });
    console.log(`| ${name} | ${encodeC.toFixed(1)} | ${decodeC.toFixed(1)} | ${encodeIpc.toFixed(1)} | ${decodeIpc.toFixed(1)} |`);
  }
}

main();
