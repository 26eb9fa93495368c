/**
 * What a daemon holds for a coordinator that is away (coordinator/cluster/held.ts): bounded,
 * log lines dropped first, then status updates, then the oldest of the rest; the order of
 * what stays is kept. (The holding itself, across a real coordinator restart, is in
 * coordinator-restart.test.ts.)
 */
import { HeldMessages } from '../coordinator/cluster/held';
import type { DaemonMessage } from '../coordinator/cluster/messages';

const dataflow = 'df';
const line = (n: number): DaemonMessage => ({ t: 'part', dataflow, message: { t: 'line', line: { node: 'cam', stream: 'stdout', line: `line ${n}` } } });
const status = (n: number): DaemonMessage => ({ t: 'part', dataflow, message: { t: 'status', update: { node: `n${n}`, status: 'running', outputsClosed: false, restarts: n, stderrTail: [] } } });
const event = (n: number): DaemonMessage => ({ t: 'part', dataflow, message: { t: 'restart-seen', node: `sender${n}`, peer: 'gpu' } });

const name = (m: DaemonMessage): string => {
  if (m.t !== 'part') return m.t;
  const p = m.message;
  return p.t === 'line' ? p.line.line : p.t === 'status' ? `status ${p.update.restarts}` : p.t === 'restart-seen' ? `event ${p.node.slice(6)}` : p.t;
};

test('within the bound everything is kept, in order, and take() empties the holder', () => {
  const held = new HeldMessages(5);
  for (const m of [line(0), event(1), status(2), line(3)]) held.push(m);
  expect(held.length).toBe(4);
  expect(held.dropped).toBe(0);
  expect(held.take().map(name)).toEqual(['line 0', 'event 1', 'status 2', 'line 3']);
  expect(held.length).toBe(0);
  expect(held.take()).toEqual([]);
});

test('past the bound the oldest log lines go first, then status updates, then the oldest messages; the count of dropped is kept until take()', () => {
  const held = new HeldMessages(4);
  // e0 l1 s2 l3 e4 s5: two over the bound, both log lines
  for (const m of [event(0), line(1), status(2), line(3), event(4), status(5)]) held.push(m);
  expect(held.take().map(name)).toEqual(['event 0', 'status 2', 'event 4', 'status 5']);

  for (const m of [event(0), line(1), status(2), line(3), event(4), status(5)]) held.push(m);
  // no line left to drop: the oldest status, then the next
  held.push(event(6));
  held.push(event(7));
  expect(held.dropped).toBe(4);
  expect(held.take().map(name)).toEqual(['event 0', 'event 4', 'event 6', 'event 7']);
  expect(held.dropped).toBe(0);

  // only events: the oldest go
  for (let i = 0; i < 6; i++) held.push(event(i));
  expect(held.take().map(name)).toEqual(['event 2', 'event 3', 'event 4', 'event 5']);
});

test('a daemon holding 10,000 messages under a flood of log lines keeps every event and the newest lines', () => {
  const held = new HeldMessages(10_000);
  const events: string[] = [];
  for (let i = 0; i < 50_000; i++) {
    if (i % 1000 === 0) {
      held.push(event(i));
      events.push(`event ${i}`);
    } else held.push(line(i));
  }
  expect(held.length).toBe(10_000);
  expect(held.dropped).toBe(40_000);
  const kept = held.take().map(name);
  expect(kept.filter((n) => n.startsWith('event'))).toEqual(events);
  const lines = kept.filter((n) => n.startsWith('line'));
  expect(lines).toHaveLength(10_000 - events.length);
  const all = Array.from({ length: 50_000 }, (_, i) => i).filter((i) => i % 1000 !== 0);
  expect(lines).toEqual(all.slice(-lines.length).map((i) => `line ${i}`)); // the newest ones, in order
});
