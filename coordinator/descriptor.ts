/**
 * The dataflow descriptor: dora's YAML format, parsed with positions, checked
 * against the JSON Schema in dataflow.schema.json (the same file editors use),
 * then checked for meaning (references, timers, duplicates) and resolved into a
 * ResolvedDataflow. Every problem found is reported at once, each with its file,
 * line and column; nothing runs unless the whole descriptor is valid.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { LineCounter, isMap, isNode, isPair, isScalar, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import schema from './dataflow.schema.json';
import {
  DEFAULT_HEALTH_CHECK_INTERVAL_S,
  DEFAULT_QUEUE_SIZE,
  type InputSource,
  type LogLevelOrStdout,
  type ResolvedDataflow,
  type ResolvedDeploy,
  type ResolvedInput,
  type ResolvedNode,
  type RestartPolicy,
  type TimerSource,
} from './dataflow';
import { checkAffinity } from './affinity';
import { isLogsSource, LOGS_HELP, parseLogsSource, resolveLogging } from './logfields';
import { SHARED_MEMORY_THRESHOLD } from '../protocol/facts';
import { TIMER_TYPE, compatible, formatPortType, parsePortType, type PortType } from './types';
import { DescriptorError, DoraError, ErrorCode, type DescriptorIssue, type SourcePosition } from './errors';
import { addressableOutputs, addressingHint, operatorPorts, resolveOperators, type OperatorContext, type RawOperator } from './operators';

/** Where the JSON Schema lives, for editors (`# yaml-language-server: $schema=<this>`). */
export const DATAFLOW_SCHEMA_FILE = path.resolve(__dirname, '..', '..', 'coordinator', 'dataflow.schema.json');

/** Default size from which payloads go through shared memory (dora's threshold; protocol/facts.json). */
export const DEFAULT_SHARED_MEMORY_THRESHOLD = SHARED_MEMORY_THRESHOLD;

/** Reserved node id: `dora/...` sources are built-ins such as timers. */
const RESERVED_ID = 'dora';

/**
 * Fields dora knows that dora-ts does not implement (yet): rejected with what to do
 * instead, never ignored and never called unknown. The README's field table lists them too.
 */
const UNSUPPORTED_DORA_FIELDS: Record<string, string> = {
  wasm: 'WebAssembly operators are not supported; use `python` or `shared-library`',
  conda_env: 'conda environments are not supported; the runtime uses the Python of `.py` nodes ($DORA_PYTHON, the active virtual environment, or the nearest .venv)',
  custom: '`custom` is the old form of a node; move its `source` to `path` and its other fields up one level',
  git: 'fetching nodes from git is not supported; clone the repository and point `path` at it',
  branch: 'fetching nodes from git is not supported; clone the repository at that branch and point `path` at it',
  tag: 'fetching nodes from git is not supported; clone the repository at that tag and point `path` at it',
  rev: 'fetching nodes from git is not supported; clone the repository at that commit and point `path` at it',
  hub: 'node-hub packages are not resolved; install the package and point `path` at its executable',
  module: 'dataflow modules are not supported; write the module\'s nodes into this file',
  params: 'module parameters are not supported (nor are modules); pass the values with `env` or `args`',
  ros2: 'the ROS 2 bridge is not supported; bridge with a node of your own',
  path_sha256: 'build checksums are not supported; remove `path_sha256`',
  output_framing: 'output framing is not supported; remove `output_framing`',
  pattern: 'communication-pattern shorthands are not supported; declare the inputs and outputs yourself',
  finish_grace_secs: 'the finish watchdog is not supported; stop a node that hangs with `dora node stop`',
  shared_memory_pool_size: 'shared-memory pools grow as needed; tune the threshold with the top-level `shared_memory_threshold`',
  type_rules: 'type checking is not supported; remove `type_rules`',
  env: 'a dataflow-level `env` is not supported; set `env` on each node',
  communication: 'the communication layer is fixed (ZeroMQ, shared memory for large payloads): remove `communication`',
  _unstable_debug: 'debug options are not supported: remove `_unstable_debug`',
  debug: 'debug options are not supported: remove `debug`',
};

const TIMER_UNITS_NS: Record<string, bigint> = { secs: 1_000_000_000n, millis: 1_000_000n, micros: 1_000n, nanos: 1n };
const TIMER_HELP = 'timers are `dora/timer/secs/N`, `dora/timer/millis/N`, `dora/timer/micros/N`, `dora/timer/nanos/N` (N a positive integer) or `dora/timer/hz/F` (F a positive number)';
const BUILTIN_HELP = () => `built-in sources: ${TIMER_HELP}; ${LOGS_HELP}`;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validateSchema = ajv.compile(schema);

/** Options of parseDescriptor / loadDescriptor. */
export interface DescriptorOptions {
  /** Check that node paths relative to the file exist (default true). Nodes with a `build` step are exempt. */
  readonly checkPaths?: boolean;
  /** Incompatible port types are errors (also the top-level `strict_types: true`); otherwise warnings. */
  readonly strictTypes?: boolean;
}

/**
 * Dataflow files are a few kilobytes; one far larger is a mistake or an attack, and
 * building its YAML document would take minutes and gigabytes.
 */
export const MAX_DESCRIPTOR_BYTES = 8 << 20;

