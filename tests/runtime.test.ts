/**
 * The runtime end to end: real `dora run` processes, real node processes, real
 * ZeroMQ sockets. Each test writes a dataflow into a temp folder.
 */
import { dora, leftovers, node, processesMentioning, readRecord, sleep, startDora, tempDataflow, waitFor } from './support/dataflow';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataflowRun, loadDescriptor } from '../coordinator';

const idOf = (stderr: string) => /dataflow ([0-9a-f-]{36})/.exec(stderr)?.[1];

afterEach(() => {
  // Nothing of any dataflow may outlive its run.
  expect(leftovers()).toEqual([]);
});

test('start barrier: messages sent right at start-up are not lost', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'sender.ts', `    env: { COUNT: 20 }\n    outputs: [out]\n`) +
      node('receiver', 'recorder.ts', `    inputs:\n      data: { source: sender/out, queue_size: 100 }\n`),
  );
  const record = df.record('receiver');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.stderr).toContain('finished');
  expect(result.code).toBe(0);
  const events = readRecord(record);
  const inputs = events.filter((e) => e.type === 'INPUT');
  expect(inputs.map((e) => e.values[0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
  // Every message carries its parameters and a strictly increasing HLC timestamp.
  expect(inputs[3].parameters).toEqual({ seq: 3, tag: 'test' });
  const stamps = inputs.map((e) => BigInt(e.timestamp));
  for (let i = 1; i < stamps.length; i++) expect(stamps[i] > stamps[i - 1]).toBe(true);
  // INPUT_CLOSED follows the last message, then STOP (every input is closed, as in dora), then the stream ends.
  expect(events.slice(-3).map((e) => e.type)).toEqual(['INPUT_CLOSED', 'STOP', 'END']);
  expect(events[events.length - 2].cause).toBe('ALL_INPUTS_CLOSED');
  expect(result.stdout).toContain('[sender] sent 20');
  expect(processesMentioning(df.dir)).toEqual([]);
});

test('a full queue drops its oldest messages, never blocks the sender', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'sender.ts', `    env: { COUNT: 200 }\n    outputs: [out]\n`) +
      node('slow', 'recorder.ts', `    env: { DELAY_FIRST_MS: 1500 }\n    inputs:\n      data: { source: sender/out, queue_size: 3 }\n`),
  );
  const record = df.record('slow');
  const started = Date.now();
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  const values = readRecord(record)
    .filter((e) => e.type === 'INPUT')
    .map((e) => e.values[0] as number);
  // The slow reader finds only the newest queue_size messages waiting.
  expect(values).toEqual([197, 198, 199]);
  // The sender did not wait for it: it finished long before the reader woke up.
  const sentAt = result.stdout.indexOf('[sender] sent 200');
  expect(sentAt).toBeGreaterThanOrEqual(0);
  expect(Date.now() - started).toBeLessThan(15000);
});

test('a burst beyond ZeroMQ’s default high-water mark loses nothing when the queue is large enough, and the stream still closes', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'sender.ts', `    env: { COUNT: 5000 }\n    outputs: [out]\n`) +
      node('r', 'recorder.ts', `    env: { BUSY_FIRST_MS: 1500 }\n    inputs:\n      data: { source: sender/out, queue_size: 6000 }\n`),
  );
  const record = df.record('r');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  const events = readRecord(record);
  const values = events.filter((e) => e.type === 'INPUT').map((e) => e.values[0] as number);
  expect(values).toEqual([...Array(5000).keys()]);
  expect(events.filter((e) => e.type !== 'INPUT').map((e) => e.type)).toEqual(['INPUT_CLOSED', 'STOP', 'END']);
});

test('timers tick at their rate (loosely) and a tick is an INPUT with empty data', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('ticks', 'recorder.ts', `    env: { STOP_AFTER_MS: 1000 }\n    inputs:\n      fast: dora/timer/millis/50\n      slow: dora/timer/hz/4\n`),
  );
  const record = df.record('ticks');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  const events = readRecord(record);
  const fast = events.filter((e) => e.id === 'fast');
  const slow = events.filter((e) => e.id === 'slow');
  expect(fast.length).toBeGreaterThanOrEqual(12); // nominal 20 in 1 s
  expect(fast.length).toBeLessThanOrEqual(22);
  expect(slow.length).toBeGreaterThanOrEqual(2); // nominal 4
  expect(slow.length).toBeLessThanOrEqual(5);
  expect(fast.every((e) => e.type === 'INPUT' && e.length === 0)).toBe(true);
});

