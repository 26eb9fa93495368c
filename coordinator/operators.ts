/**
 * dora's in-process operators: a node declared with `operator:` (one operator, id `op`
 * unless it says otherwise) or `operators:` (a list, each with an `id`) runs its
 * operators in one runtime process. This module gives such a node its meaning: it checks
 * the operators (ids, sources, fields a node of operators cannot have), resolves them
 * into the node's inputs (`<operator>/<input>`) and outputs (`<operator>/<output>`), says
 * how other nodes address those outputs, and how the daemon starts the runtime.
 *
 * The runtime: `python -u -m dora.runtime` (bindings/python/dora/runtime.py) when the
 * node has a Python operator, which also hosts its C operators; otherwise the C runtime
 * bindings/c/build/dora-runtime, so that a node of C operators needs no Python. Both take
 * one `--operator <id> <kind> <file> <inputs> <outputs>` group per operator.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ResolvedInput, ResolvedNode, ResolvedOperator } from './dataflow';
import { pythonInterpreter, type Command } from './spawner';

/** The id of a single `operator:` that has none (dora's SINGLE_OPERATOR_DEFAULT_ID). */
export const SINGLE_OPERATOR_ID = 'op';

/**
 * A runtime asks the daemon to stop the dataflow (an operator returned STOP_ALL) with a
 * log record starting with this; the daemon honours it from runtime nodes only. The
 * Python and C runtimes write the same text.
 */
export const STOP_ALL_PREFIX = 'dora-runtime stop-all:';

/** An operator as written (the shape dataflow.schema.json guarantees). */
export interface RawOperator {
  id?: string;
  name?: string;
  description?: string;
  python?: string | { source: string };
  'shared-library'?: string;
  inputs?: Record<string, unknown>;
  outputs?: string[];
  build?: string;
}

/** The fields of a node that decide its kind (the rest of a node is described in descriptor.ts). */
export interface RawNodeKind {
  id: string;
  path?: string;
  args?: unknown;
  inputs?: Record<string, unknown>;
  outputs?: string[] | null;
  build?: string;
  operator?: RawOperator;
  operators?: RawOperator[];
}

type PathSegment = string | number;

/** What resolving operators needs from the descriptor loader. */
export interface OperatorContext {
  readonly workingDir: string;
  readonly checkPaths: boolean;
  report(at: readonly PathSegment[], message: string, extra?: { hint?: string; atKey?: boolean }): void;
  /** The line a path starts on, for "first declared on line N" hints. */
  line(at: readonly PathSegment[]): number | undefined;
  /** Resolves an `inputs` mapping at `at` (references checked, timers registered), with ids prefixed by `idPrefix`. */
  inputs(inputs: Record<string, unknown> | undefined, at: readonly PathSegment[], idPrefix: string): ResolvedInput[];
}

/** The operators of a node as written, each with where it is, or undefined for a node with `path`. */
function declared(node: RawNodeKind, i: number): { op: RawOperator; at: PathSegment[]; id: string }[] | undefined {
  if (node.operators) return node.operators.map((op, j) => ({ op, at: ['nodes', i, 'operators', j], id: op.id ?? '' }));
  if (node.operator) return [{ op: node.operator, at: ['nodes', i, 'operator'], id: node.operator.id ?? SINGLE_OPERATOR_ID }];
  return undefined;
}

const addressable = new WeakMap<RawNodeKind, Map<string, string>>();

/**
 * How other nodes address a node's outputs: the text after `<node>/` as they write it,
 * mapped to the node's output id. A node with `path` has its outputs; a node of
 * `operators` has `<operator>/<output>`; a single `operator:` is addressed `<node>/<output>`
 * (dora inserts the operator's id).
 */