function tooLarge(file: string, bytes: number): DescriptorError {
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return new DescriptorError(file, [{ file, path: '', message: `the dataflow file is ${mb(bytes)}, more than the ${mb(MAX_DESCRIPTOR_BYTES)} a descriptor may have` }]);
}

/** Reads and validates a dataflow file; throws DescriptorError with every problem found. */
export function loadDescriptor(file: string, options: DescriptorOptions = {}): ResolvedDataflow {
  const absolute = path.resolve(file);
  let bytes: Buffer;
  try {
    const size = fs.statSync(absolute).size;
    if (size > MAX_DESCRIPTOR_BYTES) throw tooLarge(absolute, size);
    bytes = fs.readFileSync(absolute);
  } catch (err) {
    if (err instanceof DescriptorError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String((err as Error).message);
    throw new DescriptorError(absolute, [{ file: absolute, path: '', message: `cannot read the dataflow file: ${reason}` }]);
  }
  // Decoding would silently replace invalid bytes: an environment value would then differ from the file.
  const invalid = firstInvalidUtf8(bytes);
  if (invalid >= 0) {
    const before = bytes.subarray(0, invalid).toString('utf8').split('\n');
    const position = { line: before.length, column: before[before.length - 1].length + 1 };
    throw new DescriptorError(absolute, [{ file: absolute, path: '', position, message: `the file is not valid UTF-8 (byte 0x${bytes[invalid].toString(16).padStart(2, '0')} at offset ${invalid})` }]);
  }
  return parseDescriptor(bytes.toString('utf8'), absolute, path.dirname(absolute), options);
}

/** Validates descriptor text; `file` labels errors, relative paths resolve against `workingDir`. */
export function parseDescriptor(text: string, file: string, workingDir: string = process.cwd(), options: DescriptorOptions = {}): ResolvedDataflow {
  if (text.length > MAX_DESCRIPTOR_BYTES) throw tooLarge(file, Buffer.byteLength(text));
  const source = new Source(text, file);
  if (source.issues.length > 0) throw new DescriptorError(file, source.issues);
  let raw: unknown;
  try {
    raw = source.doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    // An alias bomb (aliases expanding to an exponential document) or a document nested too deeply.
    const alias = firstAlias(source.doc);
    const position = alias ? source.positionOfNode(alias) : { line: 1, column: 1 };
    const message = /alias/i.test((err as Error).message)
      ? 'too many alias expansions: its aliases would expand into an enormous document'
      : `the document cannot be read: ${(err as Error).message}`;
    throw new DescriptorError(file, [{ file, path: '', position, message, hint: 'write the nodes out, or use fewer nested aliases' }]);
  }
  if (raw === null || raw === undefined) {
    throw new DescriptorError(file, [{ file, path: '', position: { line: 1, column: 1 }, message: 'the dataflow file is empty', hint: 'it needs a `nodes:` list' }]);
  }
  if (!validateSchema(raw)) {
    for (const e of schemaIssues(validateSchema.errors ?? [], raw)) source.report(e.path, e.message, { hint: e.hint, atKey: e.atKey });
    throw new DescriptorError(file, byPosition(source.issues));
  }
  const dataflow = resolve(raw as unknown as RawDataflow, source, workingDir, options);
  if (source.issues.length > 0) throw new DescriptorError(file, byPosition(source.issues));
  return dataflow;
}

/** The first alias (`*name`) of a document, if any. */
function firstAlias(doc: Document.Parsed): YamlNode | undefined {
  let found: YamlNode | undefined;
  visit(doc, {
    Alias(_, node) {
      found = node;
      return visit.BREAK;
    },
  });
  return found;
}

/** Offset of the first byte that is not part of valid UTF-8, or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    const n = b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (n < 0 || i + n >= bytes.length) return i; // not a lead byte, or the sequence is cut off
    for (let k = 1; k <= n; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    // overlong three-byte forms, surrogates, and code points above U+10FFFF
    if ((b === 0xe0 && bytes[i + 1] < 0xa0) || (b === 0xed && bytes[i + 1] >= 0xa0) || (b === 0xf0 && bytes[i + 1] < 0x90) || (b === 0xf4 && bytes[i + 1] >= 0x90)) return i;
    i += n + 1;
  }
  return -1;
}

/** Issues in file order, so a user can fix them top to bottom. */
function byPosition(issues: readonly DescriptorIssue[]): DescriptorIssue[] {
  const key = (i: DescriptorIssue) => (i.position ? i.position.line * 1e6 + i.position.column : 0);
  return [...issues].sort((a, b) => key(a) - key(b));
}

// ---------------------------------------------------------------------------
// The descriptor as written (the shape dataflow.schema.json guarantees)

interface RawInputLong {
  source: string;
  queue_size?: number;
  queue_policy?: 'drop_oldest' | 'backpressure';
  input_timeout?: number;
}
interface RawNode {
  id: string;
  /** Absent for a node of operators (the schema lets both pass; operators.ts checks which). */
  path?: string;
  operator?: RawOperator;
  operators?: RawOperator[];
  name?: string;
  description?: string;
  args?: string | (string | number | boolean)[];
  env?: Record<string, string | number | boolean>;
  build?: string;
  inputs?: Record<string, string | RawInputLong>;
  outputs?: string[] | null;
  input_types?: Record<string, string>;
  output_types?: Record<string, string>;
  output_metadata?: Record<string, string[]>;
  restart_policy?: RestartPolicy['policy'];
  max_restarts?: number;
  restart_delay?: number;
  max_restart_delay?: number;
  restart_window?: number;
  health_check_timeout?: number;
  cpu_affinity?: number[];
  send_stdout_as?: string;
  send_logs_as?: string;
  min_log_level?: LogLevelOrStdout;
  max_log_size?: string | number;
  max_rotated_files?: number;
  deploy?: RawDeploy;
  _unstable_deploy?: RawDeploy;
}
interface RawDeploy {
  machine?: string;
  labels?: Record<string, string | number | boolean>;
  working_dir?: string;
}
interface RawDataflow {
  nodes: RawNode[];
  shared_memory_threshold?: number;
  health_check_interval?: number;
  strict_types?: boolean;
  exit_when_nodes_finish?: boolean;
  deploy?: RawDeploy;
  _unstable_deploy?: RawDeploy;
}

type PathSegment = string | number;

// ---------------------------------------------------------------------------
// Positions

/** The parsed YAML document plus the issues found so far, each placed at a line and column. */
class Source {
  readonly doc: Document.Parsed;
  readonly issues: DescriptorIssue[] = [];
  /** Problems that do not stop the dataflow (e.g. incompatible port types when not strict). */
  readonly warnings: DescriptorIssue[] = [];
  private readonly lines = new LineCounter();

  constructor(text: string, readonly file: string) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    let tooDeep = false;
    for (const e of this.doc.errors) {
      const [line, column] = e.linePos?.[0] ? [e.linePos[0].line, e.linePos[0].col] : this.at(e.pos[0]);
      const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      if (/call stack/i.test(message)) {
        // The parser ran out of stack: one issue for it, not one per level it unwound.
        if (tooDeep) continue;
        tooDeep = true;
        this.issues.push({ file, path: '', position: { line, column }, message: 'the document is nested too deeply to be read' });
        continue;
      }
      this.issues.push({ file, path: '', position: { line, column }, message: `invalid YAML: ${message}` });
    }
  }

  private at(offset: number): [number, number] {
    const { line, col } = this.lines.linePos(offset);
    return [line, col];
  }

  /** Position of the value at `p` (or of its key, when `atKey`), falling back to the nearest ancestor that exists. */
  /** Where a node of the document starts. */
  positionOfNode(node: YamlNode): SourcePosition {
    const [line, column] = node.range ? this.at(node.range[0]) : [1, 1];
    return { line, column };
  }

  position(p: readonly PathSegment[], atKey = false): SourcePosition | undefined {
    for (let n = p.length; n >= 0; n--) {
      const prefix = p.slice(0, n);
      if (atKey && n === p.length && n > 0) {
        const parent = this.doc.getIn(prefix.slice(0, -1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(prefix[n - 1]));
          if (pair && isNode(pair.key) && pair.key.range) return this.pos(pair.key as YamlNode);
        }
      }
      const node = prefix.length === 0 ? this.doc.contents : this.doc.getIn(prefix, true);
      if (isNode(node) && node.range) return this.pos(node);
    }
    return undefined;
  }

  private pos(node: YamlNode): SourcePosition {
    const [line, column] = this.at(node.range![0]);
    return { line, column };
  }

  report(p: readonly PathSegment[], message: string, extra: { node?: string; hint?: string; atKey?: boolean; warning?: boolean } = {}): void {
    (extra.warning ? this.warnings : this.issues).push({
      file: this.file,
      position: this.position(p, extra.atKey),
      path: p.length === 0 ? '' : '/' + p.join('/'),
      node: extra.node ?? this.nodeAt(p),
      message,
      hint: extra.hint,
    });
  }

  /** The id of the node a path points into, when it is known. */
  private nodeAt(p: readonly PathSegment[]): string | undefined {
    if (p[0] !== 'nodes' || typeof p[1] !== 'number') return undefined;
    const id = this.doc.getIn(['nodes', p[1], 'id']);
    return typeof id === 'string' ? id : undefined;
  }
}

