/**
 * Builds the C library (bindings/c) for the tests. Test files run in parallel jest
 * workers and several of them make the same build directories: two makes writing
 * the same objects and archives at once can link a half-written file. Every make here
 * runs under one exclusive lock (flock(1), util-linux): released by the kernel when
 * make exits, even if it crashes, so a killed test run leaves no stale lock.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';

export const C_DIR = path.resolve(__dirname, '../../bindings/c');

/** One lock per checkout, outside it (`make clean` must not remove a held lock file). */
export const BUILD_LOCK = path.join(os.tmpdir(), `dora-ts-make-${createHash('sha256').update(C_DIR).digest('hex').slice(0, 16)}.lock`);

/**
 * Runs `make -s -C bindings/c <target...>` for each target list in turn, each under
 * the build lock; throws with make's stderr when one fails.
 */
export function buildC(targets: readonly (readonly string[])[]): void {
  for (const target of targets) {
    const r = spawnSync('flock', [BUILD_LOCK, 'make', '-s', '-C', C_DIR, ...target], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.error) throw new Error(`could not run flock make (flock is in util-linux): ${r.error.message}`);
    if (r.status !== 0) throw new Error(`make ${target.join(' ')} failed:\n${r.stderr}`);
  }
}
