/**
 * Only the user who runs a dataflow can touch it: another local user gets nothing from the
 * control port but a refusal, cannot read the token or the logs, and cannot connect to any
 * socket of a running dataflow (so cannot subscribe to data, forge drop tokens or log lines).
 * That user is `dora-ts-probe`, created for the test when missing: it needs root.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dora, node, processesMentioning, ROOT, sleep, tempDataflow, waitFor } from './support/dataflow';

const PROBE = path.join(ROOT, 'tests/fixtures/probe.js');
const PROBE_USER = 'dora-ts-probe';
const uid = process.getuid!();

type Attempt =
  | { kind: 'control'; port: number; request: Record<string, unknown>; token?: string }
  | { kind: 'read' | 'connect'; path: string }
  | { kind: 'send'; socket: 'dealer' | 'push'; endpoint: string; frames: string[] };
type Outcome = { ok: true; reply?: { ok: boolean; error?: string } } | { ok?: undefined; error: string };

/** Probes still running: ended by afterAll, or the probe user could not be removed. */
const probes = new Set<ChildProcess>();

/** Runs tests/fixtures/probe.js as `user` (default: this process's user). */
function probe(attempts: Attempt[], user?: { uid: number; gid: number }): Promise<Outcome[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PROBE, JSON.stringify(attempts)], { ...user, cwd: '/', env: { PATH: process.env.PATH, HOME: '/' }, stdio: ['ignore', 'pipe', 'pipe'] });
    probes.add(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      probes.delete(child);
      if (code === 0) resolve(JSON.parse(out) as Outcome[]);
      else reject(new Error(`probe exited with ${code}: ${err}`));
    });
  });
}

async function endProbes(): Promise<void> {
  await Promise.all([...probes].map((child) => new Promise((resolve) => (child.once('close', resolve), child.kill('SIGKILL')))));
}

const frame = (text: string) => Buffer.from(text).toString('base64');
const readIfThere = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

