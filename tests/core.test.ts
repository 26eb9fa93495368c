/**
 * Unit checks of the node core (bindings/c): the per-input queues, the sender's sample
 * pool and drop tokens, segments and the receiver's mapping cache, the SIGBUS guard over
 * receive mappings, mapping references.
 * bindings/c/tests/check_core.c runs them against the static library (internals
 * included) and prints one JSON line per check; this file builds it, runs it in the
 * normal and the AddressSanitizer/UBSan build, and asserts on every line, so a failing
 * check names itself.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildC, C_DIR } from './support/build-c';

const SEGMENT_DIR = '/dev/shm';

/** What the deleted TypeScript queue and pool tests covered, and more: these must run (and pass) in every build. */
const CHECKS = [
  'queue.newest-per-input',
  'queue.deep-order-and-bound',
  'queue.drain-arrival-order',
  'queue.unknown-inputs-ignored',
  'queue.drop-returns-sample',
  'segment.mode-and-names',
  'segment.names-checked',
  'segment.receiver-maps-same-memory',
  'guard.shrunk-segment-reads-zeros',
  'guard.reported-after-unmap',
  'guard.registry-grows',
  'guard.threads',
  'guard.chains-other-sigbus',
  'pool.reuse-after-every-holder',
  'pool.steady-stream-lagging-receiver',
  'pool.receiver-leaves',
  'pool.free-kept-for-reuse',
  'pool.lost-ranges-release',
  'pool.stats',
  'pool.slab-slots',
  'mapping.retain-release',
  'mapping.outlives-context',
  'wait.times-out-wakes-interrupts',
  'errors.codes',
];

type Line = { check: string; ok: boolean; failures?: string[] };
type Run = { status: number | null; stderr: string; lines: Map<string, Line>; unparsed: string[]; leftovers: string[] };

const runs = new Map<string, Run>();

function run(build: string): Run {
  // A prefix of our own: whatever the checks leave behind is theirs, and removed here.
  const prefix = `dora-ts-check-core-${randomUUID()}-`;
  const r = spawnSync(path.join(C_DIR, build, 'check-core'), [prefix], { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 << 20 });
  const leftovers = fs.readdirSync(SEGMENT_DIR).filter((name) => name.startsWith(prefix));
  for (const name of leftovers) fs.rmSync(path.join(SEGMENT_DIR, name), { force: true });
  const lines = new Map<string, Line>();
  const unparsed: string[] = [];
  for (const text of (r.stdout ?? '').split('\n').filter((l) => l.trim() !== '')) {
    try {
      const line = JSON.parse(text) as Line;
      lines.set(line.check, line);
    } catch {
      unparsed.push(text);
    }
  }
  return { status: r.status, stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`, lines, unparsed, leftovers };
}

beforeAll(() => {
  // The Makefile's flags include -Wall -Wextra -Werror: a warning fails here.
  buildC([['all', 'check-core'], ['asan']]);
  for (const build of ['build', 'build-asan']) runs.set(build, run(build));
}, 300_000);

describe.each(['build', 'build-asan'])('the core (%s)', (build) => {
  const result = () => runs.get(build)!;

  test.each(CHECKS)('%s', (check) => {
    expect(result().lines.get(check) ?? { check, ok: false, failures: ['did not run (crashed, or was removed from check_core.c?)'] }).toEqual({ check, ok: true });
  });

  test('every check passes (those added to check_core.c since, too), printing only JSON lines', () => {
    expect([...result().lines.values()].filter((l) => !l.ok)).toEqual([]);
    expect(result().unparsed).toEqual([]);
  });

  test('exits 0 with nothing on stderr (no sanitizer report, no leak) and leaves no segment behind', () => {
    expect(result().stderr).toBe('');
    expect(result().status).toBe(0);
    expect(result().leftovers).toEqual([]);
  });
});
