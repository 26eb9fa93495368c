/**
 * Dynamic nodes (`path: dynamic`): processes started by hand — a plain `python`, a
 * TypeScript file run with tsx, a C program — join a running dataflow as one of its
 * nodes, receive and send, leave, and join again, with no duplicated timer ticks; shared
 * memory reaches them intact; a clear error when no running dataflow declares them; and a
 * dynamic node outlives a killed daemon (an ERROR event, never the watchdog's exit).
 *
 * Every dataflow here uses a runtime directory of this file's own, so dataflows that other
 * test files (or other checkouts' tests) run at the same time are not candidates to join.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDescriptor } from '../coordinator/descriptor';
import { reclaimStaleRuns } from '../coordinator/rundir';
import { buildC, C_DIR } from './support/build-c';
import { dora, leftovers, NODES, processesMentioning, readRecord, ROOT, segmentsOf, startDora, tempDataflow, waitFor, type Result } from './support/dataflow';

const RUNTIME = fs.mkdtempSync('/tmp/dora-dyn-'); // 0700, short: socket paths must fit 107 bytes
const PYTHON = path.join(ROOT, '.venv/bin/python');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const C_FIXTURE = path.join(RUNTIME, 'dynamic-c');
const TICK_MS = 50;

beforeAll(() => {
  // The C fixture runs under AddressSanitizer and UBSan: a leak or an error in the core's dynamic-node code fails the test (stderr must stay empty).
  buildC([['all', 'asan']]);
  const sanitized = ['-fsanitize=address,undefined', '-fno-omit-frame-pointer', `-I${C_DIR}/include`, path.join(ROOT, 'tests/fixtures/c/dynamic.c'), '-o', C_FIXTURE, path.join(C_DIR, 'build-asan/libdora_node_api.a')];
  const zmq = spawnSync('pkg-config', ['--libs', 'libzmq'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
  const cc = spawnSync('cc', ['-std=c11', '-Wall', '-Wextra', '-Werror', ...sanitized, ...zmq, '-lpthread'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc failed:\n${cc.stderr}`);
}, 240_000);

/** Runs and processes a test started: a failing test leaves none running (jest would wait for them). */
const children: ChildProcess[] = [];
const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

afterEach(async () => {
  const left = children.splice(0).filter(alive);
  for (const child of left) child.kill('SIGINT');
  const deadline = Date.now() + 10_000;
  while (left.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const child of left.filter(alive)) child.kill('SIGKILL');
  expect(leftovers()).toEqual([]);
});

afterAll(() => {
  reclaimStaleRuns(RUNTIME); // what a test's killed daemon left
  fs.rmSync(RUNTIME, { recursive: true, force: true });
});

type Line = Record<string, any>;
const env = { DORA_RUNTIME_DIR: RUNTIME };

/** Ids of the dataflows running in this file's runtime directory (their daemon.json written). */
function running(): string[] {
  return fs.readdirSync(RUNTIME).filter((d) => fs.existsSync(path.join(RUNTIME, d, 'daemon.json')));
}

/** `dora run` of a dataflow, once its daemon has written daemon.json (a dynamic node can find it from then on). */
async function startRun(yaml: string): Promise<{ dir: string; id: string; child: ChildProcess; done: Promise<Result> }> {
  const df = tempDataflow(yaml);
  const before = new Set(running());
  const { child, done } = startDora(['run', df.file], { cwd: df.dir, env });
  children.push(child);
  let id: string | undefined;
  await waitFor(() => (id = running().find((d) => !before.has(d))) !== undefined, 15_000, 'the dataflow to start');
  return { dir: df.dir, id: id!, child, done };
}

