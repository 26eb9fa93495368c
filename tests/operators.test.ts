/**
 * dora's in-process operators: the descriptor (shapes, addressing, errors with their
 * position) and real runtimes — the Python runtime hosting Python and C operators in one
 * process, the C runtime for C operators alone, STOP of one operator, STOP_ALL of the
 * dataflow, and operators that fail.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DescriptorError, parseDescriptor, type DescriptorIssue } from '../coordinator';
import { buildC } from './support/build-c';
import { dora, leftovers, NODES, readRecord, ROOT, tempDataflow } from './support/dataflow';

const C = path.join(ROOT, 'tests/fixtures/c');
const OPERATORS = path.join(ROOT, 'tests/fixtures/operators');
const NODE_API = '$(pkg-config --cflags --libs dora-node-api)';

beforeAll(() => {
  buildC([['all']]); // the node library, libdora_operator_api_c.a and build/dora-runtime
}, 240_000);

afterEach(() => {
  expect(leftovers()).toEqual([]);
});

// ---------------------------------------------------------------------------
// Descriptor

const FILE = '/flows/robot.yml';
const parse = (yaml: string) => parseDescriptor(yaml, FILE, '/flows', { checkPaths: false });

function issues(yaml: string): DescriptorIssue[] {
  try {
    parse(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(DescriptorError);
    return [...(err as DescriptorError).issues];
  }
  throw new Error('expected the descriptor to be rejected');
}

const at = (i: DescriptorIssue) => `${i.position?.line}:${i.position?.column}`;

test("operators resolve into their node's inputs and outputs, named <operator>/<id>, addressed <node>/<operator>/<output>", () => {
  const df = parse(`nodes:
  - id: camera
    path: camera.py
    outputs: [image]
  - id: runtime-node
    env: { MODE: fast }
    operators:
      - id: detect
        python: ops/detect.py
        inputs:
          image: camera/image
          tick: { source: dora/timer/millis/100, queue_size: 1 }
        outputs: [boxes]
      - id: count
        shared-library: build/counter
        build: make counter
        inputs:
          boxes: runtime-node/detect/boxes
        outputs: [total]
  - id: plot
    path: plot.py
    inputs:
      boxes: runtime-node/detect/boxes
      total: runtime-node/count/total
`);
  const node = df.nodes[1];
  expect(node.operators).toEqual([
    {
      id: 'detect',
      kind: 'python',
      source: 'ops/detect.py',
      resolvedPath: '/flows/ops/detect.py',
      inputs: [
        { id: 'image', source: { kind: 'node', node: 'camera', output: 'image' }, queueSize: 10 },
        { id: 'tick', source: { kind: 'timer', name: 'dora/timer/millis/100', intervalNs: 100_000_000n }, queueSize: 1 },
      ],
      outputs: ['boxes'],
    },
    {
      id: 'count',
      kind: 'shared-library',
      source: 'build/counter',
      resolvedPath: '/flows/build/libcounter.so',
      build: 'make counter',
      inputs: [{ id: 'boxes', source: { kind: 'node', node: 'runtime-node', output: 'detect/boxes' }, queueSize: 10 }],
      outputs: ['total'],
    },
  ]);
  expect(node.inputs.map((i) => [i.id, i.queueSize])).toEqual([
    ['detect/image', 10],
    ['detect/tick', 1],
    ['count/boxes', 10],
  ]);
  expect(node.outputs).toEqual(['detect/boxes', 'count/total']);
  expect(node.env).toEqual({ MODE: 'fast' });
  expect(df.nodes[2].inputs.map((i) => i.source)).toEqual([
    { kind: 'node', node: 'runtime-node', output: 'detect/boxes' },
    { kind: 'node', node: 'runtime-node', output: 'count/total' },
  ]);
  expect(df.timers.map((t) => t.name)).toEqual(['dora/timer/millis/100']);
});

test('a single `operator` has the id `op` unless it gives one, and is addressed <node>/<output>', () => {
  const df = parse(`nodes:
  - id: webcam
    operator:
      python: webcam.py
      inputs:
        tick: dora/timer/millis/100
      outputs: [image]
  - id: named
    operator:
      id: plotter
      python: { source: plot.py }
      inputs:
        image: webcam/image
      outputs: [frame]
  - id: sink
    path: sink.py
    inputs:
      frame: named/frame
`);
  const [webcam, named, sink] = df.nodes;
  expect(webcam.operators!.map((o) => o.id)).toEqual(['op']);
  expect(webcam.inputs.map((i) => i.id)).toEqual(['op/tick']);
  expect(webcam.outputs).toEqual(['op/image']);
  expect(named.operators!.map((o) => [o.id, o.resolvedPath])).toEqual([['plotter', '/flows/plot.py']]);
  expect(named.inputs.map((i) => [i.id, i.source])).toEqual([['plotter/image', { kind: 'node', node: 'webcam', output: 'op/image' }]]);
  expect(sink.inputs.map((i) => i.source)).toEqual([{ kind: 'node', node: 'named', output: 'plotter/frame' }]);
});

test('mistakes in operators are reported with their position, node and a hint', () => {
  const found = issues(`nodes:
  - id: src
    path: src.py
    outputs: [message]
  - id: ops
    inputs: { x: src/message }
    operators:
      - id: a
        python: a.py
        inputs:
          message: src/mesage
        outputs: [out, out]
      - id: a
        shared-library: build/liboperator.so
      - python: b.py
      - id: c
      - id: d
        python: d.py
        shared-library: build/d
`);
  expect(found.map((i) => [at(i), i.node, i.message])).toEqual([
    ['6:5', 'ops', '`inputs` has no meaning for a node of operators'],
    ['11:20', 'ops', 'input source `src/mesage`: node `src` does not declare an output `mesage`'],
    ['12:24', 'ops', 'output `out` of operator `a` is declared twice'],
    ['13:13', 'ops', 'duplicate operator id `a` in node `ops`'],
    ['14:25', 'ops', '`shared-library` names the library without its `lib` prefix and extension, which are added: `build/liboperator.so` would open libliboperator.so.so'],
    ['15:9', 'ops', 'an operator of `operators` is missing the required field `id`'],
    ['16:9', 'ops', 'operator `c` has no source'],
    ['19:9', 'ops', 'operator `d` has both `python` and `shared-library`'],
  ]);
  expect(found.find((i) => i.message.startsWith('duplicate operator id'))!.hint).toBe('first used on line 8');
  expect(found.find((i) => i.message.startsWith('`shared-library`'))!.hint).toBe('write `build/operator` for build/liboperator.so');
  // unknown fields are schema errors: reported before the meaning is looked at
  expect(issues(`nodes:\n  - id: d\n    operators:\n      - id: d\n        python: d.py\n        wasm: d.wasm\n        ouputs: [x]\n`).map((i) => [at(i), i.message, i.hint])).toEqual([
    ['6:9', '`wasm` is a dora field that dora-ts does not support yet', expect.stringContaining('WebAssembly operators are not supported')],
    ['7:9', 'unknown field `ouputs`', 'did you mean `outputs`?'],
  ]);
  const second = issues(`nodes:
  - id: single
    operator:
      python: status.py
      outputs: [status]
  - id: ops
    operators:
      - id: a
        python: a.py
        outputs: [out]
  - id: both
    path: both.py
    operator:
      shared-library: build/operator
  - id: nothing
    name: no path, no operators
  - id: sink
    path: sink.py
    inputs:
      a: ops/a/outt
      b: single/op/status
      d: ops/out
`);
  expect(second.map((i) => [at(i), i.node, i.message, i.hint])).toEqual([
    ['12:5', 'both', 'a node has one of `path`, `operator` and `operators`, not several', expect.any(String)],
    ['15:5', 'nothing', 'the node is missing the required field `path`', expect.stringContaining('`operator` or `operators`')],
    ['20:10', 'sink', 'input source `ops/a/outt`: node `ops` does not declare an output `a/outt`', 'did you mean `ops/a/out`?'],
    ['21:10', 'sink', 'input source `single/op/status`: node `single` does not declare an output `op/status`', 'did you mean `single/status`?'],
    ['22:10', 'sink', 'input source `ops/out`: node `ops` does not declare an output `out`', 'outputs of a node with `operators` are addressed `ops/<operator>/<output>` (declared: a/out)'],
  ]);
});

test("`dora check` names the file, line:column, node and field of an operator's missing Python file", async () => {
  const df = tempDataflow(`nodes:
  - id: runtime-node
    operators:
      - id: present
        python: present.py
      - id: absent
        python: ops/absent.py
`);
  fs.writeFileSync(path.join(df.dir, 'present.py'), 'class Operator:\n    pass\n');
  const result = await dora(['check', df.file]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(
    `${df.file}:7:17: node "runtime-node": at /nodes/0/operators/1/python: \`python\`: ${path.join(df.dir, 'ops/absent.py')} does not exist (hint: paths are relative to the dataflow file)`,
  );
  expect(result.stderr).not.toContain('present.py');
});

// ---------------------------------------------------------------------------
// Runtimes

/** dora's examples/c-dataflow `c_node`: 20 messages "tick <n>", one per timer tick, then it exits. */
const cNode = `  - id: c_node
    path: ./c_node
    build: cc ${C}/dora_style.c -o c_node ${NODE_API}
    inputs:
      timer: dora/timer/millis/20
    outputs: [message]
`;