if (uid !== 0) {
  // Running processes as another user needs root; say so rather than pass silently.
  console.warn(`access.test.ts: the tests with a second user are skipped: they need root to create and become ${PROBE_USER}, and this is uid ${uid}`);
  test('the second-user tests are skipped because this is not root', () => expect(uid).not.toBe(0));
} else {
  describe('another local user', () => {
    const port = 20000 + ((process.pid + 7919) % 20000);
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-state-'));
    const env = { DORA_COORDINATOR_PORT: String(port), DORA_STATE_DIR: stateDir };
    let created = false;
    let user: { uid: number; gid: number };
    let id: string;
    let runDir: string;
    let logDir: string;
    const tokenFile = path.join(stateDir, `coordinator-${port}.token`);

    beforeAll(async () => {
      try {
        execFileSync('id', ['-u', PROBE_USER], { stdio: 'ignore' });
      } catch {
        execFileSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', PROBE_USER]);
        created = true;
      }
      const number = (flag: string) => Number(execFileSync('id', [flag, PROBE_USER], { encoding: 'utf8' }).trim());
      user = { uid: number('-u'), gid: number('-g') };

      expect((await dora(['up'], { env })).code).toBe(0);
      const df = tempDataflow(
        `nodes:\n` +
          node('sender', 'shm-sender.ts', `    env: { COUNT: 1000000, BYTES: 65536, DELAY_MS: 50 }\n    outputs: [out]\n`) +
          node('sink', 'sink.ts', `    inputs: { data: sender/out }\n`) +
          node('talker', 'logger.ts', `    env: { COUNT: 3 }\n    outputs: [out]\n`),
      );
      const start = await dora(['start', df.file], { env });
      expect(start.code).toBe(0);
      id = start.stdout.trim();
      await waitFor(() => processesMentioning(df.dir).length >= 2, 10_000, 'the nodes to run');
      const [summary] = JSON.parse((await dora(['list', '--json'], { env })).stdout) as Array<{ logDir: string }>;
      logDir = summary.logDir;
      runDir = `/tmp/dora-ts-${uid}/${id}`;
      await waitFor(() => fs.existsSync(path.join(runDir, '0.drops')), 10_000, 'the sender to bind its sockets');
    });

    afterAll(async () => {
      await endProbes();
      await dora(['down'], { env });
      fs.rmSync(stateDir, { recursive: true, force: true });
      if (created) execFileSync('userdel', [PROBE_USER]);
    });

    test('gets a refusal from the control port for list, stop, start and down, with no token or a guessed one, and changes nothing', async () => {
      const yaml = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dora-probe-')), 'evil.yml');
      fs.writeFileSync(yaml, `nodes:\n  - id: evil\n    path: /bin/true\n`);
      fs.chmodSync(path.dirname(yaml), 0o755);
      const requests = [{ cmd: 'list' }, { cmd: 'logs', dataflow: id }, { cmd: 'stop', dataflow: id }, { cmd: 'start', file: yaml }, { cmd: 'down' }];
      const guesses = [undefined, '', 'guess', '0'.repeat(64), fs.readFileSync(tokenFile, 'utf8').trim().replace(/.$/, (c) => (c === '0' ? '1' : '0'))];
      const attempts = guesses.flatMap((token) => requests.map((request): Attempt => ({ kind: 'control', port, request, token })));
      const outcomes = await probe([...attempts, { kind: 'read', path: tokenFile }], user);
      for (const outcome of outcomes.slice(0, -1)) {
        expect(outcome).toEqual({ ok: true, reply: { ok: false, error: expect.stringContaining('refused') } });
      }
      expect(outcomes.at(-1)).toEqual({ error: 'EACCES' });
      expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);

      // The same requests reach the coordinator: with the token, the probe is answered.
      const [control] = await probe([{ kind: 'control', port, request: { cmd: 'ping' }, token: fs.readFileSync(tokenFile, 'utf8').trim() }], user);
      expect(control).toEqual({ ok: true, reply: expect.objectContaining({ ok: true }) });

      const listed = JSON.parse((await dora(['list', '--json'], { env })).stdout) as Array<{ id: string; status: string }>;
      expect(listed.map((d) => [d.id, d.status])).toEqual([[id, 'running']]);
      fs.rmSync(path.dirname(yaml), { recursive: true, force: true });
    });

    test('cannot read the logs or the dataflow.json copy', async () => {
      const files = [path.join(logDir, 'log_talker.txt'), path.join(logDir, 'dataflow.json')];
      await waitFor(() => fs.existsSync(files[0]), 5000, 'a log file');
      expect(fs.statSync(logDir).mode & 0o777).toBe(0o700);
      for (const file of files) expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      fs.chmodSync(logDir, 0o755); // even with the folder open, the files are not
      try {
        expect(await probe(files.map((p): Attempt => ({ kind: 'read', path: p })), user)).toEqual([{ error: 'EACCES' }, { error: 'EACCES' }]);
      } finally {
        fs.chmodSync(logDir, 0o700);
      }
    });

    test("cannot connect to the daemon's, the events', a sender's data or drop-token socket, nor forge a log line or a drop token", async () => {
      expect(fs.statSync(runDir).mode & 0o777).toBe(0o700);
      const sockets = ['daemon', 'events', '0.data', '0.drops'].map((name) => path.join(runDir, name));
      const connects = sockets.map((p): Attempt => ({ kind: 'connect', path: p }));
      // The owner can: the paths are right.
      expect(await probe(connects)).toEqual(sockets.map(() => ({ ok: true })));
      const forged = { t: 'log', node: 'sink', level: 'info', message: 'FORGED by another user' };
      const outcomes = await probe(
        [
          ...connects,
          { kind: 'send', socket: 'dealer', endpoint: `ipc://${runDir}/daemon`, frames: [frame(JSON.stringify(forged))] },
          { kind: 'send', socket: 'push', endpoint: `ipc://${runDir}/0.drops`, frames: [frame('DORA'), frame('any token')] },
        ],
        user,
      );
      expect(outcomes).toEqual([...sockets.map(() => ({ error: 'EACCES' })), { error: expect.any(String) }, { error: expect.any(String) }]);
      await sleep(200);
      expect(readIfThere(path.join(logDir, 'log_sink.txt'))).not.toContain('FORGED');
    });

    test('the daemon ignores malformed and unknown-node requests of its own user and keeps serving', async () => {
      // Same user, same trust: such a process can log for a node; what it sends must not stop the daemon.
      const send = (text: string): Attempt => ({ kind: 'send', socket: 'dealer', endpoint: `ipc://${runDir}/daemon`, frames: [frame(text)] });
      const malformed = [
        'not json',
        '[]',
        'null',
        '{"t":"log"}',
        '{"t":"log","node":"nobody","level":"info","message":"x"}',
        '{"t":"log","node":"sink","level":{"toString":1},"message":"x"}',
        '{"t":"log","node":{"toString":1},"level":"info","message":"x"}',
        '{"t":"register","node":"sink","version":{"toString":1},"pid":1}',
        '{"t":"__proto__","node":"sink"}',
        '{"t":"closing","node":"nobody"}',
      ];
      const outcomes = await probe([...malformed.map(send), send(JSON.stringify({ t: 'log', node: 'sink', level: 'info', message: 'after the garbage' }))]);
      expect(outcomes.every((o) => o.ok)).toBe(true);
      await waitFor(() => readIfThere(path.join(logDir, 'log_sink.txt')).includes('[info] after the garbage'), 3000, 'the well-formed line');
      const listed = JSON.parse((await dora(['list', '--json'], { env })).stdout) as Array<{ status: string }>;
      expect(listed[0].status).toBe('running');
    });
  });
}

