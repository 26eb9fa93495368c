/**
 * The coordinator restarted while a dataflow runs over several machines (issue 13): the
 * daemons keep their nodes running and the data flowing between them, register again with
 * the coordinator that comes back (same state directory and ports), which rebuilds the
 * dataflow from their reports: listed under its name, its remote logs read, stopped on
 * every machine. Real processes; the sink's daemon in namespaces of its own as root.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { keyProof, loadOrCreateKeyPair, registrationContext } from '../coordinator/cluster/keys';
import { CLUSTER_PROTOCOL_VERSION, decode, encode, type CoordinatorMessage, type PartReport, type PartSpec } from '../coordinator/cluster/messages';
import { controlRequest } from '../coordinator/control';
import { NODES, processesMentioning, readRecord, sleep, tempDataflow, waitFor } from './support/dataflow';
import { CAN_ISOLATE, TestCluster } from './support/machines';

jest.setTimeout(90_000);

const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});

const node = (id: string, script: string, extra: string) => `  - id: ${id}\n    path: ${path.join(NODES, script)}\n${extra}`;

interface Listed {
  id: string;
  name: string | null;
  status: string;
  nodes: { id: string; status: string; detail: string | null; machine?: string; pid: number | null }[];
}

test('the coordinator restarted while a dataflow runs: data keeps flowing (cam → gpu → cam), the daemons rejoin, the dataflow is listed, its remote logs read, dora stop and dora down end the nodes of every machine', async () => {
  const c = new TestCluster();
  clusters.push(c);
  await c.startCoordinator();
  const gpu = await c.startDaemon('gpu'); // isolated when root: its own network and /dev/shm
  expect(gpu.isolated).toBe(CAN_ISOLATE);
  // beside the coordinator, serving its data on the address the isolated machine reaches this host at
  const cam = await c.startDaemon('cam', { isolate: false, extra: ['--data-address', c.hostAddress] });
  const record = path.join(c.dir, 'sink.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      node('source', 'frame-source.ts', `    deploy: { machine: cam }\n    env: { COUNT: 100000, HZ: 50, FRAME_BYTES: 1024 }\n    outputs: [frame]\n`) +
      node('relay', 'frame-relay.ts', `    deploy: { machine: gpu }\n    inputs:\n      frame: { source: source/frame, queue_size: 1000 }\n    outputs: [frame]\n`) +
      node('sink', 'frame-sink.ts', `    deploy: { machine: cam }\n    env: { RECORD: ${record} }\n    inputs:\n      frame: { source: relay/frame, queue_size: 1000 }\n`) +
      node('printer', 'printer.ts', `    deploy: { machine: gpu }\n    inputs: { tick: dora/timer/millis/100 }\n`) + // a line every 100 ms
      node('watch', 'printer.ts', `    inputs: { frame: source/frame }\n`), // on the coordinator's own machine
  );
  const started = await c.dora(['start', df.file, '--name', 'cross']);
  expect(started.code).toBe(0);
  const id = /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(started.stdout)![0];
  // a second dataflow, all on machine gpu: `dora down` stops it after the restart
  const ticks = tempDataflow(`nodes:\n${node('ticker', 'printer.ts', `    deploy: { machine: gpu }\n    inputs: { tick: dora/timer/millis/200 }\n`)}`);
  expect((await c.dora(['start', ticks.file, '--name', 'ticks'])).code).toBe(0);
  const received = () => readRecord(record).filter((e) => e.type === 'PROGRESS').at(-1)?.received ?? 0;
  await waitFor(() => received() >= 20, 30_000, 'frames from machine cam, through machine gpu, back on machine cam');
  const list = async () => (JSON.parse((await c.dora(['list', '--json'])).stdout) as Listed[]).find((d) => d.id === id);
  const before = (await list())!;
  const watchPid = before.nodes.find((n) => n.id === 'watch')!.pid!;
  expect(watchPid).toBeGreaterThan(0);
  await waitFor(() => fs.existsSync(path.join(df.dir, 'out', id, 'log_printer.txt')), 5000, 'the printer to print');
  const parts = c.runFolders(); // one per machine: local, cam, gpu; and gpu's of ticks
  expect(parts).toHaveLength(4);

  // the sink's count, sampled from before the kill until after the restart: the longest time it stood still
  const samples: [number, number][] = [];
  const sampler = setInterval(() => samples.push([Date.now(), received()]), 50);
  sampler.unref(); // a failure before clearInterval leaves nothing behind
  const longestStall = () => {
    let longest = 0;
    let since = samples[0][0];
    for (let i = 1; i < samples.length; i++) {
      if (samples[i][1] !== samples[i - 1][1]) since = samples[i][0];
      longest = Math.max(longest, samples[i][0] - since);
    }
    return longest;
  };

  // the coordinator dies without a word
  const oldCoordinator = c.coordinator!;
  oldCoordinator.child.kill('SIGKILL');
  await oldCoordinator.done;
  const atKill = received();
  const killedAt = Date.now();
  const printed = () => [...fs.readFileSync(path.join(df.dir, 'out', id, 'log_printer.txt'), 'utf8').matchAll(/received (\d+)/g)].map((m) => Number(m[1]));
  const printedAtKill = Math.max(0, ...printed());
  // its own machine's node does not outlive it (the node core's watchdog)
  await waitFor(() => !fs.existsSync(`/proc/${watchPid}`), 5000, "the coordinator's own node to end with it");
  const watchGoneMs = Date.now() - killedAt;
  // the other machines' nodes go on, and so does the data between them
  await sleep(1500);
  const duringOutage = received();
  expect(duringOutage).toBeGreaterThan(atKill + 20); // 50 Hz: ~75 frames in 1.5 s

  // the same coordinator comes back: same state directory (keys, authorised daemons), same ports
  fs.rmSync(path.join(c.stateDir, `coordinator-${c.controlPort}.token`), { force: true }); // its token died with it
  const restartAt = Date.now();
  await c.startCoordinator();
  let daemons: string[] = [];
  while (!(daemons.includes('cam') && daemons.includes('gpu')) && Date.now() - restartAt < 10_000) {
    daemons = (JSON.parse((await c.dora(['daemons', '--json'])).stdout) as { machine: string }[]).map((d) => d.machine);
  }
  const rejoinedMs = Date.now() - restartAt;
  expect(daemons).toEqual(['local', 'cam', 'gpu']);
  expect(rejoinedMs).toBeLessThan(5000);
  for (const d of [cam, gpu]) await waitFor(() => d.output().includes('registered with the coordinator again'), 5000, `daemon ${d.machine} to say it rejoined`);

  // the dataflow is the new coordinator's: by name, with every machine's nodes
  const taken = (await list())!;
  expect(taken).toMatchObject({ id, name: 'cross', status: 'running' });
  expect(taken.nodes.map((n) => [n.id, n.machine, n.status])).toEqual([
    ['source', 'cam', 'running'],
    ['relay', 'gpu', 'running'],
    ['sink', 'cam', 'running'],
    ['printer', 'gpu', 'running'],
    ['watch', 'local', 'failed'],
  ]);
  expect(taken.nodes.find((n) => n.id === 'watch')!.detail).toMatch(/^lost with machine local \(its nodes ran in the coordinator's process, which ended/);
  // what the gpu part said while the coordinator was away (its printer's lines) was held, then delivered
  const token = fs.readFileSync(path.join(c.stateDir, `coordinator-${c.controlPort}.token`), 'utf8').trim();
  const followed = await controlRequest({ cmd: 'follow', dataflow: id, from: 0 }, { port: c.controlPort, token });
  const lines = (followed.lines ?? []).flatMap((l) => /\[printer\] received (\d+)/.exec(l)?.[1] ?? []).map(Number);
  expect(lines.length).toBeGreaterThan(10); // ~10 a second while it was down
  expect(lines[0]).toBeLessThanOrEqual(printedAtKill + 1);
  expect(lines).toEqual(lines.map((_, i) => lines[0] + i)); // none missing
  const stillFlowing = received();
  await waitFor(() => received() > stillFlowing + 10, 5000, 'frames after the restart');
  clearInterval(sampler);
  const stall = longestStall(); // the sink reports every 10 frames: 200 ms at 50 Hz
  expect(stall).toBeLessThan(2000);
  // logs stay on their machines: the new coordinator fetches them from there
  const relayLog = await c.dora(['logs', 'cross', 'relay']);
  expect(relayLog.code).toBe(0);
  expect(relayLog.stdout).toMatch(/relay relay running \(pid \d+\)/);
  const all = await c.dora(['logs', id]);
  expect(all.stdout).toMatch(/\[relay\] relay relay running/);
  // the log of the node that ended with the first coordinator is still on this machine
  expect((await c.dora(['logs', 'cross', 'watch'])).stdout).toMatch(/^\S+ received 1\n/);

  expect((JSON.parse((await c.dora(['list', '--json'])).stdout) as Listed[]).map((d) => [d.name, d.status])).toEqual([
    ['cross', 'running'],
    ['ticks', 'running'],
  ]);

  // an authorised daemon cannot claim a part of it that is not its own
  const keyOf = (name: string) => loadOrCreateKeyPair(path.join(c.dir, `${name}.key`)).publicKey;
  const placement = { source: 'cam', relay: 'gpu', sink: 'cam', printer: 'gpu', watch: 'local' };
  const coordinatorKey = fs.readFileSync(c.coordinatorKeyFile, 'utf8').trim();
  const spec: PartSpec = { dataflow: id, name: 'cross', yaml: fs.readFileSync(df.file, 'utf8'), file: df.file, workingDir: df.dir, placement, peerKeys: [keyOf('cam'), keyOf('gpu'), coordinatorKey] };
  const mallory = await c.daemonKey('mallory');
  const claims = await registerWithReports(c, mallory.file, 'mallory', [
    { ...spec, placement: { ...placement, sink: 'mallory' }, peerKeys: [keyOf('cam'), keyOf('gpu'), coordinatorKey, mallory.publicKey] }, // moves a node to itself
    spec, // the dataflow as it is: nothing of it runs on mallory
  ]);
  expect(claims).toEqual({
    t: 'registered',
    machine: 'mallory',
    refused: [
      { dataflow: id, why: 'its placement puts node "sink" on "mallory", the dataflow\'s on cam' },
      { dataflow: id, why: 'no node of it is placed on machine mallory' },
    ],
  });
  // nor pose as another machine's daemon by stating that daemon's key
  const posing = await registerWithReports(c, mallory.file, 'gpu2', [spec], keyOf('gpu'));
  expect(posing).toEqual({ t: 'refused', message: `this daemon did not prove it holds the secret key of the public key it states (${keyOf('gpu')})` });
  expect((await list())!.nodes.map((n) => [n.id, n.machine, n.status])).toEqual(taken.nodes.map((n) => [n.id, n.machine, n.status]));

  // stopped by name: every machine's nodes end and report how
  const stopped = await c.dora(['stop', 'cross']);
  expect(stopped.code).toBe(0);
  expect(stopped.stdout).toContain(`dataflow ${id}: failed`); // its `local` part was lost with the first coordinator
  const after = (await list())!;
  expect(after.status).toBe('failed');
  // the source is stopped; the relay and sink may end first on their input closing (succeeded)
  expect(after.nodes.map((n) => [n.id, n.status === 'succeeded' ? 'stopped' : n.status])).toEqual([
    ['source', 'stopped'],
    ['relay', 'stopped'],
    ['sink', 'stopped'],
    ['printer', 'stopped'],
    ['watch', 'failed'],
  ]);
  expect(after.nodes.find((n) => n.id === 'source')!.status).toBe('stopped');
  const end = readRecord(record).find((e) => e.type === 'END')!;
  // not one frame lost or reordered while the coordinator was away
  expect(end).toMatchObject({ corrupt: 0, outOfOrder: 0, firstSeq: 0, lastSeq: end.received - 1 });
  expect(end.received).toBeGreaterThan(duringOutage);

  await waitFor(() => processesMentioning(df.dir).length === 0, 10_000, 'no process of the dataflow');
  expect(processesMentioning(ticks.dir).length).toBeGreaterThan(0);
  // `dora down` stops what is left, on every machine
  expect((await c.dora(['down'])).code).toBe(0);
  await c.coordinator!.done;
  // nothing left on any machine: processes, run folders, shared memory here and in gpu's namespace
  await waitFor(() => processesMentioning(ticks.dir).length === 0, 10_000, 'no process of the second dataflow');
  await waitFor(() => c.runFolders().length === 0, 5000, 'no run folder');
  const ours = (names: string[]) => names.filter((n) => parts.some((p) => n.startsWith(`dora-ts-${p}-`)));
  expect(ours(fs.readdirSync('/dev/shm'))).toEqual([]);
  if (gpu.isolated) {
    const listing = spawnSync('nsenter', ['-t', String(gpu.pid()), '-m', 'ls', '/dev/shm'], { encoding: 'utf8' });
    expect(listing.status).toBe(0);
    expect(ours(listing.stdout.split('\n').filter((l) => l.length > 0))).toEqual([]);
  }
  console.log(
    `coordinator restart: its own node gone ${watchGoneMs} ms after the kill; ${atKill} frames before the kill, ${duringOutage - atKill} while it was down (1.5 s), daemons rejoined ${rejoinedMs} ms after the restart began, ` +
      `${end.received} frames in all, none missing, the sink's count never still for more than ${stall} ms (${samples.length} samples over kill and restart); printer lines ${lines[0]}..${lines.at(-1)} followed (${printedAtKill} printed at the kill); ${[cam, gpu].map((d) => `${d.machine} ${d.output().match(/registered with the coordinator again after \d+ ms[^\n]*/)?.[0]}`).join('; ')}; killed ${restartAt - killedAt} ms before the restart`,
  );
});

