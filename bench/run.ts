/**
 * `npm run bench`: sender → receiver latency and throughput per payload size, for
 * dora-ts's language pairs and, in the same run, for the baselines: raw ZeroMQ between
 * two processes (zeromq.js and libzmq), dora 1.1 itself, and the peers a user might pick
 * instead, iceoryx2 and zenoh (Python → Python each: their PyPI packages, pinned in PYPI,
 * in a virtual environment this script creates under bench/.dora-venv when missing).
 *
 *   npm run bench                            every system, every size, once (several minutes)
 *   npm run bench -- --runs 3                medians of three runs (what docs/benchmarks.md quotes)
 *   npm run bench -- --quick                 a few seconds: smoke test, numbers are not meaningful
 *   npm run bench -- --systems ts,py,dora    chosen systems (see SYSTEMS); --sizes 8,4096 chosen sizes
 *   npm run bench -- --out DIR               where results.md, results.csv and latency.svg go (default bench/results)
 *   npm run bench -- --replot DIR            redraws DIR/latency.svg from DIR/results.csv
 *
 * Latency: WARMUP messages, then 200 paced at 100 Hz; one-way, from send to receive, both
 * timestamps from CLOCK_MONOTONIC (shared by every process on the machine). Throughput:
 * back to back, receiver queue large enough to drop nothing, every message counted; the
 * rate is from the first counted message's send to the last one's receipt.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { crossDaemon, rawZmqCurve } from './cluster';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const BUILD = path.join(__dirname, 'build');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
/** The benchmark's own virtual environment: every PyPI package it compares against. */
const DORA_VENV = path.join(__dirname, '.dora-venv');
/** Those packages, per system, pinned to a minor version (the labels quote it): installed on demand. */
const PYPI = {
  dora: { version: '1.1', packages: ['dora-rs-cli', 'dora-rs'], with: ['pyarrow', 'numpy'] },
  iceoryx2: { version: '0.10', packages: ['iceoryx2'], with: [] },
  zenoh: { version: '1.10', packages: ['eclipse-zenoh'], with: [] },
} as const;

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = flag('--quick');
const SIZES = (option('--sizes') ?? (quick ? '8,65536' : '8,4096,65536,1048576,4194304,16777216,40000000')).split(',').map(Number);
const RUNS = Number(option('--runs') ?? 1);
const LATENCY_COUNT = quick ? 20 : 200;
const WARMUP = quick ? 3 : 100; // 1 s at 100 Hz: also covers receivers still starting up (dora has no start barrier)
const RATE = 100;
const OUT = path.resolve(option('--out') ?? path.join(__dirname, 'results'));

interface Run {
  received: number;
  latenciesNs: number[];
  spanNs: number;
  /** Peak resident memory of the dataflow's daemon (the `dora run` process), bytes. */
  daemonPeakRss?: number;
  /** What a run observed that the numbers do not show (how many of zenoh's payloads came through shared memory): listed in results.md. */
  notes?: string[];
}

type Mode = 'latency' | 'throughput';

interface System {
  readonly id: string;
  readonly label: string;
  /** Why it cannot run here, or undefined. */
  unavailable(): string | undefined;
  run(dir: string, mode: Mode, size: number, count: number): Promise<Run>;
}

// ---------------------------------------------------------------------------
// Running processes

function env(mode: Mode, size: number, count: number): Record<string, string> {
  return { MODE: mode, SIZE: String(size), COUNT: String(count), RATE: String(RATE), WARMUP: String(WARMUP) };
}

/** Runs a command; polls its peak RSS (VmHWM) while it runs. */
function run(cmd: string, argv: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; spawned?: (child: ChildProcess) => void } = {}): Promise<{ code: number | null; stderr: string; peakRss: number }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    options.spawned?.(child);
    let stderr = '';
    let peakRss = 0;
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => {
      try {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (hwm) peakRss = Math.max(peakRss, Number(hwm[1]) * 1024);
      } catch {
        // exited
      }
    }, 50);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, stderr, peakRss });
    });
  });
}

const readResult = (file: string): Run => JSON.parse(fs.readFileSync(file, 'utf8')) as Run;

