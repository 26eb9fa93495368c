/** The background coordinator through the real CLI: up, start, list, logs, stop, down. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as zmq from 'zeromq';
import { CLI, dora, leftovers, node, processesMentioning, readRecord, sleep, tempDataflow, waitFor } from './support/dataflow';

// A port of its own so a developer's `dora up` is never touched.
const port = String(20000 + (process.pid % 20000));
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-state-'));
const env = { DORA_COORDINATOR_PORT: port, DORA_STATE_DIR: stateDir };

afterAll(async () => {
  await dora(['down'], { env });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test('up / start / list / logs / stop / down', async () => {
  const up = await dora(['up'], { env });
  expect(up.code).toBe(0);
  expect(up.stdout).toContain(`127.0.0.1:${port}`);
  expect((await dora(['up'], { env })).stdout).toContain('already running');

  const df = tempDataflow(`nodes:\n` + node('ticker', 'sender.ts', `    env: { COUNT: 1000000 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n`) + node('sink', 'looper.ts', `    inputs: { data: ticker/out }\n`));
  const start = await dora(['start', df.file, '--name', 'demo'], { env });
  expect(start.code).toBe(0);
  const id = start.stdout.trim();
  expect(id).toMatch(/^[0-9a-f-]{36}$/);

  const list = await dora(['list'], { env });
  expect(list.stdout).toMatch(new RegExp(`${id}\\s+demo\\s+running\\s+2`));

  // Duplicate names among running dataflows are refused.
  const dup = await dora(['start', df.file, '--name', 'demo'], { env });
  expect(dup.code).toBe(1);
  expect(dup.stderr).toContain('already named "demo"');

  await waitFor(() => processesMentioning(df.dir).length >= 2, 10000, 'nodes to run');
  const stop = await dora(['stop', 'demo', '--grace', '1s'], { env });
  expect(stop.code).toBe(0);
  expect(stop.stdout).toContain(`dataflow ${id}: stopped`);
  expect(processesMentioning(df.dir)).toEqual([]);

  const listed = JSON.parse((await dora(['list', '--json'], { env })).stdout) as Array<{ id: string; status: string; logDir: string }>;
  expect(listed.find((d) => d.id === id)?.status).toBe('stopped');

  // Logs are stored per run, readable by id prefix and by node.
  fs.appendFileSync(path.join(listed[0].logDir, 'log_sink.txt'), 'marker line\n');
  const logs = await dora(['logs', id.slice(0, 8), 'sink'], { env });
  expect(logs.stdout).toContain('marker line');
  const all = await dora(['logs', 'demo'], { env });
  expect(all.stdout).toContain('[sink] marker line');
  // filters: --grep, --level (log records at or above it), --tail
  fs.appendFileSync(path.join(listed[0].logDir, 'log_sink.txt'), '[warn] a warning\n[debug] a detail\nlast line\n');
  expect((await dora(['logs', 'demo', 'sink', '--grep', '^marker'], { env })).stdout).toBe('marker line\n');
  expect((await dora(['logs', 'demo', 'sink', '--level', 'info'], { env })).stdout).toBe('[warn] a warning\n');
  expect((await dora(['logs', 'demo', '--level', 'debug', '--tail', '1'], { env })).stdout).toBe('[sink] [debug] a detail\n');
  expect((await dora(['logs', 'demo', 'sink', '--tail', '2'], { env })).stdout).toBe('[debug] a detail\nlast line\n');
  expect((await dora(['logs', 'demo', 'sink', '--level', 'loud'], { env })).stderr).toMatch(/argument 'loud' is invalid\. Allowed choices are error, warn, info, debug, trace/);
  const unknown = await dora(['logs', 'demo', 'sinc'], { env });
  expect([unknown.code, unknown.stderr.trim()]).toEqual([1, `error: dataflow ${id} has no node "sinc" (nodes: ticker, sink)`]);

  const down = await dora(['down'], { env });
  expect(down.stdout).toContain('coordinator stopped');
  const after = await dora(['list'], { env });
  expect(after.code).toBe(1);
  expect(after.stderr).toContain('dora up');
  expect(leftovers()).toEqual([]);
});

test('node output on a terminal (a real pseudo-terminal, and FORCE_COLOR): each prefix in its colour, warnings and errors coloured; plain with NO_COLOR or when piped', async () => {
  const df = tempDataflow(`nodes:\n` + node('sender', 'sender.ts', `    env: { COUNT: 2, EXIT_CODE: 3 }\n    outputs: [out]\n`));
  const piped = await dora(['run', df.file], { cwd: df.dir });
  expect(piped.stdout).toContain('[sender] sent 2');
  expect(piped.stdout + piped.stderr).not.toContain('\x1b[');
  const coloured = await dora(['run', df.file], { cwd: df.dir, env: { FORCE_COLOR: '1' } });
  expect(coloured.stdout).toMatch(/\x1b\[\d+m\[sender\]\x1b\[0m sent 2/);
  expect(coloured.stdout).toMatch(/\x1b\[31m\[error\] node sender exited with status 3\x1b\[0m/);
  const plain = await dora(['run', df.file], { cwd: df.dir, env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
  expect(plain.stdout).not.toContain('\x1b[');
  expect(plain.stdout).toContain('[sender] sent 2');
  // on a real pseudo-terminal (util-linux `script` gives the CLI one), without FORCE_COLOR: coloured; NO_COLOR still wins
  const onPty = (extra: NodeJS.ProcessEnv) => {
    const r = spawnSync('script', ['-q', '-e', '-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} run ${JSON.stringify(df.file)}`, '/dev/null'], {
      cwd: df.dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'FORCE_COLOR' && k !== 'NO_COLOR')), ...extra },
    });
    return r.stdout;
  };
  expect(onPty({})).toMatch(/\x1b\[\d+m\[sender\]\x1b\[0m sent 2/);
  const noColour = onPty({ NO_COLOR: '1' });
  expect(noColour).toContain('[sender] sent 2');
  expect(noColour).not.toContain('\x1b[');
});

test('logs --follow prints what a running dataflow prints from now on, filtered, and ends with it', async () => {
  expect((await dora(['up'], { env })).code).toBe(0);
  const df = tempDataflow(`nodes:\n` + node('sender', 'sender.ts', `    env: { COUNT: 4 }\n    inputs: { tick: dora/timer/millis/300 }\n    outputs: [out]\n`));
  const id = (await dora(['start', df.file], { env })).stdout.trim();
  const t0 = Date.now();
  const followed = await dora(['logs', id, 'sender', '--follow', '--grep', 'sent'], { env });
  expect(followed.code).toBe(0);
  // printed about 1.2 s after the start; the stored lines before it had none; shown with its time, as stored
  expect(followed.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z sent 4\n$/);
  expect(Date.now() - t0).toBeLessThan(15_000);
});

test('start --attach streams logs and exits with the dataflow status', async () => {
  expect((await dora(['up'], { env })).code).toBe(0);
  const df = tempDataflow(`nodes:\n` + node('sender', 'sender.ts', `    env: { COUNT: 3 }\n    outputs: [out]\n`) + node('r', 'recorder.ts', `    inputs: { data: sender/out }\n`));
  const record = df.record('r');
  fs.writeFileSync(df.file, fs.readFileSync(df.file, 'utf8').replace('    inputs: { data: sender/out }', `    env: { RECORD: ${JSON.stringify(record)} }\n    inputs: { data: sender/out }`));
  const attached = await dora(['start', df.file, '--attach'], { env });
  expect(attached.code).toBe(0);
  expect(attached.stdout).toContain('[sender] sent 3');
  expect(attached.stderr).toMatch(/succeeded/);
  expect(readRecord(record).filter((e) => e.type === 'INPUT')).toHaveLength(3);
});

test('nodes exit by themselves when the coordinator is killed with SIGKILL', async () => {
  expect((await dora(['up'], { env })).code).toBe(0);
  const df = tempDataflow(`nodes:\n` + node('ticker', 'sender.ts', `    env: { COUNT: 1000000 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n`) + node('sink', 'looper.ts', `    inputs: { data: ticker/out }\n`));
  expect((await dora(['start', df.file], { env })).code).toBe(0);
  await waitFor(() => processesMentioning(df.dir).length >= 2, 10000, 'nodes to run');
  const coordinator = processesMentioning(`--port\0${port}`);
  expect(coordinator).toHaveLength(1);
  process.kill(coordinator[0], 'SIGKILL');
  await waitFor(() => processesMentioning(df.dir).length === 0, 5000, 'orphaned nodes to exit');
  await sleep(100);
  expect(leftovers()).toEqual([]);
});

test('flags are checked when the command line is read; --version; --port on every command; a missing coordinator said at once', async () => {
  const df = tempDataflow(`nodes:\n` + node('sender', 'sender.ts', `    env: { COUNT: 1 }\n    outputs: [out]\n`));
  for (const args of [
    ['run', df.file, '--grace', 'abc'],
    ['run', df.file, '--stop-after', '10 parsecs'],
    ['stop', 'x', '--grace', '-1s'],
  ]) {
    const r = await dora(args, { env });
    expect([args, r.code]).toEqual([args, 1]);
    expect(r.stderr).toMatch(/^error: option '--[a-z-]+ <duration>' argument '.*' is invalid\. invalid duration/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }
  expect(fs.readdirSync(df.dir)).toEqual(['dataflow.yml']); // nothing ran
  const version = await dora(['--version']);
  expect(version.stdout.trim()).toBe(`dora-ts ${require('../package.json').version} (protocol version ${require('../protocol/facts.json').protocol.version})`);
  const badPort = await dora(['--port', '70000', 'list']);
  expect(badPort.stderr).toContain(`'70000' is invalid. "70000" is not a TCP port (1-65535)`);
  // nothing listens on this port: said at once, by every command that needs the coordinator, with the port it tried
  const free = String(Number(port) + 1);
  for (const args of [['list'], ['--port', free, 'list'], ['start', df.file, '--port', free], ['stop', '--all', '--port', free], ['node', 'list', 'x', '--port', free]]) {
    const t0 = Date.now();
    const r = await dora(args, { env: { ...env, DORA_COORDINATOR_PORT: free } });
    expect([args, r.code, r.stderr.trim()]).toEqual([args, 1, `error: no dora coordinator is running on 127.0.0.1:${free}; start one with \`dora up\` (with --port ${free})`]);
    expect(Date.now() - t0).toBeLessThan(5000); // node's start-up included; the probe itself answers at once
  }
});

test('dora cluster authorize takes a key that begins with "-" (1 in 85 Z85 keys) as it is printed, with or without --', async () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-keys-'));
  let key = '';
  while (!key.startsWith('-')) key = zmq.curveKeyPair().publicKey;
  const env = { DORA_STATE_DIR: state };
  const bare = await dora(['cluster', 'authorize', key, '--comment', 'robot'], { env });
  expect(bare.stderr).toBe('');
  expect(bare.code).toBe(0);
  expect((await dora(['cluster', 'authorize', '--', key], { env })).stdout).toContain('was already authorised');
  expect(fs.readFileSync(path.join(state, 'cluster', 'authorized_keys'), 'utf8')).toContain(`${key} # robot`);
  const junk = await dora(['cluster', 'authorize', '-not-a-key'], { env });
  expect(junk.code).not.toBe(0);
  expect(junk.stderr).toContain('"-not-a-key" is not a CURVE public key');
  fs.rmSync(state, { recursive: true, force: true });
});
