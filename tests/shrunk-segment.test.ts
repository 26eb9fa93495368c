/**
 * A segment shrunk under its receivers (issue 10): a sender truncates a sample's segment
 * while TypeScript, Python and C receivers hold the sample and read it in place. Without
 * the core's SIGBUS guard (bindings/c/src/guard.c) each of them would die of SIGBUS.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dora, leftovers, node, readRecord, ROOT, segmentsOf, tempDataflow } from './support/dataflow';

afterEach(() => {
  expect(leftovers()).toEqual([]);
});

const MiB = 1 << 20;
const KiB64 = 64 * 1024;

test('receivers in TypeScript, Python and C read zeros where a truncated segment was, log it once, and keep receiving', async () => {
  const build = `cc -std=c11 -Wall -Wextra -Werror ${path.join(ROOT, 'tests/fixtures/c/shrink_receiver.c')} -o c $(pkg-config --cflags --libs dora-node-api)`;
  // PYTHONFAULTHANDLER: Python's own SIGBUS handler is installed first, and the guard chains to it.
  const receiver = (name: string, env = '') => `    env: { RECORD: ./${name}.jsonl, HELD: ./${name}.held${env} }\n    inputs: { data: sender/out }\n`;
  const df = tempDataflow(
    `nodes:\n` +
      node('sender', 'shrinker.ts', `    env: { RECEIVERS: "ts,py,c", COUNT: 3 }\n    outputs: [out]\n`) +
      node('ts', 'shrink-receiver.ts', receiver('ts')) +
      node('py', 'shrink_receiver.py', receiver('py', ', PYTHONFAULTHANDLER: 1')) +
      `  - id: c\n    path: ./c\n    build: ${build}\n${receiver('c')}`,
  );
  expect((await dora(['build', df.file])).code).toBe(0);
  const result = await dora(['run', df.file], { cwd: df.dir });
  expect(result.stderr).not.toMatch(/SIGBUS|failed/);
  expect(result.code).toBe(0);
  const id = /dataflow ([0-9a-f-]{36})/.exec(result.stderr)![1];
  for (const name of ['ts', 'py', 'c']) {
    expect({ name, events: readRecord(path.join(df.dir, `${name}.jsonl`)) }).toEqual({
      name,
      events: [
        { type: 'INPUT', length: MiB, sum: 7 * MiB, sumAfter: 0 },
        { type: 'INPUT', length: KiB64, sum: KiB64 },
        { type: 'INPUT', length: KiB64, sum: 2 * KiB64 },
        { type: 'INPUT', length: KiB64, sum: 3 * KiB64 },
        { type: 'END' },
      ],
    });
    const log = fs.readFileSync(path.join(df.dir, 'out', id, `log_${name}.txt`), 'utf8');
    expect({ name, warnings: log.match(/shared-memory segment dora-ts-\S+ shrank while this node read it/g)?.length }).toEqual({ name, warnings: 1 });
  }
  expect(segmentsOf(id)).toEqual([]);
}, 60_000);
