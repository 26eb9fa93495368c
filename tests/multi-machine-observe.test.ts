/**
 * Observing a dataflow spread over two machines (tests/support/machines.ts: the daemon of
 * machine "gpu" isolated in its own namespaces as root): `dora top` and the web view's API
 * merge the numbers of both machines, each node tagged with its machine, a machine that does
 * not answer makes its nodes stale rather than failing the command; `dora topic echo|hz` and
 * `dora record` of an output sent on the other machine read it there.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { CLI, NODES, sleep, tempDataflow, waitFor } from './support/dataflow';
import { TestCluster } from './support/machines';
import type { MetricsReply, TopicInfo } from '../coordinator/metrics';
import { controlRequest } from '../coordinator/control';
import { readManifest, readNodeMessages } from '../cli/record/format';
import { renderTop } from '../cli/observe/commands';

jest.setTimeout(90_000);

let c: TestCluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

const node = (id: string, script: string, extra: string) => `  - id: ${id}\n    path: ${path.join(NODES, script)}\n${extra}`;
const idOf = (stdout: string) => /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(stdout)![0];

/** PIDs of live processes whose command line has every one of `words` (not their environment). */
function commandsWith(...words: string[]): number[] {
  return fs.readdirSync('/proc').flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      return words.every((w) => argv.includes(w)) ? [Number(entry)] : [];
    } catch {
      return [];
    }
  });
}