// ---------------------------------------------------------------------------
// Schema errors, in words

interface SchemaIssue {
  path: PathSegment[];
  message: string;
  hint?: string;
  atKey?: boolean;
}

function pointerToPath(pointer: string, raw: unknown): PathSegment[] {
  if (pointer === '') return [];
  let value = raw;
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => {
      const segment: PathSegment = Array.isArray(value) && /^\d+$/.test(s) ? Number(s) : s;
      value = value === null || typeof value !== 'object' ? undefined : (value as Record<string, unknown>)[s];
      return segment;
    });
}

function valueAt(raw: unknown, p: readonly PathSegment[]): unknown {
  let value = raw;
  for (const s of p) value = value === null || typeof value !== 'object' ? undefined : (value as Record<string, unknown>)[s as string];
  return value;
}

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`);

/** What a field is called in messages: `inputs.tick` of a node, or the top-level key. */
function fieldName(p: readonly PathSegment[]): string {
  const rest = p[0] === 'nodes' && typeof p[1] === 'number' ? p.slice(2) : p;
  return rest.length === 0 ? (p.length === 0 ? 'the dataflow' : 'the node') : '`' + rest.join('.') + '`';
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  // Close enough to be a typo: a third of the word may be wrong, never all of it.
  const limit = Math.min(Math.max(1, Math.floor(word.length / 3)), word.length - 1);
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

const NODE_FIELDS = Object.keys(schema.definitions.node.properties);
const TOP_FIELDS = Object.keys(schema.properties);
const INPUT_FIELDS = Object.keys(schema.definitions.input.oneOf[1].properties!);
const OPERATOR_FIELDS = Object.keys(schema.definitions.operator.properties);

/** A field written where it does not belong, when it belongs somewhere else: where it goes. */
function misplaced(key: string, level: 'node' | 'input' | 'top'): string | undefined {
  if (level !== 'input' && key !== 'source' && INPUT_FIELDS.includes(key)) {
    return `\`${key}\` is an input field: write it in the long form of an input, \`inputs: { <id>: { source: <node>/<output>, ${key}: … } }\``;
  }
  if (level !== 'top' && TOP_FIELDS.includes(key)) return `\`${key}\` is a top-level field of the dataflow, beside \`nodes:\``;
  if (level !== 'node' && NODE_FIELDS.includes(key)) return `\`${key}\` is a node field: write it in a node's entry under \`nodes:\``;
  return undefined;
}