const cSink = (inputs: Record<string, string>) => `  - id: c_sink
    path: ./c_sink
    build: cc ${C}/sink.c -o c_sink ${NODE_API}
    inputs:
${Object.entries(inputs)
  .map(([id, source]) => `      ${id}: ${source}\n`)
  .join('')}`;

/**
 * The counting C operator, as lib<name>.so. `linked`: built the way dora's examples do
 * (-ldora_operator_api_c, through pkg-config); otherwise with the header only, its
 * operator functions left to the runtime.
 */
const cOperator = (id: string, name: string, input: string, linked = true) => `      - id: ${id}
        shared-library: build/${name}
        build: mkdir -p build && cc -std=c11 -Wall -Wextra -Werror -shared -fPIC ${C}/operator.c -o build/lib${name}.so ${linked ? '$(pkg-config --cflags --libs dora-operator-api)' : `-I${path.join(ROOT, 'bindings/c/include')}`}
        inputs:
          message: ${input}
        outputs: [counter]
`;

/** Builds and runs a dataflow; its stdout lines of one node, without the `[node] ` prefix. */
async function run(yaml: string) {
  const df = tempDataflow(yaml);
  const build = await dora(['build', df.file]);
  expect(build.stderr).toBe('');
  expect(build.code).toBe(0);
  const result = await dora(['run', df.file]);
  const lines = (node: string) =>
    result.stdout
      .split('\n')
      .filter((l) => l.startsWith(`[${node}] `))
      .map((l) => l.slice(node.length + 3));
  return { df, result, lines };
}

