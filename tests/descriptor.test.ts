/** The descriptor: every kind of error, with its position; and what a valid file resolves to. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DescriptorError, loadDescriptor, parseDescriptor, splitArgs, type DescriptorIssue } from '../coordinator';
import { dora, tempDataflow } from './support/dataflow';

const FILE = '/flows/robot.yml';

/** The issues parseDescriptor reports for `yaml`, as `line:col message` strings. */
function issues(yaml: string): DescriptorIssue[] {
  try {
    parseDescriptor(yaml, FILE, '/flows', { checkPaths: false });
  } catch (err) {
    expect(err).toBeInstanceOf(DescriptorError);
    expect((err as DescriptorError).file).toBe(FILE);
    return [...(err as DescriptorError).issues];
  }
  throw new Error('expected the descriptor to be rejected');
}

const at = (i: DescriptorIssue) => `${i.position?.line}:${i.position?.column}`;

test('a valid descriptor resolves paths, args, env, inputs and timers', () => {
  const df = parseDescriptor(
    `nodes:
  - id: camera
    path: nodes/camera.py
    args: --width 640 "--title=front cam" 'a b'
    env: { WIDTH: 640, DEBUG: true, NAME: cam }
    build: pip install -e .
    inputs:
      tick: dora/timer/hz/30
    outputs: [image]
  - id: detector
    path: python3
    args: [-m, detector, 3]
    inputs:
      image: camera/image
      slow: { source: camera/image, queue_size: 1 }
      heartbeat: dora/timer/secs/1
      fast: dora/timer/micros/500
    outputs:
      - boxes
`,
    FILE,
    '/flows',
    { checkPaths: false },
  );
  expect(df.file).toBe(FILE);
  const [camera, detector] = df.nodes;
  expect(camera.resolvedPath).toBe('/flows/nodes/camera.py');
  expect(camera.args).toEqual(['--width', '640', '--title=front cam', 'a b']);
  expect(camera.env).toEqual({ WIDTH: '640', DEBUG: 'true', NAME: 'cam' });
  expect(camera.build).toBe('pip install -e .');
  expect(camera.inputs).toEqual([{ id: 'tick', queueSize: 10, source: { kind: 'timer', name: 'dora/timer/hz/30', intervalNs: 33_333_333n } }]);
  expect(detector.resolvedPath).toBe('python3'); // looked up on PATH when spawned
  expect(detector.args).toEqual(['-m', 'detector', '3']);
  expect(detector.inputs.map((i) => [i.id, i.queueSize, i.source])).toEqual([
    ['image', 10, { kind: 'node', node: 'camera', output: 'image' }],
    ['slow', 1, { kind: 'node', node: 'camera', output: 'image' }],
    ['heartbeat', 10, { kind: 'timer', name: 'dora/timer/secs/1', intervalNs: 1_000_000_000n }],
    ['fast', 10, { kind: 'timer', name: 'dora/timer/micros/500', intervalNs: 500_000n }],
  ]);
  expect(df.timers.map((t) => t.name).sort()).toEqual(['dora/timer/hz/30', 'dora/timer/micros/500', 'dora/timer/secs/1']);
  expect(df.sharedMemoryThreshold).toBe(4096);
});

test('YAML syntax errors are reported with their position', () => {
  const found = issues(`nodes:\n  - id: a\n    path: a.py\n    inputs: { x: [\n`);
  expect(found.length).toBeGreaterThan(0);
  expect(found[0].message).toMatch(/^invalid YAML/);
  expect(found[0].position?.line).toBeGreaterThanOrEqual(4);
});

test('duplicate YAML keys are an error', () => {
  const [issue] = issues(`nodes:\n  - id: a\n    path: a.py\n    id: b\n`);
  expect(issue.message).toMatch(/invalid YAML: Map keys must be unique/);
  expect(at(issue)).toBe('4:5');
});

test('an empty file and an empty dataflow are errors', () => {
  expect(issues('')[0].message).toBe('the dataflow file is empty');
  const [none] = issues('nodes: []\n');
  expect(none.message).toBe('the dataflow has no nodes');
  expect(at(none)).toBe('1:8');
  expect(issues('something: else\n').map((i) => i.message)).toEqual([
    'the dataflow is missing the required field `nodes`',
    'unknown field `something`',
  ]);
});

