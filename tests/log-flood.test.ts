/** A flood a node makes itself (its own log calls) does not kill it. */
import * as fs from 'node:fs';
import { dora, leftovers, node, tempDataflow } from './support/dataflow';

afterEach(() => {
  expect(leftovers()).toEqual([]);
});

const idOf = (text: string) => /dataflow ([0-9a-f-]{36})/.exec(text)?.[1];

test('5,000 node.log() calls in a loop right before the node exits: it finishes, and its log holds every line, in order', async () => {
  const df = tempDataflow(`nodes:\n` + node('logger', 'logger.ts', `    env: { COUNT: 5000 }\n    outputs: [out]\n`));
  const result = await dora(['run', df.file], { cwd: df.dir });
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('logger: logged 5000');
  const log = fs.readFileSync(`${df.dir}/out/${idOf(result.stderr)}/log_logger.txt`, 'utf8');
  const numbers = log
    .split('\n')
    .map((l) => /\[info\] line (\d+)$/.exec(l)?.[1])
    .filter((n) => n !== undefined)
    .map(Number);
  // Every record arrives, in order: the node's closing request waits until the daemon has
  // served them (a ZeroMQ peer that disconnects loses what was not read yet).
  expect(numbers.length).toBe(5000);
  expect(numbers).toEqual([...numbers.keys()]);
}, 60_000);
