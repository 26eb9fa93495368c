/** The shared-memory data plane with real processes and real segments. */
import * as fs from 'node:fs';
import { dora, leftovers, node, readRecord, segmentsOf, startDora, tempDataflow } from './support/dataflow';

afterEach(() => {
  // No process, socket or /dev/shm segment of any dataflow run here may outlive it.
  expect(leftovers()).toEqual([]);
});

const idOf = (text: string) => /dataflow ([0-9a-f-]{36})/.exec(text)?.[1];

test('receivers read the sender’s memory in place, one copy shared by every receiver', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'shm-sender.ts', `    env: { MUTATE: 1, BYTES: 65536 }\n    outputs: [out]\n`) +
      node('a', 'shm-receiver.ts', `    env: { WATCH_MS: 900, RECORD: ${df_record('a')} }\n    inputs: { data: sender/out }\n`) +
      node('b', 'shm-receiver.ts', `    env: { WATCH_MS: 900, RECORD: ${df_record('b')} }\n    inputs: { data: sender/out }\n`),
  );
  const result = await dora(['run', df.file], { cwd: df.dir });
  expect(result.code).toBe(0);
  for (const r of ['a', 'b']) {
    const [input] = readRecord(`${df.dir}/${r}.jsonl`).filter((e) => e.type === 'INPUT');
    expect(input.length).toBe(65536);
    expect(input.bufferBytes).toBeGreaterThanOrEqual(65536);
    // A write the sender made after sending shows through: the view is the sender's memory, not a copy.
    expect([input.first, input.firstLater]).toEqual([1, 2]);
  }
});

// Records go to files named after the receiver, in the dataflow's folder (cwd of nodes).
function df_record(name: string): string {
  return JSON.stringify(`./${name}.jsonl`);
}

test('a stream of 1000 4 MiB samples to two fast receivers and a slow one reuses a bounded pool', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'shm-sender.ts', `    env: { COUNT: 1000, BYTES: 4194304, DELAY_MS: 2, LINGER_MS: 20000, RECORD: ${df_record('sender')} }\n    outputs: [out]\n`) +
      node('fast1', 'shm-receiver.ts', `    env: { RECORD: ${df_record('fast1')} }\n    inputs: { data: { source: sender/out, queue_size: 1000 } }\n`) +
      node('fast2', 'shm-receiver.ts', `    env: { RECORD: ${df_record('fast2')} }\n    inputs: { data: { source: sender/out, queue_size: 1000 } }\n`) +
      node('slow', 'shm-receiver.ts', `    env: { SLOW_MS: 20, RECORD: ${df_record('slow')} }\n    inputs: { data: { source: sender/out, queue_size: 2 } }\n`),
  );
  const run = startDora(['run', df.file], { cwd: df.dir });
  let maxSegments = 0;
  const sampler = setInterval(() => {
    // Segments of any dataflow (other test files may run some too): still a bound.
    maxSegments = Math.max(maxSegments, fs.readdirSync('/dev/shm').filter((n) => n.startsWith('dora-ts-')).length);
  }, 20);
  const result = await run.done;
  clearInterval(sampler);
  expect(result.code).toBe(0);
  const [stats] = readRecord(`${df.dir}/sender.jsonl`);
  // Not one segment per message: a segment is created only when every earlier one is in
  // flight (queued at a receiver, whose queue holds up to 1000, or being read), so the
  // pool never exceeds the peak in flight; how high that peak gets depends on the load.
  expect(stats.created).toBeLessThanOrEqual(stats.peakOutstanding + 1);
  expect(stats.created).toBeLessThan(500);
  expect(stats.outstanding).toBe(0); // everyone returned everything
  for (const fast of ['fast1', 'fast2']) {
    const seqs = readRecord(`${df.dir}/${fast}.jsonl`).filter((e) => e.type === 'INPUT').map((e) => e.seq);
    expect(seqs).toEqual([...Array(1000).keys()]); // in order, nothing lost, each sample's own bytes
    // 4 GB went through; the receiver's private memory stayed small (nothing was copied).
    const [end] = readRecord(`${df.dir}/${fast}.jsonl`).filter((e) => e.type === 'END');
    expect(end.peakRssAnonMiB).toBeLessThan(150);
  }
  const slow = readRecord(`${df.dir}/slow.jsonl`).filter((e) => e.type === 'INPUT');
  expect(slow.length).toBeLessThan(1000); // it skipped (dropped and released) most of them
  expect(slow[slow.length - 1].seq).toBe(999); // but always caught up with the newest
  expect(maxSegments).toBeLessThanOrEqual(stats.created + 64); // + segments of other tests running alongside
  expect(segmentsOf(idOf(result.stderr)!)).toEqual([]);
}, 60_000);

