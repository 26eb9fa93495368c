/**
 * Log routing across machines (tests/support/machines.ts): `send_stdout_as`,
 * `send_logs_as` and `dora/logs…` inputs whose producing node runs on another machine than
 * their receiver. The producing part relays the lines through the coordinator; the
 * receiving part publishes them as it would a local node's.
 */
import * as path from 'node:path';
import { NODES, processesMentioning, readRecord, tempDataflow, waitFor } from './support/dataflow';
import { TestCluster } from './support/machines';

jest.setTimeout(120_000);

const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});

const node = (id: string, script: string, extra: string) => `  - id: ${id}\n    path: ${path.join(NODES, script)}\n${extra}`;
const idOf = (stdout: string) => /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(stdout)![0];
const inputs = (record: string, id: string) => readRecord(record).filter((e) => e.type === 'INPUT' && e.id === id);
const entries = (record: string, id: string) => inputs(record, id).map((e) => JSON.parse(e.values[0] as string) as Record<string, unknown>);

test('send_stdout_as, send_logs_as and dora/logs across two machines: every line arrives in order, the routed inputs close when their node ends, both ways', async () => {
  const c = new TestCluster();
  clusters.push(c);
  await c.startCoordinator();
  await c.startDaemon('gpu');
  const listener = path.join(c.dir, 'listener.jsonl');
  const remote = path.join(c.dir, 'remote.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      node('talker', 'chatter.ts', `    deploy: { machine: gpu }\n    env: { PRINT: 2000, LOG: "info,warn", LOG_COUNT: 3 }\n    send_stdout_as: printed\n    send_logs_as: records\n    outputs: [printed, records, out]\n`) +
      node('listener', 'recorder.ts', `    env: { RECORD: ${listener} }\n    inputs:\n      lines: { source: talker/printed, queue_size: 5000 }\n      records: talker/records\n      warnings: dora/logs/warn\n`) +
      node('local-talker', 'chatter.ts', `    env: { LOG: "warn,info", LOG_COUNT: 2 }\n    outputs: [out]\n`) +
      node('remote-listener', 'chatter.ts', `    deploy: { machine: gpu }\n    env: { RECORD: ${remote}, EXPECT: 2 }\n    inputs: { warnings: dora/logs/warn/local-talker }\n`),
  );
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  const id = idOf(started.stdout);
  await waitFor(() => readRecord(listener).some((e) => e.type === 'INPUT_CLOSED' && e.id === 'lines') && inputs(listener, 'warnings').length >= 5 && inputs(remote, 'warnings').length >= 2, 30_000, 'the routed lines on both machines');

  // send_stdout_as, gpu → local: all 2000 lines, in order, then the input closed (the talker has ended)
  expect(inputs(listener, 'lines').map((e) => e.values[0])).toEqual(Array.from({ length: 2000 }, (_, i) => `line ${i}`));
  // send_logs_as: the records as JSON, in order
  expect(entries(listener, 'records').map((e) => `${e.node_id} ${e.level} ${e.message} ${e.target}`)).toEqual(
    [0, 1, 2].flatMap((i) => [`talker info info ${i} chatter`, `talker warn warn ${i} chatter`]),
  );
  // dora/logs/warn on this machine: the remote talker's warnings and the local one's, each in its order
  const warnings = entries(listener, 'warnings').map((e) => `${e.node_id} ${e.message}`);
  expect(warnings.filter((w) => w.startsWith('talker '))).toEqual(['talker warn 0', 'talker warn 1', 'talker warn 2']);
  expect(warnings.filter((w) => w.startsWith('local-talker '))).toEqual(['local-talker warn 0', 'local-talker warn 1']);
  // dora/logs/warn/local-talker on gpu: local → gpu
  expect(inputs(remote, 'warnings').map((e) => JSON.parse(e.values[0] as string).message)).toEqual(['warn 0', 'warn 1']);

  const stopped = await c.dora(['stop', id]);
  expect(stopped.code).toBe(0);
  await waitFor(() => processesMentioning(df.dir).length === 0, 15_000, 'nothing left');
});

test('a routed input across machines keeps its queue_size: a receiver that does not read keeps the newest lines', async () => {
  const c = new TestCluster();
  clusters.push(c);
  await c.startCoordinator();
  await c.startDaemon('gpu');
  const listener = path.join(c.dir, 'listener.jsonl');
  const df = tempDataflow(
    `nodes:\n` +
      node('talker', 'chatter.ts', `    deploy: { machine: gpu }\n    env: { PRINT: 3000 }\n    send_stdout_as: printed\n    outputs: [printed, out]\n`) +
      node('listener', 'recorder.ts', `    env: { RECORD: ${listener}, DELAY_FIRST_MS: 3000 }\n    inputs:\n      lines: { source: talker/printed, queue_size: 10 }\n`),
  );
  const started = await c.dora(['start', df.file]);
  expect(started.code).toBe(0);
  await waitFor(() => readRecord(listener).some((e) => e.type === 'INPUT_CLOSED'), 30_000, 'the end of the routed input');
  const lines = inputs(listener, 'lines').map((e) => Number((e.values[0] as string).slice(5)));
  // as from a local node: the receiver's queue keeps the newest; they are in order and end with the last line
  expect(lines.length).toBeLessThanOrEqual(10);
  expect(lines.length).toBeGreaterThan(0);
  expect(lines[lines.length - 1]).toBe(2999);
  expect([...lines].sort((a, b) => a - b)).toEqual(lines);
  await c.dora(['stop', idOf(started.stdout)]);
  await waitFor(() => processesMentioning(df.dir).length === 0, 15_000, 'nothing left');
});