test('unknown fields are errors; known dora fields get a hint; typos get a suggestion', () => {
  const found = issues(`nodes:
  - id: a
    path: a.py
    git: https://example.com/nodes.git
    conda_env: base
    ouputs: [x]
    inputs:
      t: { source: dora/timer/secs/1, queue_szie: 3 }
`);
  expect(found.map((i) => [at(i), i.node, i.message, i.hint])).toEqual([
    ['4:5', 'a', '`git` is a dora field that dora-ts does not support yet', expect.stringContaining('git is not supported')],
    ['5:5', 'a', '`conda_env` is a dora field that dora-ts does not support yet', expect.any(String)],
    ['6:5', 'a', 'unknown field `ouputs`', 'did you mean `outputs`?'],
    ['8:39', 'a', 'unknown field `queue_szie`', 'did you mean `queue_size`?'],
  ]);
  expect(found[0].path).toBe('/nodes/0/git');
});

test('wrong types and values name the field', () => {
  const found = issues(`nodes:
  - id: a
    path: 42
    args: { x: 1 }
    env: { A: [1] }
    outputs: out
    inputs:
      q: { source: b/out, queue_size: 0 }
      r: 5
  - path: b.py
    id: "b/c"
`);
  expect(found.map((i) => `${at(i)} ${i.message}`)).toEqual([
    '3:11 `path` must be a string, not number 42',
    '4:11 `args` must be a string or a list of strings, not a mapping',
    '5:15 `env.A` must be a string or number or boolean, not a list',
    '6:14 `outputs` must be a list, not string "out"',
    '8:39 `inputs.q.queue_size` must be at least 1, not 0',
    '9:10 input `r` must be `<node>/<output>`, a timer, or a mapping with `source` (and optionally `queue_size`), not number 5',
    '11:9 `id` "b/c" may contain only letters, digits, \'_\', \'-\' and \'.\'',
  ]);
});

test('a missing required field is reported at the node', () => {
  const [issue] = issues(`nodes:\n  - id: a\n    inputs: {}\n`);
  expect(issue.message).toBe('the node is missing the required field `path`');
  expect(at(issue)).toBe('2:5');
  expect(issue.node).toBe('a');
});

test('references: unknown node, undeclared output, with suggestions', () => {
  const found = issues(`nodes:
  - id: camera
    path: camera.py
    outputs: [image]
  - id: detector
    path: detector.py
    inputs:
      a: camra/image
      b: camera/imag
      c: { source: camera/depth }
      d: lidar/points
      e: camera
      f: camera/
`);
  expect(found.map((i) => [at(i), i.node, i.message, i.hint])).toEqual([
    ['8:10', 'detector', 'input source `camra/image` refers to node `camra`, which does not exist', 'did you mean `camera/image`?'],
    ['9:10', 'detector', 'input source `camera/imag`: node `camera` does not declare an output `imag`', 'did you mean `camera/image`?'],
    ['10:20', 'detector', 'input source `camera/depth`: node `camera` does not declare an output `depth`', 'add `depth` to the outputs of `camera` (declared: image)'],
    ['11:10', 'detector', 'input source `lidar/points` refers to node `lidar`, which does not exist', 'nodes: camera, detector'],
    ['12:10', 'detector', 'input source `camera` must be `<node>/<output>` or a timer', expect.stringContaining('dora/timer/hz/F')],
    ['13:10', 'detector', 'input source `camera/` must be `<node>/<output>` or a timer', expect.any(String)],
  ]);
});

