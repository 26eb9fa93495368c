/** Shared-memory segments and the sample pool, on real /dev/shm segments. */
import * as fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { SamplePool } from '../node-api/pool';
import { SegmentCache } from '../node-api/segments';
import { Segment, isSegmentName, unlinkDataflowSegments } from '../node-api/shm';

const dataflow = randomUUID();
const prefix = `dora-ts-${dataflow}-`;
const ours = () => fs.readdirSync('/dev/shm').filter((n) => n.startsWith(prefix));

afterEach(() => {
  unlinkDataflowSegments(dataflow);
  expect(ours()).toEqual([]);
});

test('a receiver maps the bytes the sender wrote, read-only, in a 0600 segment', () => {
  const segment = Segment.create(prefix, 1 << 20);
  segment.bytes.set([1, 2, 3], 1000);
  const mode = fs.statSync(`/dev/shm/${segment.name}`).mode & 0o777;
  expect(mode).toBe(0o600);
  const reader = Segment.open(segment.name);
  expect(reader.size).toBe(1 << 20);
  expect([...reader.bytes.subarray(1000, 1003)]).toEqual([1, 2, 3]);
  segment.bytes[1000] = 42; // same memory, not a copy
  expect(reader.bytes[1000]).toBe(42);
  expect(reader.writable).toBe(false);
});

test('names are unguessable and checked before opening', () => {
  const a = Segment.create(prefix, 4096);
  const b = Segment.create(prefix, 4096);
  expect(a.name).not.toBe(b.name);
  expect(a.name.length - prefix.length).toBeGreaterThanOrEqual(24);
  expect(isSegmentName('../etc/passwd')).toBe(false);
  expect(() => Segment.open('dora-ts-does-not-exist')).toThrow(/shm_open/);
  expect(() => Segment.open('passwd')).toThrow(/not a dora-ts segment/);
});

test('the pool reuses a sample only after every receiver released it', () => {
  const pool = new SamplePool(prefix);
  const first = pool.acquire(3_000_000);
  pool.sent(first, ['r1', 'r2']);
  const second = pool.acquire(3_000_000);
  expect(second.segment).not.toBe(first.segment); // first is still held
  pool.sent(second, ['r1']);
  pool.release(first.id, 'r1');
  expect(pool.freeCount).toBe(0);
  pool.release(first.id, 'r1'); // a duplicate token changes nothing
  pool.release(first.id, 'r2');
  expect(pool.freeCount).toBe(1);
  const third = pool.acquire(2_500_000);
  expect(third.segment).toBe(first.segment); // reused
  expect(third.id).not.toBe(first.id); // but under a new id: stale tokens cannot free it
  pool.close();
});

test('a steady stream of 4 MiB samples reuses a handful of segments', () => {
  const pool = new SamplePool(prefix);
  const held: bigint[] = [];
  for (let i = 0; i < 1000; i++) {
    const s = pool.acquire(4 << 20);
    pool.sent(s, ['fast', 'slow']);
    pool.release(s.id, 'fast');
    held.push(s.id);
    if (held.length > 3) pool.release(held.shift()!, 'slow'); // the slow receiver lags three samples behind
  }
  expect(pool.created).toBeLessThanOrEqual(5);
  expect(pool.outstandingCount).toBe(3);
  pool.close();
});

test('small samples are slots of shared slab segments, at 64-byte aligned offsets', () => {
  const pool = new SamplePool(prefix);
  const samples = Array.from({ length: 300 }, () => pool.acquire(4096));
  for (const s of samples) pool.sent(s, ['r']);
  expect(pool.created).toBe(2); // 256 slots of 4 KiB per 1 MiB slab
  expect(new Set(samples.map((s) => `${s.segment.name}@${s.offset}`)).size).toBe(300);
  expect(samples.every((s) => s.offset % 64 === 0 && s.offset + s.capacity <= s.segment.size)).toBe(true);
  for (const s of samples) pool.release(s.id, 'r');
  const again = pool.acquire(3000);
  expect(pool.created).toBe(2); // a returned slot is reused
  pool.sent(again, ['r']);
  pool.close();
  expect(ours().length).toBe(1); // the slab holding the outstanding slot stays for the daemon to remove
});

test('a receiver that leaves releases everything it held', () => {
  const pool = new SamplePool(prefix);
  for (let i = 0; i < 20; i++) pool.sent(pool.acquire(300_000), ['crashed', 'alive']); // whole segments (above the slab sizes)
  pool.releaseAll('crashed');
  expect(pool.outstandingCount).toBe(20);
  pool.releaseAll('alive');
  expect(pool.outstandingCount).toBe(0);
  expect(pool.freeCount).toBe(20); // as many as were ever in flight are kept for reuse
  expect(ours().length).toBe(20);
  pool.close();
});

test('messages share an ArrayBuffer over a mapping only once the ones before them are done', () => {
  const segment = Segment.create(prefix, 1 << 16);
  segment.bytes.set([9, 8, 7], 4096);
  const cache = new SegmentCache();
  const a = cache.view(segment.name, 0, 4096, () => undefined);
  const b = cache.view(segment.name, 4096, 3, () => undefined);
  // a is not done: b must not share its buffer, or b's reachability would hide a's
  expect(b.bytes.buffer).not.toBe(a.bytes.buffer);
  expect([...b.bytes]).toEqual([9, 8, 7]);
  b.done();
  const c = cache.view(segment.name, 4096, 3, () => undefined);
  expect(c.bytes.buffer).toBe(b.bytes.buffer); // no new foreign ArrayBuffer (no GC pressure)
  expect([...c.bytes]).toEqual([9, 8, 7]);
  c.done();
  c.done(); // idempotent
  expect(cache.view(segment.name, 4096, 4096, () => undefined).bytes.buffer).not.toBe(c.bytes.buffer); // too small for it
  a.done();
  expect(cache.view(segment.name, 0, 1, () => undefined).bytes.buffer).toBe(a.bytes.buffer);
  expect(a.bytes.buffer.byteLength).toBe(4096); // a view covers its message, not the whole segment
  expect(cache.size).toBe(1);
});
