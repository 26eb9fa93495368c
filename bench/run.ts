/**
 * `npm run bench`: a sender → receiver dataflow through `dora run` at several payload
 * sizes. Prints one-way latency (p50/p90/p99, paced sends) and throughput (back-to-back
 * sends, every message counted) per size as a Markdown table and writes a CSV.
 *
 *   npm run bench                       full run (a minute or two)
 *   npm run bench -- --quick            a few seconds: smoke test, numbers are not meaningful
 *   npm run bench -- --sizes 8,4096     chosen sizes (bytes)
 *   npm run bench -- --csv FILE         where the CSV goes (default bench/results.csv)
 *   npm run bench -- --langs ts,py      sender → receiver pairs: ts (TypeScript), py (Python); default both
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);

const quick = flag('--quick');
const SIZES = (option('--sizes') ?? (quick ? '8,65536,4194304' : '8,4096,65536,1048576,4194304,16777216')).split(',').map(Number);
const LATENCY_COUNT = quick ? 20 : 200;
const RATE = 100;
const csvFile = path.resolve(option('--csv') ?? path.join(ROOT, 'bench', 'results.csv'));
const LANGS = (option('--langs') ?? 'ts,py').split(',') as Lang[];
type Lang = 'ts' | 'py';
const EXTENSION: Record<Lang, string> = { ts: 'ts', py: 'py' };
const PYTHON = path.join(ROOT, '.venv', 'bin', 'python');

interface Run {
  received: number;
  latenciesNs: number[];
  spanNs: number;
}

function runDataflow(dir: string, lang: Lang, mode: 'latency' | 'throughput', size: number, count: number): Run {
  const result = path.join(dir, `${lang}-${mode}-${size}.json`);
  const yaml = `nodes:
  - id: sender
    path: ${path.join(__dirname, 'nodes', `sender.${EXTENSION[lang]}`)}
    env: { MODE: ${mode}, SIZE: ${size}, COUNT: ${count}, RATE: ${RATE}, WARMUP: ${quick ? 3 : 10} }
    outputs: [data]
  - id: receiver
    path: ${path.join(__dirname, 'nodes', `receiver.${EXTENSION[lang]}`)}
    env: { RESULT: ${JSON.stringify(result)} }
    inputs:
      data: { source: sender/data, queue_size: ${count + 100} }
`;
  const file = path.join(dir, `${lang}-${mode}-${size}.yml`);
  fs.writeFileSync(file, yaml);
  const env = { ...process.env, DORA_PYTHON: PYTHON };
  const run = spawnSync(process.execPath, [CLI, 'run', file, '--out', path.join(dir, 'out')], { encoding: 'utf8', env });
  if (run.status !== 0) throw new Error(`benchmark dataflow failed (${lang}, ${mode}, ${size} B):\n${run.stderr}`);
  return JSON.parse(fs.readFileSync(result, 'utf8')) as Run;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const human = (bytes: number) => (bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`);

function main(): void {
  if (!fs.existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-bench-'));
  const rows: string[][] = [];
  try {
    console.log(`dora-ts benchmark: sender → receiver, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${os.type()} ${os.release()}, Node ${process.version}${quick ? ' (quick: not meaningful)' : ''}\n`);
    console.log('| pair | size | p50 latency (µs) | p90 (µs) | p99 (µs) | throughput (msg/s) | throughput (GB/s) |');
    console.log('|---|---|---|---|---|---|---|');
    for (const lang of LANGS)
    for (const size of SIZES) {
      const latency = runDataflow(dir, lang, 'latency', size, LATENCY_COUNT);
      if (latency.received !== LATENCY_COUNT) throw new Error(`latency run at ${size} B received ${latency.received} of ${LATENCY_COUNT}`);
      const sorted = [...latency.latenciesNs].sort((a, b) => a - b);
      const count = quick ? 50 : Math.max(50, Math.min(2000, Math.floor((512 << 20) / size)));
      const throughput = runDataflow(dir, lang, 'throughput', size, count);
      if (throughput.received !== count) throw new Error(`throughput run at ${size} B received ${throughput.received} of ${count}`);
      const perSecond = (throughput.received - 1) / (throughput.spanNs / 1e9);
      const row = [size, percentile(sorted, 50) / 1e3, percentile(sorted, 90) / 1e3, percentile(sorted, 99) / 1e3, perSecond, (perSecond * size) / 1e9];
      rows.push([`${lang}-${lang}`, ...row.map(String)]);
      console.log(`| ${lang} → ${lang} | ${human(size)} | ${row[1].toFixed(0)} | ${row[2].toFixed(0)} | ${row[3].toFixed(0)} | ${perSecond.toFixed(0)} | ${row[5].toFixed(3)} |`);
    }
    fs.mkdirSync(path.dirname(csvFile), { recursive: true });
    fs.writeFileSync(csvFile, ['pair,size_bytes,p50_us,p90_us,p99_us,msgs_per_s,gb_per_s', ...rows.map((r) => r.join(','))].join('\n') + '\n');
    console.log(`\nCSV: ${csvFile}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
