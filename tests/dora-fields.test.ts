/**
 * The rest of dora's descriptor: `name`/`description`, `queue_policy`, `cpu_affinity`,
 * `exit_when_nodes_finish`, '/' inside output ids, an empty `outputs:`, and the precise
 * rejection of the dora fields dora-ts still does not support.
 */
import { DescriptorError, parseDescriptor, toMermaid, type DescriptorIssue } from '../coordinator';
import { onlineCpus } from '../coordinator/affinity';
import { dora, leftovers, node, readRecord, tempDataflow } from './support/dataflow';

const FILE = '/flows/robot.yml';

function parse(yaml: string) {
  return parseDescriptor(yaml, FILE, '/flows', { checkPaths: false });
}

function issues(yaml: string): DescriptorIssue[] {
  try {
    parse(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(DescriptorError);
    return [...(err as DescriptorError).issues];
  }
  throw new Error('expected the descriptor to be rejected');
}

const described = (i: DescriptorIssue) => `${i.position?.line}:${i.position?.column} ${i.node ?? '-'} ${i.message}${i.hint ? ` (${i.hint})` : ''}`;

describe('descriptor', () => {
  test('name and description are accepted and handed to the node as they are', () => {
    const df = parse(`nodes:\n  - id: cam\n    name: Front camera\n    description: grabs frames\n    path: cam.py\n`);
    expect(df.nodes[0].raw).toMatchObject({ name: 'Front camera', description: 'grabs frames' });
  });

  test('queue_policy: backpressure holds ten times queue_size; drop_oldest (the default) holds queue_size', () => {
    const df = parse(`nodes:
  - id: a
    path: a.py
    outputs: [x]
  - id: b
    path: b.py
    inputs:
      slow: { source: a/x, queue_size: 3, queue_policy: backpressure }
      fast: { source: a/x, queue_size: 3, queue_policy: drop_oldest }
      plain: { source: a/x, queue_policy: backpressure }
`);
    expect(df.nodes[1].inputs.map((i) => [i.id, i.queueSize, i.queuePolicy])).toEqual([
      ['slow', 30, 'backpressure'],
      ['fast', 3, 'drop_oldest'],
      ['plain', 100, 'backpressure'],
    ]);
    expect(issues(`nodes:\n  - id: a\n    path: a.py\n    queue_policy: backpressure\n    inputs: { t: { source: dora/timer/secs/1, queue_policy: newest } }\n`).map(described)).toEqual([
      '4:5 a `queue_policy` does not belong here (`queue_policy` is an input field: write it in the long form of an input, `inputs: { <id>: { source: <node>/<output>, queue_policy: … } }`)',
      '5:61 a `inputs.t.queue_policy` must be one of `drop_oldest`, `backpressure`, not "newest"',
    ]);
  });

  test('output ids may hold `/`; inputs name them with the node first', () => {
    const df = parse(`nodes:
  - id: cam
    path: cam.py
    outputs: [left/image, right/image/raw]
  - id: view
    path: view.py
    inputs: { l: cam/left/image, r: cam/right/image/raw }
`);
    expect(df.nodes[1].inputs.map((i) => i.source)).toEqual([
      { kind: 'node', node: 'cam', output: 'left/image' },
      { kind: 'node', node: 'cam', output: 'right/image/raw' },
    ]);
    expect(issues(`nodes:\n  - id: cam\n    path: cam.py\n    outputs: [left//image, /x, "a b"]\n`).map(described)).toEqual([
      `4:15 cam \`outputs.0\` "left//image" may contain only letters, digits, '_', '-' and '.', with single '/' between parts`,
      `4:28 cam \`outputs.1\` "/x" may contain only letters, digits, '_', '-' and '.', with single '/' between parts`,
      `4:32 cam \`outputs.2\` "a b" may contain only letters, digits, '_', '-' and '.', with single '/' between parts`,
    ]);
  });

  test('an empty `outputs:` (YAML null) means no outputs', () => {
    const df = parse(`nodes:\n  - id: a\n    path: a.py\n    outputs:\n`);
    expect(df.nodes[0].outputs).toEqual([]);
  });

  test('cpu_affinity: ids are checked against this machine’s CPUs', () => {
    const cpus = onlineCpus();
    expect(parse(`nodes:\n  - id: a\n    path: a.py\n    cpu_affinity: [${cpus[0]}]\n`).nodes[0].cpuAffinity).toEqual([cpus[0]]);
    const missing = Math.max(...cpus) + 1;
    expect(issues(`nodes:\n  - id: a\n    path: a.py\n    cpu_affinity: [${cpus[0]}, ${missing}]\n`).map(described)).toEqual([
      expect.stringMatching(new RegExp(`^4:\\d+ a \`cpu_affinity\`: CPU ${missing} is not a CPU of this machine \\(its online CPUs are [0-9,-]+\\)$`)),
    ]);
    expect(issues(`nodes:\n  - id: b\n    path: b.py\n    cpu_affinity: [1, 1]\n`).map(described)).toEqual([
      '4:23 b `cpu_affinity` lists 1 twice',
    ]);
  });

  test('exit_when_nodes_finish is a top-level boolean (default false)', () => {
    expect(parse(`nodes:\n  - id: a\n    path: a.py\n`).exitWhenNodesFinish).toBe(false);
    expect(parse(`exit_when_nodes_finish: true\nnodes:\n  - id: a\n    path: a.py\n`).exitWhenNodesFinish).toBe(true);
    expect(issues(`nodes:\n  - id: a\n    path: a.py\n    exit_when_nodes_finish: true\n`).map(described)).toEqual([
      '4:5 a `exit_when_nodes_finish` does not belong here (`exit_when_nodes_finish` is a top-level field of the dataflow, beside `nodes:`)',
    ]);
  });

  test('log fields: routed outputs must be declared, sizes must be sizes, levels must be levels', () => {
    const df = parse(`nodes:\n  - id: a\n    path: a.py\n    outputs: [o, l]\n    send_stdout_as: o\n    send_logs_as: l\n    min_log_level: info\n    max_log_size: 50MB\n`);
    expect(df.nodes[0].logging).toEqual({ sendStdoutAs: 'o', sendLogsAs: 'l', minLevel: 'info', maxLogBytes: 50 * 1024 * 1024, maxRotatedFiles: 5 });
    expect(parse(`nodes:\n  - id: a\n    path: a.py\n    max_log_size: 1000\n    max_rotated_files: 2\n`).nodes[0].logging).toMatchObject({ maxLogBytes: 1000, maxRotatedFiles: 2 });
    expect(
      issues(`nodes:\n  - id: a\n    path: a.py\n    outputs: [o]\n    send_stdout_as: out\n    min_log_level: warning\n    max_log_size: 5 parsecs\n    max_rotated_files: 0\n`).map(described),
    ).toEqual([
      '6:20 a `min_log_level` must be one of `stdout`, `trace`, `debug`, `info`, `warn`, `error`, not "warning"',
      '7:19 a `max_log_size` "5 parsecs" is not a size (write bytes, or a number with K, M or G (powers of 1024), e.g. "50MB")',
      '8:24 a `max_rotated_files` must be at least 1, not 0',
    ]);
    expect(issues(`nodes:\n  - id: a\n    path: a.py\n    outputs: [o]\n    send_stdout_as: out\n`).map(described)).toEqual([
      '5:21 a `send_stdout_as`: `out` is not an output of this node (add `out` to `outputs`)',
    ]);
  });

  test('each dora field dora-ts does not support is named, at its line and column, with what to do instead', () => {
    const found = issues(`nodes:
  - id: a
    path: a.py
    git: https://example.com/repo.git
    hub: dora-yolo
    ros2: { topic: /x }
`);
    expect(found.map(described)).toEqual([
      '4:5 a `git` is a dora field that dora-ts does not support yet (fetching nodes from git is not supported; clone the repository and point `path` at it)',
      '5:5 a `hub` is a dora field that dora-ts does not support yet (node-hub packages are not resolved; install the package and point `path` at its executable)',
      '6:5 a `ros2` is a dora field that dora-ts does not support yet (the ROS 2 bridge is not supported; bridge with a node of your own)',
    ]);
    for (const issue of found) expect(issue.message).not.toContain('unknown field');
  });
});

describe('running', () => {
  afterEach(() => {
    expect(leftovers()).toEqual([]);
  });

  test('queue_policy: backpressure: a reader that starts late finds ten times queue_size messages waiting', async () => {
    const df = tempDataflow(
      `nodes:\n` +
        node('sender', 'sender.ts', `    env: { COUNT: 200 }\n    outputs: [out]\n`) +
        node('slow', 'recorder.ts', `    env: { DELAY_FIRST_MS: 1500 }\n    inputs:\n      data: { source: sender/out, queue_size: 3, queue_policy: backpressure }\n`),
    );
    const record = df.record('slow');
    const result = await dora(['run', df.file], { env: { RECORD: record } });
    expect(result.code).toBe(0);
    const values = readRecord(record)
      .filter((e) => e.type === 'INPUT')
      .map((e) => e.values[0] as number);
    expect(values).toEqual(Array.from({ length: 30 }, (_, i) => 170 + i));
  });

  test('cpu_affinity pins the node’s process and every thread it starts to those CPUs', async () => {
    const cpu = onlineCpus()[onlineCpus().length - 1];
    const df = tempDataflow(`nodes:\n` + node('pinned', 'chatter.ts', `    env: { AFFINITY: 1 }\n    cpu_affinity: [${cpu}]\n`));
    const result = await dora(['run', df.file]);
    expect(result.code).toBe(0);
    const threads = [...result.stdout.matchAll(/\[pinned\] affinity (\S+)/g)].map((m) => m[1]);
    expect(threads.length).toBeGreaterThan(1); // Node.js starts threads of its own
    expect(new Set(threads)).toEqual(new Set([String(cpu)]));
  });

  test('a node with an empty `outputs:` and output ids with `/` run', async () => {
    const df = tempDataflow(
      `nodes:\n` +
        node('cam', 'sender.ts', `    env: { COUNT: 3, OUTPUT: left/image }\n    outputs: [left/image]\n`) +
        node('view', 'recorder.ts', `    inputs: { img: cam/left/image }\n    outputs:\n`),
    );
    const record = df.record('view');
    const result = await dora(['run', df.file], { env: { RECORD: record } });
    expect(result.code).toBe(0);
    expect(readRecord(record).filter((e) => e.type === 'INPUT').map((e) => [e.id, e.values[0]])).toEqual([
      ['img', 0],
      ['img', 1],
      ['img', 2],
    ]);
  });

  const withTimer = (top: string) =>
    tempDataflow(
      top +
        `nodes:\n` +
        node('sender', 'sender.ts', `    env: { COUNT: 3 }\n    inputs: { tick: dora/timer/millis/20 }\n    outputs: [out]\n`) +
        node('r', 'recorder.ts', `    inputs:\n      data: sender/out\n      tick: dora/timer/millis/10\n`),
    );

  test('exit_when_nodes_finish: a node whose inputs from other nodes have closed is stopped although its timer ticks, and the dataflow ends', async () => {
    const df = withTimer('exit_when_nodes_finish: true\n');
    const record = df.record('r');
    const result = await dora(['run', df.file], { env: { RECORD: record } });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/dataflow \S+ finished/);
    const events = readRecord(record).filter((e) => e.type !== 'INPUT');
    expect(events.map((e) => `${e.type} ${e.id ?? e.cause ?? ''}`.trim()).sort()).toEqual(['END', 'INPUT_CLOSED data', 'INPUT_CLOSED tick', 'STOP ALL_INPUTS_CLOSED']);
    expect(readRecord(record).filter((e) => e.type === 'INPUT' && e.id === 'data')).toHaveLength(3);
  });

  test('dora run --exit-when-nodes-finish turns it on, `=false` off (the timer then keeps the receiver running until --stop-after)', async () => {
    const off = withTimer('');
    const record = off.record('r');
    const on = await dora(['run', off.file, '--exit-when-nodes-finish'], { env: { RECORD: record } });
    expect(on.code).toBe(0);
    expect(readRecord(record).some((e) => e.type === 'STOP' && e.cause === 'ALL_INPUTS_CLOSED')).toBe(true);

    const yes = withTimer('exit_when_nodes_finish: true\n');
    const record2 = yes.record('r');
    const started = Date.now();
    const forced = await dora(['run', yes.file, '--exit-when-nodes-finish=false', '--stop-after', '1500ms'], { env: { RECORD: record2 } });
    expect(forced.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(forced.stderr).toContain('--stop-after 1500ms has passed');
    expect(readRecord(record2).filter((e) => e.type === 'STOP').map((e) => e.cause)).toEqual(['MANUAL']);
  });
});

test('dora graph draws each `dora/logs…` source once, like a timer', () => {
  const df = parse(`nodes:\n  - id: a\n    path: a.py\n    outputs: [o]\n  - id: b\n    path: b.py\n    inputs: { all: dora/logs, w: dora/logs/warn/a, again: dora/logs }\n`);
  const text = toMermaid(df);
  expect(text).toContain('l0(["logs"])');
  expect(text).toContain('l1(["logs/warn/a"])');
  expect(text).toContain('l0 -- "all" --> n1');
  expect(text).toContain('l0 -- "again" --> n1');
  expect(text).toContain('l1 -- "w" --> n1');
});