export function addressableOutputs(node: RawNodeKind): Map<string, string> {
  const known = addressable.get(node);
  if (known) return known; // asked once per input that reads the node
  const table = new Map<string, string>();
  addressable.set(node, table);
  if (node.operators) {
    for (const op of node.operators) for (const out of op.outputs ?? []) table.set(`${op.id}/${out}`, `${op.id}/${out}`);
  } else if (node.operator) {
    const id = node.operator.id ?? SINGLE_OPERATOR_ID;
    for (const out of node.operator.outputs ?? []) table.set(out, `${id}/${out}`);
  } else for (const out of node.outputs ?? []) table.set(out, out);
  return table;
}

/** A hint for a reference that does not resolve, when the sender is a node of operators. */
export function addressingHint(node: RawNodeKind): string | undefined {
  if (node.operators) return `outputs of a node with \`operators\` are addressed \`${node.id}/<operator>/<output>\``;
  if (node.operator) return `outputs of a node with a single \`operator\` are addressed \`${node.id}/<output>\``;
  return undefined;
}

/** Fields of a node that mean nothing for a node of operators: each operator declares its own. */
const NOT_FOR_OPERATOR_NODES: Record<string, string> = {
  inputs: 'declare the inputs under the operator that receives them',
  outputs: 'declare the outputs under the operator that sends them',
  args: 'operators take no command-line arguments',
};

/**
 * The node's operators, resolved, or undefined for a node with `path`. Reports every
 * problem through `ctx` (a node with neither `path` nor operators, or with both; duplicate
 * operator ids and outputs; a missing source file; a misnamed library).
 */
export function resolveOperators(node: RawNodeKind, i: number, ctx: OperatorContext): ResolvedOperator[] | undefined {
  const operators = declared(node, i);
  if (!operators) {
    if (node.path === undefined) {
      ctx.report(['nodes', i], 'the node is missing the required field `path`', { hint: 'a node runs `path`, or in-process operators declared with `operator` or `operators`' });
    }
    return undefined;
  }
  for (const field of ['path', ...(node.operator && node.operators ? ['operator'] : [])]) {
    if (field in node) {
      ctx.report(['nodes', i, field], `a node has one of \`path\`, \`operator\` and \`operators\`, not several`, {
        atKey: true,
        hint: 'a node of operators runs them in a runtime process of its own; put a program in a node of its own',
      });
    }
  }
  for (const [field, hint] of Object.entries(NOT_FOR_OPERATOR_NODES)) {
    if (field in node) ctx.report(['nodes', i, field], `\`${field}\` has no meaning for a node of operators`, { atKey: true, hint });
  }
  if (node.operators && node.operators.length === 0) ctx.report(['nodes', i, 'operators'], 'the node has no operators', { hint: 'list at least one, each with an `id` and `python` or `shared-library`' });

  const firstAt = new Map<string, PathSegment[]>();
  return operators.map(({ op, at, id }) => {
    const first = firstAt.get(id);
    if (id === '') {
      ctx.report(at, `an operator of \`operators\` is missing the required field \`id\``, { hint: 'only a single `operator:` may leave it out (its id is then `op`)' });
    } else if (first) {
      const line = ctx.line(first);
      ctx.report([...at, 'id'], `duplicate operator id \`${id}\` in node \`${node.id}\``, { hint: line ? `first used on line ${line}` : undefined });
    } else firstAt.set(id, at);
    const outputs = op.outputs ?? [];
    outputs.forEach((output, j) => {
      if (outputs.indexOf(output) !== j) ctx.report([...at, 'outputs', j], `output \`${output}\` of operator \`${id}\` is declared twice`);
    });
    const built = op.build !== undefined || node.build !== undefined;
    const { kind, source, resolvedPath } = operatorSource(op, at, id, built, ctx);
    return {
      id,
      kind,
      source,
      resolvedPath,
      ...(op.build !== undefined ? { build: op.build } : {}),
      inputs: ctx.inputs(op.inputs, [...at, 'inputs'], ''),
      outputs,
    };
  });
}

