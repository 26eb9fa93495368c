/**
 * A node that cannot open its sockets (its dataflow's run folder is gone: the daemon died
 * and another dora removed the folder) fails at once, saying why. Its clean-up used to send
 * `outputs-closed` on a request socket that had never connected, a send that blocks for
 * ever: the orphan hung (found in a full test run, where a SIGKILLed coordinator's folder
 * was reclaimed while its nodes were still starting).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { PROTOCOL_VERSION } from '../protocol/facts';
import { ROOT } from './support/dataflow';

const gone = '/tmp/dora-ts-no-such-run-folder';
const config = {
  protocolVersion: PROTOCOL_VERSION,
  dataflowId: '00000000-0000-0000-0000-000000000000',
  nodeId: 'orphan',
  daemonPid: process.pid, // the daemon is alive as far as the node can tell: its parent
  daemonRequests: `ipc://${gone}/daemon`,
  daemonEvents: `ipc://${gone}/events`,
  dataEndpoint: `ipc://${gone}/0.data`,
  dropEndpoint: `ipc://${gone}/0.drops`,
  sharedMemoryThreshold: 4096,
  segmentPrefix: 'dora-ts-00000000-0000-0000-0000-000000000000-',
  outputs: ['out'],
  subscribers: { out: [] },
  inputs: [],
  nodeDescriptor: {},
  dataflowDescriptorFile: `${gone}/dataflow.json`,
  restartCount: 0,
  healthCheckTimeoutMs: 0,
  remote: null,
};
const env = { ...process.env, DORA_NODE_CONFIG: JSON.stringify(config) };

test.each([
  ['Python', path.join(ROOT, '.venv/bin/python'), ['-c', 'from dora import Node\nNode()']],
  ['TypeScript', process.execPath, ['-e', "const { Node } = require('dora-ts'); new Node().next().catch((e) => { console.error(e.message); process.exit(1); });"]],
])('%s: a node whose data socket cannot be bound fails at once with the reason, not hangs', (_, program, args) => {
  const started = Date.now();
  const r = spawnSync(program, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 10_000 });
  expect(r.signal).toBeNull(); // not killed by the timeout
  expect(r.status).toBe(1);
  expect(r.stderr).toContain(`cannot bind ipc://${gone}/0.data: No such file or directory`);
  expect(Date.now() - started).toBeLessThan(5000);
});
