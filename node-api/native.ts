/**
 * The node core, libdora_node_api, loaded through koffi. Every function's
 * prototype is derived from the one API description the C header is generated
 * from (bindings/c/api.json), so this binding and the header cannot disagree.
 *
 * Pointers are bigints (koffi's representation); typed arrays passed for pointer
 * parameters are passed in place, and what the library writes into them is
 * visible here (used for out-parameters and records, without koffi's slower
 * out-parameter marshalling).
 */
import api from '../bindings/c/api.json';
import { DoraError } from '../protocol/errors';
import { ErrorCode } from '../protocol/facts';
import { libraryPath } from './library';

export { LIBRARY_ENV, libraryPath } from './library';

// koffi ships a CommonJS build, but its type declarations are ESM-flavoured.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const koffi = require('koffi') as typeof import('koffi', { with: { 'resolution-mode': 'import' } });

type KoffiFunction = ReturnType<ReturnType<typeof koffi.load>['func']>;

interface ApiFunction {
  readonly name: string;
  readonly returns: string;
  readonly params: readonly (readonly string[])[];
}

/** Every function of api.json, in header order. */
export function apiFunctions(): ApiFunction[] {
  return (api.sections as readonly { functions?: readonly ApiFunction[] }[]).flatMap((s) => s.functions ?? []);
}

/**
 * koffi's spelling of a C type. Pointer parameters become `void *`, so a typed
 * array can be passed for any of them (out-parameters included); `char **` stays a
 * koffi out-parameter for the dora-compatible readers.
 */
export function koffiType(t: string, parameter: boolean): string {
  if (t === 'const char *') return 'const char *';
  if (t.startsWith('enum ')) return 'int';
  if (t === 'unsigned long long') return 'uint64_t';
  if (parameter && /^(bool|int64_t|double|size_t) \*$/.test(t)) return `_Out_ ${t}`;
  if (parameter && t === 'char **') return '_Out_ void **';
  if (t.includes('*')) return 'void *';
  return t;
}

/** Binds every function of the library by name. */
export function bindLibrary(file = libraryPath()): Record<string, KoffiFunction> {
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(file);
  } catch (err) {
    // the library links the system's libzmq (libzmq.so.5), which a machine may lack
    const why = err instanceof Error ? err.message : String(err);
    const hint = /libzmq/.test(why) ? ' (it needs the ZeroMQ library: Debian/Ubuntu: apt-get install libzmq5)' : '';
    throw new DoraError(`cannot load the dora node library ${file}: ${why}${hint}`, { code: ErrorCode.LIBRARY });
  }
  const fns: Record<string, KoffiFunction> = {};
  for (const f of apiFunctions()) {
    const params = f.params.map(([t]) => koffiType(t, true)).join(', ');
    fns[f.name] = lib.func(`${koffiType(f.returns, false)} ${f.name}(${params || 'void'})`);
  }
  return fns;
}

/** A pending koffi `.async` call as a promise. */
export function callAsync<T>(fn: KoffiFunction, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    (fn.async as (...a: unknown[]) => void)(...args, (err: unknown, result: T) => (err ? reject(err) : resolve(result)));
  });
}

/** A file descriptor watched in Node's own event loop (a libuv poll handle). */
export type PollHandle = ReturnType<typeof koffi.node.poll>;

/** Watches `fd` for readability from now on; unref'd: it keeps the process alive only once ref'd. */
export function pollReadable(fd: number, onReadable: () => void): PollHandle {
  const handle = koffi.node.poll(fd, { readable: true }, onReadable);
  handle.unref();
  return handle;
}

/** An ArrayBuffer over `length` bytes of native memory at `address` (no copy, not owned). */
export function view(address: bigint, length: number): ArrayBuffer {
  return koffi.view(address, length);
}

/**
 * The core's last failure on this thread as a DoraError: its message (after `prefix`)
 * and its code (dora_last_error, dora_last_error_code).
 */
export function coreError(prefix = ''): DoraError {
  const c = core();
  return new DoraError(`${prefix}${(c.dora_last_error() as string | null) ?? 'unknown error'}`, { code: c.dora_last_error_code() as number });
}

let library: Record<string, KoffiFunction> | undefined;

/** The library, loaded on first use. */
export function core(): Record<string, KoffiFunction> {
  library ??= bindLibrary();
  return library;
}
