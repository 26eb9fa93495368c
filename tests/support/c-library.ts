/**
 * The library's functions by name, for tests that call the C API directly (as a C
 * node would), with the koffi prototypes the TypeScript node API derives from
 * bindings/c/api.json: tests, binding and header cannot disagree.
 */
import * as path from 'node:path';
import { bindLibrary as bindAll } from '../../node-api/native';

type KoffiFunction = ReturnType<typeof bindAll>[string];

export const C_LIBRARY = path.resolve(__dirname, '../../bindings/c/build/libdora_node_api.so');

/** A function of the library by name, e.g. `fn('dora_next_event')(ctx)`. */
export function bindLibrary(file = C_LIBRARY): (name: string) => KoffiFunction {
  const fns = bindAll(file);
  return (name) => {
    const fn = fns[name];
    if (!fn) throw new Error(`${name} is not in bindings/c/api.json`);
    return fn;
  };
}