test('malformed timers', () => {
  const found = issues(`nodes:
  - id: a
    path: a.py
    inputs:
      a: dora/timer/milis/20
      b: dora/timer/millis/0
      c: dora/timer/millis/1.5
      d: dora/timer/hz/0
      e: dora/timer/hz/fast
      f: dora/timer/secs
      g: dora/clock/1
`);
  expect(found.map((i) => i.message)).toEqual([
    'timer `dora/timer/milis/20`: unknown unit `milis` (did you mean `millis`?)',
    'timer `dora/timer/millis/0`: the interval must be a positive integer, not `0`',
    'timer `dora/timer/millis/1.5`: the interval must be a positive integer, not `1.5`',
    'timer `dora/timer/hz/0`: the frequency must be a positive number, not `0`',
    'timer `dora/timer/hz/fast`: the frequency must be a positive number, not `fast`',
    'unknown built-in source `dora/timer/secs`',
    'unknown built-in source `dora/clock/1`',
  ]);
  expect(found.map(at)).toEqual(['5:10', '6:10', '7:10', '8:10', '9:10', '10:10', '11:10']);
  expect(parseDescriptor('nodes:\n  - id: a\n    path: a.py\n    inputs: { t: dora/timer/hz/2.5 }\n', FILE, '/', { checkPaths: false }).timers[0].intervalNs).toBe(400_000_000n);
});

test('duplicate ids, duplicate outputs and the reserved id', () => {
  const found = issues(`nodes:
  - id: a
    path: a.py
    outputs: [x, y, x]
  - id: a
    path: b.py
  - id: dora
    path: c.py
`);
  expect(found.map((i) => [at(i), i.message, i.hint])).toEqual([
    ['4:21', 'output `x` is declared twice', undefined],
    ['5:9', 'duplicate node id `a`', 'first used on line 2'],
    ['7:9', 'the node id `dora` is reserved for built-in sources such as timers', undefined],
  ]);
});

test('unterminated quotes in args', () => {
  const [issue] = issues(`nodes:\n  - id: a\n    path: a.py\n    args: --name "front\n`);
  expect(issue.message).toBe('`args`: unterminated " quote');
  expect(splitArgs(`a\\ b "c \\"d\\"" 'e\\f' ''`)).toEqual(['a b', 'c "d"', 'e\\f', '']);
});

test('strings a process cannot receive are errors with their position: NUL in path, args or env, `=` in an env name', () => {
  const found = issues(`nodes:
  - id: a
    path: "x\\0y"
    args: ["--ok", "bad\\0arg"]
    env: { GOOD: 1, BAD: "a\\0b", "K=V": 2 }
  - id: b
    path: b.py
    args: "--flag \\0"
`);
  expect(found.map((i) => `${at(i)} ${i.message}`)).toEqual([
    '3:11 `path` contains a NUL character, which no program path can hold',
    '4:20 `args` contains a NUL character, which cannot be passed to a process',
    '5:26 environment variable BAD contains a NUL character, which cannot be passed to a process',
    '5:34 environment variable name "K=V" is not valid: it must be non-empty, without `=` or NUL',
    '8:11 `args` contains a NUL character, which cannot be passed to a process',
  ]);
});

test('an alias bomb and an over-deep document are refused quickly, with a position and no stack trace', () => {
  const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g'].entries()) levels.push(`${name}: &${name} [${Array(9).fill('*' + 'abcdefg'[i]).join(',')}]`);
  const started = Date.now();
  const bomb = issues(levels.join('\n') + '\nnodes: [*g]\n');
  expect(bomb.map((i) => `${at(i)} ${i.message}`)).toEqual(['2:8 too many alias expansions: its aliases would expand into an enormous document']);
  const deep = issues('nodes: ' + '['.repeat(20000) + ']'.repeat(20000) + '\n');
  expect(deep).toHaveLength(1);
  expect(deep[0].position).toBeDefined();
  expect(deep[0].message).not.toMatch(/\n\s+at /); // no stack trace
  expect(Date.now() - started).toBeLessThan(5000);
});

