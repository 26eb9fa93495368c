/**
 * Dataflows over several machines, simulated on one host (tests/support/machines.ts): the
 * coordinator's own daemon plus daemons of other machine ids, the first of them in network
 * and mount namespaces of its own with a private /dev/shm when the tests run as root.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { NODES, processesMentioning, readRecord, sleep, tempDataflow, waitFor } from './support/dataflow';
import { CAN_ISOLATE, TestCluster } from './support/machines';

jest.setTimeout(120_000);

const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});

async function cluster(): Promise<TestCluster> {
  const c = new TestCluster();
  clusters.push(c);
  await c.startCoordinator();
  return c;
}

const node = (id: string, script: string, extra: string) => `  - id: ${id}\n    path: ${path.join(NODES, script)}\n${extra}`;

/** The dataflow id a `dora start` printed. */
const idOf = (stdout: string) => /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(stdout)![0];

test('the machine daemons run on here is simulated faithfully (isolated in its own namespaces as root)', () => {
  // as root, a test that silently fell back to a shared /dev/shm would prove much less
  expect(CAN_ISOLATE).toBe(process.getuid?.() === 0);
});

test('deploy naming a machine that is not connected is reported with its position, before anything starts', async () => {
  const c = await cluster();
  const df = tempDataflow(`nodes:\n${node('a', 'sender.ts', '    outputs: [x]\n')}${node('b', 'sink.ts', '    inputs: { x: a/x }\n    deploy:\n      machine: robot\n')}`);
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(1);
  expect(started.stderr).toContain(`${df.file}:9:16: node "b": \`deploy.machine\` "robot" is not connected to the coordinator`);
  expect(started.stderr).toContain('connected machines: local');
  expect(fs.readdirSync(df.dir)).toEqual(['dataflow.yml']); // nothing ran: no log folder
  expect(processesMentioning(df.dir)).toEqual([]);
  // `dora run` has no other machine: the same report
  const ran = await c.dora(['run', df.file]);
  expect(ran.code).toBe(1);
  expect(ran.stderr).toContain(`${df.file}:9:16: node "b": \`deploy.machine\` "robot" is not connected`);
  // labels no daemon has
  const labelled = tempDataflow(`nodes:\n${node('a', 'sender.ts', '    outputs: [x]\n    deploy: { labels: { gpu: "true" } }\n')}`);
  const none = await c.dora(['start', labelled.file]);
  expect(none.code).toBe(1);
  expect(none.stderr).toContain(`${labelled.file}:5:23: node "a": no connected machine has the labels \`deploy.labels\` asks for (gpu=true)`);
});

test('a daemon whose key is not authorised, or that has the wrong coordinator key, or none, is refused and not listed', async () => {
  const c = await cluster();
  const stranger = await c.daemonKey('stranger', false);
  const refused = await c.startDaemon('stranger', { keyFile: stranger.file, expectExit: true, isolate: false });
  expect((await refused.done).code).toBe(1);
  expect(refused.output()).toContain(`did not accept this daemon within 5 s: is this daemon's public key ${stranger.publicKey} authorised there`);
  const authorised = await c.daemonKey('impostor');
  const { publicKey: wrongServer } = zmq.curveKeyPair();
  const wrongKey = await c.startDaemon('impostor', { keyFile: authorised.file, coordinatorKey: wrongServer, expectExit: true, isolate: false });
  expect((await wrongKey.done).code).toBe(1);
  expect(wrongKey.output()).toContain('did not accept this daemon');
  const plain = await c.startDaemon('plain', { keyFile: authorised.file, extra: ['--insecure'], expectExit: true, isolate: false });
  expect((await plain.done).code).toBe(1);
  expect(plain.output()).toContain('WARNING: --insecure');
  const listed = JSON.parse((await c.dora(['daemons', '--json'])).stdout) as { machine: string }[];
  expect(listed.map((d) => d.machine)).toEqual(['local']);
  // once authorised, the same key joins (no restart of the coordinator)
  await c.dora(['cluster', 'authorize', '--', stranger.publicKey]);
  await c.startDaemon('stranger', { keyFile: stranger.file, isolate: false, labels: 'gpu=true,zone=a' });
  const after = JSON.parse((await c.dora(['daemons', '--json'])).stdout) as { machine: string; labels: Record<string, string>; heartbeatAgeMs: number }[];
  expect(after.map((d) => [d.machine, d.labels])).toEqual([
    ['local', {}],
    ['stranger', { gpu: 'true', zone: 'a' }],
  ]);
  expect(after[1].heartbeatAgeMs).toBeLessThan(2000);
});