/** Registers as `machine` with a raw DEALER (CURVE, an authorised key), reporting parts with these specs; resolves with the answer. */
async function registerWithReports(c: TestCluster, keyFile: string, machine: string, specs: PartSpec[], statedKey?: string): Promise<CoordinatorMessage | undefined> {
  const keys = loadOrCreateKeyPair(keyFile);
  const publicKey = statedKey ?? keys.publicKey;
  const proof = keyProof(keys, fs.readFileSync(c.coordinatorKeyFile, 'utf8').trim(), registrationContext(machine, publicKey));
  const dealer = new zmq.Dealer();
  dealer.linger = 0;
  dealer.receiveTimeout = 5000;
  dealer.curveServerKey = fs.readFileSync(c.coordinatorKeyFile, 'utf8').trim();
  dealer.curvePublicKey = keys.publicKey;
  dealer.curveSecretKey = keys.secretKey;
  dealer.connect(`tcp://127.0.0.1:${c.clusterPort}`);
  const parts: PartReport[] = specs.map((spec) => ({ spec, logDir: '/tmp', startedAt: new Date().toISOString(), nodes: [], ready: true, started: true, stopping: false }));
  try {
    await dealer.send(encode({ t: 'register', machine, labels: {}, version: CLUSTER_PROTOCOL_VERSION, pid: process.pid, dataAddress: '127.0.0.9', publicKey, proof, parts }));
    const [frame] = await dealer.receive();
    return decode<CoordinatorMessage>(frame);
  } finally {
    dealer.close();
  }
}

