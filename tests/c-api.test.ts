/**
 * The C node API (bindings/c): built with warnings as errors, checked against the
 * golden vectors, called through koffi, and run as real C nodes in dataflows —
 * also under AddressSanitizer and UBSan.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { apiFunctions } from '../bindings/c/generate-header';
import { buildC, C_DIR } from './support/build-c';
import { bindLibrary } from './support/c-library';
import { dora, leftovers, NODES, readRecord, ROOT, startDora, tempDataflow, waitFor } from './support/dataflow';
import { ERRORS } from './support/vector-errors';

const VECTORS = path.join(ROOT, 'tests/vectors');
const SEGMENT_DIR = '/dev/shm';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  // The Makefile's flags include -Wall -Wextra -Werror: a warning fails here.
  buildC([['all', 'check-vectors'], ['all', 'check-vectors', 'asan']]);
}, 240_000);

afterEach(() => {
  expect(leftovers()).toEqual([]);
});

test('the committed header, compat header and export list are what api.json generates', () => {
  const r = run(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(C_DIR, 'generate-header.ts'), '--check']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

test('the shared library has a SONAME and exports exactly the API', () => {
  const so = path.join(C_DIR, 'build/libdora_node_api.so');
  expect(run('readelf', ['-d', so]).stdout).toMatch(/SONAME.*\[libdora_node_api\.so\.0\]/);
  const exported = run('nm', ['-D', '--defined-only', so])
    .stdout.split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && f[1] === 'T')
    .map((f) => f[2].replace(/@.*$/, ''));
  expect(exported.sort()).toEqual(apiFunctions().map((f) => f.name).sort());
  expect(fs.existsSync(path.join(C_DIR, 'build/libdora_node_api.a'))).toBe(true);
  const pc = run('pkg-config', ['--cflags', '--libs', 'dora-node-api'], { PKG_CONFIG_PATH: path.join(C_DIR, 'build/pkgconfig') });
  expect(pc.stdout).toContain(`-I${path.join(C_DIR, 'include')}`);
  expect(pc.stdout).toContain('-ldora_node_api');
});

// ---------------------------------------------------------------------------
// Golden vectors, checked by bindings/c/tests/check_vectors.c

type Line = Record<string, any>;
const withDefaults = (t: any): any => ({ format: t.format, name: t.name ?? '', nullable: t.nullable ?? true, children: (t.children ?? []).map(withDefaults) });

function checkVectors(build: string, files: string[] = []): Map<string, Line> {
  const r = run(path.join(C_DIR, build, 'check-vectors'), [VECTORS, ...files]);
  expect(r.stderr).toBe(''); // under ASan: no report
  expect(r.status).toBe(0);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
  return new Map(lines.map((l) => [l.file, l]));
}

function withSegment<T>(name: string, bytes: Uint8Array | null, body: () => T): T {
  const file = path.join(SEGMENT_DIR, name);
  if (bytes) fs.writeFileSync(file, bytes, { mode: 0o600 });
  try {
    return body();
  } finally {
    fs.rmSync(file, { force: true });
  }
}

describe.each(['build', 'build-asan'])('golden vectors in C (%s)', (build) => {
  const plain = (dir: string) =>
    fs
      .readdirSync(path.join(VECTORS, dir))
      .filter((f) => f.endsWith('.json') && f !== 'control.json')
      .filter((f) => !JSON.parse(fs.readFileSync(path.join(VECTORS, dir, f), 'utf8')).segment && !f.startsWith('shm-'))
      .map((f) => `${dir}/${f}`);

  test('every Arrow vector decodes to its values and re-encodes to the same bytes', () => {
    const files = plain('arrow');
    const lines = checkVectors(build, files);
    for (const file of files) {
      const v = JSON.parse(fs.readFileSync(path.join(VECTORS, file), 'utf8'));
      const line = lines.get(file)!;
      expect({ file, ok: line.ok, error: line.error }).toEqual({ file, ok: true, error: undefined });
      expect({ file, type: line.type, values: line.values, length: line.length }).toEqual({ file, type: withDefaults(v.type), values: v.values, length: v.length });
      expect([line.timestamp, line.seq]).toEqual([v.timestamp, v.seq]);
      if (!v.decodeOnly) expect({ file, reencoded: line.reencoded }).toEqual({ file, reencoded: true });
    }
  });

  test('message vectors', () => {
    const lines = checkVectors(build, plain('messages'));
    const params = JSON.parse(fs.readFileSync(path.join(VECTORS, 'messages/data-parameters.json'), 'utf8'));
    expect(lines.get('messages/data-parameters.json')!.parameters).toEqual(params.parameters);
    expect(lines.get('messages/data-parameters.json')!.values).toEqual(params.values);
    expect(lines.get('messages/end-of-stream.json')).toMatchObject({ ok: true, eos: true });
    expect(lines.get('messages/timer-tick.json')).toMatchObject({ ok: true, seq: '5', values: [], type: { format: 'n' } });
    for (const name of ['drop-tokens', 'drop-tokens-empty']) {
      const v = JSON.parse(fs.readFileSync(path.join(VECTORS, `messages/${name}.json`), 'utf8'));
      expect(lines.get(`messages/${name}.json`)).toEqual({ file: `messages/${name}.json`, ok: true, receiver: v.receiver, samples: v.samples, lost: v.lost, reencoded: true });
    }
    const shm = JSON.parse(fs.readFileSync(path.join(VECTORS, 'messages/data-shm.json'), 'utf8'));
    const line = withSegment(shm.segment.name, fs.readFileSync(path.join(VECTORS, 'messages', shm.segment.file)), () =>
      checkVectors(build, ['messages/data-shm.json']).get('messages/data-shm.json')!,
    );
    // The values are the segment's bytes, read where the segment is mapped: no copy.
    expect(line).toMatchObject({ ok: true, seq: '12', bytesEqual: true, inPlace: true });
  });

  test('every invalid vector is refused with a clear error, never a crash', () => {
    for (const file of fs.readdirSync(path.join(VECTORS, 'invalid')).filter((f) => f.endsWith('.json'))) {
      const v = JSON.parse(fs.readFileSync(path.join(VECTORS, 'invalid', file), 'utf8'));
      const line = withSegment(v.segment?.name ?? 'dora-ts-vectors-none', v.segment ? new Uint8Array(v.segment.size) : null, () =>
        checkVectors(build, [`invalid/${file}`]).get(`invalid/${file}`)!,
      );
      expect({ file, ok: line.ok }).toEqual({ file, ok: false });
      expect({ file, error: line.error }).toEqual({ file, error: expect.stringMatching(ERRORS[v.error]) });
    }
  });
});

// ---------------------------------------------------------------------------
// The library through koffi, declared from the same API description

test('outside a dataflow, init fails with an error saying how to run the node', () => {
  const fn = bindLibrary();
  const saved = process.env.DORA_NODE_CONFIG;
  delete process.env.DORA_NODE_CONFIG;
  try {
    expect(fn('init_dora_context_from_env')()).toBeNull();
    expect(fn('dora_last_error')()).toMatch(/DORA_NODE_CONFIG is not set: this program is a dora node and must be started by dora/);
    expect(fn('dora_next_event')(null)).toBeNull();
    expect(fn('read_dora_event_type')(null)).toBe(4); // DoraEventType_Unknown
    expect(fn('dora_send_output')(null, 'out', 3, 'x', 1)).toBe(-1);
  } finally {
    if (saved !== undefined) process.env.DORA_NODE_CONFIG = saved;
  }
});

test('metadata parameters through koffi', () => {
  const fn = bindLibrary();
  const m = fn('dora_metadata_new')();
  expect(fn('dora_metadata_set_int')(m, 'frame', 42)).toBe(0);
  expect(fn('dora_metadata_set_float')(m, 'gain', 0.5)).toBe(0);
  expect(fn('dora_metadata_set_bool')(m, 'ok', true)).toBe(0);
  expect(fn('dora_metadata_set_string')(m, 'frame', 'replaced', 8)).toBe(0);
  expect(fn('dora_metadata_len')(m)).toBe(3);
  expect([fn('dora_metadata_type')(m, 'frame'), fn('dora_metadata_type')(m, 'gain'), fn('dora_metadata_type')(m, 'none')]).toEqual([4, 3, 0]);
  const gain = [0];
  expect(fn('dora_metadata_get_float')(m, 'gain', gain)).toBe(0);
  expect(gain[0]).toBe(0.5);
  const wrong = [0];
  expect(fn('dora_metadata_get_int')(m, 'gain', wrong)).toBe(-1);
  expect(fn('dora_last_error')()).toMatch(/parameter "gain" has type 3/);
  expect(fn('dora_metadata_set_string')(m, 'name', 'é', 2)).toBe(0); // koffi passes UTF-8: c3 a9
  expect(fn('dora_metadata_set_string')(m, 'cut', 'é', 1)).toBe(-1); // half a character
  expect(fn('dora_last_error')()).toMatch(/not valid UTF-8/);
  expect(fn('dora_metadata_len')(m)).toBe(4);
  fn('dora_metadata_free')(m);
});

test('through koffi, a TypeScript process is a node via the C library: inputs, closing, sending', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      tsNode('sender', 'sender.ts', `    env: { COUNT: 5 }\n    inputs:\n      tick: dora/timer/millis/20\n    outputs: [out]\n`) +
      tsNode('viaC', 'koffi-node.ts', `    env: { RECORD: ./c.jsonl }\n    inputs:\n      data: sender/out\n    outputs: [out]\n`) +
      tsNode('r', 'recorder.ts', `    env: { RECORD: ./r.jsonl }\n    inputs:\n      data: viaC/out\n`),
  );
  const result = await dora(['run', df.file]);
  expect(result.code).toBe(0);
  const events = readRecord(path.join(df.dir, 'c.jsonl'));
  expect(events.map((e) => e.type)).toEqual(['INPUT', 'INPUT', 'INPUT', 'INPUT', 'INPUT', 'INPUT_CLOSED', 'STOP', 'END']);
  // the sender's int64 [seq] arrays, as raw little-endian bytes
  expect(events.slice(0, 5).map((e) => Buffer.from(e.bytes).readBigInt64LE())).toEqual([0n, 1n, 2n, 3n, 4n]);
  expect(events[0].id).toBe('data');
  expect(BigInt(events[1].timestamp)).toBeGreaterThan(BigInt(events[0].timestamp));
  const forwarded = readRecord(path.join(df.dir, 'r.jsonl')).filter((e) => e.type === 'INPUT');
  expect(forwarded.map((e) => e.values)).toEqual(events.slice(0, 5).map((e) => e.bytes));
}, 60_000);

// ---------------------------------------------------------------------------
// C nodes in real dataflows

const cNode = (id: string, build: string, extra: string) =>
  `  - id: ${id}\n    path: ./${id}\n    build: ${build}\n${extra}`;
const echoBuild = (flags = '$(pkg-config --cflags --libs dora-node-api)') => `cc -std=c11 -Wall -Wextra -Werror ${path.join(ROOT, 'tests/fixtures/c/echo.c')} -o echo ${flags}`;
const tsNode = (id: string, script: string, extra: string) => `  - id: ${id}\n    path: ${path.join(NODES, script)}\n${extra}`;

function vectorPipeline(echoEnv: string, build = echoBuild()) {
  return tempDataflow(
    `nodes:\n` +
      tsNode('sender', 'vector-sender.ts', `    outputs: [out]\n`) +
      cNode('echo', build, `    env: { ${echoEnv} }\n    inputs:\n      data: { source: sender/out, queue_size: 100 }\n    outputs: [out]\n`) +
      tsNode('receiver', 'vector-receiver.ts', `    env: { RECORD: ./received.jsonl }\n    inputs:\n      data: { source: echo/out, queue_size: 100 }\n`),
  );
}

function expectEveryVector(dir: string): void {
  const received = readRecord(path.join(dir, 'received.jsonl')).filter((e) => e.type === 'INPUT');
  const files = fs.readdirSync(path.join(VECTORS, 'arrow')).filter((f) => f.endsWith('.json')).sort();
  let count = 0;
  for (const file of files) {
    const v = JSON.parse(fs.readFileSync(path.join(VECTORS, 'arrow', file), 'utf8'));
    if (v.decodeOnly) continue;
    const name = file.slice(0, -5);
    const got = received.find((e) => e.vector === name);
    expect({ name, values: got?.values }).toEqual({ name, values: v.values });
    count++;
  }
  expect(received.find((e) => e.vector === 'large')).toMatchObject({ length: 4 << 20, patternOk: true });
  expect(received).toHaveLength(count + 1);
}

test('TypeScript → C → TypeScript: every Arrow vector type and a 4 MiB shared-memory payload round-trip', async () => {
  const df = vectorPipeline('ARROW: 1');
  const built = await dora(['build', df.file]);
  expect(built.stderr).toBe('');
  expect(built.code).toBe(0);
  const result = await dora(['run', df.file]);
  expect(result.code).toBe(0);
  expectEveryVector(df.dir);
  // its one input closed, then STOP (every input closed, as in dora)
  expect(result.stdout).toMatch(/stop ALL_INPUTS_CLOSED/);
  expect(result.stdout).toMatch(/echo.*echo: \d+ inputs, 1 closed, 1 stops/);
}, 60_000);

test.each([['BYTES: 1'], ['ALLOCATE: 1']])('C node with dora’s byte API (%s) passes large payloads through shared memory', async (env) => {
  const df = vectorPipeline(env);
  fs.writeFileSync(df.file, fs.readFileSync(df.file, 'utf8').replace('    outputs: [out]\n', '    env: { VECTORS: uint8 }\n    outputs: [out]\n'));
  expect((await dora(['build', df.file])).code).toBe(0);
  const result = await dora(['run', df.file]);
  expect(result.code).toBe(0);
  const received = readRecord(path.join(df.dir, 'received.jsonl')).filter((e) => e.type === 'INPUT');
  expect(received.map((e) => e.vector)).toEqual(['uint8', 'large']);
  expect(received[1]).toMatchObject({ length: 4 << 20, patternOk: true });
  // bytes of a uint8 array with a null: the null slot's byte travels too (raw bytes, no validity)
  expect(received[0].values).toEqual([0, 1, 0, 255]);
}, 60_000);

test('a C node on a timer gets STOP on Ctrl-C and exits cleanly', async () => {
  const df = tempDataflow(`nodes:\n` + cNode('echo', echoBuild(), `    inputs:\n      tick: dora/timer/millis/20\n    outputs: [out]\n`));
  expect((await dora(['build', df.file])).code).toBe(0);
  const { child, done } = startDora(['run', df.file]);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(() => (output.match(/input tick/g) ?? []).length >= 5, 15000, 'ticks to reach the C node');
  child.kill('SIGINT');
  const result = await done;
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/stop MANUAL/);
  expect(result.stdout).toMatch(/echo: \d+ inputs, 0 closed, 1 stops/);
}, 60_000);

test('a C node sending on an undeclared output gets an error listing the declared ones', async () => {
  const source = path.join(ROOT, 'tests/fixtures/c/echo.c');
  const df = tempDataflow(
    `nodes:\n` +
      tsNode('sender', 'vector-sender.ts', `    env: { VECTORS: uint8, LARGE: 0 }\n    outputs: [out]\n`) +
      cNode('echo', `sed 's/"out", 3/"nope", 4/' ${source} > echo.c && cc -std=c11 echo.c -o echo $(pkg-config --cflags --libs dora-node-api)`, `    env: { BYTES: 1 }\n    inputs:\n      data: sender/out\n    outputs: [out, debug]\n`),
  );
  expect((await dora(['build', df.file])).code).toBe(0);
  const result = await dora(['run', df.file]);
  expect(result.stderr + result.stdout).toMatch(/node "echo" has no output "nope" \(declared outputs: out, debug\)/);
}, 60_000);

test('under AddressSanitizer and UBSan a C node runs a whole dataflow with no error and no leak', async () => {
  const asan = path.join(C_DIR, 'build-asan');
  const flags = `-fsanitize=address,undefined -fno-omit-frame-pointer -I${path.join(C_DIR, 'include')} ${path.join(asan, 'libdora_node_api.a')} $(pkg-config --libs libzmq) -lpthread`;
  const df = vectorPipeline('ARROW: 1', echoBuild(flags));
  expect((await dora(['build', df.file])).code).toBe(0);
  const result = await dora(['run', df.file], { env: { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' } });
  const logs = result.stdout + result.stderr + fs.readdirSync(path.join(df.dir, 'out')).map((d) => {
    const file = path.join(df.dir, 'out', d, 'log_echo.txt');
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  }).join('');
  expect(logs).not.toMatch(/AddressSanitizer|LeakSanitizer|runtime error/);
  expect(result.code).toBe(0);
  expectEveryVector(df.dir);
}, 90_000);

test('a node written for dora’s C API (its DoraEventType typedef, its library name) compiles unchanged and runs', async () => {
  const source = path.join(ROOT, 'tests/fixtures/c/dora_style.c');
  const lib = path.join(ROOT, 'bindings/c/build');
  const df = tempDataflow(
    `nodes:\n` +
      // linked as dora's build lines do: -ldora_node_api_c
      cNode('node', `cc ${source} -o node $(pkg-config --cflags dora-node-api) -L${lib} -ldora_node_api_c -Wl,-rpath,${lib}`, `    inputs:\n      tick: dora/timer/millis/10\n    outputs: [message]\n`) +
      tsNode('r', 'recorder.ts', `    env: { RECORD: ./r.jsonl }\n    inputs:\n      message: node/message\n`),
  );
  expect((await dora(['build', df.file])).code).toBe(0);
  const result = await dora(['run', df.file]);
  expect(result.code).toBe(0);
  const messages = readRecord(path.join(df.dir, 'r.jsonl')).filter((e) => e.type === 'INPUT');
  expect(messages.map((e) => Buffer.from(e.values as number[]).toString())).toEqual(Array.from({ length: 20 }, (_, i) => `tick ${i}`));
  const log = fs.readFileSync(path.join(df.dir, 'out', /dataflow ([0-9a-f-]{36})/.exec(result.stderr)![1], 'log_node.txt'), 'utf8');
  expect(log.match(/\[info\] input tick at \d{19}/g)).toHaveLength(20);
}, 60_000);

test('a dora-style C node and C operator built with CMake through find_package(dora-node-api-c) and find_package(dora-operator-api-c) from an installed prefix run', async () => {
  const prefix = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'dora-prefix-'));
  const project = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'dora-cmake-'));
  try {
    buildC([['install', `PREFIX=${prefix}`]]);
    const must = (cmd: string, args: string[]) => {
      const r = run(cmd, args);
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    };
    fs.writeFileSync(
      path.join(project, 'CMakeLists.txt'),
      `cmake_minimum_required(VERSION 3.16)\nproject(dora_style_node C)\n` +
        `find_package(dora-node-api-c 0.1 REQUIRED)\nfind_package(dora-operator-api-c 0.1 REQUIRED)\n` +
        `add_executable(node ${path.join(ROOT, 'tests/fixtures/c/dora_style.c')})\ntarget_link_libraries(node dora_node_api_c)\n` +
        `add_library(counter SHARED ${path.join(ROOT, 'tests/fixtures/c/operator.c')})\ntarget_link_libraries(counter dora_operator_api_c)\n`,
    );
    must('cmake', ['-S', project, '-B', path.join(project, 'build'), `-DCMAKE_PREFIX_PATH=${prefix}`]);
    must('cmake', ['--build', path.join(project, 'build')]);
    // pkg-config from the prefix: the installed .pc has no rpath, and dora-node-api-static links the archive
    const pc = (args: string[]) => run('pkg-config', args, { PKG_CONFIG_PATH: path.join(prefix, 'lib/pkgconfig') });
    expect(fs.readFileSync(path.join(prefix, 'lib/pkgconfig/dora-node-api.pc'), 'utf8')).not.toContain('rpath');
    expect(pc(['--static', '--libs', 'dora-node-api'])).toMatchObject({ status: 0 });
    const flags = pc(['--cflags', '--libs', 'dora-node-api-static']).stdout.trim().split(/\s+/);
    must('cc', ['-std=c11', path.join(ROOT, 'tests/fixtures/c/dora_style.c'), '-o', path.join(project, 'static-node'), ...flags]);
    expect(run('ldd', [path.join(project, 'static-node')]).stdout).not.toContain('libdora_node_api');
    const df = tempDataflow(
      `nodes:\n` +
        `  - id: node\n    path: ${path.join(project, 'build', 'node')}\n    inputs:\n      tick: dora/timer/millis/10\n    outputs: [message]\n` +
        `  - id: static\n    path: ${path.join(project, 'static-node')}\n    inputs:\n      tick: dora/timer/millis/10\n    outputs: [message]\n` +
        `  - id: ops\n    operators:\n      - id: counter\n        shared-library: ${path.join(project, 'build', 'counter')}\n        inputs:\n          message: node/message\n        outputs: [counter]\n` +
        tsNode('r', 'recorder.ts', `    env: { RECORD: ./r.jsonl }\n    inputs:\n      message: node/message\n      smessage: static/message\n      counter: ops/counter/counter\n`),
    );
    const result = await dora(['run', df.file]);
    expect(result.code).toBe(0);
    const inputs = readRecord(path.join(df.dir, 'r.jsonl')).filter((e) => e.type === 'INPUT');
    expect(inputs.filter((e) => e.id === 'message')).toHaveLength(20);
    expect(inputs.filter((e) => e.id === 'smessage')).toHaveLength(20);
    expect(Buffer.from(inputs.filter((e) => e.id === 'counter').pop()!.values as number[]).toString()).toBe('The current counter value is 20');
  } finally {
    fs.rmSync(prefix, { recursive: true, force: true });
    fs.rmSync(project, { recursive: true, force: true });
  }
}, 120_000);

test('dora_next_event_timeout returns NULL on timeout without ending the stream', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      tsNode('sender', 'sender.ts', `    env: { COUNT: 3 }\n    inputs:\n      tick: dora/timer/millis/300\n    outputs: [out]\n`) +
      cNode('echo', echoBuild(), `    env: { TIMEOUT_MS: 50, BYTES: 1 }\n    inputs:\n      data: sender/out\n    outputs: [out]\n`),
  );
  expect((await dora(['build', df.file])).code).toBe(0);
  const result = await dora(['run', df.file]);
  expect(result.code).toBe(0);
  const summary = /echo: (\d+) inputs, 1 closed, 1 stops, (\d+) timeouts/.exec(result.stdout);
  expect(summary).not.toBeNull();
  expect(Number(summary![1])).toBe(3);
  expect(Number(summary![2])).toBeGreaterThanOrEqual(4); // 300 ms between messages, 50 ms timeouts
}, 60_000);

test('malformed frames sent to a C node (under ASan) are logged with their sender and dropped', async () => {
  const asan = path.join(C_DIR, 'build-asan');
  const flags = `-fsanitize=address,undefined -fno-omit-frame-pointer -I${path.join(C_DIR, 'include')} ${path.join(asan, 'libdora_node_api.a')} $(pkg-config --libs libzmq) -lpthread`;
  const df = tempDataflow(
    `nodes:\n` +
      tsNode('rogue', 'rogue.ts', `    outputs: [out]\n`) +
      cNode('echo', echoBuild(flags), `    env: { BYTES: 1 }\n    inputs:\n      data: rogue/out\n    outputs: [out]\n`),
  );
  expect((await dora(['build', df.file])).code).toBe(0);
  const result = await dora(['run', df.file]);
  expect(result.code).toBe(0);
  expect(result.stdout.match(/input data 8 bytes/g)).toHaveLength(2); // the two valid int64 messages
  const log = fs.readFileSync(path.join(df.dir, 'out', /dataflow ([0-9a-f-]{36})/.exec(result.stderr)![1], 'log_echo.txt'), 'utf8');
  expect(log).not.toMatch(/AddressSanitizer|runtime error/);
  expect(log.split('\n').filter((l) => l.includes('dropped a malformed message from rogue/out'))).toHaveLength(8);
  for (const reason of [/bad magic/, /protocol version 2/, /truncated/, /header announced/, /does not exist/, /not a dora-ts segment name/, /outside the \d+-byte segment/, /outside the 40-byte payload/]) {
    expect(log).toMatch(reason);
  }
}, 60_000);

test('make install puts the headers, libraries and a pkg-config file under the prefix', () => {
  const dest = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'dora-install-'));
  try {
    buildC([['install', `DESTDIR=${dest}`, 'PREFIX=/opt/dora']]); // throws with make's stderr if it fails
    const root = path.join(dest, 'opt/dora');
    for (const f of ['include/dora_node_api.h', 'include/node_api.h', 'lib/libdora_node_api.so.0.1.0', 'lib/libdora_node_api.so.0', 'lib/libdora_node_api.so', 'lib/libdora_node_api.a']) {
      expect([f, fs.existsSync(path.join(root, f))]).toEqual([f, true]);
    }
    const pc = fs.readFileSync(path.join(root, 'lib/pkgconfig/dora-node-api.pc'), 'utf8');
    expect(pc).toContain('includedir=/opt/dora/include');
    expect(pc).toContain('libdir=/opt/dora/lib');
  } finally {
    fs.rmSync(dest, { recursive: true, force: true });
  }
});
