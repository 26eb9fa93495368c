/**
 * A dataflow's folder in the runtime directory (its sockets and daemon.json): removed when
 * the run ends, whatever its nodes did; left by a daemon that was killed, and reclaimed
 * then, with the dataflow's shared-memory segments, by the next daemon to start.
 */
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dora, leftovers, node, processesMentioning, segmentsOf, startDora, tempDataflow, waitFor } from './support/dataflow';

// A runtime directory of this file's own, so no other test file's daemon reclaims what these tests look at.
const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-rt-'));
const env = { DORA_RUNTIME_DIR: runtime };
afterAll(() => fs.rmSync(runtime, { recursive: true, force: true }));

test('the folder, 0700 with a daemon.json naming the daemon, is removed when the run ends, also after a node crashed', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'sender.ts', `    env: { COUNT: 5 }\n    outputs: [out]\n`) +
      node('crasher', 'crasher.ts', `    inputs: { data: sender/out }\n`) +
      node('waiter', 'looper.ts', `    inputs: { data: sender/out }\n`),
  );
  const run = startDora(['run', df.file], { env });
  await waitFor(() => fs.readdirSync(runtime).length > 0, 10_000, 'the dataflow folder');
  const [id] = fs.readdirSync(runtime);
  const folder = path.join(runtime, id);
  expect(fs.statSync(folder).mode & 0o777).toBe(0o700);
  const record = JSON.parse(fs.readFileSync(path.join(folder, 'daemon.json'), 'utf8')) as Record<string, unknown>;
  // what dynamic nodes look for (the dataflow's name, its request socket, its dynamic nodes), and taps, dora top/topic and `dora record` (the run's control socket, the dataflow file)
  expect(record).toEqual({ pid: run.child.pid, startTime: expect.stringMatching(/^\d+$/), dataflow: id, name: null, requests: `ipc://${folder}/daemon`, dynamicNodes: [], control: `ipc://${folder}/control`, file: df.file });
  const result = await run.done;
  expect(result.code).toBe(1); // the crasher failed; the dataflow stops
  expect(result.stderr).toContain('simulated crash');
  expect(fs.readdirSync(runtime)).toEqual([]);
  expect(leftovers()).toEqual([]);
});

test('the next daemon reclaims the folders and segments of daemons that are gone, keeps those of live ones', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'shm-sender.ts', `    env: { COUNT: 1000000, BYTES: 65536, DELAY_MS: 20 }\n    outputs: [out]\n`) +
      node('sink', 'sink.ts', `    inputs: { data: sender/out }\n`),
  );
  const killed = startDora(['run', df.file], { env });
  let killedId = '';
  try {
    await waitFor(() => fs.readdirSync(runtime).length > 0, 10_000, 'the dataflow folder');
    [killedId] = fs.readdirSync(runtime);
    await waitFor(() => segmentsOf(killedId).length > 0, 10_000, 'shared-memory segments');
  } finally {
    killed.child.kill('SIGKILL'); // what the test is about, and after a timeout above no run is left behind
  }
  await killed.done;
  await waitFor(() => processesMentioning(df.dir).length === 0, 5000, 'the nodes to exit after their daemon');

  // Made up: a daemon that is gone with a segment left, a pid now used by another
  // process (this one, started later), and a live daemon (this process).
  const gonePid = spawnSync('true').pid!;
  const ownStart = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[19];
  const fake = (pid: number, startTime: string) => {
    const id = randomUUID();
    fs.mkdirSync(path.join(runtime, id), { mode: 0o700 });
    fs.writeFileSync(path.join(runtime, id, 'daemon.json'), JSON.stringify({ pid, startTime, dataflow: id }));
    return id;
  };
  const gone = fake(gonePid, '1');
  fs.writeFileSync(`/dev/shm/dora-ts-${gone}-0123456789abcdef`, 'left');
  const reused = fake(process.pid, '1');
  const live = fake(process.pid, ownStart);
  try {
    expect(fs.readdirSync(runtime).sort()).toEqual([killedId, gone, reused, live].sort());

    const next = tempDataflow(`nodes:\n` + node('s', 'sender.ts', `    env: { COUNT: 1 }\n    outputs: [out]\n`));
    const r = await dora(['run', next.file], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/dora: reclaimed 3 dataflow folder\(s\) and [1-9]\d* shared-memory segment\(s\) left by daemons that are gone/);
    expect(fs.readdirSync(runtime)).toEqual([live]);
    expect([...segmentsOf(killedId), ...segmentsOf(gone)]).toEqual([]);
  } finally {
    fs.rmSync(path.join(runtime, live), { recursive: true, force: true });
    for (const name of [...segmentsOf(killedId), ...segmentsOf(gone)]) fs.rmSync(`/dev/shm/${name}`, { force: true });
  }
});
