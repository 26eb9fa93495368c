/**
 * Seeing inside a running dataflow, end to end: `dora topic list|echo|hz|info|pub` and
 * `dora top` against real dataflows of TypeScript, C and Python nodes, under `dora run`
 * (the run's own control endpoint) and `dora start` (the coordinator's `metrics`). A tap of
 * a 4 MiB shared-memory output read while its sender keeps sending at 30 Hz must not make
 * the sender's pool grow, and nothing may be left once the dataflow ends.
 *
 * Every dataflow here uses a runtime directory of this file's own, so the dataflows other
 * test files run at the same time are never found.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { controlRequest } from '../coordinator/control';
import type { MetricsReply, TopicInfo } from '../coordinator/metrics';
import { reclaimStaleRuns } from '../coordinator/rundir';
import { parseValue } from '../cli/observe/commands';
import { formatMessage, valueOrSummary } from '../cli/observe/format';
import * as arrow from 'apache-arrow';
import { dora, leftovers, NODES, readRecord, ROOT, segmentsOf, sleep, startDora, tempDataflow, waitFor, type Result } from './support/dataflow';

const RUNTIME = fs.mkdtempSync('/tmp/dora-obs-'); // 0700, short: socket paths must fit 107 bytes
const PYTHON = path.join(ROOT, '.venv/bin/python');
const env = { DORA_RUNTIME_DIR: RUNTIME, DORA_PYTHON: PYTHON };
const TICK_MS = 20; // the ticker's timer: 50 Hz
const BIG = 4 << 20;

afterAll(() => {
  reclaimStaleRuns(RUNTIME);
  fs.rmSync(RUNTIME, { recursive: true, force: true });
});

/** timer → TypeScript ticker → C echo → Python recorder; a 4 MiB sender at 30 Hz → sink; a dynamic node → recorder. */
function pipeline(): ReturnType<typeof tempDataflow> {
  const echo = path.join(ROOT, 'tests/fixtures/c/echo.c');
  return tempDataflow(
    `nodes:\n` +
      `  - id: ticker\n    path: ${path.join(NODES, 'sender.ts')}\n    inputs: { tick: dora/timer/millis/${TICK_MS} }\n    outputs: [out]\n    env: { COUNT: "1000000" }\n` +
      `  - id: echo\n    path: ./echo\n    build: cc -std=c11 -Wall -Werror ${echo} -o echo $(pkg-config --cflags --libs dora-node-api)\n    inputs: { data: ticker/out }\n    outputs: [out]\n` +
      `  - id: py\n    path: ${path.join(NODES, 'recorder.py')}\n    inputs: { data: echo/out }\n    env: { RECORD: ./py.jsonl }\n` +
      `  - id: big\n    path: ${path.join(NODES, 'shm-sender.ts')}\n    outputs: [out]\n    env: { COUNT: "1000000", DELAY_MS: "33", BYTES: "${BIG}" }\n` +
      `  - id: sink\n    path: ${path.join(NODES, 'sink.ts')}\n    inputs: { x: big/out }\n` +
      `  - id: pubber\n    path: dynamic\n    outputs: [value]\n` +
      `  - id: rec\n    path: ${path.join(NODES, 'recorder.ts')}\n    inputs: { v: pubber/value }\n    env: { RECORD: ./rec.jsonl }\n`,
  );
}

function running(): string[] {
  return fs.readdirSync(RUNTIME).filter((d) => fs.existsSync(path.join(RUNTIME, d, 'daemon.json')));
}

const cli = (args: string[]) => dora(args, { env });

async function metrics(id: string): Promise<MetricsReply> {
  const r = await cli(['top', id, '--once', '--json']);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as MetricsReply;
}

/** Waits until every node's core has reported traffic on every edge. */
async function trafficEverywhere(id: string): Promise<MetricsReply> {
  let m: MetricsReply | undefined;
  const deadline = Date.now() + 30_000;
  for (;;) {
    m = await metrics(id);
    const flowing = m.edges.filter((e) => !e.source.startsWith('pubber/')).every((e) => e.messages > 0 && e.messagesPerSec > 0);
    if (flowing) return m;
    if (Date.now() > deadline) throw new Error(`no traffic on every edge after 30 s: ${JSON.stringify(m.edges)}`);
    await sleep(500);
  }
}