/** sender → dyn (dynamic) → recorder, whose process waits `seconds` before calling Node(): the dataflow starts only then. */
function startSlowRun(seconds: number): ReturnType<typeof startRun> {
  const df = tempDataflow('');
  const slow = path.join(df.dir, 'slow_recorder.py');
  fs.writeFileSync(slow, `import runpy, time\ntime.sleep(${seconds})\nrunpy.run_path(${JSON.stringify(path.join(NODES, 'recorder.py'))}, run_name="__main__")\n`);
  return startRun(
    `nodes:\n` +
      `  - id: sender\n    path: ${path.join(NODES, 'sender.ts')}\n    env: { COUNT: 1000000 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n` +
      `  - id: dyn\n    path: dynamic\n    inputs:\n      tick: dora/timer/millis/${TICK_MS}\n      data: { source: sender/out, queue_size: 100 }\n    outputs: [out]\n` +
      `  - id: recorder\n    path: ${slow}\n    env: { RECORD: ./recorder.jsonl, DORA_PYTHON: ${PYTHON} }\n    inputs:\n      data: { source: dyn/out, queue_size: 100 }\n`,
  );
}

/** A process started by hand: no DORA_NODE_CONFIG, this file's runtime directory. */
function startByHand(command: string, args: string[], extra: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<Result> } {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))) };
}

