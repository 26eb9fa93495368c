/**
 * dora's CLI flags beyond the core, through the real CLI: `run --stop-after`,
 * `start --detach`, `stop --all`, and `new --lang` for each language, whose project
 * then runs with `dora run`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildC } from './support/build-c';
import { dora, leftovers, node, processesMentioning, ROOT, tempDataflow, waitFor } from './support/dataflow';

// A port of its own so a developer's `dora up` (and the other test files') is never touched.
const port = String(30000 + (process.pid % 20000));
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-state-'));
const env = { DORA_COORDINATOR_PORT: port, DORA_STATE_DIR: stateDir };
// `dora new` projects run inside this checkout (its node_modules, its .venv, its C library).
const projects = fs.mkdtempSync(path.join(ROOT, '.new-test-'));

beforeAll(() => buildC([['all']]));

afterAll(async () => {
  await dora(['down'], { env });
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.rmSync(projects, { recursive: true, force: true });
});

/** A node that runs until stopped, and records the STOP it got in `<dir>/loop.jsonl` (the coordinator's nodes do not inherit the CLI's environment). */
function runningLoop() {
  const df = tempDataflow('');
  fs.writeFileSync(df.file, `nodes:\n` + node('loop', 'looper.ts', `    env: { RECORD: ${JSON.stringify(df.record('loop'))} }\n    inputs: { tick: dora/timer/millis/50 }\n`));
  return df;
}

test('run --stop-after stops the dataflow gracefully after that long, with the exit status of a Ctrl-C stop', async () => {
  const df = runningLoop();
  const record = df.record('loop');
  const started = Date.now();
  const result = await dora(['run', df.file, '--stop-after', '1s']);
  expect(result.code).toBe(0);
  expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  expect(result.stderr).toMatch(/stopping dataflow \S+: --stop-after 1s has passed\ndataflow \S+ stopped/);
  expect(fs.readFileSync(record, 'utf8')).toBe('STOP MANUAL\n');

  // a node that ignores STOP (and SIGTERM) has to be killed: status 1, as after a Ctrl-C
  // (3 s: it must have started, and set its SIGTERM handler, before the stop)
  const stubborn = tempDataflow(`nodes:\n` + node('s', 'stubborn.ts', `    inputs: { tick: dora/timer/millis/50 }\n`));
  const killed = await dora(['run', stubborn.file, '--stop-after', '3s', '--grace', '200ms'], { env: { RECORD: stubborn.record('s'), IGNORE_SIGTERM: '1' } });
  expect(fs.readFileSync(stubborn.record('s'), 'utf8')).toBe('INPUT\nSIGTERM\n');
  expect(killed.code).toBe(1);
  expect(killed.stderr).toContain('node(s) killed');

  const bad = await dora(['run', df.file, '--stop-after', 'soon']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('invalid duration "soon"');
  expect(leftovers()).toEqual([]);
});

test('start --detach returns once the dataflow runs (the default); --attach with --detach is refused', async () => {
  expect((await dora(['up'], { env })).code).toBe(0);
  const df = runningLoop();
  const start = await dora(['start', df.file, '--detach', '--name', 'detached'], { env });
  expect(start.code).toBe(0);
  const id = start.stdout.trim();
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  expect((await dora(['list'], { env })).stdout).toMatch(new RegExp(`${id}\\s+detached\\s+running`));
  const both = await dora(['start', df.file, '--detach', '--attach'], { env });
  expect(both.code).toBe(1);
  expect(both.stderr).toContain('--attach and --detach contradict each other');
  expect((await dora(['stop', 'detached', '--grace', '1s'], { env })).code).toBe(0);
});

test('stop --all stops every running dataflow of the coordinator', async () => {
  expect((await dora(['up'], { env })).code).toBe(0);
  const flows = [runningLoop(), runningLoop()];
  const ids: string[] = [];
  for (const df of flows) {
    const start = await dora(['start', df.file], { env });
    expect(start.code).toBe(0);
    ids.push(start.stdout.trim());
  }
  await waitFor(() => flows.every((df) => processesMentioning(df.dir).length > 0), 10_000, 'both dataflows to run');
  const named = await dora(['stop', '--all', ids[0]], { env });
  expect(named.code).toBe(1);
  expect(named.stderr).toContain('--all stops every dataflow: do not name one as well');

  const stop = await dora(['stop', '--all', '--grace', '1s'], { env });
  expect(stop.code).toBe(0);
  for (const id of ids) expect(stop.stdout).toContain(`dataflow ${id}: stopped`);
  for (const df of flows) {
    expect(processesMentioning(df.dir)).toEqual([]);
    expect(fs.readFileSync(df.record('loop'), 'utf8')).toBe('STOP MANUAL\n');
  }
  const listed = JSON.parse((await dora(['list', '--json'], { env })).stdout) as Array<{ id: string; status: string }>;
  expect(listed.filter((d) => ids.includes(d.id)).map((d) => d.status)).toEqual(['stopped', 'stopped']);
  expect((await dora(['stop', '--all'], { env })).stdout).toContain('no dataflow is running');
  expect(leftovers()).toEqual([]);
});

describe('new --lang', () => {
  test.each([
    ['typescript', ['sender.ts', 'receiver.ts', 'package.json', 'node_modules', 'README.md']],
    ['python', ['sender.py', 'receiver.py', 'README.md']],
    ['c', ['sender.c', 'receiver.c', 'README.md']],
  ])('%s: the project it writes runs with `dora run` and prints the ten counter values', async (lang, files) => {
    const dir = path.join(projects, lang);
    const created = await dora(['new', '--lang', lang, dir]);
    expect(created.code).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['dataflow.yml', ...files].sort());
    if (lang === 'c') {
      expect(created.stdout).toContain(`\`dora build ${path.join(dir, 'dataflow.yml')}\`, then`);
      const build = await dora(['build', path.join(dir, 'dataflow.yml')]);
      expect(build.code).toBe(0);
    }
    const run = await dora(['run', path.join(dir, 'dataflow.yml')]);
    expect(run.code).toBe(0);
    const values = [...run.stdout.matchAll(/\[receiver\] received counter: \[?(\d+)\]?/g)].map((m) => Number(m[1]));
    expect(values).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(run.stderr).toMatch(/dataflow \S+ finished/);
  }, 90_000);

  test('an unknown language is refused with the choices, and a language dora-ts has no API for says so', async () => {
    const rust = await dora(['new', '--lang', 'rust', path.join(projects, 'rust')]);
    expect(rust.code).toBe(1);
    expect(rust.stderr).toContain('dora-ts has no Rust node API; choose one of typescript, python, c');
    expect(fs.existsSync(path.join(projects, 'rust'))).toBe(false);
  });
});

test('the default language is TypeScript', async () => {
  const dir = path.join(projects, 'default');
  expect((await dora(['new', dir])).code).toBe(0);
  expect(fs.readdirSync(dir).sort()).toEqual(['README.md', 'dataflow.yml', 'node_modules', 'package.json', 'receiver.ts', 'sender.ts']);
  expect(fs.realpathSync(path.join(dir, 'node_modules', 'dora-ts'))).toBe(fs.realpathSync(ROOT));
});