/** The kind and file of an operator; reports a missing or doubled source and files that do not exist. */
function operatorSource(op: RawOperator, at: PathSegment[], id: string, built: boolean, ctx: OperatorContext): Pick<ResolvedOperator, 'kind' | 'source' | 'resolvedPath'> {
  const library = op['shared-library'];
  if (op.python !== undefined && library !== undefined) {
    ctx.report([...at, 'shared-library'], `operator \`${id}\` has both \`python\` and \`shared-library\``, { atKey: true, hint: 'an operator is one or the other' });
  }
  if (op.python !== undefined) {
    const source = typeof op.python === 'string' ? op.python : op.python.source;
    const where = typeof op.python === 'string' ? [...at, 'python'] : [...at, 'python', 'source'];
    const file = path.resolve(ctx.workingDir, source);
    if (ctx.checkPaths && !built && !fs.existsSync(file)) {
      ctx.report(where, `\`python\`: ${file} does not exist`, { hint: 'paths are relative to the dataflow file' });
    }
    return { kind: 'python', source, resolvedPath: file };
  }
  if (library !== undefined) {
    const name = path.basename(library);
    const file = path.resolve(ctx.workingDir, path.dirname(library), `lib${name}.so`);
    if (name.startsWith('lib') || path.extname(name) !== '') {
      const bare = name.replace(/^lib/, '').replace(/\.[^.]*$/, '');
      ctx.report([...at, 'shared-library'], `\`shared-library\` names the library without its \`lib\` prefix and extension, which are added: \`${library}\` would open lib${name}.so`, {
        hint: `write \`${path.join(path.dirname(library), bare)}\` for ${path.join(path.dirname(library), `lib${bare}.so`)}`,
      });
    } else if (ctx.checkPaths && !built && !fs.existsSync(file)) {
      ctx.report([...at, 'shared-library'], `\`shared-library\`: ${file} does not exist`, { hint: 'the library is `<dir>/lib<name>.so`, relative to the dataflow file; build it first (`dora build`)' });
    }
    return { kind: 'shared-library', source: library, resolvedPath: file };
  }
  ctx.report(at, `operator \`${id}\` has no source`, { hint: 'give it `python: <file.py>` or `shared-library: <dir>/<name>` (for <dir>/lib<name>.so)' });
  return { kind: 'python', source: '', resolvedPath: '' };
}

/** The node's inputs and outputs: its operators', named `<operator>/<id>`. */
export function operatorPorts(operators: readonly ResolvedOperator[]): Pick<ResolvedNode, 'inputs' | 'outputs'> {
  return {
    inputs: operators.flatMap((op) => op.inputs.map((input) => ({ ...input, id: `${op.id}/${input.id}` }))),
    outputs: operators.flatMap((op) => op.outputs.map((output) => `${op.id}/${output}`)),
  };
}

/** The folder holding bindings/ (the checkout), from the source tree or from dist/. */
function checkout(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'bindings', 'c', 'Makefile'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..', '..');
  }
}

/**
 * The C runtime executable: the checkout's build (`make -C bindings/c`), else the one an
 * installed package ships prebuilt beside the node library (prebuilds/<platform>-<arch>/);
 * `$DORA_C_RUNTIME` names another (the sanitizer build, say).
 */
const RUNTIMES = [
  path.join(checkout(), 'bindings', 'c', 'build', 'dora-runtime'),
  path.join(checkout(), 'prebuilds', `${process.platform}-${process.arch}`, 'dora-runtime'),
];
export const C_RUNTIME = RUNTIMES.find((file) => fs.existsSync(file)) ?? RUNTIMES[0];

/** How the daemon starts the runtime process of a node of operators. */
export function runtimeCommand(operators: readonly ResolvedOperator[], env: NodeJS.ProcessEnv = process.env): Command {
  const args = operators.flatMap((op) => ['--operator', op.id, op.kind, op.resolvedPath, op.inputs.map((i) => i.id).join(','), op.outputs.join(',')]);
  const python = operators.find((op) => op.kind === 'python');
  if (python) return { program: pythonInterpreter(env, python.resolvedPath), args: ['-u', '-m', 'dora.runtime', ...args] };
  return { program: env.DORA_C_RUNTIME || C_RUNTIME, args };
}