test('a pipeline over two daemons delivers 4 MiB frames at 30 Hz node to node, intact and in order, as bytes across machines (a local receiver of the same sender keeps zero copy), timestamps rising', async () => {
  const c = await cluster();
  const gpu = await c.startDaemon('gpu');
  const count = 45;
  const df = tempDataflow(
    `nodes:\n` +
      node('source', 'frame-source.ts', `    env: { COUNT: ${count}, HZ: 30 }\n    outputs: [frame]\n`) +
      node('relay', 'frame-relay.ts', `    deploy: { machine: gpu }\n    inputs:\n      frame: { source: source/frame, queue_size: ${count} }\n    outputs: [frame]\n`) +
      node('sink', 'frame-sink.ts', `    env: { RECORD: ${path.join(c.dir, 'sink.jsonl')} }\n    inputs:\n      frame: { source: relay/frame, queue_size: ${count} }\n`) +
      // on the source's machine: the source has receivers here and elsewhere
      node('local', 'frame-sink.ts', `    env: { RECORD: ${path.join(c.dir, 'local.jsonl')} }\n    inputs:\n      frame: { source: source/frame, queue_size: ${count} }\n`),
  );
  const record = path.join(c.dir, 'sink.jsonl');
  const localRecord = path.join(c.dir, 'local.jsonl');
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);
  // while it runs: the daemons list the nodes on each machine, and a raw ZeroMQ client gets nothing from a data port
  type Listed = { machine: string; address: string; nodes: string[] };
  let daemons: Listed[] = [];
  for (let i = 0; i < 50 && !daemons.some((d) => d.nodes.includes(`${id}/relay`)); i++) daemons = JSON.parse((await c.dora(['daemons', '--json'])).stdout) as Listed[];
  expect(daemons.map((d) => d.machine)).toEqual(['local', 'gpu']);
  expect(daemons[1].nodes).toEqual([`${id}/relay`]);
  expect(daemons[0].nodes).toContain(`${id}/sink`);
  expect(daemons.find((d) => d.machine === 'gpu')!.address).toBe(gpu.address);
  // each sender with receivers on another machine serves them itself, on its own port
  const served = [...c.coordinator!.output().matchAll(/(\S+) serves other machines on (tcp:\/\/\S+) \(node (\S+), key (\S+)\)/g)].map((m) => ({ machine: m[1], endpoint: m[2], node: m[3], key: m[4] }));
  expect(served.map((s) => [s.machine, s.node]).sort()).toEqual([
    ['gpu', 'relay'],
    ['local', 'source'],
  ]);
  expect(served.find((s) => s.node === 'relay')!.endpoint.startsWith(`tcp://${gpu.address}:`)).toBe(true);
  for (const { endpoint, key } of served) expect(await rawClientGets(endpoint, key)).toEqual({ plain: 0, unauthorisedKey: 0 });
  const list = JSON.parse((await c.dora(['list', '--json'])).stdout) as { id: string; nodes: { id: string; machine?: string }[] }[];
  expect(list.find((d) => d.id === id)!.nodes.map((n) => [n.id, n.machine])).toEqual([
    ['source', 'local'],
    ['relay', 'gpu'],
    ['sink', 'local'],
    ['local', 'local'],
  ]);
  await waitFor(() => readRecord(record).some((e) => e.type === 'END'), 60_000, 'the sink to finish');
  const end = readRecord(record).find((e) => e.type === 'END')!;
  // timestamps rise along the path across machines: the relay's clock merged the source's
  expect(end).toMatchObject({ received: count, corrupt: 0, outOfOrder: 0, clockBehind: 0, upstreamSeen: count, firstSeq: 0, lastSeq: count - 1, bytes: count * (4 << 20) });
  expect(end.shmMapped).toEqual([]); // the frames came as bytes, never as a handle to the other machine's memory
  // the source's receiver on its own machine read the same frames in place, in shared memory
  await waitFor(() => readRecord(localRecord).some((e) => e.type === 'END'), 30_000, 'the local receiver to finish');
  const local = readRecord(localRecord).find((e) => e.type === 'END')!;
  expect(local).toMatchObject({ received: count, corrupt: 0, outOfOrder: 0, clockBehind: 0, firstSeq: 0, lastSeq: count - 1 });
  expect((local.shmMapped as string[]).length).toBeGreaterThan(0);
  let status = '';
  for (let i = 0; i < 100 && status !== 'succeeded'; i++) {
    status = (JSON.parse((await c.dora(['list', '--json'])).stdout) as { id: string; status: string }[]).find((d) => d.id === id)!.status;
    if (status !== 'succeeded') await sleep(100);
  }
  expect(status).toBe('succeeded');
  // the relay's log lives on machine gpu; `dora logs` fetches it from there
  const logs = await c.dora(['logs', id, 'relay']);
  expect(logs.stdout).toMatch(/relay relay running \(pid \d+\)/);
  const all = await c.dora(['logs', id]);
  expect(all.stdout).toMatch(/\[relay\] relay relay running/);
  expect(processesMentioning(df.dir)).toEqual([]);
});

