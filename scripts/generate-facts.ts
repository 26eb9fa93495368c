/**
 * Writes every language's copy of the shared protocol facts from their one
 * description, protocol/facts.json (its schema: protocol/facts.schema.json):
 *
 *   protocol/facts.ts                  the TypeScript module (protocol/, node-api/, coordinator/)
 *   bindings/c/src/facts.h             the C library's internal constants
 *   bindings/c/include/*.h, exports    the public C header (error codes, version, enums), via generate-header.ts
 *   bindings/python/dora/_facts.py     the Python constants and the DoraError hierarchy
 *   docs/protocol.md                   the tables between <!-- facts:NAME --> and <!-- /facts:NAME -->
 *   package.json, package-lock.json, bindings/c/Makefile, bindings/python/pyproject.toml
 *                                      the project version
 *
 *   tsx scripts/generate-facts.ts          rewrite what is stale (npm run facts)
 *   tsx scripts/generate-facts.ts --check  exit 1, naming each stale file, if any is
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { renderAll as renderHeaders } from '../bindings/c/generate-header';

const ROOT = path.resolve(__dirname, '..');
export const FACTS_FILE = path.join(ROOT, 'protocol/facts.json');
export const SCHEMA_FILE = path.join(ROOT, 'protocol/facts.schema.json');

type Facts = typeof import('../protocol/facts.json');
type ErrorEntry = Facts['errors'][number];

export function loadFacts(): Facts {
  const f = JSON.parse(fs.readFileSync(FACTS_FILE, 'utf8')) as Facts;
  const validate = new Ajv2020({ allErrors: true }).compile(JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8')));
  if (!validate(f)) {
    throw new Error(`protocol/facts.json does not match protocol/facts.schema.json:\n${(validate.errors ?? []).map((e) => `  ${e.instancePath} ${e.message}`).join('\n')}`);
  }
  // C indexes its error names by code, and codes are never reused: 0, 1, 2, … in order.
  f.errors.forEach((e, i) => {
    if (e.code !== i) throw new Error(`protocol/facts.json: error ${e.name} has code ${e.code}, expected ${i} (codes are consecutive from 0)`);
  });
  return f;
}

const BANNER = 'GENERATED from protocol/facts.json by scripts/generate-facts.ts (npm run facts). Do not edit.';

/** `LIST_BOOL` → `ListBool`. */
const pascal = (name: string) =>
  name
    .toLowerCase()
    .split('_')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
/** `sharedMemoryThreshold` → `SHARED_MEMORY_THRESHOLD`. */
const upperSnake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
/** `outputs-closed` → `OUTPUTS_CLOSED`. */
const tagConstant = (t: string) => t.replace(/-/g, '_').toUpperCase();
const q = (s: string) => JSON.stringify(s);

/** Python's class for an error code: `UNDECLARED_OUTPUT` → `UndeclaredOutputError`, `Dora…` where a built-in has the name. */
export function pythonErrorClass(e: ErrorEntry): string {
  const name = `${pascal(e.name)}Error`;
  return ['TimeoutError', 'SystemError', 'MemoryError', 'ValueError', 'RuntimeError', 'OSError'].includes(name) ? `Dora${name}` : name;
}

// ---------------------------------------------------------------------------
// TypeScript