test('a daemon declared lost that comes back is not taken back into its dataflow: its part there is stopped', async () => {
  const c = new TestCluster();
  clusters.push(c);
  await c.startCoordinator();
  const gpu = await c.startDaemon('gpu', { isolate: false });
  const df = tempDataflow(
    `nodes:\n` +
      node('camera', 'frame-source.ts', `    deploy: { machine: gpu }\n    env: { COUNT: 100000, HZ: 30, FRAME_BYTES: 1024 }\n    outputs: [frame]\n`) +
      node('view', 'sink.ts', `    inputs: { frame: camera/frame }\n`),
  );
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(started.stdout)![0];
  await waitFor(() => processesMentioning(df.dir).length >= 2, 20_000, 'both nodes');
  // the daemon stops answering (its nodes run on) until the coordinator declares its machine lost
  process.kill(gpu.pid(), 'SIGSTOP');
  try {
    await waitFor(() => c.coordinator!.output().includes('machine gpu lost'), 10_000, 'machine gpu to be declared lost');
  } finally {
    process.kill(gpu.pid(), 'SIGCONT');
  }
  await waitFor(() => gpu.output().includes('registered with the coordinator again'), 10_000, 'the daemon to register again');
  expect(gpu.output()).toMatch(new RegExp(`the coordinator did not take over dataflow ${id}: machine gpu was lost from it \\(its daemon has not been heard from for \\d+ ms\\): its part there is stopped`));
  // its camera, counted failed with the machine, does not run on unseen
  await waitFor(() => processesMentioning(df.dir).length === 0, 10_000, "the lost machine's node to be stopped");
  const listed = (JSON.parse((await c.dora(['list', '--json'])).stdout) as Listed[]).find((d) => d.id === id)!;
  expect(listed.status).toBe('failed');
  expect(listed.nodes.find((n) => n.id === 'camera')!.detail).toMatch(/^lost with machine gpu/);
  await waitFor(() => c.runFolders().length === 0, 5000, 'no run folder');
});