function schemaIssues(errors: readonly ErrorObject[], raw: unknown): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  const seen = new Set<string>();
  const add = (issue: SchemaIssue) => {
    const key = issue.path.join('/') + '\0' + issue.message;
    if (!seen.has(key)) (seen.add(key), out.push(issue));
  };
  // A oneOf failure also reports every branch's errors; for inputs and args we
  // explain the whole value once instead, unless it is a long-form input (then
  // the object branch's own errors are the useful ones).
  const explained = new Set<string>();
  for (const e of errors) {
    const p = pointerToPath(e.instancePath, raw);
    const value = valueAt(raw, p);
    if (e.keyword !== 'oneOf') continue;
    const isInput = p.length >= 4 && p[p.length - 2] === 'inputs';
    const isPython = p[p.length - 1] === 'python';
    if ((isInput || isPython) && value !== null && typeof value === 'object' && !Array.isArray(value)) continue;
    explained.add(e.instancePath);
    if (isInput) {
      add({ path: p, message: `input \`${p[p.length - 1]}\` must be \`<node>/<output>\`, a timer, or a mapping with \`source\` (and optionally \`queue_size\`), not ${describe(value)}` });
    } else if (isPython) {
      add({ path: p, message: `\`python\` must be the operator's file, or a mapping with \`source\`, not ${describe(value)}` });
    } else if (p[p.length - 1] === 'args') {
      add({ path: p, message: `\`args\` must be a string or a list of strings, not ${describe(value)}` });
    } else add({ path: p, message: `${fieldName(p)} has an invalid value (${describe(value)})` });
  }
  const longFormInputs = new Set(
    errors
      .filter((e) => e.keyword === 'oneOf' && !explained.has(e.instancePath))
      .map((e) => e.instancePath),
  );
  for (const e of errors) {
    if (e.keyword === 'oneOf') continue;
    // The string branch's complaint about a long-form input says nothing useful.
    if (longFormInputs.has(e.instancePath) && (e.keyword === 'type' || e.keyword === 'minLength')) continue;
    if ([...explained].some((x) => e.instancePath === x || e.instancePath.startsWith(x + '/'))) continue;
    const p = pointerToPath(e.instancePath, raw);
    const value = valueAt(raw, p);
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String(params.additionalProperty);
        const inNode = p.length === 2 && p[0] === 'nodes';
        const inInput = p.length >= 4 && p[p.length - 2] === 'inputs';
        const inOperator = (p.length === 3 && p[2] === 'operator') || (p.length === 4 && p[2] === 'operators');
        const allowed = inNode ? NODE_FIELDS : inInput ? INPUT_FIELDS : inOperator ? OPERATOR_FIELDS : p.length === 0 ? TOP_FIELDS : [];
        const unsupported = UNSUPPORTED_DORA_FIELDS[key];
        const elsewhere = !unsupported && (inNode || inInput || p.length === 0) ? misplaced(key, inNode ? 'node' : inInput ? 'input' : 'top') : undefined;
        const suggestion = closest(key, allowed);
        add({
          path: [...p, key],
          atKey: true,
          message: elsewhere
            ? `\`${key}\` does not belong here`
            : unsupported
              ? `\`${key}\` is a dora field that dora-ts does not support yet`
              : `unknown field \`${key}\``,
          hint: elsewhere ?? unsupported ?? (suggestion ? `did you mean \`${suggestion}\`?` : allowed.length ? `allowed fields: ${allowed.join(', ')}` : undefined),
        });
        break;
      }
      case 'required':
        add({ path: p, message: `${fieldName(p)} is missing the required field \`${String(params.missingProperty)}\`` });
        break;
      case 'type': {
        // `outputs` may also be null (written empty), which needs no mention
        const types = (Array.isArray(params.type) ? (params.type as string[]) : [String(params.type)]).filter((type, _, all) => type !== 'null' || all.length === 1);
        const expected = types.join(' or ');
        const article = /^[aeiou]/.test(expected) ? 'an' : 'a';
        const what = expected === 'object' ? 'a mapping' : expected === 'array' ? 'a list' : `${article} ${expected}`;
        add({ path: p, message: `${fieldName(p)} must be ${what}, not ${describe(value)}` });
        break;
      }
      case 'pattern': {
        if (e.propertyName !== undefined || params.propertyName !== undefined) break; // reported by propertyNames below
        if (e.schemaPath.startsWith('#/definitions/outputId')) {
          add({ path: p, message: `${fieldName(p)} ${JSON.stringify(value)} may contain only letters, digits, '_', '-' and '.', with single '/' between parts` });
        } else if (p[p.length - 1] === 'max_log_size') {
          add({ path: p, message: `\`max_log_size\` ${JSON.stringify(value)} is not a size`, hint: 'write bytes, or a number with K, M or G (powers of 1024), e.g. "50MB"' });
        } else add({ path: p, message: `${fieldName(p)} ${JSON.stringify(value)} may contain only letters, digits, '_', '-' and '.'` });
        break;
      }
      case 'propertyNames': {
        const name = String(params.propertyName);
        add({ path: [...p, name], atKey: true, message: `${fieldName([...p, name])}: the id ${JSON.stringify(name)} may contain only letters, digits, '_', '-' and '.'` });
        break;
      }
      case 'minimum':
        add({ path: p, message: `${fieldName(p)} must be at least ${String(params.limit)}, not ${JSON.stringify(value)}` });
        break;
      case 'exclusiveMinimum':
        add({ path: p, message: `${fieldName(p)} must be greater than ${String(params.limit)}, not ${JSON.stringify(value)}` });
        break;
      case 'enum':
        add({ path: p, message: `${fieldName(p)} must be one of ${(params.allowedValues as unknown[]).map((v) => `\`${String(v)}\``).join(', ')}, not ${JSON.stringify(value)}` });
        break;
      case 'minLength':
        add({ path: p, message: `${fieldName(p)} must not be empty` });
        break;
      case 'uniqueItems': {
        const index = Math.max(Number(params.i), Number(params.j)); // the later of the two
        add({ path: [...p, index], message: `${fieldName(p)} lists ${JSON.stringify((value as unknown[])[index])} twice` });
        break;
      }
      case 'minItems':
        add({ path: p, message: `${fieldName(p)} must not be empty` });
        break;
      default:
        add({ path: p, message: `${fieldName(p)} ${e.message ?? 'is invalid'}` });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Meaning: references, timers, duplicates; and resolution

function parseTimer(name: string): TimerSource | string {
  const parts = name.split('/');
  if (parts.length !== 4 || parts[0] !== 'dora' || parts[1] !== 'timer') return `unknown built-in source \`${name}\``;
  const [, , unit, amount] = parts;
  if (unit === 'hz') {
    const hz = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(amount) ? Number(amount) : NaN;
    if (!(hz > 0) || !Number.isFinite(hz)) return `timer \`${name}\`: the frequency must be a positive number, not \`${amount}\``;
    if (hz > 1e9) return `timer \`${name}\`: at most 1e9 Hz`;
    return { kind: 'timer', name, intervalNs: BigInt(Math.max(1, Math.round(1e9 / hz))) };
  }
  const scale = TIMER_UNITS_NS[unit];
  if (scale === undefined) {
    const suggestion = closest(unit, [...Object.keys(TIMER_UNITS_NS), 'hz']);
    return `timer \`${name}\`: unknown unit \`${unit}\`${suggestion ? ` (did you mean \`${suggestion}\`?)` : ''}`;
  }
  if (!/^[0-9]+$/.test(amount) || BigInt(amount) === 0n) return `timer \`${name}\`: the interval must be a positive integer, not \`${amount}\``;
  return { kind: 'timer', name, intervalNs: BigInt(amount) * scale };
}

