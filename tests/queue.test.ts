import * as arrow from 'apache-arrow';
import { EventQueue } from '../node-api/queue';
import type { InputEvent } from '../node-api/events';

const input = (id: string, n: number): InputEvent => ({
  type: 'INPUT',
  id,
  data: arrow.makeVector(new Int32Array([n])),
  metadata: { timestamp: BigInt(n), parameters: {} },
});

test('each input keeps its newest queue_size messages; events come out in arrival order', () => {
  const q = new EventQueue([
    ['a', 2],
    ['b', 10],
  ]);
  q.pushInput(input('a', 1));
  q.pushInput(input('b', 2));
  q.pushInput(input('a', 3));
  q.pushControl({ type: 'INPUT_CLOSED', id: 'x' });
  q.pushInput(input('a', 4)); // drops a:1
  expect(q.size).toBe(4);
  expect(q.dropped.get('a')).toBe(1);
  const order = [];
  for (let e = q.shift(); e; e = q.shift()) order.push(e.type === 'INPUT' ? `${e.id}:${e.data.get(0)}` : e.type);
  expect(order).toEqual(['b:2', 'a:3', 'INPUT_CLOSED', 'a:4']);
});

test('messages for unknown inputs are ignored', () => {
  const q = new EventQueue([['a', 1]]);
  q.pushInput(input('zzz', 1));
  expect(q.size).toBe(0);
});

test('a deep queue keeps its order and its bound while it wraps around and grows', () => {
  const q = new EventQueue([['a', 1000]]);
  const out: number[] = [];
  // Interleave pushes and shifts so the ring's head moves before it has to grow.
  for (let n = 0; n < 5000; n++) {
    q.pushInput(input('a', n));
    if (n % 3 === 0) {
      const e = q.shift();
      if (e?.type === 'INPUT') out.push(e.data.get(0) as number);
    }
  }
  expect(q.size).toBe(1000);
  for (let e = q.shift(); e; e = q.shift()) if (e.type === 'INPUT') out.push(e.data.get(0) as number);
  // Every shifted number is larger than the one before; the last 1000 pushed all arrive.
  expect(out.every((v, i) => i === 0 || v > out[i - 1])).toBe(true);
  expect(out.slice(-1000)).toEqual(Array.from({ length: 1000 }, (_, i) => 4000 + i));
  expect(q.dropped.get('a')).toBe(5000 - out.length);
});
