/**
 * Benchmark systems across machines (issue 13), simulated on this host over loopback TCP:
 *
 * - `cross-ts` (and `cross-c`): dora-ts TypeScript → TypeScript (C → C) with the sender on
 *   the coordinator's own daemon and the receiver on a second daemon (`dora daemon
 *   --machine-id b`): the payload goes node to node over TCP with CURVE
 *   (docs/architecture.md, "Several machines").
 * - `zmq-ts-curve`: raw zeromq.js PUSH → PULL between two processes over TCP with CURVE,
 *   the baseline the cross-daemon numbers are held against.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as zmq from 'zeromq';

export interface BenchRun {
  received: number;
  latenciesNs: number[];
  spanNs: number;
}

type Mode = 'latency' | 'throughput';

export interface ClusterSystemOptions {
  readonly cli: string;
  readonly tsx: string;
  readonly env: (mode: Mode, size: number, count: number) => Record<string, string>;
  readonly node: (name: string) => string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function start(cmd: string, argv: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; done: Promise<number | null> } {
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out, done: new Promise((r) => child.on('close', (code) => r(code))) };
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * A port free now on loopback, chosen by the system (a random one in a fixed range could be
 * in use: the range overlaps the ephemeral ports of outgoing connections).
 */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A coordinator (machine `local`) and a second daemon (machine `b`) on loopback, CURVE on; stopped with close(). */
async function twoMachines(cli: string, dir: string) {
  const port = await freePort();
  let clusterPort = await freePort();
  while (clusterPort === port) clusterPort = await freePort();
  const env = { DORA_STATE_DIR: path.join(dir, 'state'), DORA_RUNTIME_DIR: path.join(dir, 'run'), DORA_COORDINATOR_PORT: String(port) };
  fs.mkdirSync(env.DORA_STATE_DIR, { recursive: true, mode: 0o700 });
  fs.mkdirSync(env.DORA_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  const coordinator = start(process.execPath, [cli, 'coordinator', '--bind', '127.0.0.1', '--cluster-port', String(clusterPort)], env);
  await until('the coordinator', () => coordinator.output().includes('cluster listening') && fs.existsSync(path.join(env.DORA_STATE_DIR, `coordinator-${port}.token`))).catch((err: Error) => {
    coordinator.child.kill('SIGKILL');
    throw new Error(`${err.message}: ${coordinator.output().slice(-1000)}`);
  });
  const keyFile = path.join(dir, 'b.key');
  const key = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(path.join(path.dirname(cli), '../coordinator/cluster/keys.js'))}).loadOrCreateKeyPair(${JSON.stringify(keyFile)}).publicKey)`], { encoding: 'utf8' }).stdout.trim();
  // `--`: a Z85 key may begin with '-' (1 in 85), which would read as an option
  spawnSync(process.execPath, [cli, 'cluster', 'authorize', '--', key], { env: { ...process.env, ...env } });
  const daemon = start(process.execPath, [cli, 'daemon', '--machine-id', 'b', '--coordinator-addr', `127.0.0.1:${clusterPort}`, '--key-file', keyFile, '--data-address', '127.0.0.1'], env);
  try {
    await until('the second daemon', () => daemon.output().includes('registered with the coordinator'));
  } catch (err) {
    // leave nothing behind: the coordinator and the daemon would outlive the benchmark
    coordinator.child.kill('SIGKILL');
    daemon.child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}: ${daemon.output().slice(-1000)}`);
  }
  return {
    env,
    async close() {
      spawnSync(process.execPath, [cli, 'down'], { env: { ...process.env, ...env } });
      await Promise.race([coordinator.done, sleep(5000)]);
      daemon.child.kill('SIGTERM');
      await Promise.race([daemon.done, sleep(5000)]);
      coordinator.child.kill('SIGKILL');
      daemon.child.kill('SIGKILL');
    },
  };
}

export function crossDaemon(o: ClusterSystemOptions, id = 'cross-ts', label = 'dora-ts TS → TS across two daemons (TCP, CURVE)', sender = o.node('sender.ts'), receiver = o.node('receiver.ts')) {
  return {
    id,
    label,
    unavailable: () => (fs.existsSync(o.cli) ? undefined : 'dist/ is missing: run npm run build'),
    async run(dir: string, mode: Mode, size: number, count: number): Promise<BenchRun> {
      const cluster = await twoMachines(o.cli, fs.mkdtempSync(path.join(dir, 'cluster-')));
      try {
        const result = path.join(dir, `${id}-${mode}-${size}.json`);
        const file = path.join(dir, `${id}-${mode}-${size}.yml`);
        fs.writeFileSync(
          file,
          `nodes:
  - id: sender
    path: ${sender}
    env: ${JSON.stringify(o.env(mode, size, count))}
    outputs: [data]
  - id: receiver
    path: ${receiver}
    deploy: { machine: b }
    env: { RESULT: ${JSON.stringify(result)} }
    inputs:
      data: { source: sender/data, queue_size: ${count + 100} }
`,
        );
        const r = spawnSync(process.execPath, [o.cli, 'start', file, '--attach'], { env: { ...process.env, ...cluster.env }, encoding: 'utf8', maxBuffer: 64 << 20 });
        if (r.status !== 0 || !fs.existsSync(result)) throw new Error(`cross-daemon run failed (${mode}, ${size} B):\n${r.stderr.slice(-2000)}`);
        return JSON.parse(fs.readFileSync(result, 'utf8')) as BenchRun;
      } finally {
        await cluster.close();
      }
    },
  };
}

export function rawZmqCurve(o: ClusterSystemOptions, script: string) {
  return {
    id: 'zmq-ts-curve',
    label: 'raw zeromq.js TCP + CURVE',
    unavailable: () => undefined,
    async run(dir: string, mode: Mode, size: number, count: number): Promise<BenchRun> {
      const result = path.join(dir, `zmq-ts-curve-${mode}-${size}.json`);
      const endpoint = `tcp://127.0.0.1:${await freePort()}`;
      const keys = zmq.curveKeyPair();
      const e = { ...o.env(mode, size, count), RESULT: result, CURVE_SERVER_PUBLIC: keys.publicKey, CURVE_SERVER_SECRET: keys.secretKey };
      const receiver = start(o.tsx, [script, 'recv', endpoint], e);
      await sleep(300);
      const sender = start(o.tsx, [script, 'send', endpoint], e);
      const [sent, received] = await Promise.all([sender.done, receiver.done]);
      if (sent !== 0 || received !== 0) throw new Error(`raw zeromq.js CURVE failed (${mode}, ${size} B):\n${sender.output()}${receiver.output()}`);
      return JSON.parse(fs.readFileSync(result, 'utf8')) as BenchRun;
    },
  };
}