test('a receiver that crashes while holding samples releases them', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'shm-sender.ts', `    env: { COUNT: 300, BYTES: 1048576, DELAY_MS: 2, LINGER_MS: 20000, RECORD: ${df_record('sender')} }\n    outputs: [out]\n`) +
      node('holder', 'shm-receiver.ts', `    env: { HOLD: 1, EXIT_AFTER: 20, RECORD: ${df_record('holder')} }\n    inputs: { data: { source: sender/out, queue_size: 100 } }\n`) +
      node('ok', 'shm-receiver.ts', `    env: { RECORD: ${df_record('ok')} }\n    inputs: { data: { source: sender/out, queue_size: 300 } }\n`),
  );
  const result = await dora(['run', df.file], { cwd: df.dir });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/node "holder" failed: exited with status 3/);
  const [stats] = readRecord(`${df.dir}/sender.jsonl`);
  expect(stats.outstanding).toBe(0);
  expect(stats.created).toBeLessThanOrEqual(40);
  expect(readRecord(`${df.dir}/ok.jsonl`).filter((e) => e.type === 'INPUT')).toHaveLength(300);
});

test('a sender killed with SIGKILL: receivers get INPUT_CLOSED and its segments are removed', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'shm-sender.ts', `    env: { COUNT: 100, BYTES: 100000, DELAY_MS: 5, KILL_AFTER: 30 }\n    outputs: [out]\n`) +
      node('r', 'shm-receiver.ts', `    env: { HOLD: 1, RECORD: ${df_record('r')} }\n    inputs: { data: sender/out }\n`),
  );
  const result = await dora(['run', df.file], { cwd: df.dir });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/node "sender" failed: killed by SIGKILL/);
  const events = readRecord(`${df.dir}/r.jsonl`);
  expect(events.filter((e) => e.type === 'INPUT').length).toBeGreaterThan(0);
  expect(events.some((e) => e.type === 'INPUT_CLOSED')).toBe(true);
  expect(segmentsOf(idOf(result.stderr)!)).toEqual([]);
});

test('a flood of 5,000 malformed messages: the TypeScript receiver drops each with a warning and survives', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('rogue', 'rogue.ts', `    env: { REPEAT: 625 }\n    outputs: [out]\n`) +
      node('r', 'recorder.ts', `    env: { RECORD: ${df_record('r')} }\n    inputs: { data: rogue/out }\n`),
  );
  const result = await dora(['run', df.file], { cwd: df.dir });
  expect(result.code).toBe(0);
  const events = readRecord(`${df.dir}/r.jsonl`);
  expect(events.filter((e) => e.type === 'INPUT').map((e) => e.values)).toEqual([[0], [42]]);
  expect(events.map((e) => e.type).slice(-3)).toEqual(['INPUT_CLOSED', 'STOP', 'END']);
  const log = fs.readFileSync(`${df.dir}/out/${idOf(result.stderr)}/log_r.txt`, 'utf8');
  expect(log.split('\n').filter((l) => l.includes('dropped a malformed message from rogue/out'))).toHaveLength(5000);
}, 60_000);

test('malformed frames are logged with their sender and dropped; valid ones still arrive', async () => {
  const df = tempDataflow(
    `nodes:\n` + node('rogue', 'rogue.ts', `    outputs: [out]\n`) + node('r', 'recorder.ts', `    env: { RECORD: ${df_record('r')} }\n    inputs: { data: rogue/out }\n`),
  );
  const result = await dora(['run', df.file], { cwd: df.dir });
  expect(result.code).toBe(0);
  const inputs = readRecord(`${df.dir}/r.jsonl`).filter((e) => e.type === 'INPUT');
  expect(inputs.map((e) => e.values)).toEqual([[0], [42]]);
  const log = fs.readFileSync(`${df.dir}/out/${idOf(result.stderr)}/log_r.txt`, 'utf8');
  const warnings = log.split('\n').filter((l) => l.includes('dropped a malformed message from rogue/out'));
  expect(warnings.length).toBe(8);
  expect(log).toMatch(/not a dora-ts message/);
  expect(log).toMatch(/protocol version 2/);
  expect(log).toMatch(/truncated/);
  expect(log).toMatch(/does not exist/);
  expect(log).toMatch(/refusing to open/);
  expect(log).toMatch(/outside the \d+-byte segment/);
  expect(log).toMatch(/outside the 40-byte payload/);
});