test('a crashing node: downstream gets INPUT_CLOSED, the run fails naming it with its stderr', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('source', 'sender.ts', `    env: { COUNT: 3 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n`) +
      node('crasher', 'crasher.ts', `    inputs: { data: source/out }\n    outputs: [out]\n`) +
      node('after', 'recorder.ts', `    inputs: { data: crasher/out }\n`),
  );
  const record = df.record('after');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/node "crasher" failed: exited with status 1/);
  expect(result.stderr).toContain('simulated crash in crasher'); // last stderr lines
  expect(result.stderr).not.toMatch(/node "source" failed/);
  const events = readRecord(record);
  // NODE_FAILED names the sender, INPUT_CLOSED the input it fed; then STOP, every input being closed.
  expect(events.map((e) => e.type)).toEqual(['NODE_FAILED', 'INPUT_CLOSED', 'STOP', 'END']);
  expect(events[0].id).toBe('crasher');
  expect(events[1].id).toBe('data');
  expect(events[2].cause).toBe('ALL_INPUTS_CLOSED');
  expect(processesMentioning(df.dir)).toEqual([]);
});

test('a failing exit status is reported even when the node closed its outputs', async () => {
  const df = tempDataflow(`nodes:\n` + node('sender', 'sender.ts', `    env: { COUNT: 1, EXIT_CODE: 7 }\n    outputs: [out]\n`) + node('r', 'recorder.ts', `    inputs: { data: sender/out }\n`));
  const result = await dora(['run', df.file], { env: { RECORD: df.record('r') } });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/node "sender" failed: exited with status 7/);
  expect(result.stderr).toContain('sender: failing on purpose');
});

test('a node that cannot be started fails the run with a clear reason, and the others are stopped', async () => {
  // A bare name is looked up on PATH at spawn time, so only spawning can find it missing.
  const df = tempDataflow(`nodes:\n  - id: ghost\n    path: dora-ts-no-such-command\n` + node('r', 'recorder.ts', `    inputs: { tick: dora/timer/millis/50 }\n`));
  const result = await dora(['run', df.file], { env: { RECORD: df.record('r') } });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/node "ghost" failed: could not be started: .*ENOENT/);
  expect(processesMentioning(df.dir)).toEqual([]);
});

test('a missing node file is a descriptor error: nothing is spawned', async () => {
  const df = tempDataflow(`nodes:\n  - id: ghost\n    path: ./does-not-exist.ts\n` + node('r', 'recorder.ts', `    inputs: { tick: dora/timer/millis/50 }\n`));
  const result = await dora(['run', df.file], { env: { RECORD: df.record('r') } });
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`${df.file}:3:11: node "ghost": at /nodes/0/path: \`path\`: ${df.dir}/does-not-exist.ts does not exist`);
  expect(readRecord(df.record('r'))).toEqual([]);
});

test('Ctrl-C stops the dataflow: every node gets STOP and exits', async () => {
  const df = tempDataflow(`nodes:\n` + node('a', 'looper.ts', `    inputs: { tick: dora/timer/millis/10 }\n`) + node('b', 'looper.ts', ''));
  const record = df.record('stops');
  const { child, done } = startDora(['run', df.file], { env: { RECORD: record } });
  await waitFor(() => processesMentioning(df.dir).length >= 3, 10000, 'nodes to start');
  await sleep(1500); // past the start barrier
  child.kill('SIGINT');
  const result = await done;
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(/dataflow [0-9a-f-]+ stopped/);
  const lines = require('node:fs').readFileSync(record, 'utf8').trim().split('\n');
  expect(lines.sort()).toEqual(['STOP MANUAL', 'STOP MANUAL']);
  expect(processesMentioning(df.dir)).toEqual([]);
});