test('many dangling inputs are reported in linear time; a file beyond the size limit is refused at once', () => {
  const n = 5000;
  const yaml = 'nodes:\n' + Array.from({ length: n }, (_, i) => `  - id: n${i}\n    path: x.py\n    inputs:\n      a: missing${i}/out\n    outputs: [out]`).join('\n') + '\n';
  const started = Date.now();
  const found = issues(yaml);
  expect(found).toHaveLength(n);
  expect(found.every((i) => i.hint!.length < 400)).toBe(true); // not every node listed in every hint
  expect(Date.now() - started).toBeLessThan(10_000); // was minutes (a suggestion against every node, per input)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-big-'));
  try {
    const file = path.join(dir, 'dataflow.yml');
    fs.writeFileSync(file, yaml.repeat(20)); // 8.6 MB
    const t0 = Date.now();
    expect(() => loadDescriptor(file, { checkPaths: false })).toThrow(/the dataflow file is 8\.\d MiB, more than the 8\.0 MiB a descriptor may have/);
    expect(Date.now() - t0).toBeLessThan(1000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that is not valid UTF-8 is refused with the position of the first bad byte, not silently repaired', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-utf8-'));
  try {
    const file = path.join(dir, 'dataflow.yml');
    fs.writeFileSync(file, Buffer.concat([Buffer.from('nodes:\n  - id: a\n    path: a.py\n    env: { NAME: "caf'), Buffer.from([0xe9]), Buffer.from('" }\n')]));
    let error: unknown;
    try {
      loadDescriptor(file, { checkPaths: false });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DescriptorError);
    const [issue] = (error as DescriptorError).issues;
    expect(`${at(issue)} ${issue.message}`).toBe('4:22 the file is not valid UTF-8 (byte 0xe9 at offset 53)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('paths are checked relative to the file, except for nodes that are built first', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-desc-'));
  try {
    fs.writeFileSync(path.join(dir, 'real.ts'), '');
    const file = path.join(dir, 'flow.yml');
    fs.writeFileSync(file, `nodes:\n  - id: ok\n    path: real.ts\n  - id: built\n    path: ./target/node\n    build: make\n  - id: missing\n    path: ./gone.py\n`);
    const error = (() => {
      try {
        loadDescriptor(file);
      } catch (e) {
        return e as DescriptorError;
      }
    })();
    expect(error?.issues.map((i) => [i.node, at(i), i.message])).toEqual([['missing', '8:11', `\`path\`: ${dir}/gone.py does not exist`]]);
    expect(() => loadDescriptor(path.join(dir, 'nope.yml'))).toThrow(/cannot read the dataflow file: no such file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the error message lists every issue as file:line:col', () => {
  try {
    parseDescriptor(`nodes:\n  - id: a\n    path: a.py\n    inputs: { x: b/y }\n`, FILE, '/', { checkPaths: false });
    throw new Error('not rejected');
  } catch (err) {
    expect((err as Error).message).toBe(
      `${FILE}: 1 error in dataflow descriptor\n  ${FILE}:4:18: node "a": at /nodes/0/inputs/x: input source \`b/y\` refers to node \`b\`, which does not exist (hint: nodes: a)`,
    );
  }
});

test('`dora check` reports errors without running anything, and accepts the example', async () => {
  const df = tempDataflow(`nodes:\n  - id: a\n    path: ./a.ts\n    inputs: { x: b/y }\n`);
  const bad = await dora(['check', df.file]);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain(`${df.file}:3:11: node "a": at /nodes/0/path:`);
  expect(bad.stderr).toContain(`${df.file}:4:18: node "a": at /nodes/0/inputs/x:`);
  expect(fs.readdirSync(df.dir)).toEqual(['dataflow.yml']); // no out/ folder: nothing ran
  const good = await dora(['check', 'examples/dataflow.yml']);
  expect(good.code).toBe(0);
  expect(good.stdout).toMatch(/ok \(5 nodes, 1 timer\)/);
});

test('the JSON Schema file is valid JSON Schema and documents every node field', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(__dirname, '../coordinator/dataflow.schema.json'), 'utf8'));
  expect(Object.keys(schema.definitions.node.properties).sort()).toEqual([
    '_unstable_deploy',
    'args',
    'build',
    'cpu_affinity',
    'deploy',
    'description',
    'env',
    'health_check_timeout',
    'id',
    'input_types',
    'inputs',
    'max_log_size',
    'max_restart_delay',
    'max_restarts',
    'max_rotated_files',
    'min_log_level',
    'name',
    'operator',
    'operators',
    'output_metadata',
    'output_types',
    'outputs',
    'path',
    'restart_delay',
    'restart_policy',
    'restart_window',
    'send_logs_as',
    'send_stdout_as',
  ]);
  for (const [field, spec] of Object.entries(schema.definitions.node.properties)) {
    expect([field, typeof (spec as { description?: string }).description]).toEqual([field, 'string']);
  }
});