/** A duration in seconds as written in the YAML, in whole milliseconds (at least 1 when positive). */
function seconds(value: number): number {
  return value > 0 ? Math.max(1, Math.round(value * 1000)) : 0;
}

/** Splits a command line like a POSIX shell would (quotes and backslashes; no expansion). */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else current += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) current += text[++i];
      else current += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      current += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) args.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote) throw new DoraError(`unterminated ${quote} quote`, { code: ErrorCode.INVALID_ARGUMENT });
  if (inWord) args.push(current);
  return args;
}

const SCRIPT_EXTENSIONS = /\.(m?js|cjs|m?ts|cts|py)$/;

function resolve(raw: RawDataflow, source: Source, workingDir: string, options: DescriptorOptions): ResolvedDataflow {
  const report = source.report.bind(source);
  if (raw.nodes.length === 0) report(['nodes'], 'the dataflow has no nodes', { hint: 'add at least one entry under `nodes:`' });

  const firstIndex = new Map<string, number>();
  raw.nodes.forEach((node, i) => {
    if (node.id === RESERVED_ID) report(['nodes', i, 'id'], `the node id \`${RESERVED_ID}\` is reserved for built-in sources such as timers`);
    const first = firstIndex.get(node.id);
    if (first !== undefined) {
      const at = source.position(['nodes', first, 'id']);
      report(['nodes', i, 'id'], `duplicate node id \`${node.id}\``, { hint: at ? `first used on line ${at.line}` : undefined });
    } else firstIndex.set(node.id, i);
    const outputs = node.outputs ?? [];
    outputs.forEach((output, j) => {
      if (outputs.indexOf(output) !== j) report(['nodes', i, 'outputs', j], `output \`${output}\` is declared twice`);
    });
  });

  const byId = new Map([...firstIndex].map(([id, i]) => [id, raw.nodes[i]]));
  const suggest = suggester();
  const nodeIds = [...byId.keys()];
  const timers = new Map<string, TimerSource>();
  /** The inputs mapping at `at` (a node's, or an operator's with its ids prefixed), references checked. */
  const resolveInputs = (specs: Record<string, string | RawInputLong> | undefined, at: readonly PathSegment[], idPrefix: string): ResolvedInput[] => {
    const inputs: ResolvedInput[] = [];
    for (const [id, spec] of Object.entries(specs ?? {})) {
      const sourceText = typeof spec === 'string' ? spec : spec.source;
      const queuePolicy = typeof spec === 'string' ? undefined : spec.queue_policy;
      // dora's backpressure holds up to ten times the queue before it drops (README, "queue_policy").
      const queueSize = (typeof spec === 'string' ? DEFAULT_QUEUE_SIZE : (spec.queue_size ?? DEFAULT_QUEUE_SIZE)) * (queuePolicy === 'backpressure' ? 10 : 1);
      const timeoutMs = typeof spec === 'string' || spec.input_timeout === undefined ? undefined : seconds(spec.input_timeout);
      const where: PathSegment[] = typeof spec === 'string' ? [...at, id] : [...at, id, 'source'];
      const receiver = typeof at[1] === 'number' ? raw.nodes[at[1]].id : ''; // a node never receives its own log records
      const resolved = resolveSource(sourceText, where, byId, source, suggest, nodeIds, receiver);
      if (!resolved) continue;
      if (resolved.kind === 'timer') timers.set(resolved.name, resolved);
      inputs.push({ id: idPrefix + id, source: resolved, queueSize, ...(queuePolicy ? { queuePolicy } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    }
    return inputs;
  };
  const operatorContext: OperatorContext = {
    workingDir,
    checkPaths: options.checkPaths ?? true,
    report: (at, message, extra) => report(at, message, extra),
    line: (at) => source.position(at)?.line,
    inputs: (specs, at, idPrefix) => resolveInputs(specs as Record<string, string | RawInputLong> | undefined, at, idPrefix),
  };
  const nodes: ResolvedNode[] = raw.nodes.map((node, i) => {
    const operators = resolveOperators(node, i, operatorContext);
    const { inputs, outputs } = operators ? operatorPorts(operators) : { inputs: resolveInputs(node.inputs, ['nodes', i, 'inputs'], ''), outputs: node.outputs ?? [] };
    let args: string[] = [];
    if (typeof node.args === 'string') {
      try {
        args = splitArgs(node.args);
      } catch (err) {
        report(['nodes', i, 'args'], `\`args\`: ${(err as Error).message}`);
      }
    } else if (node.args) args = node.args.map(String);
    // What is handed to a process must be representable there: no NUL in any string, no `=` in a variable's name.
    const nul = (value: string) => value.includes('\0');
    if (node.path !== undefined && nul(node.path)) report(['nodes', i, 'path'], '`path` contains a NUL character, which no program path can hold');
    if (typeof node.args === 'string' ? nul(node.args) : args.some(nul)) {
      const j = typeof node.args === 'string' ? -1 : args.findIndex(nul);
      report(j < 0 ? ['nodes', i, 'args'] : ['nodes', i, 'args', j], '`args` contains a NUL character, which cannot be passed to a process');
    }
    const env = Object.fromEntries(Object.entries(node.env ?? {}).map(([k, v]) => [k, String(v)]));
    for (const [key, value] of Object.entries(env)) {
      if (key === '' || key.includes('=') || nul(key)) {
        report(['nodes', i, 'env', key], `environment variable name ${JSON.stringify(key)} is not valid: it must be non-empty, without \`=\` or NUL`, { atKey: true });
      } else if (nul(value)) report(['nodes', i, 'env', key], `environment variable ${key} contains a NUL character, which cannot be passed to a process`);
    }
    const dynamic = node.path === DYNAMIC_PATH;
    if (dynamic) checkDynamic(node, i, report);
    const deploy = resolveDeploy(raw, i, source);
    const nodeDir = deploy?.workingDir !== undefined ? path.resolve(workingDir, deploy.workingDir) : workingDir;
    // a path under another machine's working_dir is that machine's to find
    const pathOptions = deploy?.workingDir !== undefined ? { ...options, checkPaths: false } : options;
    const resolvedPath = dynamic ? DYNAMIC_PATH : operators || node.path === undefined ? '' : resolvePath(node.path, node.build, i, nodeDir, source, pathOptions);
    const { logging, issues } = resolveLogging(node);
    for (const issue of issues) report(['nodes', i, ...issue.path], issue.message, { hint: issue.hint });
    const badCpu = node.cpu_affinity ? checkAffinity(node.cpu_affinity) : undefined;
    if (badCpu) report(['nodes', i, 'cpu_affinity', badCpu.index], badCpu.message, { hint: badCpu.hint });
    return {
      id: node.id,
      path: node.path ?? '',
      dynamic,
      resolvedPath,
      args,
      env,
      ...(node.build !== undefined ? { build: node.build } : {}),
      inputs,
      outputs,
      outputTypes: {},
      ...(operators ? { operators } : {}),
      restart: {
        policy: node.restart_policy ?? 'never',
        maxRestarts: node.max_restarts ?? 0,
        delayMs: seconds(node.restart_delay ?? 0),
        ...(node.max_restart_delay !== undefined ? { maxDelayMs: seconds(node.max_restart_delay) } : {}),
        ...(node.restart_window !== undefined ? { windowMs: seconds(node.restart_window) } : {}),
      },
      ...(node.health_check_timeout !== undefined ? { healthCheckTimeoutMs: seconds(node.health_check_timeout) } : {}),
      ...(node.cpu_affinity ? { cpuAffinity: node.cpu_affinity } : {}),
      logging,
      ...(deploy ? { deploy } : {}),
      raw: node as unknown as Record<string, unknown>,
    };
  });

  const declared = checkPortTypes(raw, nodes, source, options.strictTypes === true || raw.strict_types === true);
  const typed = nodes.map((n) => ({ ...n, outputTypes: Object.fromEntries(declared.get(n.id)?.outputs ?? []) }));
  return {
    warnings: byPosition(source.warnings),
    file: source.file,
    workingDir,
    nodes: typed,
    timers: [...timers.values()],
    sharedMemoryThreshold: raw.shared_memory_threshold ?? DEFAULT_SHARED_MEMORY_THRESHOLD,
    healthCheckIntervalMs: seconds(raw.health_check_interval ?? DEFAULT_HEALTH_CHECK_INTERVAL_S),
    exitWhenNodesFinish: raw.exit_when_nodes_finish ?? false,
    raw: raw as unknown as Record<string, unknown>,
  };
}

/**
 * A node's placement: its own `deploy` (or `_unstable_deploy`), else the dataflow's, with
 * where it is written (placement.ts reports a machine that is not connected there).
 */
function resolveDeploy(raw: RawDataflow, i: number, source: Source): ResolvedDeploy | undefined {
  const node = raw.nodes[i];
  const candidates: [RawDeploy | undefined, PathSegment[]][] = [
    [node.deploy, ['nodes', i, 'deploy']],
    [node._unstable_deploy, ['nodes', i, '_unstable_deploy']],
    [raw.deploy, ['deploy']],
    [raw._unstable_deploy, ['_unstable_deploy']],
  ];
  if (node.deploy && node._unstable_deploy) source.report(['nodes', i, '_unstable_deploy'], '`_unstable_deploy` and `deploy` both place this node: keep one', { atKey: true });
  const found = candidates.find(([d]) => d !== undefined);
  if (!found) return undefined;
  const [d, at] = found;
  const own = at[0] === 'nodes';
  // fields the node does not set come from the dataflow's default
  const fallback = own ? (raw.deploy ?? raw._unstable_deploy) : undefined;
  const fallbackAt: PathSegment[] = raw.deploy ? ['deploy'] : ['_unstable_deploy'];
  const machine = d!.machine ?? fallback?.machine;
  const labels = d!.labels ?? fallback?.labels;
  const workingDir = d!.working_dir ?? fallback?.working_dir;
  const where = (field: string, value: unknown, mine: unknown) => (value === undefined ? undefined : source.position(mine !== undefined ? [...at, field] : [...fallbackAt, field]));
  return {
    ...(machine !== undefined ? { machine, machineAt: where('machine', machine, d!.machine) } : {}),
    ...(labels !== undefined ? { labels: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])), labelsAt: where('labels', labels, d!.labels) } : {}),
    ...(workingDir !== undefined ? { workingDir } : {}),
  };
}