test('a dataflow that ends while the coordinator is down is reported, with every machine\'s result, to the coordinator that comes back', async () => {
  const c = new TestCluster();
  clusters.push(c);
  await c.startCoordinator();
  const gpu = await c.startDaemon('gpu');
  const cam = await c.startDaemon('cam', { isolate: false, extra: ['--data-address', c.hostAddress] });
  const record = path.join(c.dir, 'sink.jsonl');
  const count = 100;
  const df = tempDataflow(
    `nodes:\n` +
      node('source', 'frame-source.ts', `    deploy: { machine: cam }\n    env: { COUNT: ${count}, HZ: 50, FRAME_BYTES: 1024 }\n    outputs: [frame]\n`) +
      node('sink', 'frame-sink.ts', `    deploy: { machine: gpu }\n    env: { RECORD: ${record} }\n    inputs:\n      frame: { source: source/frame, queue_size: ${count} }\n`),
  );
  const started = await c.dora(['start', df.file, '--name', 'brief']);
  expect(started.code).toBe(0);
  const id = /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(started.stdout)![0];
  await waitFor(() => readRecord(record).some((e) => e.type === 'PROGRESS'), 30_000, 'frames on machine gpu');
  c.coordinator!.child.kill('SIGKILL');
  await c.coordinator!.done;
  // the dataflow ends meanwhile: its end of stream crosses machines without the coordinator
  await waitFor(() => readRecord(record).some((e) => e.type === 'END'), 10_000, 'the sink to finish');
  await waitFor(() => processesMentioning(df.dir).length === 0, 10_000, 'both nodes to end');
  expect(readRecord(record).find((e) => e.type === 'END')).toMatchObject({ received: count, outOfOrder: 0, corrupt: 0 });
  fs.rmSync(path.join(c.stateDir, `coordinator-${c.controlPort}.token`), { force: true });
  await c.startCoordinator();
  for (const d of [cam, gpu]) await waitFor(() => d.output().includes('registered with the coordinator again'), 10_000, `daemon ${d.machine} to rejoin`);
  // both machines reported their ended parts: the dataflow is known again, with its outcome
  let listed: Listed | undefined;
  for (let i = 0; i < 50 && (listed === undefined || listed.status === 'running'); i++) {
    listed = (JSON.parse((await c.dora(['list', '--json'])).stdout) as Listed[]).find((d) => d.id === id);
    if (listed === undefined || listed.status === 'running') await sleep(100);
  }
  expect(listed).toMatchObject({ id, name: 'brief', status: 'succeeded' });
  expect(listed!.nodes.map((n) => [n.id, n.machine, n.status])).toEqual([
    ['source', 'cam', 'succeeded'],
    ['sink', 'gpu', 'succeeded'],
  ]);
  expect(c.runFolders()).toEqual([]);
});