test('a Python receiver gets a sender of another machine node to node, and again from the same port once that sender is restarted', async () => {
  const c = await cluster();
  await c.startDaemon('gpu');
  const record = path.join(c.dir, 'rec.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      node('camera', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 100000, HZ: 30, FRAME_BYTES: 8192 }\n    outputs: [frame]\n`) +
      node('rec', 'recorder.py', `    env: { RECORD: ${record} }\n    inputs: { frame: camera/frame }\n`),
  );
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);
  const inputs = () => readRecord(record).filter((e) => e.type === 'INPUT').length;
  await waitFor(() => inputs() >= 5, 30_000, 'frames from machine gpu in the Python node');
  const endpoint = /gpu serves other machines on (tcp:\/\/\S+) \(node camera/.exec(c.coordinator!.output())![1];
  expect((await c.dora(['node', 'restart', id, 'camera', '--grace', '500ms'])).code).toBe(0);
  await waitFor(() => readRecord(record).some((e) => e.type === 'NODE_RESTARTED'), 15_000, 'the receiver to be told of the restart');
  const before = inputs();
  await waitFor(() => inputs() >= before + 5, 15_000, 'frames from the restarted sender');
  // the first frames of the new process: its sequence starts again (the first byte of each frame is its sequence's)
  const after = readRecord(record);
  const restartedAt = after.findIndex((e) => e.type === 'NODE_RESTARTED');
  expect(after.slice(restartedAt).find((e) => e.type === 'INPUT')!.value).toBeLessThan(10);
  expect(c.coordinator!.output()).not.toContain('cannot bind');
  expect((await c.dora(['stop', id])).code).toBe(0);
  await waitFor(() => processesMentioning(df.dir).length === 0, 10_000, 'no process of the dataflow');
  console.log(`restarted sender reached again at ${endpoint}`);
});

/** Messages a raw ZeroMQ SUB receives from `endpoint` within a second: without keys, and with keys that are not authorised. */
async function rawClientGets(endpoint: string, serverKey: string): Promise<{ plain: number; unauthorisedKey: number }> {
  const count = async (configure: (s: zmq.Subscriber) => void) => {
    const sub = new zmq.Subscriber();
    sub.linger = 0;
    configure(sub);
    sub.connect(endpoint);
    sub.subscribe();
    let n = 0;
    const until = Date.now() + 1000;
    sub.receiveTimeout = 1000;
    while (Date.now() < until) {
      try {
        await sub.receive();
        n++;
      } catch {
        break;
      }
    }
    sub.close();
    return n;
  };
  const plain = await count(() => undefined);
  const unauthorisedKey = await count((s) => {
    const mine = zmq.curveKeyPair();
    s.curveServerKey = serverKey;
    s.curvePublicKey = mine.publicKey;
    s.curveSecretKey = mine.secretKey;
  });
  return { plain, unauthorisedKey };
}