const python = (id: string, extra: NodeJS.ProcessEnv) => startByHand(PYTHON, [path.join(NODES, 'dynamic_node.py'), id], extra);
const typescript = (id: string, extra: NodeJS.ProcessEnv) => startByHand(TSX, [path.join(NODES, 'dynamic-node.ts'), id], extra);
const c = (id: string, extra: NodeJS.ProcessEnv) =>
  startByHand(C_FIXTURE, [id], { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1', ...extra });

async function succeeds(started: { done: Promise<Result> }): Promise<void> {
  const r = await started.done;
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
}

/** Each join of a dynamic node's record: what it received, and the ticks of its 50 ms timer against how long it stayed. */
function joinsOf(record: Line[]): { join: Line; inputs: Line[]; leave: Line }[] {
  const joins: { join: Line; inputs: Line[]; leave: Line }[] = [];
  for (const e of record) {
    if (e.type === 'JOIN') joins.push({ join: e, inputs: [], leave: {} });
    else if (e.type === 'INPUT') joins[joins.length - 1].inputs.push(e);
    else if (e.type === 'LEAVE') joins[joins.length - 1].leave = e;
  }
  return joins;
}

/** No duplicated ticks: never more than one per period while joined (a second subscription would double them), and some. */
function expectOneTimer(leave: Line): void {
  expect(leave.ticks).toBeGreaterThan(0);
  expect(leave.ticks).toBeLessThanOrEqual(Math.floor(leave.elapsedMs / TICK_MS) + 2);
}

const increasing = (seqs: number[]) => seqs.every((s, i) => i === 0 || s > seqs[i - 1]);

test('a Python node started by hand joins a running dataflow, receives and sends, leaves, and joins again without duplicated ticks', async () => {
  const run = await startRun(
    `nodes:\n` +
      `  - id: sender\n    path: ${path.join(NODES, 'sender.ts')}\n    env: { COUNT: 1000000 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n` +
      `  - id: dyn\n    path: dynamic\n    inputs:\n      tick: dora/timer/millis/${TICK_MS}\n      data: { source: sender/out, queue_size: 100 }\n    outputs: [out]\n` +
      `  - id: recorder\n    path: ${path.join(NODES, 'recorder.py')}\n    env: { RECORD: ./recorder.jsonl }\n    inputs:\n      data: { source: dyn/out, queue_size: 100 }\n`,
  );
  const record = path.join(run.dir, 'dyn.jsonl');
  // Two joins in one process (a notebook running the cell again), then a new process.
  await succeeds(python('dyn', { RECORD: record, JOINS: '2', STAY_MS: '1000' }));
  await succeeds(python('dyn', { RECORD: record, JOINS: '1', STAY_MS: '1000' }));
  run.child.kill('SIGINT');
  const result = await run.done;
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/dynamic node dyn joined \(pid \d+\)/);
  expect(result.stdout).toMatch(/dynamic node dyn joined \(pid \d+, join 3\)/);

  const joins = joinsOf(readRecord(record));
  expect(joins.map((j) => j.join.restartCount)).toEqual([0, 1, 2]);
  expect(joins.map((j) => j.join.dataflow)).toEqual([run.id, run.id, run.id]);
  expect(joins[0].join.pid).toBe(joins[1].join.pid);
  expect(joins[2].join.pid).not.toBe(joins[0].join.pid);
  for (const { inputs, leave } of joins) {
    expectOneTimer(leave);
    expect(inputs.length).toBeGreaterThan(5); // the sender ticks every 20 ms
  }
  // The sender went on all along: each join saw a later stretch of its messages, none twice.
  const seqs = joins.flatMap((j) => j.inputs.map((e) => e.seq as number));
  expect(increasing(seqs)).toBe(true);

  // Its receiver saw everything it sent, a restart announced before each rejoin (not before the first join), and never INPUT_CLOSED.
  const received = readRecord(path.join(run.dir, 'recorder.jsonl'));
  const kinds = received.map((e) => (e.type === 'INPUT' ? 'INPUT' : e.type === 'NODE_RESTARTED' ? `RESTARTED ${e.id}` : e.type));
  expect(kinds.filter((k, i) => k !== kinds[i - 1])).toEqual(['RUN', 'INPUT', 'RESTARTED dyn', 'INPUT', 'RESTARTED dyn', 'INPUT', 'STOP', 'END']);
  expect(received.filter((e) => e.type === 'INPUT').map((e) => e.value)).toEqual(seqs);
  expect(processesMentioning(run.dir)).toEqual([]);
}, 60_000);

test('TypeScript and C nodes (the latter under ASan and UBSan) started by hand join the same running dataflow at once, leave and join again', async () => {
  const dynamic = (id: string) => `  - id: ${id}\n    path: dynamic\n    inputs:\n      tick: dora/timer/millis/${TICK_MS}\n      data: { source: sender/out, queue_size: 100 }\n    outputs: [out]\n`;
  const run = await startRun(
    `nodes:\n` +
      `  - id: sender\n    path: ${path.join(NODES, 'sender.ts')}\n    env: { COUNT: 1000000 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n` +
      dynamic('dyn_ts') +
      dynamic('dyn_c') +
      `  - id: recorder\n    path: ${path.join(NODES, 'recorder.ts')}\n    env: { RECORD: ./recorder.jsonl }\n    inputs:\n      ts: { source: dyn_ts/out, queue_size: 100 }\n      c: { source: dyn_c/out, queue_size: 100 }\n`,
  );
  const records = { ts: path.join(run.dir, 'ts.jsonl'), c: path.join(run.dir, 'c.jsonl') };
  await Promise.all([
    succeeds(typescript('dyn_ts', { RECORD: records.ts, JOINS: '2', STAY_MS: '1200' })),
    succeeds(c('dyn_c', { RECORD: records.c, JOINS: '2', STAY_MS: '1200' })),
  ]);
  run.child.kill('SIGINT');
  expect((await run.done).code).toBe(0);

  const received = readRecord(path.join(run.dir, 'recorder.jsonl'));
  for (const lang of ['ts', 'c'] as const) {
    const joins = joinsOf(readRecord(records[lang]));
    expect(joins.map((j) => j.join.restartCount)).toEqual([0, 1]);
    for (const { inputs, leave } of joins) {
      expectOneTimer(leave);
      expect(inputs.length).toBeGreaterThan(5);
    }
    const seqs = joins.flatMap((j) => j.inputs.map((e) => e.seq as number));
    expect(increasing(seqs)).toBe(true);
    // what it forwarded reached the recorder, with one NODE_RESTARTED for its one rejoin
    expect(received.filter((e) => e.type === 'INPUT' && e.id === lang).map((e) => e.parameters.seq)).toEqual(seqs);
    expect(received.filter((e) => e.type === 'NODE_RESTARTED' && e.id === `dyn_${lang}`)).toHaveLength(1);
  }
  expect(received.filter((e) => e.type === 'INPUT_CLOSED')).toEqual([]);
}, 60_000);

test('shared-memory payloads reach a dynamic node intact and go on from it; a STOP makes it leave, and the run ends', async () => {
  const run = await startRun(
    `nodes:\n` +
      `  - id: sender\n    path: ${path.join(NODES, 'sender.ts')}\n    env: { COUNT: 1000000, PAYLOAD_BYTES: 65536 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n` +
      `  - id: dyn\n    path: dynamic\n    inputs:\n      data: { source: sender/out, queue_size: 100 }\n    outputs: [out]\n` +
      `  - id: receiver\n    path: ${path.join(NODES, 'shm-receiver.ts')}\n    env: { RECORD: ./receiver.jsonl }\n    inputs:\n      data: { source: dyn/out, queue_size: 100 }\n`,
  );
  const record = path.join(run.dir, 'dyn.jsonl');
  const dyn = python('dyn', { RECORD: record, STAY_MS: '30000' });
  await waitFor(() => readRecord(record).filter((e) => e.type === 'INPUT').length >= 30, 20_000, '30 payloads at the dynamic node');
  run.child.kill('SIGINT'); // it is still joined: it gets STOP and leaves
  await succeeds(dyn);
  expect((await run.done).code).toBe(0);

  const inputs = readRecord(record).filter((e) => e.type === 'INPUT');
  expect(inputs.every((e) => e.length === 65536 && e.patternOk === true)).toBe(true);
  expect(readRecord(record).map((e) => e.type)).toEqual(expect.arrayContaining(['STOP', 'LEAVE']));
  // What it forwarded went through its own shared memory (the receiver, stopped at the same time, may miss the last few).
  const forwarded = readRecord(path.join(run.dir, 'receiver.jsonl')).filter((e) => e.type === 'INPUT');
  expect(forwarded.length).toBeGreaterThan(inputs.length - 5);
  expect(forwarded.map((e) => [e.length, e.first])).toEqual(inputs.slice(0, forwarded.length).map((e) => [65536, e.seq % 256]));
  expect(segmentsOf(run.id)).toEqual([]);
}, 60_000);

test('a dynamic node that joins while the dataflow is still starting waits for the start, then receives and sends', async () => {
  // A receiver that takes 2 s to call Node(): the start barrier waits for it, not for the dynamic node.
  const run = await startSlowRun(2);
  const record = path.join(run.dir, 'dyn.jsonl');
  const early = Date.now();
  await succeeds(python('dyn', { RECORD: record, STAY_MS: '1000' }));
  run.child.kill('SIGINT');
  expect((await run.done).code).toBe(0);
  const [{ join, inputs, leave }] = joinsOf(readRecord(record));
  const received = readRecord(path.join(run.dir, 'recorder.jsonl'));
  // Node("dyn") returned once the dataflow had started, about when the slow receiver's Node() did (2 s in), not before
  expect(join.at - early).toBeGreaterThanOrEqual(1500);
  expect(join.at).toBeGreaterThanOrEqual(received.find((e) => e.type === 'RUN')!.at - 500);
  expectOneTimer(leave);
  expect(inputs.length).toBeGreaterThan(5);
  expect(received.filter((e) => e.type === 'INPUT').map((e) => e.value)).toEqual(inputs.map((e) => e.seq));
  expect(received.filter((e) => e.type === 'NODE_RESTARTED')).toEqual([]); // its first join: nothing to announce
}, 60_000);

test('a dynamic node closed while its join waits for the start gives up at once and leaves: a later process joins in its place', async () => {
  // The receiver takes 8 s to call Node(): until then the dataflow has not started and a join waits for it.
  const run = await startSlowRun(8);
  // TypeScript: next(500) ends without an event, close() ends the pending join (it waited for the start for ever)
  const first = path.join(run.dir, 'first.jsonl');
  const t0 = Date.now();
  await succeeds(typescript('dyn', { RECORD: first, STAY_MS: '500' }));
  expect(Date.now() - t0).toBeLessThan(5_000);
  expect(readRecord(first).map((e) => e.type)).toEqual(['JOIN', 'LEAVE']); // (JOIN: written after the first next(), here null)
  // Python: Ctrl-C while Node("dyn") waits for the start raises KeyboardInterrupt at once (it was held until the start)
  const interrupted = python('dyn', { RECORD: path.join(run.dir, 'interrupted.jsonl') });
  let said = '';
  interrupted.child.stdout!.on('data', (d: Buffer) => (said += d.toString()));
  await waitFor(() => said.includes('joining'), 10_000, 'the Python node to call Node()');
  await new Promise((resolve) => setTimeout(resolve, 700));
  const t1 = Date.now();
  interrupted.child.kill('SIGINT');
  const ended = await interrupted.done;
  expect(Date.now() - t1).toBeLessThan(2_000);
  expect(ended.code === 0).toBe(false);
  expect(ended.stderr).toContain('KeyboardInterrupt');
  // each left: the daemon lets another process join as dyn, which then waits for the start and receives
  const second = path.join(run.dir, 'second.jsonl');
  await succeeds(python('dyn', { RECORD: second, STAY_MS: '1000' }));
  run.child.kill('SIGINT');
  expect((await run.done).code).toBe(0);
  const [{ join, inputs }] = joinsOf(readRecord(second));
  expect(join.restartCount).toBe(2); // the two joins given up count (both had registered)
  expect(inputs.length).toBeGreaterThan(5);
  const received = readRecord(path.join(run.dir, 'recorder.jsonl'));
  expect(received.filter((e) => e.type === 'INPUT').map((e) => e.value)).toEqual(inputs.map((e) => e.seq));
}, 60_000);

test('a dynamic node whose process is killed has left: the daemon notices, and a new process joins and receives intact shared memory', async () => {
  const run = await startRun(
    `nodes:\n` +
      `  - id: sender\n    path: ${path.join(NODES, 'sender.ts')}\n    env: { COUNT: 1000000, PAYLOAD_BYTES: 65536 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n` +
      `  - id: dyn\n    path: dynamic\n    inputs:\n      data: { source: sender/out, queue_size: 100 }\n`,
  );
  let output = '';
  run.child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  const record = path.join(run.dir, 'dyn.jsonl');
  const crashing = python('dyn', { RECORD: record, STAY_MS: '30000' });
  await waitFor(() => readRecord(record).filter((e) => e.type === 'INPUT').length >= 5, 15_000, 'payloads at the dynamic node');
  crashing.child.kill('SIGKILL'); // holding samples, without closing
  await crashing.done;
  await waitFor(() => output.includes('dynamic node dyn left: its process ended without closing the node'), 5_000, 'the daemon to notice');
  await succeeds(python('dyn', { RECORD: record, STAY_MS: '1000' }));
  run.child.kill('SIGINT');
  expect((await run.done).code).toBe(0);
  const joins = joinsOf(readRecord(record));
  expect(joins.map((j) => j.join.restartCount)).toEqual([0, 1]);
  expect(joins[1].inputs.length).toBeGreaterThan(10);
  expect(joins[1].inputs.every((e) => e.length === 65536 && e.patternOk === true)).toBe(true);
  expect(segmentsOf(run.id)).toEqual([]);
}, 60_000);

test('without a running dataflow declaring it, a dynamic node fails with a clear error in Python, TypeScript and C; several candidates are named and DORA_DATAFLOW chooses', async () => {
  // Nothing runs yet.
  const none = await python('dyn', { RECORD: '/dev/null' }).done;
  expect(none.code).not.toBe(0);
  expect(none.stderr).toMatch(/dora\.ConfigError: no dataflow is running \(none in .*\): start the dataflow that declares node "dyn" with `path: dynamic` first/);

  // A dataflow of dynamic nodes only: it runs until stopped, whoever joins and leaves.
  const yaml = `nodes:\n  - id: dyn\n    path: dynamic\n    inputs: { tick: dora/timer/millis/${TICK_MS} }\n  - id: other\n    path: dynamic\n`;
  const first = await startRun(yaml);
  const ghost = new RegExp(`no running dataflow declares a dynamic node "ghost" \\(\`path: dynamic\`\\); running: ${first.id} with dynamic nodes dyn, other`);
  const [py, ts, cc] = await Promise.all([python('ghost', { RECORD: '/dev/null' }).done, typescript('ghost', { RECORD: '/dev/null' }).done, c('ghost', { RECORD: '/dev/null' }).done]);
  expect(py.stderr).toMatch(ghost);
  expect(ts.stderr).toMatch(ghost);
  expect(cc.stderr).toMatch(ghost);
  expect(cc.stderr).toMatch(/\(code CONFIG\)/);
  expect([py.code, ts.code, cc.code]).toEqual([1, 1, 2]);

  // One process at a time per dynamic node.
  const record = path.join(first.dir, 'dyn.jsonl');
  const joined = python('dyn', { RECORD: record, STAY_MS: '4000' });
  await waitFor(() => readRecord(record).some((e) => e.type === 'JOIN'), 15_000, 'the dynamic node to join');
  const second = await python('dyn', { RECORD: '/dev/null' }).done;
  expect(second.stderr).toMatch(new RegExp(`dynamic node "dyn" cannot join dataflow ${first.id}: dynamic node "dyn" has joined already \\(pid ${readRecord(record)[0].pid}\\)`));
  await succeeds(joined);

  // Two dataflows declare it: both named; DORA_DATAFLOW picks one.
  const other = await startRun(yaml);
  const several = await python('dyn', { RECORD: '/dev/null' }).done;
  expect(several.stderr).toMatch(/2 running dataflows declare a dynamic node "dyn": .*; set DORA_DATAFLOW to the id or name of the one to join/);
  expect(several.stderr).toContain(first.id);
  expect(several.stderr).toContain(other.id);
  await succeeds(python('dyn', { RECORD: record, STAY_MS: '300', DORA_DATAFLOW: other.id }));
  expect(readRecord(record).filter((e) => e.type === 'JOIN').map((e) => e.dataflow)).toEqual([first.id, other.id]);

  for (const r of [first, other]) r.child.kill('SIGINT');
  expect((await first.done).code).toBe(0);
  expect((await other.done).code).toBe(0);
}, 90_000);

test('a dynamic node outlives a killed daemon: its stream ends with an ERROR, the watchdog leaves its process alone and removes the segments', async () => {
  const run = await startRun(
    `nodes:\n` +
      `  - id: sender\n    path: ${path.join(NODES, 'sender.ts')}\n    env: { COUNT: 1000000, PAYLOAD_BYTES: 65536 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n` +
      `  - id: dyn\n    path: dynamic\n    inputs: { data: sender/out }\n`,
  );
  const record = path.join(run.dir, 'dyn.jsonl');
  const dyn = python('dyn', { RECORD: record, STAY_MS: '30000', AFTER_END_MS: '2500' });
  await waitFor(() => readRecord(record).filter((e) => e.type === 'INPUT').length >= 5, 15_000, 'payloads at the dynamic node');
  run.child.kill('SIGKILL');
  await succeeds(dyn);
  const events = readRecord(record);
  const [end, ...after] = events.slice(-3);
  expect(after.map((e) => e.type)).toEqual(['LEAVE', 'ALIVE']); // still running 2.5 s after: not ended by its watchdog (1 s)
  // Its own watchdog tells it its daemon is gone (ERROR), unless the sender, which ends
  // with the daemon too, gets its end of stream out first (seen 1 run in 4): then its only
  // input has closed, the usual STOP.
  if (end.type === 'STOP') expect(end.id).toBe('ALL_INPUTS_CLOSED');
  else expect(end).toMatchObject({ type: 'ERROR', id: expect.stringMatching(new RegExp(`dataflow ${run.id} has ended, or its dora daemon \\(pid \\d+\\) is gone; dynamic node "dyn" is no longer part of it`)) });
  await waitFor(() => processesMentioning(run.dir).length === 0, 10_000, 'the sender to exit after its daemon');
  expect(segmentsOf(run.id)).toEqual([]);
  reclaimStaleRuns(RUNTIME); // the killed daemon's socket folder
}, 60_000);

test('with the coordinator: DORA_DATAFLOW picks a dataflow by name, `dora node list` shows the node, and one that ignores STOP is let go, its sends failing once the dataflow ends', async () => {
  const port = String(40000 + (process.pid % 20000)); // cli.test.ts takes 20000-39999
  const stateDir = fs.mkdtempSync('/tmp/dora-dyn-state-');
  const cenv = { ...env, DORA_COORDINATOR_PORT: port, DORA_STATE_DIR: stateDir };
  try {
    expect((await dora(['up'], { env: cenv })).code).toBe(0);
    const df = tempDataflow(`nodes:\n  - id: dyn\n    path: dynamic\n    inputs: { tick: dora/timer/millis/${TICK_MS} }\n    outputs: [out]\n  - id: sink\n    path: ${path.join(NODES, 'looper.ts')}\n    inputs: { data: dyn/out }\n`);
    expect((await dora(['start', df.file, '--name', 'lab'], { env: cenv })).code).toBe(0);
    expect((await dora(['start', df.file, '--name', 'other'], { env: cenv })).code).toBe(0);
    const row = async () => (await dora(['node', 'list', 'lab'], { env: cenv })).stdout.split('\n').find((l) => l.startsWith('dyn'));
    expect(await row()).toMatch(/^dyn\s+waiting\s+-\s+0/);

    const record = path.join(df.dir, 'dyn.jsonl');
    const dyn = python('dyn', { RECORD: record, STAY_MS: '30000', IGNORE_STOP: '1', DORA_DATAFLOW: 'lab' });
    await waitFor(() => readRecord(record).some((e) => e.type === 'JOIN'), 15_000, 'the dynamic node to join');
    const { pid } = readRecord(record)[0];
    expect(await row()).toMatch(new RegExp(`^dyn\\s+running\\s+${pid}\\s+0`));
    const restart = await dora(['node', 'restart', 'lab', 'dyn'], { env: cenv });
    expect(restart.code).toBe(1);
    expect(restart.stderr).toMatch(/node "dyn" is a dynamic node: the daemon did not start its process and cannot restart it/);

    const stop = await dora(['stop', 'lab', '--grace', '0.5s'], { env: cenv });
    expect(stop.code).toBe(0);
    await succeeds(dyn);
    const [, stopEvent, failed] = readRecord(record);
    expect(stopEvent).toMatchObject({ type: 'STOP', id: 'MANUAL' });
    // The coordinator (the daemon's process) lives on: the dataflow's socket folder going told the node.
    expect(failed).toMatchObject({ type: 'SEND_FAILED', code: 'DAEMON_GONE' });
    expect(failed.error).toMatch(/the dora daemon of node "dyn" is gone/);
    const logs = await dora(['logs', 'lab', 'dyn'], { env: cenv });
    expect(logs.stdout).toMatch(/dynamic node dyn did not leave after STOP; the daemon does not kill processes it did not start/);
    expect((await dora(['stop', 'other'], { env: cenv })).code).toBe(0);
  } finally {
    await dora(['down'], { env: cenv });
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}, 90_000);

test('dynamic nodes are checked: fields about starting their process are refused with file, line and column', () => {
  const yaml = `nodes:\n  - id: dyn\n    path: dynamic\n    args: --fast\n    restart_policy: always\n  - id: ok\n    path: dynamic\n    build: echo built\n`;
  expect(() => parseDescriptor(yaml, '/x/dataflow.yml', '/x')).toThrow(
    /dataflow\.yml:4:5: .*`args` does not apply to a dynamic node \(`path: dynamic`\): pass arguments on the command line that starts it[\s\S]*dataflow\.yml:5:5: .*`restart_policy` does not apply to a dynamic node/,
  );
  const ok = parseDescriptor(`nodes:\n  - id: dyn\n    path: dynamic\n    outputs: [out]\n`, '/x/dataflow.yml', '/x');
  expect(ok.nodes[0]).toMatchObject({ id: 'dyn', dynamic: true, resolvedPath: 'dynamic' });
});