const counters = (n: number) => Array.from({ length: n }, (_, i) => `counter: The current counter value is ${i + 1}`);

test("dora's c-dataflow, with a Python operator beside the C one: both run in one runtime process, and a C sink reads them", async () => {
  const { result, lines } = await run(
    `nodes:\n` +
      cNode +
      `  - id: runtime-node\n    operators:\n` +
      cOperator('c_operator', 'operator', 'c_node/message') +
      `      - id: py_operator
        python: ${OPERATORS}/status.py
        inputs:
          message: c_node/message
        outputs: [status]
` +
      cSink({ counter: 'runtime-node/c_operator/counter', status: 'runtime-node/py_operator/status' }),
  );
  expect(result.stderr).toMatch(/dataflow [0-9a-f-]{36} finished/);
  expect(result.code).toBe(0);
  const runtime = lines('runtime-node');
  const [, pid, exe] = /^c operator: pid (\d+) exe (.*)$/.exec(runtime[0])!;
  expect(path.basename(exe)).toMatch(/^python/); // a Python operator: the Python runtime hosts both
  const sink = lines('c_sink');
  expect(sink.filter((l) => l.startsWith('counter: '))).toEqual(counters(20));
  expect(sink.filter((l) => l.startsWith('status: '))).toEqual(Array.from({ length: 20 }, (_, i) => `status: python operator pid ${pid} got tick ${i}`));
  expect(sink[0]).not.toBe(`sink: pid ${pid}`);
  // the C node finished: each operator saw its input close, the runtime ended, the sink's inputs closed
  expect(runtime.slice(1)).toEqual(['c operator: input message closed', 'c operator: dropped after 20 messages']);
  expect(sink.slice(-3)).toEqual(['closed counter', 'closed status', 'stop ALL_INPUTS_CLOSED']);
}, 90_000);

test('a node of C operators runs in the C runtime, without Python; an operator linked without libdora_operator_api_c finds its functions there', async () => {
  const { result, lines } = await run(
    `nodes:\n` +
      cNode +
      `  - id: runtime-node\n    operators:\n` +
      cOperator('plain', 'plain', 'c_node/message', false) +
      cOperator('linked', 'linked', 'c_node/message') +
      cSink({ counter: 'runtime-node/plain/counter', again: 'runtime-node/linked/counter' }),
  );
  expect(result.code).toBe(0);
  const starts = lines('runtime-node').filter((l) => l.startsWith('c operator: pid'));
  expect(starts).toHaveLength(2);
  expect(new Set(starts).size).toBe(1); // one process
  expect(starts[0]).toMatch(/exe .*\/bindings\/c\/build\/dora-runtime$/);
  const sink = lines('c_sink');
  expect(sink.filter((l) => l.startsWith('counter: '))).toEqual(counters(20));
  expect(sink.filter((l) => l.startsWith('again: '))).toEqual(counters(20).map((l) => l.replace('counter: ', 'again: ')));
}, 90_000);

