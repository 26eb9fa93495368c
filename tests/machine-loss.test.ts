/**
 * A machine lost and back (tests/support/machines.ts): its daemon is stopped (SIGSTOP) for
 * longer than the heartbeats allow, so the coordinator declares it lost, then continued
 * (SIGCONT) and registers again. Nodes with a restart policy are respawned there as
 * restarts (their receivers' inputs stay open: no INPUT_CLOSED in between; receivers on
 * other machines get NODE_RESTARTED, as for a restart on one machine); nodes without
 * one fail naming the machine, and the stale part the daemon kept is killed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NODES, processesMentioning, readRecord, sleep, tempDataflow, waitFor } from './support/dataflow';
import { TestCluster } from './support/machines';

jest.setTimeout(120_000);

const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});

async function cluster(env: NodeJS.ProcessEnv = {}): Promise<TestCluster> {
  const c = new TestCluster();
  clusters.push(c);
  Object.assign(c.env, env);
  await c.startCoordinator();
  return c;
}

const node = (id: string, script: string, extra: string) => `  - id: ${id}\n    path: ${path.join(NODES, script)}\n${extra}`;
const idOf = (stdout: string) => /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(stdout)![0];

interface Listed {
  id: string;
  status: string;
  nodes: { id: string; status: string; detail?: string; restarts: number; machine: string }[];
}
async function listed(c: TestCluster, id: string): Promise<Listed> {
  return (JSON.parse((await c.dora(['list', '--json'])).stdout) as Listed[]).find((d) => d.id === id)!;
}
const statusOf = async (c: TestCluster, id: string, nodeId: string) => (await listed(c, id)).nodes.find((n) => n.id === nodeId)!;

async function until(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await predicate()); await sleep(100)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

/** Processes of the dataflow's node `id` (from the configuration in their environment). */
const pidsOf = (dir: string, id: string) =>
  processesMentioning(dir).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`"nodeId":"${id}"`);
    } catch {
      return false;
    }
  });

test('a machine lost and back: its nodes with a restart policy are respawned there, receivers on both sides keep their inputs open, data flows again both ways', async () => {
  const c = await cluster();
  const gpu = await c.startDaemon('gpu');
  const sinkRecord = path.join(c.dir, 'sink.jsonl');
  const gpuRecord = path.join(c.dir, 'gpu-sink.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      node('camera', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 1000000, HZ: 50, FRAME_BYTES: 1024 }\n    outputs: [frame]\n    restart_policy: on-failure\n`) +
      node('sink', 'frame-sink.ts', `    env: { RECORD: ${sinkRecord} }\n    inputs: { frame: camera/frame }\n`) +
      node('ticker', 'frame-source.ts', `    env: { COUNT: 1000000, HZ: 50, FRAME_BYTES: 256 }\n    outputs: [frame]\n`) +
      node('gpu-sink', 'frame-sink.ts', `    deploy: { machine: gpu }\n    env: { RECORD: ${gpuRecord} }\n    inputs: { frame: ticker/frame }\n    restart_policy: always\n`),
  );
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);
  await waitFor(() => readRecord(sinkRecord).some((e) => e.type === 'PROGRESS') && readRecord(gpuRecord).some((e) => e.type === 'PROGRESS'), 30_000, 'frames both ways');
  const oldNodes = [...pidsOf(df.dir, 'camera'), ...pidsOf(df.dir, 'gpu-sink')];
  expect(oldNodes).toHaveLength(2);

  process.kill(gpu.pid(), 'SIGSTOP');
  const stoppedAt = Date.now();
  try {
    await until(async () => (await statusOf(c, id, 'camera')).status === 'restarting', 10_000, 'machine gpu to be declared lost');
  } catch (err) {
    process.kill(gpu.pid(), 'SIGCONT');
    throw err;
  }
  const lostAfter = Date.now() - stoppedAt;
  expect((await statusOf(c, id, 'camera')).detail).toMatch(/^lost with machine gpu \(its daemon has not been heard from for \d+ ms\); restarted when it comes back \(waiting up to 30 s\)$/);
  expect((await statusOf(c, id, 'gpu-sink')).status).toBe('restarting');
  await sleep(500);
  process.kill(gpu.pid(), 'SIGCONT');
  const continuedAt = Date.now();

  // the sink on this machine: frames again from the respawned camera (its sequence numbers start from 0 again)
  const lastBefore = () => {
    const r = readRecord(sinkRecord).filter((e) => e.type === 'PROGRESS');
    return r.findIndex((e, i) => i > 0 && e.lastSeq < r[i - 1].lastSeq);
  };
  await waitFor(() => lastBefore() >= 0, 20_000, 'frames from the respawned camera').catch(async (err: Error) => {
    throw new Error(`${err.message}\ncoordinator: ${c.coordinator!.output()}\ngpu: ${gpu.output()}\nsink: ${fs.readFileSync(sinkRecord, 'utf8')}\n${JSON.stringify(await listed(c, id))}\n${(await c.dora(['logs', id])).stdout}`);
  });
  const flowingAt = Date.now();
  // the respawned gpu-sink receives the ticker's frames again (its record: a second run, appended)
  await waitFor(() => readRecord(gpuRecord).filter((e) => e.type === 'PROGRESS' && e.received === 10).length >= 2, 20_000, 'frames at the respawned gpu-sink');
  const sinkEvents = readRecord(sinkRecord).map((e) => e.type);
  expect(sinkEvents).not.toContain('INPUT_CLOSED');
  expect(sinkEvents).not.toContain('NODE_FAILED');
  expect(sinkEvents).toContain('NODE_RESTARTED');

  // the stale processes are gone, the respawned ones run; the coordinator counts one restart each
  await waitFor(() => oldNodes.every((pid) => !processesMentioning(df.dir).includes(pid)), 10_000, 'the stale part to be killed');
  expect(['camera', 'sink', 'ticker', 'gpu-sink'].map((n) => pidsOf(df.dir, n).length)).toEqual([1, 1, 1, 1]);
  const now = await listed(c, id);
  expect(now.status).toBe('running');
  expect(now.nodes.map((n) => [n.id, n.status, n.restarts])).toEqual([
    ['camera', 'running', 1],
    ['sink', 'running', 0],
    ['ticker', 'running', 0],
    ['gpu-sink', 'running', 1],
  ]);
  const stopped = await c.dora(['stop', id]);
  expect(stopped.stdout).toContain(`dataflow ${id}: stopped`);
  await waitFor(() => processesMentioning(df.dir).length === 0, 15_000, 'nothing left');
  expect(c.runFolders()).toEqual([]);
  console.log(`machine gpu: declared lost ${lostAfter} ms after SIGSTOP; frames from the respawned camera at the sink ${flowingAt - continuedAt} ms after SIGCONT (10-frame granularity at 50 Hz)`);
});