/** `path: dynamic` marks a node the user starts by hand (dora's keyword). */
const DYNAMIC_PATH = 'dynamic';

/**
 * Fields that describe how the daemon starts, restarts or watches a process: a dynamic
 * node's process is the user's, so they cannot apply to it.
 */
const NOT_FOR_DYNAMIC: Partial<Record<keyof RawNode, string>> = {
  args: 'pass arguments on the command line that starts it',
  env: 'set the variables in the environment that starts it',
  restart_policy: 'the daemon does not start it, so it cannot restart it; start it again by hand (it may leave and join again)',
  max_restarts: 'the daemon does not restart dynamic nodes',
  restart_delay: 'the daemon does not restart dynamic nodes',
  max_restart_delay: 'the daemon does not restart dynamic nodes',
  restart_window: 'the daemon does not restart dynamic nodes',
  health_check_timeout: 'the daemon does not kill processes it did not start',
};

function checkDynamic(node: RawNode, i: number, report: Source['report']): void {
  for (const [field, why] of Object.entries(NOT_FOR_DYNAMIC)) {
    if (node[field as keyof RawNode] !== undefined) report(['nodes', i, field], `\`${field}\` does not apply to a dynamic node (\`path: ${DYNAMIC_PATH}\`): ${why}`, { atKey: true });
  }
}