test('the C runtime and host run clean under AddressSanitizer and UBSan (DORA_C_RUNTIME)', async () => {
  buildC([['asan']]);
  const df = tempDataflow(
    `nodes:\n` + cNode + `  - id: runtime-node\n    operators:\n` + cOperator('plain', 'plain', 'c_node/message', false) + cOperator('linked', 'linked', 'c_node/message') + cSink({ a: 'runtime-node/plain/counter', b: 'runtime-node/linked/counter' }),
  );
  expect((await dora(['build', df.file])).code).toBe(0);
  const result = await dora(['run', df.file], { env: { DORA_C_RUNTIME: path.join(ROOT, 'bindings/c/build-asan/dora-runtime') } });
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/c operator: pid \d+ exe .*\/build-asan\/dora-runtime/);
  expect(result.stdout.split('\n').filter((l) => l.startsWith('[c_sink] a: '))).toHaveLength(20);
  expect(result.stdout + result.stderr).not.toMatch(/AddressSanitizer|LeakSanitizer|runtime error/);
}, 240_000);

test('DoraStatus.STOP stops that operator only: it gets no more events, the others go on until their inputs close', async () => {
  const record = 'stopper-events.txt';
  const { df, result, lines } = await run(
    `nodes:\n` +
      cNode +
      `  - id: ops
    env: { STOP_AFTER: 3, RECORD: ./${record} }
    operators:
      - id: stopper
        python: ${OPERATORS}/stopper.py
        inputs:
          message: c_node/message
        outputs: [out]
` +
      cOperator('c_operator', 'operator', 'c_node/message') +
      cSink({ stopped: 'ops/stopper/out', counter: 'ops/c_operator/counter' }),
  );
  expect(result.code).toBe(0);
  const sink = lines('c_sink');
  expect(sink.filter((l) => l.startsWith('stopped: '))).toEqual(['stopped: stopper 1', 'stopped: stopper 2', 'stopped: stopper 3']);
  expect(sink.filter((l) => l.startsWith('counter: '))).toEqual(counters(20));
  expect(fs.readFileSync(path.join(df.dir, record), 'utf8').trim().split('\n')).toEqual(['stopper INPUT message', 'stopper INPUT message', 'stopper INPUT message']);
  expect(lines('ops')).toContain('c operator: dropped after 20 messages');
}, 90_000);

describe.each([
  ['a Python operator, in the Python runtime', `      - id: quitter\n        python: ${OPERATORS}/stopper.py\n        inputs:\n          tick: dora/timer/millis/20\n        outputs: [out]\n`, 'quitter'],
  ['a C operator, in the C runtime', cOperator('quitter', 'operator', 'dora/timer/millis/20'), 'quitter'],
])('DoraStatus.STOP_ALL from %s', (_, operator, id) => {
  test('stops every node of the dataflow', async () => {
    const { df, result, lines } = await run(
      `nodes:
  - id: ops
    env: { STOP_AFTER: 5, STATUS: STOP_ALL, C_STOP_AFTER: 5, C_STATUS: STOP_ALL }
    operators:
${operator}` +
        `  - id: listener
    path: ${NODES}/recorder.py
    env: { RECORD: ./listener.jsonl }
    inputs:
      tick: dora/timer/millis/50
`,
    );
    expect(result.stderr).toMatch(/dataflow [0-9a-f-]{36} stopped/);
    expect(result.code).toBe(0);
    expect(lines('ops')).toContain(`[info] dora-runtime stop-all: operator ${id} returned STOP_ALL: stopping the dataflow`);
    const events = readRecord(path.join(df.dir, 'listener.jsonl'));
    expect(events.filter((e) => e.type === 'STOP').map((e) => e.cause)).toEqual(['MANUAL']);
    expect(events[events.length - 1].type).toBe('END');
  }, 90_000);
});

test("an exception in a Python operator fails its node, with the operator's traceback", async () => {
  const { result } = await run(
    `nodes:\n` +
      cNode +
      `  - id: ops
    operators:
      - id: broken
        python: ${OPERATORS}/broken.py
        inputs:
          message: c_node/message
`,
  );
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('node "ops" failed: exited with status 1');
  expect(result.stderr).toContain('[ops] dora.runtime: operator broken failed:');
  expect(result.stderr).toContain('ValueError: broken operator: cannot handle message');
}, 90_000);

test('a C operator that returns an unknown status fails its node, saying so', async () => {
  const { result } = await run(
    `nodes:\n` +
      cNode +
      `  - id: ops
    env: { C_STOP_AFTER: 2, C_STATUS: 7 }
    operators:
${cOperator('odd', 'operator', 'c_node/message')}`,
  );
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('dora-runtime: operator odd: dora_on_event returned the unknown status 7 (CONTINUE 0, STOP 1, STOP_ALL 2)');
}, 90_000);