test('a machine that does not come back after the coordinator restarted is lost: its nodes are failed, their receivers told', async () => {
  const c = new TestCluster();
  clusters.push(c);
  await c.startCoordinator();
  const cam = await c.startDaemon('cam', { isolate: false });
  await c.startDaemon('gpu', { isolate: false });
  const record = path.join(c.dir, 'sink.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      node('source', 'frame-source.ts', `    deploy: { machine: cam }\n    env: { COUNT: 100000, HZ: 30, FRAME_BYTES: 1024 }\n    outputs: [frame]\n`) +
      node('sink', 'frame-sink.ts', `    deploy: { machine: gpu }\n    env: { RECORD: ${record} }\n    inputs: { frame: source/frame }\n`),
  );
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(started.stdout)![0];
  await waitFor(() => readRecord(record).some((e) => e.type === 'PROGRESS'), 30_000, 'frames on machine gpu');
  // the coordinator and machine cam's daemon die together; only the coordinator comes back
  c.coordinator!.child.kill('SIGKILL');
  process.kill(cam.pid(), 'SIGKILL');
  await c.coordinator!.done;
  fs.rmSync(path.join(c.stateDir, `coordinator-${c.controlPort}.token`), { force: true });
  const restartAt = Date.now();
  await c.startCoordinator();
  const list = async () => (JSON.parse((await c.dora(['list', '--json'])).stdout) as Listed[]).find((d) => d.id === id);
  let source: Listed['nodes'][number] | undefined;
  while (source?.status !== 'failed' && Date.now() - restartAt < 20_000) {
    source = (await list())?.nodes.find((n) => n.id === 'source');
    if (source?.status !== 'failed') await sleep(200);
  }
  const lostAfter = Date.now() - restartAt;
  expect(source).toMatchObject({ status: 'failed', machine: 'cam', detail: "lost with machine cam (its daemon did not report its part within 10 s of the coordinator's restart)" });
  expect(lostAfter).toBeGreaterThanOrEqual(9000);
  await waitFor(() => readRecord(record).some((e) => e.type === 'INPUT_CLOSED'), 5000, 'the sink on gpu to be told');
  const stopped = await c.dora(['stop', id]);
  expect(stopped.stdout).toContain(`dataflow ${id}: failed`);
  await waitFor(() => processesMentioning(df.dir).length === 0, 10_000, 'no process of the dataflow');
  console.log(`machine cam, gone with the coordinator, declared lost ${lostAfter} ms after the restart began`);
});
