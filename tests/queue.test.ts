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
