/**
 * A dynamic node (`path: dynamic`) placed on another machine (`deploy: machine`): started
 * by hand on that machine (here: in the simulated machine's namespaces), it finds the part
 * of the dataflow its machine's daemon runs and joins it, receiving from and sending to
 * nodes of the coordinator's machine; started on a machine its node is not placed on, it
 * gets a clear error.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NODES, processesMentioning, readRecord, ROOT, waitFor, tempDataflow, type Result } from './support/dataflow';
import { TestCluster, type Daemon } from './support/machines';

jest.setTimeout(120_000);

const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});

const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const idOf = (stdout: string) => /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(stdout)![0];

/** `tsx dynamic-node.ts <id>` started by hand on `machine` (inside its namespaces when it is isolated), or on this one. */
function byHand(c: TestCluster, machine: Daemon | undefined, id: string, extra: NodeJS.ProcessEnv): Promise<Result> {
  const command = [TSX, path.join(NODES, 'dynamic-node.ts'), id];
  const [file, ...args] = machine?.isolated ? ['nsenter', '-t', String(machine.pid()), '-n', '-m', '--', ...command] : command;
  const child = spawn(file, args, { cwd: ROOT, env: { ...process.env, DORA_RUNTIME_DIR: c.runtimeDir, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // bounded: a node that does not end is killed, and the failure says what it and the daemons printed
  // (how a start-up race was found: the coordinator dropped what a part said while it launched the
  // others, and a node closed while its join waited for the start hung in close())
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const record = typeof extra.RECORD === 'string' && fs.existsSync(extra.RECORD) ? fs.readFileSync(extra.RECORD, 'utf8') : '(no record)';
      reject(new Error(`dynamic node ${id} did not end within 40 s\nits record:\n${record}\nits output:\n${stdout}${stderr}\ncoordinator:\n${c.coordinator?.output().slice(-3000)}\n${c.daemons.map((d) => `daemon ${d.machine}:\n${d.output().slice(-3000)}`).join('\n')}`));
    }, 40_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('a dynamic node placed on another machine joins the part its daemon runs, receives from and sends to this machine; started elsewhere it is told no dataflow there declares it', async () => {
  const c = new TestCluster();
  clusters.push(c);
  await c.startCoordinator();
  const gpu = await c.startDaemon('gpu');
  const received = path.join(c.dir, 'recorder.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      `  - id: sender\n    path: ${path.join(NODES, 'sender.ts')}\n    env: { COUNT: 1000000 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n` +
      `  - id: dyn\n    path: dynamic\n    deploy: { machine: gpu }\n    inputs:\n      tick: dora/timer/millis/50\n      data: { source: sender/out, queue_size: 100 }\n    outputs: [out]\n` +
      `  - id: recorder\n    path: ${path.join(NODES, 'recorder.ts')}\n    env: { RECORD: ${received} }\n    inputs:\n      data: { source: dyn/out, queue_size: 100 }\n`,
  );
  const started = await c.dora(['start', df.file, '--name', 'remote-dyn']);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);
  await waitFor(() => c.runFolders(gpu.pid()).length === 1 && processesMentioning(df.dir).length >= 2, 20_000, 'the part on machine gpu');
  // a part's run folder is named by the dataflow's id unless another part has that name on the host (here, one host)
  expect(c.runFolders()).toContain(id);

  // on this machine, whose runtime directory holds only its own part (the simulated machines share one: a
  // directory of links to this machine's run folders stands for it), no running dataflow declares it
  const mine = fs.mkdtempSync(path.join(c.dir, 'local-run-'));
  for (const folder of c.runFolders(c.coordinator!.child.pid)) fs.symlinkSync(path.join(c.runtimeDir, folder), path.join(mine, folder));
  expect(fs.readdirSync(mine)).toHaveLength(1);
  const elsewhere = await byHand(c, undefined, 'dyn', { RECORD: path.join(c.dir, 'elsewhere.jsonl'), DORA_RUNTIME_DIR: mine });
  expect(elsewhere.code).not.toBe(0);
  expect(elsewhere.stderr).toContain('no running dataflow declares a dynamic node "dyn"');

  // on gpu: it joins, receives the sender's messages from this machine, and its output reaches the recorder here
  const record = path.join(c.dir, 'dyn.jsonl');
  const joined = await byHand(c, gpu, 'dyn', { RECORD: record, STAY_MS: '2000', DORA_DATAFLOW: 'remote-dyn' });
  expect({ code: joined.code, stderr: joined.stderr }).toEqual({ code: 0, stderr: '' });
  const events = readRecord(record);
  expect(events[0]).toMatchObject({ type: 'JOIN', restartCount: 0 });
  const seqs = events.filter((e) => e.type === 'INPUT').map((e) => e.seq as number);
  expect(seqs.length).toBeGreaterThan(20); // 2 s of a 20 ms sender
  expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1])).toBe(true);
  expect(events.find((e) => e.type === 'LEAVE')!.ticks).toBeGreaterThan(0); // gpu's own timer
  await waitFor(() => readRecord(received).filter((e) => e.type === 'INPUT').length >= seqs.length, 10_000, 'the recorder to receive what dyn sent');
  expect(readRecord(received).filter((e) => e.type === 'INPUT').map((e) => e.values[0])).toEqual(seqs);

  const listed = (JSON.parse((await c.dora(['list', '--json'])).stdout) as { id: string; nodes: { id: string; status: string; machine: string }[] }[]).find((d) => d.id === id)!;
  expect(listed.nodes.find((n) => n.id === 'dyn')).toMatchObject({ status: 'waiting', machine: 'gpu' }); // it has left
  const stopped = await c.dora(['stop', id]);
  expect(stopped.code).toBe(0);
  await waitFor(() => processesMentioning(df.dir).length === 0, 15_000, 'nothing left');
});