test('Ctrl-C during start-up still gives every node STOP, not a kill', async () => {
  const df = tempDataflow(`nodes:\n` + node('a', 'looper.ts', `    inputs: { tick: dora/timer/millis/10 }\n`) + node('b', 'looper.ts', ''));
  const record = df.record('stops');
  const { child, done } = startDora(['run', df.file, '--grace', '20s'], { env: { RECORD: record } });
  await waitFor(() => processesMentioning(df.dir).length >= 3, 10000, 'nodes to spawn');
  child.kill('SIGINT'); // the nodes are still loading: the start barrier has not been passed
  const t0 = Date.now();
  const result = await done;
  expect(result.code).toBe(0);
  expect(Date.now() - t0).toBeLessThan(15000); // they stopped by themselves, well before the grace period
  const lines = require('node:fs').readFileSync(record, 'utf8').trim().split('\n');
  expect(lines.sort()).toEqual(['STOP MANUAL', 'STOP MANUAL']);
  expect(processesMentioning(df.dir)).toEqual([]);
});

test('a node that ignores STOP is terminated after the grace period, one that ignores SIGTERM is killed', async () => {
  const df = tempDataflow(`nodes:\n` + node('polite', 'stubborn.ts', '') + node('rude', 'stubborn.ts', `    env: { IGNORE_SIGTERM: 1 }\n`));
  const record = df.record('stubborn');
  const { child, done } = startDora(['run', df.file, '--grace', '300ms'], { env: { RECORD: record } });
  await waitFor(() => processesMentioning(df.dir).length >= 3, 10000, 'nodes to start');
  await sleep(1500);
  const t0 = Date.now();
  child.kill('SIGINT');
  const result = await done;
  const elapsed = Date.now() - t0;
  // A stop that had to kill is not a clean one: said so, and the exit status is 1.
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/node "rude" did not stop within the grace period and was killed \(SIGKILL\)/);
  expect(result.stderr).not.toMatch(/node "polite" did not stop/);
  const lines = require('node:fs').readFileSync(record, 'utf8').trim().split('\n');
  expect(lines.filter((l: string) => l === 'STOP')).toHaveLength(2);
  expect(lines).toContain('SIGTERM'); // the rude node saw SIGTERM and ignored it...
  expect(elapsed).toBeGreaterThanOrEqual(1700); // ...so it took SIGKILL, 1.5 s after SIGTERM
  expect(elapsed).toBeLessThan(6000);
  expect(processesMentioning(df.dir)).toEqual([]);
});

test('run logs are kept per dataflow run', async () => {
  const df = tempDataflow(`nodes:\n` + node('sender', 'sender.ts', `    env: { COUNT: 1 }\n    outputs: [out]\n`));
  const result = await dora(['run', df.file]);
  expect(result.code).toBe(0);
  const id = idOf(result.stderr)!;
  const log = require('node:fs').readFileSync(`${df.dir}/out/${id}/log_sender.txt`, 'utf8');
  expect(log).toContain('sent 1');
});

test('an exception while the nodes are being started stops those already started and leaves nothing behind', async () => {
  const df = tempDataflow(`nodes:\n` + node('a', 'looper.ts', `    inputs: { tick: dora/timer/millis/10 }\n`) + node('b', 'looper.ts', ''));
  const dataflow = loadDescriptor(df.file);
  // A string no process can receive (the descriptor check refuses it in YAML): spawning the second node throws.
  (dataflow.nodes[1] as unknown as { args: string[] }).args = ['a\0b'];
  // a runtime folder of its own: other test files run dataflows meanwhile
  const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-rt-'));
  process.env.DORA_RUNTIME_DIR = runtimeDir;
  try {
    await expect(DataflowRun.start(dataflow, { outDir: path.join(df.dir, 'out') })).rejects.toThrow(/null bytes|NUL|invalid/i);
  } finally {
    delete process.env.DORA_RUNTIME_DIR;
  }
  // the first node had been spawned: it is gone, and so is the run's socket folder
  expect(processesMentioning(df.dir)).toEqual([]);
  expect(fs.readdirSync(runtimeDir)).toEqual([]);
  fs.rmSync(runtimeDir, { recursive: true, force: true });
});