describe('dora run', () => {
  let df: ReturnType<typeof tempDataflow>;
  let id: string;
  let child: ChildProcess;
  let done: Promise<Result>;

  beforeAll(async () => {
    df = pipeline();
    const built = await dora(['build', df.file], { env });
    if (built.code !== 0) throw new Error(`dora build failed:\n${built.stderr}`);
    ({ child, done } = startDora(['run', df.file], { cwd: df.dir, env }));
    await waitFor(() => running().length === 1, 20_000, 'the dataflow to start');
    id = running()[0];
  }, 120_000);

  afterAll(async () => {
    child.kill('SIGINT');
    const r = await done;
    expect(r.stdout + r.stderr).toMatch(/dataflow [0-9a-f-]+ stopped/);
    expect(segmentsOf(id)).toEqual([]);
    expect(leftovers()).toEqual([]);
  }, 30_000);

  test('top --once --json: every node with its pid, CPU and memory; every edge with its rate, latency and queue, from the TypeScript, C and Python cores', async () => {
    const m = await trafficEverywhere(id);
    expect(m.ok).toBe(true);
    expect(Math.abs(m.at - Date.now())).toBeLessThan(10_000);
    const node = (n: string) => m.nodes.find((x) => x.id === n)!;
    for (const n of ['ticker', 'echo', 'py', 'big', 'sink', 'rec']) {
      expect(node(n)).toMatchObject({ status: 'running', restarts: 0 });
      expect(node(n).pid).toBeGreaterThan(0);
      expect(node(n).rssBytes).toBeGreaterThan(1 << 20);
      expect(node(n).cpuPercent).not.toBeNull();
    }
    expect(node('pubber')).toMatchObject({ status: 'waiting', pid: null, cpuPercent: null });
    // the interpreters and the busy 4 MiB sender certainly used some CPU
    for (const n of ['ticker', 'py', 'big']) expect(node(n).cpuPercent).toBeGreaterThan(0);
    // counters the cores keep: the TypeScript ticker sent, the C echo received and sent, the Python recorder received
    expect(node('ticker').messagesSent).toBeGreaterThan(0);
    expect(node('echo').messagesReceived).toBeGreaterThan(0);
    expect(node('echo').messagesSent).toBeGreaterThan(0);
    expect(node('py').messagesReceived).toBeGreaterThan(0);
    const edge = (source: string, target: string) => m.edges.find((e) => e.source === source && e.target === target)!;
    const tick = edge(`dora/timer/millis/${TICK_MS}`, 'ticker/tick');
    const toC = edge('ticker/out', 'echo/data');
    const toPython = edge('echo/out', 'py/data');
    const shm = edge('big/out', 'sink/x');
    for (const e of [toC, toPython]) {
      expect(e.messagesPerSec).toBeGreaterThan(1000 / TICK_MS / 2);
      expect(e.messagesPerSec).toBeLessThan((1000 / TICK_MS) * 2);
      expect(e.bytesPerSec).toBeGreaterThan(0);
      expect(e.dropped).toBe(0);
    }
    expect(tick.messagesPerSec).toBeGreaterThan(1000 / TICK_MS / 2);
    expect(shm.bytesPerSec).toBeGreaterThan(10 * BIG); // ~30 messages of 4 MiB a second
    for (const e of [toC, toPython, shm]) {
      expect(e.latencyP50Us).toBeGreaterThan(0);
      expect(e.latencyP99Us).toBeGreaterThanOrEqual(e.latencyP50Us!);
      expect(e.latencyP50Us).toBeLessThan(1_000_000);
    }
    expect(edge('pubber/value', 'rec/v')).toMatchObject({ messagesPerSec: 0, messages: 0 });
    // the live table (one refresh, not a terminal)
    const table = await cli(['top', id, '--once']);
    expect(table.stdout).toMatch(/^NODE\s+PID\s+STATUS\s+CPU%\s+RSS/m);
    expect(table.stdout).toMatch(/^ticker\/out -> echo\/data\s+\d/m);
  }, 60_000);

  test('topic list: every output with its readers; topic info: type, publisher, subscribers and sizes from a sample', async () => {
    const list = JSON.parse((await cli(['topic', 'list', id, '--json'])).stdout) as TopicInfo[];
    expect(list.map((t) => t.name)).toEqual(['ticker/out', 'echo/out', 'big/out', 'pubber/value']);
    expect(list.find((t) => t.name === 'ticker/out')).toMatchObject({ node: 'ticker', subscribers: ['echo/data'], dynamic: false });
    expect(list.find((t) => t.name === 'pubber/value')).toMatchObject({ subscribers: ['rec/v'], dynamic: true });
    const text = await cli(['topic', 'list', id]);
    expect(text.stdout).toMatch(/^big\/out\s+-\s+sink\/x\s+[\d.]+\s+[\d.]+ MB\/s$/m);

    const info = await cli(['topic', 'info', id, 'big/out', '--json']);
    expect(info.code).toBe(0);
    const i = JSON.parse(info.stdout);
    expect(i).toMatchObject({ name: 'big/out', node: 'big', subscribers: ['sink/x'], sampled: { minBytes: BIG, maxBytes: BIG, arrowTypes: ['Uint8'] } });
    expect(i.sampled.messages).toBeGreaterThan(5);
    expect(i.meanBytes).toBe(BIG);
    const human = await cli(['topic', 'info', id, 'ticker/out']);
    expect(human.stdout).toMatch(/^arrow type:\s+Int64$/m);
    expect(human.stdout).toMatch(/^subscribers:\s+echo\/data$/m);
    const missing = await cli(['topic', 'info', id, 'ticker/nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/has no output "ticker\/nope" \(outputs: ticker\/out, echo\/out, big\/out, pubber\/value\)/);
  }, 60_000);

  test("topic echo of a 4 MiB shared-memory output at 30 Hz: summaries, never megabytes of text, and the sender's pool does not grow", async () => {
    await trafficEverywhere(id);
    const before = segmentsOf(id).length;
    let most = before;
    const watch = setInterval(() => (most = Math.max(most, segmentsOf(id).length)), 20);
    const r = await cli(['topic', 'echo', id, 'big/out', '--count', '60', '--json']);
    clearInterval(watch);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(60);
    for (const line of lines) expect(line.length).toBeLessThan(400);
    const messages = lines.map((l) => JSON.parse(l));
    expect(messages[0]).toMatchObject({ topic: 'big/out', type: 'Uint8', length: BIG, summary: { type: 'Uint8', length: BIG } });
    // consecutive messages, numbered by the sender in their first bytes and parameters
    const seqs = messages.map((m) => m.parameters.seq as number);
    expect(seqs[59] - seqs[0]).toBeLessThan(80); // a few may be dropped on the tap's side, never the sender's
    expect(messages.every((m) => m.summary.first[0] === m.parameters.seq % 256)).toBe(true);
    // the tap took and returned samples like a receiver: the pool (one segment per 4 MiB sample) stayed as it was, give or take the tap's queue
    expect(most).toBeLessThanOrEqual(before + 2);
    // once it has left, the sender holds nothing for it
    await sleep(2500);
    const m = await metrics(id);
    expect(m.nodes.find((n) => n.id === 'big')!.samplesHeld).toBeLessThanOrEqual(2);
    // readable values of a small output
    const small = await cli(['topic', 'echo', id, 'ticker/out', '--count', '3']);
    expect(small.stdout.trim().split('\n')).toHaveLength(3);
    expect(small.stdout).toMatch(/^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] \d+ {2}\{"seq":\d+,"tag":"test"\}$/m);
  }, 60_000);

  test("topic hz: the ticker's rate within 15% of its timer's", async () => {
    const r = await cli(['topic', 'hz', id, 'ticker/out', '--window', '2', '--duration', '3.5', '--json']);
    expect(r.code).toBe(0);
    const reports = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(reports.length).toBeGreaterThanOrEqual(3);
    const last = reports[reports.length - 1];
    const expected = 1000 / TICK_MS;
    expect(last.rate).toBeGreaterThan(expected * 0.85);
    expect(last.rate).toBeLessThan(expected * 1.15);
    expect(last.min).toBeLessThanOrEqual(TICK_MS / 1000 + 0.001);
    expect(last.max).toBeGreaterThanOrEqual(TICK_MS / 1000 - 0.001);
    expect(last.std).toBeGreaterThanOrEqual(0);
    expect(last.window).toBeGreaterThan(expected); // two seconds of messages
  }, 30_000);

  test('topic pub: values reach the node reading the dynamic node\'s output; inputs fed by other nodes are refused', async () => {
    const record = path.join(df.dir, 'rec.jsonl');
    const r = await cli(['topic', 'pub', id, 'rec/v', '7', '--count', '3', '--rate', '20']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/sent 3 message\(s\) on pubber\/value as dynamic node "pubber"/);
    expect((await cli(['topic', 'pub', id, 'rec/v', '{"x": 1.5, "label": "a"}'])).code).toBe(0);
    expect((await cli(['topic', 'pub', id, 'rec/v', 'hello'])).code).toBe(0);
    await waitFor(() => readRecord(record).filter((e) => e.type === 'INPUT').length === 5, 10_000, 'the recorder to get 5 values');
    const inputs = readRecord(record).filter((e) => e.type === 'INPUT');
    expect(inputs.map((e) => e.values)).toEqual([[7], [7], [7], [{ x: 1.5, label: 'a' }], ['hello']]);
    // --rate paces them: 3 at 20 Hz take about 100 ms
    expect(Number(BigInt(inputs[2].timestamp) - BigInt(inputs[0].timestamp)) / 1e6).toBeGreaterThan(80);

    const refused = await cli(['topic', 'pub', id, 'echo/data', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/input "echo\/data" is fed by ticker\/out, an output of node "ticker", which is not a dynamic node: dora topic pub sends only onto inputs fed by a `path: dynamic` node/);
    expect(refused.stderr).toMatch(/inputs open to it here: rec\/v/);
    const unknown = await cli(['topic', 'pub', id, 'rec/nope', '1']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/has no input "rec\/nope" fed by a node's output/);
  }, 60_000);

  test('a dataflow that is not running is named in the error', async () => {
    const r = await cli(['top', 'nope', '--once']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`no running dataflow has the id or name "nope" \\(running: ${id}\\)`));
  });
});

test('dora start: the coordinator answers metrics, and the tools find the dataflow by its name', async () => {
  const port = String(20000 + ((process.pid * 7) % 20000));
  const stateDir = fs.mkdtempSync('/tmp/dora-obs-state-');
  const cenv = { ...env, DORA_COORDINATOR_PORT: port, DORA_STATE_DIR: stateDir };
  const df = tempDataflow(
    `nodes:\n  - id: ticker\n    path: ${path.join(NODES, 'sender.ts')}\n    inputs: { tick: dora/timer/millis/${TICK_MS} }\n    outputs: [out]\n    env: { COUNT: "1000000" }\n` +
      `  - id: sink\n    path: ${path.join(NODES, 'sink.ts')}\n    inputs: { x: ticker/out }\n`,
  );
  try {
    expect((await dora(['up'], { env: cenv })).code).toBe(0);
    expect((await dora(['start', df.file, '--name', 'watched'], { env: cenv })).code).toBe(0);
    let m: Awaited<ReturnType<typeof controlRequest>> | undefined;
    const deadline = Date.now() + 20_000;
    for (;;) {
      m = await controlRequest({ cmd: 'metrics', dataflow: 'watched' }, { port: Number(port), token: fs.readFileSync(path.join(stateDir, `coordinator-${port}.token`), 'utf8').trim() });
      if (m.edges?.find((e) => e.target === 'sink/x')?.messagesPerSec) break;
      if (Date.now() > deadline) throw new Error(`no rate on ticker/out -> sink/x: ${JSON.stringify(m)}`);
      await sleep(500);
    }
    expect(Object.keys(m).sort()).toEqual(['at', 'edges', 'nodes', 'ok']);
    expect(m.nodes!.map((n) => Object.keys(n).sort())[0]).toEqual(expect.arrayContaining(['cpuPercent', 'id', 'pid', 'restarts', 'rssBytes', 'samplesHeld', 'status']));
    expect(Object.keys(m.edges![0])).toEqual(expect.arrayContaining(['source', 'target', 'messagesPerSec', 'bytesPerSec', 'latencyP50Us', 'latencyP99Us', 'dropped', 'queueDepth']));
    // the run's own endpoint answers the same, found by the dataflow's name
    const top = await dora(['top', 'watched', '--once', '--json'], { env: cenv });
    expect(JSON.parse(top.stdout)).toMatchObject({ ok: true, nodes: [{ id: 'ticker', status: 'running' }, { id: 'sink', status: 'running' }] });
    const echo = await dora(['topic', 'echo', 'watched', 'ticker/out', '--count', '2', '--json'], { env: cenv });
    expect(echo.stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['Int64', 'Int64']);
    expect((await dora(['topic', 'list', 'watched'], { env: cenv })).stdout).toMatch(/^ticker\/out\s+-\s+sink\/x/m);
    expect((await dora(['stop', 'watched'], { env: cenv })).code).toBe(0);
  } finally {
    await dora(['down'], { env: cenv });
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  expect(leftovers()).toEqual([]);
}, 90_000);

test('values are shown readably: scalars, strings, structs and lists as they are, large arrays summarised', () => {
  expect(formatMessage(arrow.vectorFromArray([42]), {})).toBe('42');
  expect(formatMessage(arrow.vectorFromArray(['hi']), {})).toBe('"hi"');
  expect(formatMessage(arrow.vectorFromArray([1.5, 2.5]), {})).toBe('[1.5,2.5]');
  expect(formatMessage(arrow.vectorFromArray([{ x: 1, y: 'a' }]), {})).toBe('{"x":1,"y":"a"}');
  const image = arrow.makeVector(new Uint8Array(640 * 480 * 3).fill(9));
  const text = formatMessage(image, { shape: [480, 640, 3] });
  expect(text).toBe('<Uint8 × 921600, shape [480,640,3]: [9, 9, 9, 9, 9, 9, 9, 9, …]>');
  expect(valueOrSummary(image, {})).toEqual({ summary: { type: 'Uint8', length: 921600, first: [9, 9, 9, 9, 9, 9, 9, 9] } });
  expect(parseValue('42')).toEqual([42]);
  expect(parseValue('[1, 2]')).toEqual([1, 2]);
  expect(parseValue('"a b"')).toBe('a b');
  expect(parseValue('bare words')).toBe('bare words');
  expect(parseValue('{"a": 1}')).toEqual([{ a: 1 }]);
  expect(() => parseValue('null')).toThrow(/cannot send null/);
});
