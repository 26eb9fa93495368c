/**
 * Wake-up mechanisms for a koffi-bound libzmq SUB socket: builds the probe, measures, prints
 * Markdown (docs/benchmarks/wakeup.md quotes it).
 *
 *   node_modules/.bin/tsx bench/wakeup/run.ts            3 interleaved rounds (about 2 minutes)
 *   node_modules/.bin/tsx bench/wakeup/run.ts --runs 5   more runs
 *   node_modules/.bin/tsx bench/wakeup/run.ts --quick    smoke test, numbers are not meaningful
 *
 * Per mechanism and run: one sender process (sender.c) and one receiver process (recv.ts, or
 * receiver.c for (e)) over ipc:// in the abstract namespace (no files). 100 warm-up messages,
 * 200 paced at 100 Hz (one-way latency, CLOCK_MONOTONIC on both sides), then 100,000 back to
 * back (every one counted; rate from first to last receipt). Runs are interleaved (every
 * mechanism once per round, the order rotated each round) so load drift hits all alike;
 * the table gives the median over rounds. Then the keep-alive and thread-pool checks (keepalive.ts).
 */
import { spawn, execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { BUILD } from './probe';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const RUNS = quick ? 1 : Number(args[args.indexOf('--runs') + 1] || 3) || 3;
const COUNTS = quick ? ['10', '20', '20000'] : ['100', '200', '100000'];
const ROOT = path.resolve(__dirname, '..', '..');
const NODE_TS = ['--import', 'tsx']; // resolved from ROOT, one process per receiver

const LABELS: Record<string, string> = {
  a: '(a) koffi `.async`: poll(ZMQ_FD) on a pool thread',
  a2: '(a2) koffi `.async`: zmq_poll(socket) on a pool thread',
  b: '(b) C notifier thread → pipe → `net.Socket`',
  c: '(c) C notifier thread → `koffi.register` callback',
  f: '(f) `koffi.node.poll(ZMQ_FD)`: libuv poll on the JS thread',
  d: '(d) reference: zeromq.js `await receive()`',
  e: '(e) reference: C, blocking `zmq_msg_recv`',
};
const ORDER = ['a', 'a2', 'b', 'c', 'f', 'd', 'e'];

function build() {
  const cc = (...a: string[]) => execFileSync('cc', ['-O2', '-Wall', ...a], { cwd: __dirname, stdio: 'inherit' });
  execFileSync('mkdir', ['-p', BUILD]);
  cc('-shared', '-fPIC', 'probe.c', '-o', path.join(BUILD, 'libprobe.so'), '-lzmq', '-lpthread');
  cc('sender.c', '-o', path.join(BUILD, 'sender'), '-lzmq');
  cc('receiver.c', '-o', path.join(BUILD, 'receiver'), '-lzmq');
}

/** Runs a process to completion (killed after timeoutMs); resolves with stdout and the exit time. */
function run(cmd: string, argv: string[], timeoutMs: number, onLine?: (line: string) => void) {
  return new Promise<{ out: string; code: number | null; exitedAt: number }>((resolve) => {
    const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b;
      if (onLine) for (const l of b.toString().split('\n')) if (l) onLine(l);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let exitedAt = 0;
    child.on('exit', () => { exitedAt = Date.now(); clearTimeout(timer); });
    child.on('close', (code) => resolve({ out, code, exitedAt }));
  });
}

type Result = { p50: number; p90: number; p99: number; rate: number; wakeups: number };
const pct = (sorted: number[], q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
const median = (xs: number[]) => { const s = [...xs].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

let trial = 0;
async function measure(kind: string): Promise<Result | null> {
  const endpoint = `ipc://@dora-wakeup-${process.pid}-${trial++}`;
  const sender = run(path.join(BUILD, 'sender'), [endpoint, ...COUNTS], 60_000);
  const receiver = kind === 'e'
    ? run(path.join(BUILD, 'receiver'), [endpoint, ...COUNTS], 60_000)
    : run(process.execPath, [...NODE_TS, path.join(__dirname, 'recv.ts'), kind, endpoint, ...COUNTS], 60_000);
  const [r] = await Promise.all([receiver, sender]);
  if (r.code !== 0) { console.error(`${kind}: receiver failed (exit ${r.code})`); return null; }
  const { lat, burst, span, wakeups } = JSON.parse(r.out) as { lat: number[]; burst: number; span: number; wakeups?: number };
  const s = lat.sort((x, y) => x - y);
  return { p50: pct(s, 0.5) / 1e3, p90: pct(s, 0.9) / 1e3, p99: pct(s, 0.99) / 1e3, rate: (burst - 1) / (span / 1e9), wakeups: wakeups ?? NaN };
}

/** Seconds from "the script returned" to process exit, how the wait settled, fs.readFile delay. */
async function keepAlive(kind: string, mode: string) {
  let returned = 0, settled = '', readfile = '';
  const { exitedAt } = await run(process.execPath, [...NODE_TS, path.join(__dirname, 'keepalive.ts'), kind, mode], 30_000, (l) => {
    const [what, ...rest] = l.split(' ');
    if (what === 'returned') returned = Number(rest[0]);
    if (what === 'settled') settled = `${rest.slice(0, -1).join(' ')} after ${((Number(rest[rest.length - 1]) - returned) / 1e3).toFixed(2)} s`;
    if (what === 'readfile') readfile = `${rest[0]} ms`;
  });
  return mode === 'pool' ? readfile : `${((exitedAt - returned) / 1e3).toFixed(2)} s${settled ? ` (${settled})` : ''}`;
}

async function main() {
  build();
  const results: Record<string, Result[]> = {};
  for (let round = 0; round < RUNS; round++) {
    const order = ORDER.map((_, i) => ORDER[(i + round * 3) % ORDER.length]);
    console.error(`round ${round + 1}/${RUNS}: ${order.join(' ')}`);
    for (const kind of order) {
      const r = await measure(kind);
      if (r) (results[kind] ??= []).push(r);
    }
  }
  const f0 = (x: number) => x.toFixed(0);
  const lines = [
    `Median of ${RUNS} interleaved run(s); latency one-way in µs (${COUNTS[1]} messages at 100 Hz after ${COUNTS[0]} warm-up), burst ${Number(COUNTS[2]).toLocaleString('en')} × 8 B back to back.`,
    '',
    '| mechanism | p50 µs | p90 µs | p99 µs | burst msg/s | wake-ups in burst | p50 per run | burst per run |',
    '|---|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const kind of ORDER) {
    const rs = results[kind] ?? [];
    if (!rs.length) { lines.push(`| ${LABELS[kind]} | failed | | | | | | |`); continue; }
    const m = (k: keyof Result) => median(rs.map((r) => r[k]));
    lines.push(`| ${LABELS[kind]} | ${f0(m('p50'))} | ${f0(m('p90'))} | ${f0(m('p99'))} | ${Math.round(m('rate') / 1e3)}k | ${Number.isNaN(m('wakeups')) ? '–' : f0(m('wakeups'))} | ${rs.map((r) => f0(r.p50)).join(' / ')} | ${rs.map((r) => Math.round(r.rate / 1e3) + 'k').join(' / ')} |`);
  }

  // The 10 s waits run side by side; the other checks one at a time (exit times are short).
  console.error('keep-alive checks');
  const kinds = ['a', 'a2', 'b', 'c', 'f'];
  const abandoned = await Promise.all(kinds.map((k) => keepAlive(k, 'abandon')));
  lines.push('', 'Seconds from the script returning to the process exiting (one wait for a message, 10 s timeout, nobody sends); ' +
    'last column: an fs.readFile issued while four 2 s waits are pending.', '',
    '| mechanism | wait left pending | wait cancelled right away | no wait started | fs.readFile during 4 waits |', '|---|---|---|---|---|');
  for (const [i, k] of kinds.entries()) {
    const cells = [abandoned[i]];
    for (const mode of ['cancel', 'idle', 'pool']) cells.push(await keepAlive(k, mode));
    lines.push(`| ${LABELS[k]} | ${cells.join(' | ')} |`);
  }
  console.log(lines.join('\n'));
}

main();