test('a daemon SIGKILLed mid-stream: the receivers downstream are told, the run fails naming the machine, nothing is left on this side', async () => {
  const c = await cluster();
  const gpu = await c.startDaemon('gpu');
  const df = tempDataflow(
    `nodes:\n` +
      node('camera', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 100000, HZ: 30, FRAME_BYTES: 65536 }\n    outputs: [frame]\n`) +
      node('sink', 'frame-sink.ts', `    env: { RECORD: ${path.join(c.dir, 'sink.jsonl')} }\n    inputs: { frame: camera/frame }\n`) +
      node('shm', 'frame-source.ts', `    env: { COUNT: 100000, HZ: 30, FRAME_BYTES: 65536 }\n    outputs: [frame]\n`) +
      node('local-sink', 'sink.ts', `    inputs: { frame: shm/frame }\n`),
  );
  const record = path.join(c.dir, 'sink.jsonl');
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);
  await waitFor(() => readRecord(record).some((e) => e.type === 'PROGRESS'), 30_000, 'frames from machine gpu');
  const localParts = c.runFolders(c.coordinator!.child.pid);
  expect(localParts).toHaveLength(1);
  const segments = () => fs.readdirSync('/dev/shm').filter((n) => localParts.some((p) => n.startsWith(`dora-ts-${p}-`)));
  expect(segments().length).toBeGreaterThan(0); // shm → local-sink, on this machine, goes through shared memory
  const killedAt = Date.now();
  process.kill(gpu.pid(), 'SIGKILL');
  await waitFor(() => readRecord(record).some((e) => e.type === 'INPUT_CLOSED' || e.type === 'STOP'), 10_000, 'the sink to be told');
  const toldAfter = Date.now() - killedAt;
  expect(toldAfter).toBeLessThan(5000); // a few heartbeats (500 ms each, lost after 2 s)
  const events = readRecord(record).map((e) => e.type);
  expect(events).toContain('INPUT_CLOSED');
  // the rest of the dataflow keeps running until stopped; the run is then reported failed, naming the machine
  const stopped = await c.dora(['stop', id]);
  expect(stopped.stdout).toContain(`dataflow ${id}: failed`);
  const listed = (JSON.parse((await c.dora(['list', '--json'])).stdout) as { id: string; status: string; nodes: { id: string; status: string; detail: string }[] }[]).find((d) => d.id === id)!;
  expect(listed.status).toBe('failed');
  expect(listed.nodes.find((n) => n.id === 'camera')).toMatchObject({ status: 'failed', detail: expect.stringMatching(/^lost with machine gpu \(its daemon has not been heard from for \d+ ms\)$/) });
  expect(listed.nodes.find((n) => n.id === 'sink')!.status).toBe('succeeded');
  // nothing left on this machine: processes, run folders, shared memory
  await waitFor(() => processesMentioning(df.dir).length === 0, 10_000, 'no process of the dataflow');
  expect(c.runFolders(c.coordinator!.child.pid)).toEqual([]);
  expect(segments()).toEqual([]);
  // the machine's daemon comes back and registers again (and reclaims the folder its killed process left)
  await c.startDaemon('gpu', { keyFile: path.join(c.dir, 'gpu.key'), isolate: false });
  expect(c.runFolders()).toEqual([]);
  const daemons = JSON.parse((await c.dora(['daemons', '--json'])).stdout) as { machine: string }[];
  expect(daemons.map((d) => d.machine)).toEqual(['local', 'gpu']);
  console.log(`receiver told ${toldAfter} ms after its sender's machine was killed`);
});

test('dora stop and dora down leave nothing running on any machine; dora node restart reaches a node of another machine', async () => {
  const c = await cluster();
  await c.startDaemon('gpu');
  await c.startDaemon('arm', { isolate: false, labels: 'arch=arm' });
  const df = tempDataflow(
    `nodes:\n` +
      node('a', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 100000, HZ: 30, FRAME_BYTES: 1024 }\n    outputs: [frame]\n`) +
      node('b', 'frame-relay.ts', `    deploy: { labels: { arch: arm } }\n    inputs: { frame: a/frame }\n    outputs: [frame]\n`) +
      node('c', 'sink.ts', `    inputs: { frame: b/frame }\n`),
  );
  const first = idOf((await c.dora(['start', df.file])).stdout);
  const second = idOf((await c.dora(['start', df.file])).stdout);
  await waitFor(() => processesMentioning(df.dir).length >= 6, 20_000, 'six nodes on three machines');
  expect(c.runFolders()).toHaveLength(6); // a part per machine and dataflow
  const stopped = await c.dora(['stop', first]);
  expect(stopped.stdout).toContain(`dataflow ${first}: stopped`);
  const list = JSON.parse((await c.dora(['list', '--json'])).stdout) as { id: string; status: string; nodes: { id: string; machine: string }[] }[];
  expect(list.find((d) => d.id === first)!.nodes.map((n) => n.machine)).toEqual(['gpu', 'arm', 'local']);
  expect(list.find((d) => d.id === second)!.status).toBe('running');
  await waitFor(() => processesMentioning(df.dir).length === 3, 10_000, 'the first dataflow to be gone everywhere');
  // a node of another machine restarted through the coordinator: its machine restarts it, the coordinator sees it
  const restarted = await c.dora(['node', 'restart', second, 'b', '--grace', '500ms']);
  expect(restarted.code).toBe(0);
  let restarts = 0;
  for (let i = 0; i < 100 && restarts === 0; i++) {
    const df2 = (JSON.parse((await c.dora(['list', '--json'])).stdout) as { id: string; nodes: { id: string; restarts: number; status: string }[] }[]).find((d) => d.id === second)!;
    restarts = df2.nodes.find((n) => n.id === 'b')!.restarts;
    if (restarts === 0) await sleep(100);
  }
  expect(restarts).toBe(1);
  await waitFor(() => processesMentioning(df.dir).length === 3, 10_000, 'the restarted node running again');
  const down = await c.dora(['down']);
  expect(down.code).toBe(0);
  await waitFor(() => processesMentioning(df.dir).length === 0, 15_000, 'nothing left');
  expect(c.runFolders()).toEqual([]);
});