/** A dora-ts dataflow: `sender` → `receiver`, each a node file or binary. */
function doraTs(id: string, label: string, sender: string, receiver: string, senderEnv: Record<string, string> = {}): System {
  return {
    id,
    label,
    unavailable: () => (fs.existsSync(CLI) ? (needsPython(sender, receiver) && !fs.existsSync(PYTHON) ? 'no .venv: run scripts/setup.sh' : undefined) : 'dist/ is missing: run npm run build'),
    async run(dir, mode, size, count) {
      const result = path.join(dir, `${id}-${mode}-${size}.json`);
      const file = path.join(dir, `${id}-${mode}-${size}.yml`);
      const e = { ...env(mode, size, count), ...senderEnv };
      fs.writeFileSync(
        file,
        `nodes:
  - id: sender
    path: ${sender}
    env: ${JSON.stringify(e)}
    outputs: [data]
  - id: receiver
    path: ${receiver}
    env: { RESULT: ${JSON.stringify(result)} }
    inputs:
      data: { source: sender/data, queue_size: ${count + 100} }
`,
      );
      const r = await run(process.execPath, [CLI, 'run', file, '--out', path.join(dir, 'out')], { env: { DORA_PYTHON: PYTHON } });
      if (r.code !== 0) throw new Error(`${label} failed (${mode}, ${size} B):\n${r.stderr}`);
      return { ...readResult(result), daemonPeakRss: r.peakRss };
    },
  };
}

const needsPython = (...files: string[]) => files.some((f) => f.endsWith('.py'));

/** Raw ZeroMQ PUSH → PULL between two processes, no middleware. */
function rawZmq(id: string, label: string, command: string[]): System {
  return {
    id,
    label,
    unavailable: () => (fs.existsSync(command[0]) ? undefined : `${command[0]} is missing`),
    async run(dir, mode, size, count) {
      const result = path.join(dir, `${id}-${mode}-${size}.json`);
      const endpoint = `ipc://@dora-bench-${process.pid}-${id}-${mode}-${size}`;
      const e = { ...env(mode, size, count), RESULT: result };
      const receiver = run(command[0], [...command.slice(1), 'recv', endpoint], { env: e });
      await new Promise((r) => setTimeout(r, 300)); // let it bind
      const sender = await run(command[0], [...command.slice(1), 'send', endpoint], { env: e });
      const recv = await receiver;
      if (sender.code !== 0 || recv.code !== 0) throw new Error(`${label} failed (${mode}, ${size} B):\n${sender.stderr}${recv.stderr}`);
      return readResult(result);
    },
  };
}

/** dora 1.1 itself, running the same Python sender/receiver with its own `dora run`. */
function dora(): System {
  const bin = path.join(DORA_VENV, 'bin');
  return {
    id: 'dora',
    label: `dora ${PYPI.dora.version} Python → Python`,
    unavailable: () => pypiUnavailable('dora'),
    async run(dir, mode, size, count) {
      const result = path.join(dir, `dora-${mode}-${size}.json`);
      const file = path.join(dir, `dora-${mode}-${size}.yml`);
      const e = { ...env(mode, size, count), LINGER: '2' }; // dora drops in-flight messages when the sender exits at once
      fs.writeFileSync(
        file,
        `nodes:
  - id: sender
    path: ${path.join(__dirname, 'nodes', 'sender.py')}
    env: ${JSON.stringify(e)}
    outputs: [data]
  - id: receiver
    path: ${path.join(__dirname, 'nodes', 'receiver.py')}
    env: { RESULT: ${JSON.stringify(result)} }
    inputs:
      data: { source: sender/data, queue_size: ${count + 100}, queue_policy: backpressure }
`,
      );
      const before = new Set(shmEntries());
      const r = await run(path.join(bin, 'dora'), ['run', file], { cwd: dir, env: { PATH: `${bin}:${process.env.PATH}`, VIRTUAL_ENV: DORA_VENV } });
      // dora 1.1 (its zenoh transport) leaves a /dev/shm/<n>.zenoh file behind after each run: remove what this run left.
      for (const entry of shmEntries()) if (!before.has(entry) && entry.endsWith('.zenoh')) fs.rmSync(path.join('/dev/shm', entry), { force: true });
      if (r.code !== 0 || !fs.existsSync(result)) throw new Error(`dora 1.1 failed (${mode}, ${size} B):\n${r.stderr.slice(-2000)}`);
      return readResult(result);
    },
  };
}

