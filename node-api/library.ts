/**
 * Where libdora_node_api (and its pkg-config file) is, in a checkout or an installed
 * copy of the package: the checkout's build (bindings/c/build), else the library
 * prebuilt for this platform at `npm pack` time (prebuilds/<platform>-<arch>/), else
 * built now from the C sources the package ships. npm may not run a dependency's
 * install script, so that build happens on first use instead of at install time.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DoraError } from '../protocol/errors';
import { ErrorCode } from '../protocol/facts';

/** Environment variable naming the library file to load instead of the one in this package. */
export const LIBRARY_ENV = 'DORA_NODE_API_LIB';

/** The root of this dora-ts package: the nearest folder above this file with dora-ts's package.json. */
export const PACKAGE_ROOT = findPackageRoot(__dirname);

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'dora-ts') return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..');
  }
}

/** The prebuilt library's folder for this platform (its pkg-config file in pkgconfig/). */
export function prebuiltDir(root = PACKAGE_ROOT): string {
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
}

/** The prebuilt library's file name: its SONAME, so nodes linked against it find it by that name. */
export const PREBUILT_LIBRARY = 'libdora_node_api.so.0';

const sourceDir = (root: string) => path.join(root, 'bindings', 'c');
const builtLibrary = (root: string) => path.join(sourceDir(root), 'build', 'libdora_node_api.so');

/** The library and the folder of its dora-node-api.pc, building it from the shipped sources if need be. */
export function locateLibrary(root = PACKAGE_ROOT): { library: string; pkgConfigDir: string } {
  const built = builtLibrary(root);
  if (fs.existsSync(built)) return { library: built, pkgConfigDir: path.join(path.dirname(built), 'pkgconfig') };
  const prebuilt = path.join(prebuiltDir(root), PREBUILT_LIBRARY);
  if (fs.existsSync(prebuilt)) return { library: prebuilt, pkgConfigDir: path.join(prebuiltDir(root), 'pkgconfig') };
  buildFromSources(root);
  return { library: built, pkgConfigDir: path.join(path.dirname(built), 'pkgconfig') };
}

/** Where the library is: $DORA_NODE_API_LIB, else the one of this package (see locateLibrary). */
export function libraryPath(): string {
  return process.env[LIBRARY_ENV] || locateLibrary().library;
}

/** What building the core needs and is missing here, as Debian/Ubuntu package names. */
export function missingBuildTools(env: NodeJS.ProcessEnv = process.env): string[] {
  const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore', env }).status === 0;
  const missing: string[] = [];
  if (!has(env.CC || 'cc', ['--version'])) missing.push('a C compiler (gcc)');
  if (!has('make', ['--version'])) missing.push('make');
  if (!has('pkg-config', ['--version'])) missing.push('pkg-config');
  else if (!has('pkg-config', ['--exists', 'libzmq'])) missing.push('libzmq3-dev');
  return missing;
}

/** Runs the C library's Makefile in the package; a clear error naming what is missing when it cannot. */
export function buildFromSources(root = PACKAGE_ROOT): void {
  const platform = `${process.platform}-${process.arch}`;
  const dir = sourceDir(root);
  if (!fs.existsSync(path.join(dir, 'Makefile'))) {
    throw new DoraError(`the dora node library (libdora_node_api.so) was not found in ${root} (no prebuilt library for ${platform}, no C sources to build it from): point ${LIBRARY_ENV} at one`, {
      code: ErrorCode.LIBRARY,
    });
  }
  const missing = missingBuildTools();
  if (missing.length > 0) {
    throw new DoraError(
      `dora-ts has no prebuilt node library for ${platform} and building it from its C sources (${dir}) needs ${missing.join(', ')}: ` +
        `install ${missing.length > 1 ? 'them' : 'it'} (Debian/Ubuntu: apt-get install build-essential pkg-config libzmq3-dev), or point ${LIBRARY_ENV} at a built library`,
      { code: ErrorCode.LIBRARY },
    );
  }
  process.stderr.write(`dora-ts: no prebuilt node library for ${platform}: building it from the C sources in ${dir} (once)\n`);
  // the nodes of a dataflow start together: flock lets one build while the others wait (make then finds it done)
  const command = ['make', '-s', '-C', dir, 'all'];
  const locked = spawnSync('flock', ['--version'], { stdio: 'ignore' }).status === 0;
  const [program, ...args] = locked ? ['flock', path.join(dir, '.build.lock'), ...command] : command;
  const make = spawnSync(program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (make.status !== 0 || !fs.existsSync(builtLibrary(root))) {
    throw new DoraError(`building the dora node library in ${dir} failed (make exited with ${make.status ?? make.signal}):\n${(make.stderr || make.stdout || '').trim()}`, {
      code: ErrorCode.LIBRARY,
    });
  }
}
