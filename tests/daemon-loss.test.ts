/**
 * A daemon that dies (SIGKILL of a foreground `dora run`) leaves no node and no
 * shared-memory segment behind: senders in send loops fail their sends, receivers get
 * ERROR, and a node computing without calling the API is ended by the core's watchdog.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dora, leftovers, node, processesMentioning, ROOT, segmentsOf, sleep, startDora, tempDataflow, waitFor } from './support/dataflow';

afterEach(() => {
  expect(leftovers()).toEqual([]);
});

/** The dataflow id a running node was started with (its DORA_NODE_CONFIG). */
function dataflowOf(pid: number): string | undefined {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const config = env.find((e) => e.startsWith('DORA_NODE_CONFIG='));
    return config ? (JSON.parse(config.slice('DORA_NODE_CONFIG='.length)) as { dataflowId: string }).dataflowId : undefined;
  } catch {
    return undefined;
  }
}

test('SIGKILL of the daemon: C, Python and TypeScript senders in send loops, their receivers and a busy node are gone within 2 s, no segment within 5 s', async () => {
  const sender = (lang: string) => path.join(ROOT, 'bench/nodes', `sender.${lang}`);
  const shm = `{ MODE: throughput, SIZE: 65536, COUNT: 100000000, WARMUP: 0 }`;
  const build = `cc -std=c11 -D_GNU_SOURCE -O2 ${sender('c')} -o csender $(pkg-config --cflags --libs dora-node-api)`;
  const df = tempDataflow(
    `nodes:\n` +
      `  - id: c\n    path: ./csender\n    build: ${build}\n    env: ${shm}\n    outputs: [data]\n` +
      `  - id: py\n    path: ${sender('py')}\n    env: ${shm}\n    outputs: [data]\n` +
      node('ts', 'stream-sender.ts', `    env: { COUNT: 100000000, SHM_ONE_IN: 1, SHM_BYTES: 65536 }\n    outputs: [out]\n`) +
      node('sink', 'sink.ts', `    inputs:\n      c: { source: c/data, queue_size: 4 }\n      py: { source: py/data, queue_size: 4 }\n      ts: { source: ts/out, queue_size: 4 }\n`) +
      node('busy', 'busy.py', `    env: { RECORD: ./busy.pid }\n`),
  );
  const built = await dora(['build', df.file]);
  expect(built.code).toBe(0);
  const { child, done } = startDora(['run', df.file], { cwd: df.dir });
  // Running: every node is up, the busy one has joined, and the senders have made segments.
  await waitFor(() => processesMentioning(df.dir).length >= 6 && fs.existsSync(path.join(df.dir, 'busy.pid')), 20_000, 'the nodes to start');
  const nodes = processesMentioning(df.dir).filter((pid) => pid !== child.pid);
  const dataflow = nodes.map(dataflowOf).find((id) => id !== undefined)!;
  expect(dataflow).toBeDefined();
  await waitFor(() => segmentsOf(dataflow).length > 0, 10_000, 'shared-memory segments');
  await sleep(500);

  child.kill('SIGKILL');
  const killedAt = Date.now();
  await done;
  try {
    await expectAllGone(df.dir, dataflow, killedAt, nodes.length);
  } finally {
    // Whatever the outcome, nothing of this dataflow may outlive the test (it would disturb the others).
    for (const pid of processesMentioning(df.dir)) process.kill(pid, 'SIGKILL');
    for (const name of segmentsOf(dataflow)) fs.rmSync(`/dev/shm/${name}`, { force: true });
  }
}, 60_000);

async function expectAllGone(dir: string, dataflow: string, killedAt: number, nodes: number): Promise<void> {
  await waitFor(() => processesMentioning(dir).length === 0, 2_000, 'every node to exit after its daemon died').catch((err: Error) => {
    const left = processesMentioning(dir).map((pid) => `${pid} ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    throw new Error(`${err.message}; still running: ${left.join('; ')}`);
  });
  const goneMs = Date.now() - killedAt;
  await waitFor(() => segmentsOf(dataflow).length === 0, 5_000, 'the dataflow’s segments to be removed');
  console.log(`daemon SIGKILL: ${nodes} nodes gone after ${goneMs} ms, segments after ${Date.now() - killedAt} ms`);
}