/**
 * Typed ports: every annotated port exists and its URN resolves (errors); connected ports
 * with incompatible types are warnings, or errors when strict.
 */
function checkPortTypes(
  raw: RawDataflow,
  nodes: readonly ResolvedNode[],
  source: Source,
  strict: boolean,
): Map<string, { inputs: Map<string, PortType>; outputs: Map<string, PortType> }> {
  const suggest = suggester();
  const declared = new Map<string, { inputs: Map<string, PortType>; outputs: Map<string, PortType> }>();
  raw.nodes.forEach((node, i) => {
    const resolved = nodes[i];
    const inputs = new Map<string, PortType>();
    const outputs = new Map<string, PortType>();
    const annotate = (field: 'input_types' | 'output_types', ports: readonly string[], into: Map<string, PortType>) => {
      for (const [port, urn] of Object.entries(node[field] ?? {})) {
        if (!ports.includes(port)) {
          const kind = field === 'input_types' ? 'input' : 'output';
          source.report(['nodes', i, field, port], `\`${field}\` names \`${port}\`, which is not an ${kind} of node \`${node.id}\``, {
            atKey: true,
            hint: ports.length ? `its ${kind}s: ${listed(ports)}` : `it has no ${kind}s`,
          });
          continue;
        }
        const type = parsePortType(urn, suggest);
        if (typeof type === 'string') source.report(['nodes', i, field, port], type);
        else into.set(port, type);
      }
    };
    annotate('input_types', resolved.inputs.map((x) => x.id), inputs);
    annotate('output_types', resolved.outputs, outputs);
    for (const port of Object.keys(node.output_metadata ?? {})) {
      if (!resolved.outputs.includes(port)) source.report(['nodes', i, 'output_metadata', port], `\`output_metadata\` names \`${port}\`, which is not an output of node \`${node.id}\``, { atKey: true });
    }
    declared.set(node.id, { inputs, outputs });
  });
  nodes.forEach((node, i) => {
    for (const input of node.inputs) {
      const to = declared.get(node.id)?.inputs.get(input.id);
      const from =
        input.source.kind === 'timer' ? TIMER_TYPE : input.source.kind === 'node' ? declared.get(input.source.node)?.outputs.get(input.source.output) : undefined;
      if (!to || !from || compatible(from, to)) continue;
      const origin = input.source.kind === 'node' ? `\`${input.source.node}/${input.source.output}\` is declared` : `timer \`${input.source.name}\` sends`;
      source.report(['nodes', i, 'input_types', input.id], `input \`${input.id}\` of node \`${node.id}\` expects \`${formatPortType(to)}\`, but ${origin} \`${formatPortType(from)}\``, {
        warning: !strict,
        hint: strict ? undefined : 'an error with `dora check --strict-types` or `strict_types: true`',
      });
    }
  });
  return declared;
}