async function until(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function get(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { 'X-Dora-Token': token } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('dora top, topic list/echo/hz and the UI of a dataflow over two machines: merged numbers tagged with machines, taps and recordings read on the sender’s machine, a silent machine is stale', async () => {
  c = new TestCluster();
  await c.startCoordinator();
  const gpu = await c.startDaemon('gpu');
  // the source on machine gpu, its receivers here: counters on both sides of the link
  const df = tempDataflow(
    `nodes:\n` +
      node('source', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 100000, HZ: 20, FRAME_BYTES: 64 }\n    outputs: [frame]\n`) +
      node('relay', 'frame-relay.ts', `    inputs: { frame: source/frame }\n    outputs: [frame]\n`) +
      node('sink', 'sink.ts', `    inputs: { frame: relay/frame }\n`),
  );
  const started = await c.dora(['start', df.file, '--name', 'spread']);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);

  // dora top: every node with its machine, counters from both machines, CPU and memory from each one's /proc
  let m: MetricsReply | undefined;
  const t0 = performance.now();
  for (let i = 0; i < 60; i++) {
    const top = await c.dora(['top', id, '--once', '--json']);
    expect(top.code).toBe(0);
    m = JSON.parse(top.stdout) as MetricsReply;
    const by = new Map(m.nodes.map((n) => [n.id, n]));
    if (by.get('source')!.messagesSent > 0 && by.get('relay')!.messagesReceived > 0 && by.get('source')!.rssBytes !== null) break;
    await sleep(250);
  }
  const nodes = new Map(m!.nodes.map((n) => [n.id, n]));
  expect([...nodes.values()].map((n) => [n.id, n.machine, n.status, n.stale])).toEqual([
    ['source', 'gpu', 'running', undefined],
    ['relay', 'local', 'running', undefined],
    ['sink', 'local', 'running', undefined],
  ]);
  expect(nodes.get('source')!.messagesSent).toBeGreaterThan(0);
  expect(nodes.get('relay')!.messagesReceived).toBeGreaterThan(0);
  expect(nodes.get('source')!.rssBytes).toBeGreaterThan(1 << 20); // a node process's resident memory, read on its machine
  expect(m!.edges.find((e) => e.target === 'relay/frame')).toMatchObject({ source: 'source/frame', machine: 'local' });
  expect(m!.edges.find((e) => e.target === 'relay/frame')!.messages).toBeGreaterThan(0);
  process.stderr.write(`dora top: counters of both machines after ${Math.round(performance.now() - t0)} ms\n`);
  const text = await c.dora(['top', 'spread', '--once']);
  expect(text.stdout).toMatch(/^NODE\s+MACHINE\s+PID/m);
  expect(text.stdout).toMatch(/^source\s+gpu\s+\d+\s+running/m);

  // topic list: the output sent on gpu, with its traffic measured there
  const topics = JSON.parse((await c.dora(['topic', 'list', id, '--json'])).stdout) as TopicInfo[];
  expect(topics.find((t) => t.name === 'source/frame')).toMatchObject({ machine: 'gpu', subscribers: ['relay/frame'] });
  expect(topics.find((t) => t.name === 'source/frame')!.messages).toBeGreaterThan(0);

  // topic info of it: the merged counters, and messages sampled on gpu
  const info = JSON.parse((await c.dora(['topic', 'info', id, 'source/frame', '--duration', '0.5', '--json'])).stdout) as TopicInfo & { sampled: { messages: number; minBytes: number; arrowTypes: string[] } };
  expect([info.machine, info.sampled.minBytes, info.sampled.arrowTypes]).toEqual(['gpu', 64, ['Uint8']]);
  expect(info.sampled.messages).toBeGreaterThan(3);

  // topic echo of the output sent on gpu: the tap reads there, the lines come here
  let t = performance.now();
  const echo = await c.dora(['topic', 'echo', id, 'source/frame', '--count', '3', '--json']);
  const echoMs = Math.round(performance.now() - t);
  expect([echo.code, echo.stderr]).toEqual([0, '']);
  const messages = echo.stdout.trim().split('\n').map((l) => JSON.parse(l) as { topic: string; length: number; type: string });
  expect(messages.map((e) => [e.topic, e.length])).toEqual([
    ['source/frame', 64],
    ['source/frame', 64],
    ['source/frame', 64],
  ]);
  // topic hz there: about the source's 20 Hz
  t = performance.now();
  const hz = await c.dora(['topic', 'hz', id, 'source/frame', '--duration', '2.5', '--json']);
  const hzMs = Math.round(performance.now() - t);
  expect(hz.code).toBe(0);
  const reports = hz.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rate?: number });
  const rate = reports.at(-1)!.rate!;
  expect(rate).toBeGreaterThan(15);
  expect(rate).toBeLessThan(25);
  process.stderr.write(`remote topic echo --count 3: ${echoMs} ms; topic hz --duration 2.5: ${hzMs} ms, ${rate.toFixed(2)} Hz\n`);

  // a CLI that goes away without a word: its tool on gpu is stopped, the tap leaves
  const cli = spawn(process.execPath, [CLI, 'topic', 'echo', id, 'source/frame'], { env: { ...process.env, ...c.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let echoed = '';
  cli.stdout.on('data', (d: Buffer) => (echoed += d.toString()));
  await waitFor(() => echoed.split('\n').length > 2, 15_000, 'lines of the endless echo');
  expect(commandsWith('topic', 'echo', 'source/frame').length).toBe(2); // this CLI and the tool on gpu
  const tapped = JSON.parse((await c.dora(['topic', 'list', id, '--json'])).stdout) as TopicInfo[];
  expect(tapped.find((x) => x.name === 'source/frame')!.taps).toBe(1);
  cli.kill('SIGKILL');
  t = performance.now();
  await waitFor(() => commandsWith('topic', 'echo', 'source/frame').length === 0, 15_000, 'the tool on gpu to be stopped');
  process.stderr.write(`the tool of a vanished CLI stopped after ${Math.round(performance.now() - t)} ms\n`);
  await until(async () => (JSON.parse((await c!.dora(['topic', 'list', id, '--json'])).stdout) as TopicInfo[]).find((x) => x.name === 'source/frame')!.taps === 0, 10_000, 'the tap to leave');

  // dora record of it: each output read on its sender's machine, written here as a local tap's messages; the bytes intact
  const rec = path.join(c.dir, 'rec');
  t = performance.now();
  const record = await c.dora(['record', id, '-o', rec, '--topics', 'source/frame,relay/frame', '--stop-after', '3s']);
  const recordMs = Math.round(performance.now() - t);
  if (record.code !== 0) throw new Error(`dora record failed: ${record.stderr}`);
  expect(record.stderr).toContain('recording source/frame (on gpu), relay/frame (on local)');
  const manifest = readManifest(rec);
  const counts = Object.fromEntries(manifest.topics.map((x) => [x.topic, x.messages]));
  process.stderr.write(`recorded: ${JSON.stringify(counts)}\n`);
  // 3 s at 20 Hz, less the time the taps take to join (the tool on gpu starts a process there): under load, a second or two
  expect(counts['source/frame']).toBeGreaterThan(10);
  expect(counts['relay/frame']).toBeGreaterThan(10);
  for (const node of ['source', 'relay']) {
    const frames = readNodeMessages(rec, manifest, node).map((msg) => Uint8Array.from(msg.data.toArray() as Uint8Array));
    expect(frames.every((f) => f.length === 64)).toBe(true);
    const seqs = frames.map((f) => new DataView(f.buffer).getUint32(0, true));
    expect(frames.every((f, k) => f.subarray(4).every((b, j) => b === ((seqs[k] + j + 4) & 0xff)))).toBe(true);
    expect(seqs.every((q, k) => k === 0 || q > seqs[k - 1])).toBe(true);
  }
  process.stderr.write(`dora record across machines, --stop-after 3s: ${recordMs} ms, ${counts['source/frame']} messages of source/frame (gpu), ${counts['relay/frame']} of relay/frame (local), dropped ${manifest.topics.map((x) => x.dropped).join('/')}\n`);
  await waitFor(() => commandsWith('topic', 'echo', 'source/frame').length === 0, 10_000, 'the recording taps to be gone');

  // the web view's API: the remote node's numbers, with its machine
  const ui = spawn(process.execPath, [CLI, 'ui', id, '--port', '0'], { env: { ...process.env, ...c.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let printed = '';
    ui.stdout.on('data', (d: Buffer) => (printed += d.toString()));
    await waitFor(() => /http:\/\/127\.0\.0\.1:\d+\/\?token=\w+/.test(printed), 10_000, 'the URL');
    const [, port, token] = /http:\/\/127\.0\.0\.1:(\d+)\/\?token=(\w+)/.exec(printed)!;
    const reply = await get(`http://127.0.0.1:${port}/api/metrics?dataflow=${id}`, token);
    expect(reply.status).toBe(200);
    const api = JSON.parse(reply.body) as { available: boolean; nodes: { id: string; machine: string; messagesSent: number; rssBytes: number | null }[] };
    expect(api.available).toBe(true);
    const source = api.nodes.find((n) => n.id === 'source')!;
    expect(source.machine).toBe('gpu');
    expect(source.messagesSent).toBeGreaterThan(0);
    expect(source.rssBytes).toBeGreaterThan(0);
  } finally {
    ui.kill('SIGINT');
  }

  // machine gpu stops answering (its daemon frozen, for less than the 2 s after which it is lost): the coordinator
  // answers after its 1 s timeout, gpu's nodes stale (unknown, not zero), the others measured
  const token = fs.readFileSync(path.join(c.stateDir, `coordinator-${c.controlPort}.token`), 'utf8').trim();
  const metrics = async () => (await controlRequest({ cmd: 'metrics', dataflow: id }, { port: c!.controlPort, token })) as unknown as MetricsReply;
  process.kill(gpu.pid(), 'SIGSTOP');
  let frozen: MetricsReply;
  try {
    t = performance.now();
    frozen = await metrics();
  } finally {
    process.kill(gpu.pid(), 'SIGCONT');
  }
  const frozenMs = Math.round(performance.now() - t);
  const f = new Map(frozen.nodes.map((n) => [n.id, n]));
  expect([f.get('source')!.stale, f.get('source')!.cpuPercent, f.get('source')!.status, f.get('source')!.machine]).toEqual(['machine gpu did not answer within 1000 ms', null, 'running', 'gpu']);
  expect(frozen.edges.find((e) => e.target === 'relay/frame')!.stale).toBeUndefined();
  expect(f.get('relay')!.stale).toBeUndefined();
  expect(f.get('relay')!.messagesReceived).toBeGreaterThan(0);
  expect(frozenMs).toBeLessThan(1800);
  process.stderr.write(`metrics with machine gpu frozen: ${frozenMs} ms\n`);
  // thawed: answering again, the dataflow untouched
  await until(async () => (await metrics()).nodes.every((n) => n.stale === undefined && n.status === 'running'), 5000, 'machine gpu to answer again');
});

test('dora top shows the numbers of a machine that did not answer as unknown (?), with the reason, not as zeros', () => {
  const stale = 'machine gpu did not answer within 1000 ms';
  const measured = { pid: 11, status: 'running', cpuPercent: 2.5, rssBytes: 30 << 20, restarts: 0, samplesHeld: 1, queueDepth: 2, dropped: 0, messagesSent: 5, messagesReceived: 7 };
  const lines = renderTop({ id: 'df', name: undefined }, {
    ok: true,
    at: 0,
    nodes: [
      { ...measured, id: 'camera', pid: 10, machine: 'gpu', stale },
      { ...measured, id: 'sink', machine: 'local' },
    ],
    edges: [{ source: 'camera/frame', target: 'sink/frame', messagesPerSec: 20, bytesPerSec: 1280, latencyP50Us: 300, latencyP99Us: 900, dropped: 0, queueDepth: 0, messages: 7, bytes: 448, machine: 'local' }],
  });
  expect(lines.find((l) => l.startsWith('camera'))!.split(/\s+/)).toEqual(['camera', 'gpu', '10', 'running', '?', '?', '0', '?', '?', '?']);
  expect(lines.find((l) => l.startsWith('sink'))!.split(/\s+/).slice(0, 5)).toEqual(['sink', 'local', '11', 'running', '2.5']);
  expect(lines.at(-1)).toBe(`? ${stale}`);
});