test('a machine lost: nodes without a restart policy fail naming it, those with one fail once it has not come back in time; the stale part is killed when it does', async () => {
  const c = await cluster({ DORA_MACHINE_RETURN_WAIT_MS: '1000' });
  const gpu = await c.startDaemon('gpu');
  const record = path.join(c.dir, 'sink.jsonl');
  const record2 = path.join(c.dir, 'sink2.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      node('camera', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 1000000, HZ: 50, FRAME_BYTES: 1024 }\n    outputs: [frame]\n`) +
      node('camera2', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 1000000, HZ: 50, FRAME_BYTES: 1024 }\n    outputs: [frame]\n    restart_policy: always\n`) +
      node('sink', 'frame-sink.ts', `    env: { RECORD: ${record} }\n    inputs: { frame: camera/frame }\n`) +
      node('sink2', 'frame-sink.ts', `    env: { RECORD: ${record2} }\n    inputs: { frame: camera2/frame }\n`),
  );
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);
  await waitFor(() => readRecord(record).some((e) => e.type === 'PROGRESS') && readRecord(record2).some((e) => e.type === 'PROGRESS'), 30_000, 'frames from machine gpu');
  const cameras = [...pidsOf(df.dir, 'camera'), ...pidsOf(df.dir, 'camera2')];
  expect(cameras).toHaveLength(2);
  process.kill(gpu.pid(), 'SIGSTOP');
  const stoppedAt = Date.now();
  let continued = false;
  try {
    await waitFor(() => readRecord(record).some((e) => e.type === 'INPUT_CLOSED'), 10_000, 'the sink of camera to be told');
    const toldAfter = Date.now() - stoppedAt;
    // camera2 waits for its machine (1 s here), then fails: only then is its sink told
    expect(readRecord(record2).map((e) => e.type)).not.toContain('INPUT_CLOSED');
    await waitFor(() => readRecord(record2).some((e) => e.type === 'INPUT_CLOSED'), 10_000, 'the sink of camera2 to be told');
    const told2After = Date.now() - stoppedAt;
    expect(told2After - toldAfter).toBeGreaterThanOrEqual(900);
    const camera = await statusOf(c, id, 'camera');
    expect(camera).toMatchObject({ status: 'failed', detail: expect.stringMatching(/^lost with machine gpu \(its daemon has not been heard from for \d+ ms\)$/) });
    const camera2 = await statusOf(c, id, 'camera2');
    expect(camera2).toMatchObject({ status: 'failed', detail: expect.stringMatching(/^lost with machine gpu \(.*\); machine gpu did not come back within 1 s$/) });
    // back: its daemon registers again, and the part it kept running is killed
    process.kill(gpu.pid(), 'SIGCONT');
    continued = true;
    const continuedAt = Date.now();
    await waitFor(() => cameras.every((pid) => !processesMentioning(df.dir).includes(pid)), 10_000, 'the stale cameras to be killed').catch((err: Error) => {
      throw new Error(`${err.message}\ncoordinator: ${c.coordinator!.output()}\ngpu: ${gpu.output()}\n${cameras.map((p) => { try { return fs.readFileSync(`/proc/${p}/status`, 'utf8').split('\n').slice(0, 3).join(' '); } catch { return 'gone'; } }).join('\n')}`);
    });
    expect(gpu.output()).toContain(`dataflow ${id}: this machine was declared lost; killing its stale part here`);
    console.log(`machine gpu lost: sink told ${toldAfter} ms after SIGSTOP, sink2 (restart_policy, 1 s wait) after ${told2After} ms; stale part killed ${Date.now() - continuedAt} ms after SIGCONT`);
  } finally {
    if (!continued) process.kill(gpu.pid(), 'SIGCONT');
  }
  const stopped = await c.dora(['stop', id]);
  expect(stopped.stdout).toContain(`dataflow ${id}: failed`);
  expect((await listed(c, id)).nodes.map((n) => [n.id, n.status])).toEqual([
    ['camera', 'failed'],
    ['camera2', 'failed'],
    ['sink', 'succeeded'],
    ['sink2', 'succeeded'],
  ]);
  await waitFor(() => processesMentioning(df.dir).length === 0, 15_000, 'nothing left');
  await waitFor(() => c.runFolders().length === 0, 5000, 'no run folder left');
});

test('a machine whose daemon was killed and started again (same key): its nodes with a restart policy are respawned by the new daemon', async () => {
  const c = await cluster();
  const gpu = await c.startDaemon('gpu');
  const sinkRecord = path.join(c.dir, 'sink.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      node('camera', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 1000000, HZ: 50, FRAME_BYTES: 1024 }\n    outputs: [frame]\n    restart_policy: always\n`) +
      node('sink', 'frame-sink.ts', `    env: { RECORD: ${sinkRecord} }\n    inputs: { frame: camera/frame }\n`),
  );
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);
  await waitFor(() => readRecord(sinkRecord).some((e) => e.type === 'PROGRESS'), 30_000, 'frames from machine gpu');
  const old = pidsOf(df.dir, 'camera');
  process.kill(gpu.pid(), 'SIGKILL');
  await until(async () => (await statusOf(c, id, 'camera')).status === 'restarting', 10_000, 'machine gpu to be declared lost');
  await waitFor(() => old.every((pid) => !processesMentioning(df.dir).includes(pid)), 5000, 'the old camera to end with its daemon');
  const restartedAt = Date.now();
  // the machine comes back at its address (its nodes' receivers elsewhere reconnect there)
  await c.startDaemon('gpu', { keyFile: path.join(c.dir, 'gpu.key') });
  await waitFor(() => {
    const r = readRecord(sinkRecord).filter((e) => e.type === 'PROGRESS');
    return r.some((e, i) => i > 0 && e.lastSeq < r[i - 1].lastSeq);
  }, 20_000, 'frames from the camera the new daemon started');
  console.log(`machine gpu's daemon killed and started again: frames from the respawned camera ${Date.now() - restartedAt} ms after the new daemon was started`);
  expect(readRecord(sinkRecord).map((e) => e.type)).not.toContain('INPUT_CLOSED');
  expect(readRecord(sinkRecord).map((e) => e.type)).toContain('NODE_RESTARTED');
  expect(await statusOf(c, id, 'camera')).toMatchObject({ status: 'running', restarts: 1 });
  expect((await c.dora(['stop', id])).stdout).toContain(`dataflow ${id}: stopped`);
  await waitFor(() => processesMentioning(df.dir).length === 0, 15_000, 'nothing left');
  expect(c.runFolders()).toEqual([]);
});