const shmEntries = (): string[] => {
  try {
    return fs.readdirSync('/dev/shm');
  } catch {
    return [];
  }
};

/**
 * Why a system's PyPI packages (PYPI) cannot be had, or undefined once they are in the
 * benchmark's virtual environment (created, and the packages installed, when missing).
 */
function pypiUnavailable(system: keyof typeof PYPI): string | undefined {
  const { version, packages, with: others } = PYPI[system];
  const specs = [...packages.map((p) => `${p}~=${version}.0`), ...others];
  const pip = path.join(DORA_VENV, 'bin', 'pip');
  const quiet = { stdio: 'ignore' as const, env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } };
  // Installed already (checked against the pins without asking PyPI, so this works offline)?
  if (fs.existsSync(pip) && spawnSync(pip, ['install', '-q', '--no-index', ...specs], quiet).status === 0) return undefined;
  console.error(`installing ${specs.join(' ')} into ${path.relative(ROOT, DORA_VENV)} (for ${system})...`);
  if (!fs.existsSync(pip) && spawnSync('python3', ['-m', 'venv', DORA_VENV], { stdio: 'inherit' }).status !== 0) return `could not create ${DORA_VENV} (python3 -m venv)`;
  const install = spawnSync(pip, ['install', '-q', '--retries', '2', '--timeout', '20', ...specs], { stdio: ['ignore', 'inherit', 'pipe'], env: quiet.env, encoding: 'utf8' });
  if (install.status === 0) return undefined;
  const why = (install.stderr ?? '').trim().split('\n').filter((l) => /error/i.test(l)).pop() ?? `pip exited with ${install.status}`;
  return `could not install ${specs.join(' ')} from PyPI (${why.trim()})`;
}

/** A free TCP port on the loopback interface (for zenoh's endpoint). */
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

/**
 * A peer measured Python → Python outside dora: `bench/peers/<script> recv` then, once the
 * receiver created its READY file, `<script> send`, both with the benchmark's environment
 * (see bench/peers/common.py) plus what `setup` returns; `cleanup` removes whatever the
 * run left on the machine, whether it succeeded or not.
 */
