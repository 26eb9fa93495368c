/**
 * dora's log routing with real nodes: printed lines as data (`send_stdout_as`), log
 * records as JSON data (`send_logs_as`), `min_log_level`, log rotation (`max_log_size`,
 * `max_rotated_files`) and the built-in `dora/logs…` inputs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readLogs } from '../coordinator';
import { dora, leftovers, node, readRecord, tempDataflow } from './support/dataflow';

afterEach(() => {
  expect(leftovers()).toEqual([]);
});

const runDir = (dir: string, stderr: string) => path.join(dir, 'out', /dataflow ([0-9a-f-]{36})/.exec(stderr)![1]);
const inputs = (record: string, id?: string) => readRecord(record).filter((e) => e.type === 'INPUT' && (id === undefined || e.id === id));
const entries = (record: string, id: string) => inputs(record, id).map((e) => JSON.parse(e.values[0] as string) as Record<string, unknown>);

test('send_stdout_as: every line a node prints, stdout and stderr, reaches a receiver as a one-string utf8 message, in order; the input closes when the node ends', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('talker', 'chatter.ts', `    env: { PRINT: 20, STDERR: 1 }\n    send_stdout_as: printed\n    outputs: [printed, other]\n`) +
      // a burst of 40 lines: a queue of 10 would keep the newest 10
      node('listener', 'recorder.ts', `    inputs: { lines: { source: talker/printed, queue_size: 100 } }\n`),
  );
  const record = df.record('listener');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  const received = inputs(record);
  expect(received.every((e) => e.length === 1 && typeof e.values[0] === 'string')).toBe(true);
  const lines = received.map((e) => e.values[0] as string);
  // stdout and stderr are read separately, so only each stream's own order is kept
  expect(lines.filter((l) => l.startsWith('line '))).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i}`));
  expect(lines.filter((l) => l.startsWith('error line '))).toEqual(Array.from({ length: 20 }, (_, i) => `error line ${i}`));
  expect(lines).toHaveLength(40);
  // the lines are still written to the node's log, and the input ended with the node
  expect(fs.readFileSync(path.join(runDir(df.dir, result.stderr), 'log_talker.txt'), 'utf8')).toContain('line 19\n');
  const events = readRecord(record).map((e) => e.type);
  expect(events.slice(-3)).toEqual(['INPUT_CLOSED', 'STOP', 'END']);
});

test('send_stdout_as under a flood: 20,000 lines printed back to back all arrive, in order (the daemon queues its sends: zeromq.js refuses a second one while one is pending)', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('talker', 'chatter.ts', `    env: { PRINT: 20000 }\n    send_stdout_as: printed\n    outputs: [printed]\n`) +
      node('listener', 'recorder.ts', `    inputs: { lines: { source: talker/printed, queue_size: 100000 } }\n`),
  );
  const record = df.record('listener');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  const numbers = inputs(record).map((e) => Number((e.values[0] as string).slice(5)));
  expect(numbers).toEqual(Array.from({ length: 20000 }, (_, i) => i));
}, 60_000);

test('send_logs_as: each record the node logs is a JSON string with timestamp, level, node_id, message, target and fields', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('talker', 'chatter.ts', `    env: { PRINT: 2, LOG: "info,warn,error", LOG_COUNT: 3, FIELDS: '{"sensor":"t-1","n":3}' }\n    send_logs_as: records\n    outputs: [records, out]\n`) +
      node('listener', 'recorder.ts', `    inputs: { logs: talker/records }\n`),
  );
  const record = df.record('listener');
  const before = Date.now();
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  const got = entries(record, 'logs');
  // records only: the printed lines are not log records
  expect(got.map((e) => `${e.level} ${e.message}`)).toEqual([0, 1, 2].flatMap((i) => [`info info ${i}`, `warn warn ${i}`, `error error ${i}`]));
  for (const e of got) {
    expect(Object.keys(e)).toEqual(['timestamp', 'level', 'node_id', 'message', 'target', 'fields']);
    expect(e.node_id).toBe('talker');
    expect(e.target).toBe('chatter');
    expect(e.fields).toEqual({ sensor: 't-1', n: 3 });
    expect(e.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(e.timestamp as string)).toBeGreaterThanOrEqual(before - 1000);
  }
});

test('send_logs_as from Python: records of the logging bridge (target = logger name) and of node.log with fields', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('py', 'logbridge.py', `    send_logs_as: records\n    outputs: [records]\n`) +
      node('listener', 'recorder.ts', `    inputs: { logs: py/records }\n`),
  );
  const record = df.record('listener');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  expect(entries(record, 'logs').map(({ level, node_id, message, target, fields }) => ({ level, node_id, message, target, fields }))).toEqual([
    { level: 'warn', node_id: 'py', message: 'hot: 42', target: 'sensor', fields: null },
    { level: 'info', node_id: 'py', message: 'reading', target: 'sensor.read', fields: { sensor_id: 'temp-01', value: 42.5 } },
    { level: 'error', node_id: 'py', message: 'failed', target: null, fields: null },
  ]);
  // the node's log shows the fields after the message
  expect(readLogs(runDir(df.dir, result.stderr), 'py')).toContain('[info] sensor.read: reading sensor_id=temp-01 value=42.5');
});

test('min_log_level: records below it and printed lines are neither written nor forwarded; send_stdout_as still sends every printed line', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node(
        'talker',
        'chatter.ts',
        `    env: { PRINT: 3, LOG: "trace,debug,info,warn,error" }\n    min_log_level: warn\n    send_logs_as: records\n    send_stdout_as: printed\n    outputs: [records, printed, out]\n`,
      ) +
      node('listener', 'recorder.ts', `    inputs: { logs: talker/records, lines: talker/printed }\n`),
  );
  const record = df.record('listener');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  expect(entries(record, 'logs').map((e) => e.level)).toEqual(['warn', 'error']);
  expect(inputs(record, 'lines').map((e) => e.values[0])).toEqual(['line 0', 'line 1', 'line 2']);
  const log = fs.readFileSync(path.join(runDir(df.dir, result.stderr), 'log_talker.txt'), 'utf8');
  expect(log).toContain('[warn] chatter: warn 0');
  expect(log).toContain('[error] chatter: error 0');
  expect(log).not.toMatch(/trace 0|debug 0|info 0|line 0/);
  // `dora run` does not show them either
  expect(result.stdout).not.toContain('line 0');
  expect(result.stdout).not.toContain('info 0');
});

test('max_log_size and max_rotated_files: the log is rotated at that size, the oldest files beyond the limit are deleted, and `dora logs` reads what is kept in order', async () => {
  const df = tempDataflow(`nodes:\n` + node('talker', 'chatter.ts', `    env: { PRINT: 600 }\n    max_log_size: 1KB\n    max_rotated_files: 2\n`));
  const result = await dora(['run', df.file]);
  expect(result.code).toBe(0);
  const dir = runDir(df.dir, result.stderr);
  expect(fs.readdirSync(dir).filter((f) => f.startsWith('log_')).sort()).toEqual(['log_talker.txt', 'log_talker.txt.1', 'log_talker.txt.2']);
  for (const rotated of ['log_talker.txt.1', 'log_talker.txt.2']) {
    const size = fs.statSync(path.join(dir, rotated)).size;
    expect(size).toBeGreaterThanOrEqual(1024);
    expect(size).toBeLessThan(1024 + 45); // rotated right after the line (its 25-byte timestamp too) that reached the limit
  }
  // 600 lines of ~9 bytes are ~5.4 KB, more than three files hold: the first lines are gone
  const kept = readLogs(dir, 'talker')
    .split('\n')
    .map((l) => /^\S+Z line (\d+)$/.exec(l)?.[1])
    .filter((n) => n !== undefined)
    .map(Number);
  expect(kept[kept.length - 1]).toBe(599);
  expect(kept[0]).toBeGreaterThan(0);
  expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => kept[0] + i));
});

test('dora/logs/<level> delivers the other nodes’ records at that level or above, never the receiver’s own; dora/logs/<level>/<node> only that node’s', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('a', 'chatter.ts', `    env: { LOG: "info,warn", EXPECT: 6 }\n    outputs: [out]\n    inputs:\n      warnings: dora/logs/warn\n      b_info: dora/logs/info/b\n`) +
      node('b', 'chatter.ts', `    env: { PRINT: 2, LOG: "debug,info,warn,error" }\n    outputs: [out]\n`) +
      node('c', 'chatter.ts', `    env: { LOG: "warn" }\n    outputs: [out]\n`),
  );
  const record = df.record('a');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  const warnings = entries(record, 'warnings').map((e) => `${e.node_id} ${e.level} ${e.message}`);
  expect(warnings.sort()).toEqual(['b error error 0', 'b warn warn 0', 'c warn warn 0']);
  // a's own warning went to its log only
  expect(readLogs(runDir(df.dir, result.stderr), 'a')).toContain('[warn] chatter: warn 0');
  expect(entries(record, 'b_info').map((e) => `${e.node_id} ${e.level}`)).toEqual(['b info', 'b warn', 'b error']);
});

test('dora/logs and dora/logs/stdout include printed lines (level `stdout`); a node cannot ask for its own logs', async () => {
  const df = tempDataflow(
    `nodes:\n` +
      node('a', 'chatter.ts', `    env: { EXPECT: 3 }\n    inputs: { all: dora/logs }\n`) +
      node('b', 'chatter.ts', `    env: { PRINT: 2, LOG: "info" }\n    outputs: [out]\n`),
  );
  const record = df.record('a');
  const result = await dora(['run', df.file], { env: { RECORD: record } });
  expect(result.code).toBe(0);
  expect(entries(record, 'all').map((e) => `${e.level} ${e.message}`)).toEqual(['stdout line 0', 'stdout line 1', 'info info 0']);

  const own = tempDataflow(`nodes:\n` + node('a', 'chatter.ts', `    inputs: { mine: dora/logs/info/a, typo: dora/logs/eror }\n`));
  const check = await dora(['check', own.file]);
  expect(check.code).toBe(1);
  expect(check.stderr).toContain(`${own.file}:4:21: node "a": at /nodes/0/inputs/mine: \`dora/logs/info/a\`: a node never receives its own log records`);
  expect(check.stderr).toContain('unknown log level `eror` (hint: did you mean `error`?)');
});

test('every stored line starts with its time (ISO 8601, UTC, ms); `dora logs` merges nodes in time order; `dora run` shows none unless --timestamps', async () => {
  const df = tempDataflow(`nodes:\n` + node('a', 'chatter.ts', `    env: { PRINT: 3, LOG: "info,warn" }\n`) + node('b', 'chatter.ts', `    env: { PRINT: 3 }\n`));
  const plain = await dora(['run', df.file]);
  expect(plain.code).toBe(0);
  expect(plain.stdout).toContain('[a] line 2\n');
  expect(plain.stdout).not.toMatch(/\d{4}-\d\d-\d\dT/);
  const stamp = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /;
  const dir = runDir(df.dir, plain.stderr);
  const stored = fs.readFileSync(path.join(dir, 'log_a.txt'), 'utf8').trimEnd().split('\n');
  expect(stored.length).toBeGreaterThanOrEqual(5); // 3 printed lines, 2 records
  for (const line of stored) expect(line).toMatch(stamp);
  expect(stored.some((l) => / \[warn\] chatter: warn 0$/.test(l))).toBe(true);
  const times = (text: string) => text.trimEnd().split('\n').map((l) => stamp.exec(l)![1]);
  expect(times(fs.readFileSync(path.join(dir, 'log_a.txt'), 'utf8'))).toEqual([...times(fs.readFileSync(path.join(dir, 'log_a.txt'), 'utf8'))].sort());
  // all nodes: `<time> [node] text`, in time order
  const merged = readLogs(dir);
  expect(merged).toMatch(/^\S+Z \[b\] line 0$/m);
  expect(times(merged)).toEqual([...times(merged)].sort());
  const stamped = await dora(['run', df.file, '--timestamps']);
  expect(stamped.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[a\] line 2$/m);
});