export function renderTypeScript(f: Facts): string {
  const out: string[] = [`/* ${BANNER} */`, '', '/* eslint-disable */', ''];
  const doc = (text: string, indent = '') => [`${indent}/** ${text} */`];
  out.push(...doc('The project version (package.json, the C library, the Python package).'), `export const VERSION = ${q(f.version)};`);
  out.push(...doc('Version of the node ⇄ daemon protocol, in every binary preamble, `register` and DORA_NODE_CONFIG; a peer with another version is refused.'));
  out.push(`export const PROTOCOL_VERSION = ${f.protocol.version};`);
  out.push(...doc(`The first bytes of every binary message: "${f.protocol.magic}".`));
  out.push(`export const MAGIC: readonly number[] = [${[...Buffer.from(f.protocol.magic)].map((b) => `0x${b.toString(16)}`).join(', ')}];`, '');
  for (const [name, limit] of Object.entries(f.limits)) out.push(...doc(limit.doc), `export const ${upperSnake(name)} = ${limit.value};`);
  out.push('', ...doc(f.segments.doc), `export const SEGMENT_PREFIX = ${q(f.segments.prefix)};`);
  out.push(...doc('What a segment name may hold: the prefix, then only these characters.'));
  out.push(`export const SEGMENT_NAME = /^${f.segments.prefix}[${f.segments.nameCharacters}]*$/;`);
  out.push(`export const SEGMENT_RANDOM_HEX_DIGITS = ${f.segments.randomHexDigits};`);
  out.push('', ...doc('Topic prefix of the daemon\'s control events to a node: `dora/events/<node>\\0`.'), `export const EVENTS_TOPIC_PREFIX = ${q(f.topics.events)};`);
  out.push(...doc('Prefix of the built-in timers\' names and topics.'), `export const TIMER_PREFIX = ${q(f.topics.timers)};`);
  out.push(...doc('Environment variable that carries the JSON-encoded NodeConfig.'), `export const NODE_CONFIG_ENV = ${q(f.nodeConfigEnv)};`, '');

  const tsEnum = (name: string, docText: string, values: readonly { name: string; value: number; doc?: string }[]) => {
    out.push(...doc(docText), `export enum ${name} {`);
    for (const v of values) out.push(...(v.doc ? doc(v.doc, '  ') : []), `  ${pascal(v.name)} = ${v.value},`);
    out.push('}', '');
  };
  tsEnum('MessageKind', 'Kinds of binary messages (the byte after the preamble).', f.messageKinds);
  tsEnum('PayloadLocation', 'Where a data message\'s payload is.', f.payloadLocations);
  tsEnum(
    'ParameterTag',
    'Wire tags of parameter values.',
    f.parameterTags.map((t) => ({ name: t.name, value: t.value, doc: `${t.type}: ${t.encoding}` })),
  );

  const list = (name: string, type: string, docText: string, values: readonly string[]) => {
    out.push(...doc(docText), `export const ${name} = [${values.map(q).join(', ')}] as const;`, `/** One of ${name}. */`, `export type ${type} = (typeof ${name})[number];`, '');
  };
  list('EVENT_TYPES', 'EventTypeName', 'Names of the event types, indexed by their number (enum DoraEventType).', f.eventTypes.map((e) => e.name));
  list('STOP_CAUSES', 'StopCause', 'Why a node is told to stop (dora\'s causes).', f.stopCauses.map((c) => c.name));
  list('LOG_LEVELS', 'LogLevel', 'Log levels, most severe first.', f.logLevels);
  list('NODE_REQUEST_TAGS', 'NodeRequestTag', 'Tags (`t`) of node → daemon requests.', f.nodeRequests.map((r) => r.t));
  list('REGISTER_REPLY_TAGS', 'RegisterReplyTag', 'Tags (`t`) of the daemon\'s answers to `register`.', f.registerReplies.map((r) => r.t));
  list('DAEMON_EVENT_TAGS', 'DaemonEventTag', 'Tags (`t`) of daemon → node events.', f.daemonEvents.map((r) => r.t));

  out.push(...doc('Buffers and children of each kind of Arrow layout (children -1: one per field).'));
  out.push('export const ARROW_LAYOUTS = {');
  for (const l of f.arrowLayouts) out.push(`  ${l.name}: { buffers: ${l.buffers}, children: ${/^\d+$/.test(l.children) ? l.children : -1} },`);
  out.push('} as const;', 'export type ArrowLayoutKind = keyof typeof ARROW_LAYOUTS;', '');
  out.push(...doc('The Arrow formats carried: C Data Interface format string (a prefix for parameterized ones), type, layout, bytes per value (0: not fixed width, -1: the format\'s N).'));
  out.push('export const ARROW_FORMATS: readonly { readonly format: string; readonly prefix?: string; readonly type: string; readonly layout: ArrowLayoutKind; readonly width: number }[] = [');
  for (const a of f.arrowFormats) {
    const prefix = 'prefix' in a ? `, prefix: ${q(a.prefix as string)}` : '';
    out.push(`  { format: ${q(a.format)}${prefix}, type: ${q(a.type)}, layout: ${q(a.layout)}, width: ${typeof a.width === 'number' ? a.width : -1} },`);
  }
  out.push('];', '');

  out.push(...doc('Where an input\'s messages come from and which topic to subscribe to.'), 'export interface InputWiring {');
  for (const field of f.nodeConfig.inputFields) out.push(...doc(field.doc, '  '), `  readonly ${field.name}: ${field.type};`);
  out.push('}', '');
  out.push(...doc(`What the daemon tells a node when it spawns it, as JSON in ${f.nodeConfigEnv}.`), 'export interface NodeConfig {');
  for (const field of f.nodeConfig.fields) out.push(...doc(field.doc, '  '), `  readonly ${field.name}: ${field.type};`);
  out.push('}', '');
  list('NODE_CONFIG_FIELDS', 'NodeConfigField', 'The fields of NodeConfig, in order.', f.nodeConfig.fields.map((x) => x.name));

  const r = f.eventRecord;
  out.push(...doc(`${r.doc} Field offsets:`), 'export const RECORD = {');
  for (const field of r.fields) out.push(...doc(`${field.type}: ${field.doc}`, '  '), `  ${field.name}: ${field.offset},`);
  out.push(...doc('Where the variable part starts.', '  '), `  body: ${r.body},`, '} as const;');
  out.push(...doc('Event record flags.'), 'export const RECORD_FLAGS = {');
  for (const flag of r.flags) out.push(...doc(flag.doc, '  '), `  ${flag.name}: ${flag.value},`);
  out.push('} as const;', ...doc('The input index of a record that belongs to no input.'), `export const RECORD_NO_INPUT = ${r.noInput};`, '');

  out.push(...doc('The error catalogue: stable numbers, shared by every language (C: DORA_E_*).'), 'export enum ErrorCode {');
  for (const e of f.errors) out.push(...doc(e.doc, '  '), `  ${e.name} = ${e.code},`);
  out.push('}', '');
  out.push(...doc('Each error code\'s one-line meaning.'), 'export const ERROR_DOCS: Readonly<Record<number, string>> = {');
  for (const e of f.errors) out.push(`  ${e.code}: ${q(e.doc)},`);
  out.push('};', '');
  out.push(...doc('The name of an error code (`UNDECLARED_OUTPUT`), or `UNKNOWN` for a number outside the catalogue.'));
  out.push('export function errorName(code: number): string {', "  return ErrorCode[code] ?? 'UNKNOWN';", '}', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// C (internal header of the library; the public header comes from generate-header.ts)

export function renderC(f: Facts): string {
  const out: string[] = ['/*', ` * ${BANNER}`, ' *', ' * The protocol facts the C library shares with every other implementation. Private to the', ' * library (included by internal.h); the public error codes, enums and version are in', ' * dora_node_api.h.', ' */'];
  out.push('#ifndef DORA_FACTS_H', '#define DORA_FACTS_H', '');
  out.push(`#define DORA_PROTOCOL_VERSION ${f.protocol.version}`, `#define DORA_MAGIC ${q(f.protocol.magic)}`, `#define DORA_MAGIC_LEN ${f.protocol.magic.length}`);
  out.push(`#define DORA_VERSION ${q(f.version)}`, '');
  for (const [name, limit] of Object.entries(f.limits)) out.push(`/* ${limit.doc} */`, `#define DORA_${upperSnake(name)} ${limit.value}`);
  out.push('', `/* ${f.segments.doc} */`, `#define DORA_SEGMENT_PREFIX ${q(f.segments.prefix)}`, `#define DORA_SEGMENT_RANDOM_HEX_DIGITS ${f.segments.randomHexDigits}`);
  out.push(`#define DORA_EVENTS_TOPIC_PREFIX ${q(f.topics.events)}`, `#define DORA_NODE_CONFIG_ENV ${q(f.nodeConfigEnv)}`, '');
  out.push(`enum { ${f.messageKinds.map((k) => `DORA_KIND_${k.name} = ${k.value}`).join(', ')} };`);
  out.push(`enum { ${f.payloadLocations.map((k) => `DORA_LOC_${k.name} = ${k.value}`).join(', ')} };`, '');
  out.push('/* Event type names, indexed by enum DoraEventType. */', `#define DORA_EVENT_TYPE_NAMES {${f.eventTypes.map((e) => q(e.name)).join(', ')}}`);
  for (const c of f.stopCauses) out.push(`#define DORA_STOP_${c.name} ${q(c.name)}`);
  out.push(`#define DORA_LOG_LEVELS {${f.logLevels.map(q).join(', ')}}`, `#define DORA_LOG_LEVEL_COUNT ${f.logLevels.length}`);
  out.push(`#define DORA_LOG_LEVELS_TEXT ${q(f.logLevels.slice(0, -1).join(', ') + ' or ' + f.logLevels[f.logLevels.length - 1])}`, '');
  out.push('/* Control-message tags (`t`). */');
  for (const t of [...f.nodeRequests, ...f.registerReplies, ...f.daemonEvents]) out.push(`#define DORA_T_${tagConstant(t.t)} ${q(t.t)}`);
  out.push('', `/* ${f.nodeConfigEnv} fields. */`);
  for (const field of f.nodeConfig.fields) out.push(`#define DORA_CFG_${upperSnake(field.name)} ${q(field.name)}`);
  for (const field of f.nodeConfig.inputFields) out.push(`#define DORA_CFG_INPUT_${upperSnake(field.name)} ${q(field.name)}`);
  out.push('', '/* Kinds of Arrow layouts, their buffer counts, and the formats without a parameter: X(format, layout, bytes per value). */');
  out.push(`typedef enum { ${f.arrowLayouts.map((l) => `DORA_AL_${l.name}`).join(', ')} } dora_arrow_layout;`);
  out.push(`#define DORA_ARROW_LAYOUT_BUFFERS {${f.arrowLayouts.map((l) => l.buffers).join(', ')}}`);
  out.push('#define DORA_ARROW_FORMATS(X) \\');
  const plain = f.arrowFormats.filter((a) => !('prefix' in a));
  plain.forEach((a, i) => out.push(`  X(${q(a.format)}, DORA_AL_${a.layout}, ${a.width})${i < plain.length - 1 ? ' \\' : ''}`));
  out.push('/* Parameterized formats: X(prefix, layout); the width is the parameter (w:N, +w:N) or 8 (timestamps). */', '#define DORA_ARROW_PREFIX_FORMATS(X) \\');
  const prefixed = f.arrowFormats.filter((a) => 'prefix' in a);
  prefixed.forEach((a, i) => out.push(`  X(${q((a as { prefix: string }).prefix)}, DORA_AL_${a.layout})${i < prefixed.length - 1 ? ' \\' : ''}`));
  out.push('', '/* The event record (dora_next_event_record): field offsets, flags. */');
  out.push(`enum {\n${f.eventRecord.fields.map((x) => `  DORA_R_${upperSnake(x.name)} = ${x.offset},`).join('\n')}\n  DORA_R_BODY = ${f.eventRecord.body},\n};`);
  out.push(`enum { ${f.eventRecord.flags.map((x) => `DORA_RECORD_${x.name} = ${x.value}`).join(', ')} };`, `#define DORA_RECORD_NO_INPUT ${f.eventRecord.noInput}`, '');
  out.push('/* Error names, indexed by code (enum DoraErrorCode). */', `#define DORA_ERROR_NAMES {${f.errors.map((e) => q(e.name)).join(', ')}}`);
  out.push('', '#endif /* DORA_FACTS_H */', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// Python

export function renderPython(f: Facts): string {
  const py = (v: unknown) => JSON.stringify(v);
  const tuple = (xs: readonly string[]) => `(${xs.map(py).join(', ')}${xs.length === 1 ? ',' : ''})`;
  const out: string[] = ['"""The protocol facts and the error catalogue of dora-ts, for Python.', '', BANNER, '"""', '', 'from __future__ import annotations', ''];
  out.push(`VERSION = ${py(f.version)}`, `PROTOCOL_VERSION = ${f.protocol.version}`, `MAGIC = b${py(f.protocol.magic)}`);
  for (const [name, limit] of Object.entries(f.limits)) out.push(`${upperSnake(name)} = ${limit.value}  # ${limit.doc}`);
  out.push(`SEGMENT_PREFIX = ${py(f.segments.prefix)}`, `EVENTS_TOPIC_PREFIX = ${py(f.topics.events)}`, `NODE_CONFIG_ENV = ${py(f.nodeConfigEnv)}`);
  out.push(`EVENT_TYPES = ${tuple(f.eventTypes.map((e) => e.name))}  # indexed by enum DoraEventType`);
  out.push(`STOP_CAUSES = ${tuple(f.stopCauses.map((c) => c.name))}`, `LOG_LEVELS = ${tuple(f.logLevels)}`);
  out.push(`PARAMETER_TAGS = {${f.parameterTags.map((t) => `${py(t.name)}: ${t.value}`).join(', ')}}`);
  out.push(`NODE_CONFIG_FIELDS = ${tuple(f.nodeConfig.fields.map((x) => x.name))}`);
  out.push(`ERROR_NAMES = {${f.errors.map((e) => `${e.code}: ${py(e.name)}`).join(', ')}}`, '', '');
  out.push('class DoraError(Exception):');
  out.push('    """Base of the errors dora raises: ``code`` is the error\'s number in the catalogue, ``code_name`` its name."""', '');
  out.push('    code: int = 0', '    code_name: str = "OK"', '');
  out.push('    def __init__(self, *args: object, code: int | None = None) -> None:', '        super().__init__(*args)', '        if code is not None:');
  out.push('            self.code = code', '            self.code_name = ERROR_NAMES.get(code, "UNKNOWN")', '');
  for (const e of f.errors.filter((x) => x.code !== 0)) {
    const bases = ['DoraError', ...(('python' in e ? e.python : []) as string[])].join(', ');
    out.push('', `class ${pythonErrorClass(e)}(${bases}):`, `    """${e.name} (${e.code}): ${e.doc}"""`, '', `    code = ${e.code}`, `    code_name = ${py(e.name)}`, '');
  }
  out.push('', `ERRORS: dict[int, type[DoraError]] = {${f.errors.filter((x) => x.code !== 0).map((e) => `${e.code}: ${pythonErrorClass(e)}`).join(', ')}}`, '', '');
  out.push('# Shown (and pickled) as dora.X: the package exports them all.', 'for _cls in (DoraError, *ERRORS.values()):', '    _cls.__module__ = "dora"', '', '');
  out.push('def make_error(code: int, message: str) -> DoraError:');
  out.push('    """The exception for a failure with this code (the native module raises what this returns)."""');
  out.push('    cls = ERRORS.get(code)', '    return cls(message) if cls is not None else DoraError(message, code=code)', '', '');
  out.push(`__all__ = ${tuple(['DoraError', ...f.errors.filter((x) => x.code !== 0).map(pythonErrorClass)])}`, '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// docs/protocol.md tables

const cell = (s: string) => s.replace(/\|/g, '\\|');

export function renderDocTables(f: Facts): Record<string, string> {
  const table = (head: readonly string[], rows: readonly (readonly string[])[]) =>
    [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
  const magicHex = [...Buffer.from(f.protocol.magic)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const named = (xs: readonly { name: string; value: number }[]) => xs.map((x) => `${x.value} = ${x.name.toLowerCase().replace(/_/g, ' ')}`).join(', ');
  return {
    'node-config': table(
      ['Field', 'Type', 'Meaning'],
      f.nodeConfig.fields.map((x) => [`\`${x.name}\``, 'docType' in x ? (x.docType as string) : x.type, x.doc]),
    ),
    'node-config-inputs': table(
      ['Input field', 'Type', 'Meaning'],
      f.nodeConfig.inputFields.map((x) => [`\`${x.name}\``, x.type, x.doc]),
    ),
    'node-requests': table(['`t`', 'Fields', 'When'], f.nodeRequests.map((r) => [`\`${r.t}\``, r.fields, r.doc])),
    'daemon-events': table(['`t`', 'Fields', 'Meaning'], f.daemonEvents.map((r) => [`\`${r.t}\``, r.fields, r.doc])),
    'vocabulary': table(
      ['Name', 'Values'],
      [
        ['log levels (`level` of `log`)', f.logLevels.map((l) => `\`${l}\``).join(', ')],
        ['stop causes (`cause` of `stop`)', f.stopCauses.map((c) => `\`${c.name}\` (${c.doc.replace(/\.$/, '')})`).join(', ')],
        ['event types (in every node API)', f.eventTypes.filter((e) => e.name !== 'UNKNOWN').map((e) => `\`${e.name}\``).join(', ')],
      ],
    ),
    'header': table(
      ['Offset', 'Field', 'Encoding', 'Notes'],
      [
        ['0', 'magic', `${f.protocol.magic.length} bytes`, `\`${magicHex}\` ("${f.protocol.magic}")`],
        [String(f.protocol.magic.length), 'version', 'u16', String(f.protocol.version)],
        [String(f.protocol.magic.length + 2), 'kind', 'u8', `${named(f.messageKinds)} (drop tokens only in their own frames, section 8.3)`],
        [String(f.protocol.magic.length + 3), 'location', 'u8', `${named(f.payloadLocations)} (none only for end of stream)`],
        [String(f.protocol.magic.length + 4), 'timestamp', 'u64', 'Hybrid logical clock, nanoseconds since the Unix epoch (section 7)'],
      ],
    ),
    'parameter-tags': table(['Tag', 'Type', 'Value encoding'], f.parameterTags.map((t) => [String(t.value), t.type, t.encoding])),
    'arrow-formats': table(
      ['Format', 'Type', 'Buffers', 'Children', 'Bytes per value'],
      f.arrowFormats.map((a) => {
        const layout = f.arrowLayouts.find((l) => l.name === a.layout)!;
        const width = typeof a.width === 'number' ? (a.width > 0 ? String(a.width) : '—') : a.width;
        return [`\`${a.format}\``, a.type, layout.bufferNames, layout.children, width];
      }),
    ),
    'limits': table(
      ['Limit', 'Value', 'Meaning'],
      Object.entries(f.limits).map(([name, l]) => [`\`${name}\``, String(l.value), l.doc]),
    ),
    'errors': table(['Code', 'Name', 'Meaning'], f.errors.map((e) => [String(e.code), `\`${e.name}\``, e.doc])),
  };
}

/** Replaces the text between each `<!-- facts:NAME -->` and `<!-- /facts:NAME -->` by its table. */
export function fillMarkers(text: string, tables: Record<string, string>, file: string): string {
  let result = text;
  for (const [name, body] of Object.entries(tables)) {
    const open = `<!-- facts:${name} -->`;
    const close = `<!-- /facts:${name} -->`;
    const start = result.indexOf(open);
    const end = result.indexOf(close);
    if (start < 0 || end < start) throw new Error(`${file}: markers ${open} … ${close} are missing`);
    result = result.slice(0, start + open.length) + '\n' + body + '\n' + result.slice(end);
  }
  return result;
}

// ---------------------------------------------------------------------------
// The project version in the files that carry one

function replaceVersion(text: string, pattern: RegExp, version: string, file: string): string {
  if (!pattern.test(text)) throw new Error(`${file}: no version found (${pattern})`);
  return text.replace(pattern, (_m, before: string, _old: string, after: string) => `${before}${version}${after}`);
}

// ---------------------------------------------------------------------------

/** Every generated file with the text it should hold. */
export function renderAll(f: Facts = loadFacts()): Map<string, string> {
  const read = (rel: string) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
  const files = new Map<string, string>([
    [path.join(ROOT, 'protocol/facts.ts'), renderTypeScript(f)],
    [path.join(ROOT, 'bindings/c/src/facts.h'), renderC(f)],
    [path.join(ROOT, 'bindings/python/dora/_facts.py'), renderPython(f)],
    [path.join(ROOT, 'docs/protocol.md'), fillMarkers(read('docs/protocol.md'), renderDocTables(f), 'docs/protocol.md')],
    [path.join(ROOT, 'package.json'), replaceVersion(read('package.json'), /^(  "version": ")([^"]*)(")/m, f.version, 'package.json')],
    [path.join(ROOT, 'bindings/c/Makefile'), replaceVersion(read('bindings/c/Makefile'), /^(VERSION\s*:= )(\S+)()$/m, f.version, 'bindings/c/Makefile')],
    [path.join(ROOT, 'bindings/python/pyproject.toml'), replaceVersion(read('bindings/python/pyproject.toml'), /^(version = ")([^"]*)(")/m, f.version, 'pyproject.toml')],
  ]);
  const lock = path.join(ROOT, 'package-lock.json');
  if (fs.existsSync(lock)) {
    const text = read('package-lock.json');
    // the root package's version, at the top and under packages[""]
    files.set(lock, text.replace(/^(  "version": ")([^"]*)(")/m, `$1${f.version}$3`).replace(/^(    "": \{\n      "name": "[^"]*",\n      "version": ")([^"]*)(")/m, `$1${f.version}$3`));
  }
  for (const [file, text] of renderHeaders(undefined, f)) files.set(file, text);
  return files;
}

function main(): void {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, text] of renderAll()) {
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (current === text) continue;
    const rel = path.relative(process.cwd(), file);
    if (check) {
      console.error(`${rel} differs from protocol/facts.json: run \`npm run facts\``);
      stale++;
    } else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
      console.log(`wrote ${rel}`);
    }
  }
  process.exit(stale > 0 ? 1 : 0);
}

if (require.main === module) main();