function peer(
  id: 'iceoryx2' | 'zenoh',
  label: string,
  script: string,
  setup: (tag: string, dir: string) => Promise<Record<string, string>>,
  cleanup: (tag: string, dir: string, shmBefore: Set<string>) => void,
): System {
  const python = path.join(DORA_VENV, 'bin', 'python');
  return {
    id,
    label,
    unavailable: () => pypiUnavailable(id),
    async run(dir, mode, size, count) {
      const tag = `${id}-${mode}-${size}-${process.pid}-${Date.now()}`;
      const result = path.join(dir, `${tag}.json`);
      const ready = path.join(dir, `${tag}.ready`);
      const shmBefore = new Set(shmEntries());
      const e = { ...env(mode, size, count), RESULT: result, READY: ready, VIRTUAL_ENV: DORA_VENV, ...(await setup(tag, dir)) };
      const file = path.join(__dirname, 'peers', script);
      let receiverProcess: ChildProcess | undefined;
      let receiverDone = false;
      try {
        const receiver = run(python, [file, 'recv'], { env: e, spawned: (c) => (receiverProcess = c) }).finally(() => (receiverDone = true));
        for (const end = Date.now() + 30_000; !fs.existsSync(ready) && !receiverDone && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
        if (!fs.existsSync(ready)) {
          if (!receiverDone) receiverProcess?.kill('SIGKILL');
          throw new Error(`${label}: the receiver did not get ready (${mode}, ${size} B):\n${(await receiver).stderr.slice(-2000)}`);
        }
        const sender = await run(python, [file, 'send'], { env: e });
        if (sender.code !== 0 && !receiverDone) receiverProcess?.kill('SIGKILL'); // it would wait for messages that will not come
        const recv = await receiver;
        if (sender.code !== 0 || recv.code !== 0 || !fs.existsSync(result)) throw new Error(`${label} failed (${mode}, ${size} B):\n${sender.stderr.slice(-2000)}${recv.stderr.slice(-2000)}`);
        return readResult(result);
      } finally {
        cleanup(tag, dir, shmBefore);
      }
    },
  };
}

/**
 * iceoryx2: its services' files go under a root folder and a /dev/shm prefix of this run's
 * own (a node leaves /dev/shm/<prefix>…global_mgmt behind, and the folders stay): all removed.
 * Kept short: the listener's socket, <root><prefix><30 digits>.event, must fit in 107 bytes.
 */
let iceoryx2Runs = 0;
const iceoryx2Files = (dir: string) => ({ root: path.join(dir, `iox2-${iceoryx2Runs}`) + '/', prefix: `iox2_db${process.pid}_${iceoryx2Runs}_` });
const iceoryx2 = (): System =>
  peer(
    'iceoryx2',
    `iceoryx2 ${PYPI.iceoryx2.version} Python → Python`,
    'iceoryx2_pubsub.py',
    async (_tag, dir) => {
      iceoryx2Runs++;
      const { root, prefix } = iceoryx2Files(dir);
      return { IOX2_ROOT: root, IOX2_PREFIX: prefix };
    },
    (_tag, dir) => {
      const { root, prefix } = iceoryx2Files(dir);
      fs.rmSync(root, { recursive: true, force: true });
      for (const entry of shmEntries()) if (entry.startsWith(prefix)) fs.rmSync(path.join('/dev/shm', entry), { force: true });
    },
  );

/** zenoh: two peers on a free loopback port; its shared-memory pools leave /dev/shm/<n>.zenoh files behind: removed. */
const zenoh = (): System =>
  peer(
    'zenoh',
    `zenoh ${PYPI.zenoh.version} Python → Python`,
    'zenoh_pubsub.py',
    async () => ({ ZENOH_ENDPOINT: `tcp/127.0.0.1:${await freePort()}` }),
    (_tag, _dir, before) => {
      for (const entry of shmEntries()) if (!before.has(entry) && entry.endsWith('.zenoh')) fs.rmSync(path.join('/dev/shm', entry), { force: true });
    },
  );

const node = (name: string) => path.join(__dirname, 'nodes', name);
const SYSTEMS: Record<string, System> = {
  ts: doraTs('ts', 'dora-ts TypeScript → TypeScript', node('sender.ts'), node('receiver.ts')),
  'ts-in-place': doraTs('ts-in-place', 'dora-ts TS → TS, sender fills in place', node('sender.ts'), node('receiver.ts'), { IN_PLACE: '1' }),
  py: doraTs('py', 'dora-ts Python → Python', node('sender.py'), node('receiver.py')),
  c: doraTs('c', 'dora-ts C → C', path.join(BUILD, 'sender'), path.join(BUILD, 'receiver')),
  'c-py': doraTs('c-py', 'dora-ts C → Python', path.join(BUILD, 'sender'), node('receiver.py')),
  'zmq-ts': rawZmq('zmq-ts', 'raw zeromq.js', [TSX, path.join(__dirname, 'raw', 'zmq.ts')]),
  'zmq-c': rawZmq('zmq-c', 'raw libzmq (C)', [path.join(BUILD, 'zmq')]),
  dora: dora(),
  iceoryx2: iceoryx2(),
  zenoh: zenoh(),
  'cross-ts': crossDaemon({ cli: CLI, tsx: TSX, env, node }),
  'cross-c': crossDaemon({ cli: CLI, tsx: TSX, env, node }, 'cross-c', 'dora-ts C → C across two daemons (TCP, CURVE)', path.join(BUILD, 'sender'), path.join(BUILD, 'receiver')),
  'zmq-ts-curve': rawZmqCurve({ cli: CLI, tsx: TSX, env, node }, path.join(__dirname, 'raw', 'zmq.ts')),
};
/** Measured unless --systems says otherwise; ts-in-place is on demand (see docs/benchmarks.md). */
const DEFAULT_SYSTEMS = ['ts', 'ts-in-place', 'py', 'c', 'c-py', 'zmq-ts', 'zmq-c', 'dora', 'iceoryx2', 'zenoh', 'cross-ts', 'cross-c', 'zmq-ts-curve'];
const CHOSEN = (option('--systems') ?? (quick ? 'ts,py,c' : DEFAULT_SYSTEMS.join(','))).split(',');

/** The C programs of the benchmark, built against this checkout's library. */
function buildC(): void {
  fs.mkdirSync(BUILD, { recursive: true });
  const pc = `export PKG_CONFIG_PATH=${path.join(ROOT, 'bindings/c/build/pkgconfig')};`;
  const cc = (out: string, src: string, libs: string) =>
    spawnSync('sh', ['-c', `${pc} cc -std=c11 -O2 -Wall -Werror -D_GNU_SOURCE ${src} -o ${out} ${libs}`], { stdio: 'inherit' }).status === 0;
  const ok =
    spawnSync('make', ['-s', '-C', path.join(ROOT, 'bindings/c')], { stdio: 'inherit' }).status === 0 &&
    cc(path.join(BUILD, 'sender'), node('sender.c'), '$(pkg-config --cflags --libs dora-node-api)') &&
    cc(path.join(BUILD, 'receiver'), node('receiver.c'), '$(pkg-config --cflags --libs dora-node-api)') &&
    cc(path.join(BUILD, 'zmq'), path.join(__dirname, 'raw', 'zmq.c'), '$(pkg-config --cflags --libs libzmq)');
  if (!ok) throw new Error('building the C benchmark programs failed');
}

// ---------------------------------------------------------------------------
// Statistics and reports

interface Row {
  system: string;
  size: number;
  p50: number;
  p90: number;
  p99: number;
  msgsPerSec: number;
  gbPerSec: number;
  daemonPeakRssMb: number | null;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const human = (bytes: number) => (bytes >= 1 << 20 && bytes % (1 << 20) === 0 ? `${bytes / (1 << 20)} MiB` : bytes >= 1e6 ? `${bytes / 1e6} MB` : bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`);
const us = (ns: number) => ns / 1e3;

/** Notes of the runs (Run.notes), one line per system, size and note, for results.md. */
const NOTES = new Set<string>();
const note = (system: System, size: number, runs: Run[]) => {
  for (const n of runs.flatMap((r) => r.notes ?? [])) {
    const line = `${system.label}, ${human(size)}: ${n}`;
    if (!NOTES.has(line)) console.log(`note: ${line}`);
    NOTES.add(line);
  }
};

async function measure(system: System, dir: string, size: number): Promise<Row> {
  const latency = await system.run(dir, 'latency', size, LATENCY_COUNT);
  if (latency.received !== LATENCY_COUNT) throw new Error(`${system.label}: latency run at ${size} B received ${latency.received} of ${LATENCY_COUNT}`);
  const sorted = [...latency.latenciesNs].sort((a, b) => a - b);
  // Enough messages that a back-to-back run lasts long enough to be a rate, not a start-up.
  const count = quick ? 50 : Math.max(50, Math.min(20000, Math.floor((512 << 20) / size)));
  const throughput = await system.run(dir, 'throughput', size, count);
  if (throughput.received !== count) throw new Error(`${system.label}: throughput run at ${size} B received ${throughput.received} of ${count}`);
  note(system, size, [latency, throughput]);
  // From the first counted message's send to the last one's receipt: end to end, so a
  // backlog that a receiver drains in a burst at the end does not inflate the rate.
  const perSecond = (throughput.received - 1) / ((throughput.spanNs + throughput.latenciesNs[0]) / 1e9);
  const rss = Math.max(latency.daemonPeakRss ?? 0, throughput.daemonPeakRss ?? 0);
  return { system: system.id, size, p50: us(percentile(sorted, 50)), p90: us(percentile(sorted, 90)), p99: us(percentile(sorted, 99)), msgsPerSec: perSecond, gbPerSec: (perSecond * size) / 1e9, daemonPeakRssMb: rss ? rss / 1e6 : null };
}

function medianRow(rows: Row[]): Row {
  const m = (k: 'p50' | 'p90' | 'p99' | 'msgsPerSec' | 'gbPerSec') => median(rows.map((r) => r[k]));
  const rss = rows.map((r) => r.daemonPeakRssMb).filter((x): x is number => x !== null);
  return { ...rows[0], p50: m('p50'), p90: m('p90'), p99: m('p99'), msgsPerSec: m('msgsPerSec'), gbPerSec: m('gbPerSec'), daemonPeakRssMb: rss.length ? Math.max(...rss) : null };
}

const RATIOS: [string, string, string][] = [
  ['py', 'dora', 'Python ÷ dora'],
  ['py', 'iceoryx2', 'Python ÷ iceoryx2'],
  ['py', 'zenoh', 'Python ÷ zenoh'],
  ['ts', 'zmq-ts', 'TS ÷ zeromq.js'],
  ['c', 'zmq-c', 'C ÷ libzmq'],
  ['cross-ts', 'zmq-ts-curve', 'cross-daemon TS ÷ zeromq.js TCP+CURVE'],
  ['cross-c', 'zmq-ts-curve', 'cross-daemon C ÷ zeromq.js TCP+CURVE'],
];

function table(rows: Row[], systems: System[], metric: 'p50' | 'msgsPerSec', unit: string): string {
  const get = (id: string, size: number) => rows.find((r) => r.system === id && r.size === size)?.[metric];
  const ratios = RATIOS.filter(([a, b]) => systems.some((s) => s.id === a) && systems.some((s) => s.id === b));
  const head = ['size', ...systems.map((s) => `${s.label} (${unit})`), ...ratios.map(([, , l]) => l)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const size of SIZES) {
    const cells = systems.map((s) => get(s.id, size)).map((v) => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1)));
    const rs = ratios.map(([a, b]) => {
      const x = get(a, size);
      const y = get(b, size);
      return x !== undefined && y !== undefined ? `${(x / y).toFixed(2)}×` : '–';
    });
    lines.push(`| ${human(size)} | ${[...cells, ...rs].join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Latency vs size, log-log, one line per system. */
function svg(rows: Row[], systems: System[]): string {
  const W = 760, H = 460, L = 70, R = 220, T = 30, B = 50;
  const xs = SIZES.map(Math.log10);
  const ys = rows.map((r) => Math.log10(r.p50));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.floor(Math.min(...ys)), Math.ceil(Math.max(...ys))];
  const px = (v: number) => L + ((Math.log10(v) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (v: number) => T + (1 - (Math.log10(v) - y0) / (y1 - y0 || 1)) * (H - T - B);
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  for (let e = y0; e <= y1; e++) {
    const y = py(10 ** e);
    out.push(`<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${L - 8}" y="${y + 4}" text-anchor="end">${10 ** e >= 1e6 ? `${10 ** (e - 6)} s` : 10 ** e >= 1000 ? `${10 ** (e - 3)} ms` : `${10 ** e} µs`}</text>`);
  }
  for (const size of SIZES) out.push(`<text x="${px(size)}" y="${H - B + 18}" text-anchor="middle">${human(size)}</text>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">message size (log)</text>`, `<text x="16" y="${T - 10}">one-way latency p50 (log)</text>`);
  systems.forEach((s, i) => {
    const pts = SIZES.map((size) => rows.find((r) => r.system === s.id && r.size === size)).filter((r): r is Row => !!r);
    if (pts.length === 0) return;
    out.push(`<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${pts.map((r) => `${px(r.size).toFixed(1)},${py(r.p50).toFixed(1)}`).join(' ')}"/>`);
    for (const r of pts) out.push(`<circle cx="${px(r.size).toFixed(1)}" cy="${py(r.p50).toFixed(1)}" r="3" fill="${colors[i % colors.length]}"/>`);
    out.push(`<line x1="${W - R + 15}" x2="${W - R + 35}" y1="${T + 10 + i * 20}" y2="${T + 10 + i * 20}" stroke="${colors[i % colors.length]}" stroke-width="2"/><text x="${W - R + 40}" y="${T + 14 + i * 20}">${s.label}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Where the project's targets stand (docs/benchmarks.md explains each). */
function targets(rows: Row[]): string[] {
  const get = (id: string, size: number) => rows.find((r) => r.system === id && r.size === size);
  const lines: string[] = [];
  const check = (what: string, ok: boolean | undefined, detail: string) => lines.push(`- ${ok === undefined ? 'not measured' : ok ? 'met' : 'missed'}: ${what} (${detail})`);
  const ratio = (a: Row | undefined, b: Row | undefined, k: 'p50' | 'msgsPerSec') => (a && b ? a[k] / b[k] : undefined);
  const show = (r: number | undefined) => (r === undefined ? '–' : `${r.toFixed(2)}×`);
  const [ts8, c8, z8, dora8] = [get('ts', 8), get('c', 8), get('zmq-ts', 8), get('dora', 8)];
  const tsC = ratio(ts8, c8, 'p50');
  check('TypeScript → TypeScript 8 B p50 ≤ 1.5× C → C', tsC === undefined ? undefined : tsC <= 1.5, show(tsC));
  const tsDora = ratio(ts8, dora8, 'p50');
  check('TypeScript → TypeScript 8 B p50 ≤ 0.5× dora 1.1 Python → Python', tsDora === undefined ? undefined : tsDora <= 0.5, show(tsDora));
  const tsZt = ratio(ts8, z8, 'msgsPerSec');
  check('TypeScript 8 B throughput ≥ 1.0× raw zeromq.js', tsZt === undefined ? undefined : tsZt >= 1, show(tsZt));
  const tsCt = ratio(ts8, c8, 'msgsPerSec');
  check('TypeScript 8 B throughput ≥ 0.5× C → C', tsCt === undefined ? undefined : tsCt >= 0.5, show(tsCt));
  const inPlace8 = get('ts-in-place', 8);
  for (const size of [4 << 20, 16 << 20]) {
    const r = ratio(get('ts-in-place', size), inPlace8, 'p50');
    check(`TypeScript ${human(size)} with allocateOutput p50 ≤ 1.2× its 8 B`, r === undefined ? undefined : r <= 1.2, show(r));
  }
  const pyIce = SIZES.map((s) => [get('py', s), get('iceoryx2', s)] as const).filter(([a, b]) => a && b);
  check(
    'Python → Python p50 ≤ 1.0× iceoryx2 at every size',
    pyIce.length ? pyIce.every(([a, b]) => a!.p50 <= b!.p50) : undefined,
    pyIce.map(([a, b]) => `${human(a!.size)} ${(a!.p50 / b!.p50).toFixed(2)}×`).join(', ') || '–',
  );
  const pyDora = SIZES.map((s) => [get('py', s), get('dora', s)] as const).filter(([a, b]) => a && b);
  check(
    'Python → Python p50 ≤ 0.5× dora 1.1 at every size',
    pyDora.length ? pyDora.every(([a, b]) => a!.p50 <= 0.5 * b!.p50) : undefined,
    pyDora.map(([a, b]) => `${human(a!.size)} ${(a!.p50 / b!.p50).toFixed(2)}×`).join(', ') || '–',
  );
  const py40 = get('py', 40_000_000);
  check('Python → Python p50 under 1.5 ms at 40 MB', py40 ? py40.p50 < 1500 : undefined, py40 ? `${py40.p50.toFixed(0)} µs, copying sender` : '–');
  const rss = rows.filter((r) => r.size === 40_000_000 && r.daemonPeakRssMb !== null).map((r) => r.daemonPeakRssMb!);
  check('daemon resident memory below 100 MB during the 40 MB runs', rss.length ? Math.max(...rss) < 100 : undefined, rss.length ? `peak ${Math.max(...rss).toFixed(0)} MB` : '–');
  return lines;
}

/** `--replot DIR`: rewrites DIR/latency.svg from DIR/results.csv (no measuring). */
function replot(dir: string): void {
  const [, ...lines] = fs.readFileSync(path.join(dir, 'results.csv'), 'utf8').trim().split('\n');
  const rows: Row[] = lines.map((line) => {
    const [system, size, p50, p90, p99, msgs, gb, rss] = line.split(',');
    return { system, size: Number(size), p50: Number(p50), p90: Number(p90), p99: Number(p99), msgsPerSec: Number(msgs), gbPerSec: Number(gb), daemonPeakRssMb: rss ? Number(rss) : null };
  });
  const systems = [...new Set(rows.map((r) => r.system))].map((id) => SYSTEMS[id]).filter((s): s is System => s !== undefined);
  fs.writeFileSync(path.join(dir, 'latency.svg'), svg(rows, systems));
  console.log(`wrote ${path.join(dir, 'latency.svg')}`);
}

async function main(): Promise<void> {
  const replotDir = option('--replot');
  if (replotDir) return replot(path.resolve(replotDir));
  if (CHOSEN.some((s) => ['c', 'c-py', 'zmq-c', 'cross-c'].includes(s))) buildC();
  const systems: System[] = [];
  for (const id of CHOSEN) {
    const system = SYSTEMS[id];
    if (!system) throw new Error(`unknown system "${id}" (known: ${Object.keys(SYSTEMS).join(', ')})`);
    const why = system.unavailable();
    if (why) console.error(`skipping ${system.label}: ${why}`);
    else systems.push(system);
  }
  const cpu = os.cpus();
  const machine = `${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
  console.log(`dora-ts benchmark on ${machine}; ${RUNS} run(s), medians${quick ? ' (quick: not meaningful)' : ''}\n`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-bench-'));
  // Interleaved: run after run, size after size, every system back to back, so that the
  // machine's load drifting over a long run weighs on every system alike.
  const cells = new Map<string, Row[]>();
  const medians = () => systems.flatMap((system) => SIZES.flatMap((size) => (cells.has(`${system.id}/${size}`) ? [medianRow(cells.get(`${system.id}/${size}`)!)] : [])));
  let rows: Row[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const size of SIZES) {
        for (const system of systems) {
          const row = await measure(system, dir, size);
          const key = `${system.id}/${size}`;
          cells.set(key, [...(cells.get(key) ?? []), row]);
          console.log(`run ${i + 1}/${RUNS}  ${system.label.padEnd(34)} ${human(size).padStart(8)}  p50 ${row.p50.toFixed(0).padStart(6)} µs  p99 ${row.p99.toFixed(0).padStart(6)} µs  ${row.msgsPerSec.toFixed(0).padStart(7)} msg/s  ${row.gbPerSec.toFixed(3)} GB/s`);
        }
      }
      rows = medians();
      if (i + 1 < RUNS) writeReports(rows, systems, machine, false); // a long run that is cut short keeps what it measured
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const report = writeReports(rows, systems, machine, true);
  console.log(`\n${report}`);
  console.log(`wrote ${path.relative(process.cwd(), OUT) || '.'}/results.md, results.csv, latency.svg`);
}

function fullTable(rows: Row[], systems: System[]): string {
  const lines = ['| system | size | p50 µs | p90 µs | p99 µs | msg/s | GB/s | daemon peak RSS MB |', '|---|---|---|---|---|---|---|---|'];
  const f = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  for (const r of rows) {
    const label = systems.find((s) => s.id === r.system)?.label ?? r.system;
    lines.push(`| ${label} | ${human(r.size)} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.p99)} | ${r.msgsPerSec.toFixed(0)} | ${r.gbPerSec.toFixed(3)} | ${r.daemonPeakRssMb === null ? '–' : r.daemonPeakRssMb.toFixed(0)} |`);
  }
  return lines.join('\n');
}

function writeReports(rows: Row[], systems: System[], machine: string, complete: boolean): string {
  const report = [
    ...(complete ? [] : ['*Partial: fewer runs than asked for (the run is still going or was cut short).*', '']),
    `Machine: ${machine}. ${RUNS} run(s) per cell, medians. Latency: ${LATENCY_COUNT} messages paced at ${RATE} Hz after ${WARMUP} warm-up messages, one-way.`,
    '',
    '**One-way latency, p50**',
    '',
    table(rows, systems, 'p50', 'µs'),
    '',
    '**Throughput**',
    '',
    table(rows, systems, 'msgsPerSec', 'msg/s'),
    '',
    '**Targets**',
    '',
    ...targets(rows),
    '',
    ...(NOTES.size ? ['**Notes** (what the runs observed beside the numbers)', '', ...[...NOTES].map((n) => `- ${n}`), ''] : []),
    '**Every measurement** (latency p50/p90/p99 one-way; throughput back to back; the daemon column is the `dora run` process of our dataflows)',
    '',
    fullTable(rows, systems),
    '',
  ].join('\n');
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'results.md'), report);
  fs.writeFileSync(
    path.join(OUT, 'results.csv'),
    ['system,size_bytes,p50_us,p90_us,p99_us,msgs_per_s,gb_per_s,daemon_peak_rss_mb', ...rows.map((r) => [r.system, r.size, r.p50, r.p90, r.p99, r.msgsPerSec, r.gbPerSec, r.daemonPeakRssMb ?? ''].join(','))].join('\n') + '\n',
  );
  fs.writeFileSync(path.join(OUT, 'latency.svg'), svg(rows, systems));
  return report;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
