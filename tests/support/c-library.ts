/**
 * koffi bindings of libdora_node_api, declared from the same API description the
 * header is generated from (bindings/c/api.json): a function's koffi prototype is
 * derived from its C signature, so tests and header cannot disagree.
 */
import * as path from 'node:path';
// koffi ships a CommonJS build, but its type declarations are ESM-flavoured.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const koffi = require('koffi') as typeof import('koffi', { with: { 'resolution-mode': 'import' } });
import { apiFunctions } from '../../bindings/c/generate-header';

type KoffiFunction = ReturnType<ReturnType<typeof koffi.load>['func']>;

export const C_LIBRARY = path.resolve(__dirname, '../../bindings/c/build/libdora_node_api.so');

/** koffi's spelling of a C parameter or return type (`out`: pointer parameters the function writes). */
function koffiType(t: string, parameter: boolean): string {
  if (t === 'const char *') return 'const char *';
  if (t.startsWith('enum ')) return 'int';
  if (t === 'unsigned long long') return 'uint64_t';
  if (parameter && /^(bool|int64_t|double|size_t) \*$/.test(t)) return `_Out_ ${t}`;
  if (parameter && t === 'char **') return '_Out_ void **';
  if (t.includes('*')) return 'void *';
  return t;
}

/** A function of the library by name, e.g. `fn('dora_next_event')(ctx)`. */
export function bindLibrary(file = C_LIBRARY): (name: string) => KoffiFunction {
  const lib = koffi.load(file);
  const byName = new Map(apiFunctions().map((f) => [f.name, f]));
  const cache = new Map<string, KoffiFunction>();
  return (name) => {
    let fn = cache.get(name);
    if (!fn) {
      const f = byName.get(name);
      if (!f) throw new Error(`${name} is not in bindings/c/api.json`);
      const params = f.params.map(([t]) => koffiType(t, true)).join(', ');
      fn = lib.func(`${koffiType(f.returns, false)} ${name}(${params || 'void'})`);
      cache.set(name, fn);
    }
    return fn;
  };
}