describe('directories that other users could reach are refused', () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-dirs-'));
  const df = tempDataflow(`nodes:\n` + node('s', 'sender.ts', `    env: { COUNT: 1 }\n    outputs: [out]\n`));
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  test('a runtime directory open to others, a symbolic link, or another user’s', async () => {
    const open = path.join(scratch, 'open');
    fs.mkdirSync(open, { mode: 0o700 });
    fs.chmodSync(open, 0o755);
    const link = path.join(scratch, 'link');
    fs.mkdirSync(path.join(scratch, 'target'), { mode: 0o700 });
    fs.symlinkSync(path.join(scratch, 'target'), link);
    const cases: Array<[string, RegExp]> = [
      [open, /refusing the runtime directory .*open: it is open to other users \(mode 0755\).*chmod go-rwx/],
      [link, /refusing the runtime directory .*link: it is a symbolic link/],
    ];
    if (uid === 0) {
      const theirs = path.join(scratch, 'theirs');
      fs.mkdirSync(theirs, { mode: 0o700 });
      fs.chownSync(theirs, 65534, 65534);
      cases.push([theirs, /refusing the runtime directory .*theirs: it belongs to uid 65534, not to this user \(uid 0\)/]);
    }
    for (const [dir, message] of cases) {
      const r = await dora(['run', df.file], { env: { DORA_RUNTIME_DIR: dir } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });

  test('a state directory that others can write to', async () => {
    const state = path.join(scratch, 'state');
    fs.mkdirSync(state, { mode: 0o700 });
    fs.chmodSync(state, 0o775);
    const port = String(20000 + ((process.pid + 104729) % 20000));
    const r = await dora(['up'], { env: { DORA_STATE_DIR: state, DORA_COORDINATOR_PORT: port } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing the state directory .*state: it is open to other users \(mode 0775\)/);
  });

  test('a socket path too long for a unix socket address is named, before anything starts', async () => {
    const deep = path.join(scratch, 'd'.repeat(60));
    fs.mkdirSync(deep, { mode: 0o700 });
    const r = await dora(['run', df.file], { env: { DORA_RUNTIME_DIR: deep } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/socket paths, such as .*\/0\.drops, are longer than the 107 bytes a unix socket address holds; set DORA_RUNTIME_DIR/);
    expect(processesMentioning(df.dir)).toEqual([]);
  });
});