/**
 * Did-you-mean suggestions for the first few unknown references only: each compares a word
 * with every candidate, and a file with thousands of dangling inputs made that quadratic.
 */
function suggester(budget = 50): (word: string, candidates: readonly string[]) => string | undefined {
  return (word, candidates) => (budget-- > 0 ? closest(word, candidates) : undefined);
}

/** Names for a hint: all of them when there are few. */
const listed = (names: readonly string[]) => (names.length <= 20 ? names.join(', ') : `${names.slice(0, 20).join(', ')} and ${names.length - 20} more`);

function resolveSource(
  text: string,
  at: PathSegment[],
  byId: Map<string, RawNode>,
  source: Source,
  suggest: (word: string, candidates: readonly string[]) => string | undefined,
  nodeIds: readonly string[] = [...byId.keys()],
  receiver = '',
): InputSource | undefined {
  if (isLogsSource(text)) {
    const logs = parseLogsSource(text, receiver, nodeIds, suggest);
    if ('message' in logs) {
      source.report(at, logs.message, { hint: logs.hint });
      return undefined;
    }
    return logs;
  }
  if (text.startsWith(`${RESERVED_ID}/`)) {
    const timer = parseTimer(text);
    if (typeof timer === 'string') {
      source.report(at, timer, { hint: timer.startsWith('unknown built-in') ? BUILTIN_HELP() : TIMER_HELP });
      return undefined;
    }
    return timer;
  }
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) {
    source.report(at, `input source \`${text}\` must be \`<node>/<output>\` or a timer`, { hint: TIMER_HELP });
    return undefined;
  }
  const nodeId = text.slice(0, slash);
  const output = text.slice(slash + 1);
  const sender = byId.get(nodeId);
  if (!sender) {
    const suggestion = suggest(nodeId, nodeIds);
    source.report(at, `input source \`${text}\` refers to node \`${nodeId}\`, which does not exist`, {
      hint: suggestion ? `did you mean \`${suggestion}/${output}\`?` : `nodes: ${listed(nodeIds)}`,
    });
    return undefined;
  }
  // what other nodes write after `<node>/`, to the sender's output id (they differ for operators)
  const addressable = addressableOutputs(sender);
  const resolved = addressable.get(output);
  if (resolved === undefined) {
    const outputs = [...addressable.keys()];
    const suggestion = suggest(output, outputs);
    source.report(at, `input source \`${text}\`: node \`${nodeId}\` does not declare an output \`${output}\``, {
      hint: suggestion
        ? `did you mean \`${nodeId}/${suggestion}\`?`
        : (addressingHint(sender) ?? `add \`${output}\` to the outputs of \`${nodeId}\``) + (outputs.length ? ` (declared: ${listed(outputs)})` : ''),
    });
    return undefined;
  }
  return { kind: 'node', node: nodeId, output: resolved };
}

function resolvePath(p: string, build: string | undefined, i: number, workingDir: string, source: Source, options: DescriptorOptions): string {
  const looksLikeFile = p.includes('/') || SCRIPT_EXTENSIONS.test(p);
  if (!looksLikeFile) return p; // a command looked up on PATH at spawn time, like `python3`
  const absolute = path.resolve(workingDir, p);
  if ((options.checkPaths ?? true) && build === undefined && !fs.existsSync(absolute)) {
    source.report(['nodes', i, 'path'], `\`path\`: ${absolute} does not exist`, { hint: 'paths are relative to the dataflow file' });
  }
  return absolute;
}
