/**
 * Writes the public C headers from the API description (api.json), so the
 * declarations, their documentation and the test bindings come from one place.
 * What the API shares with the protocol (the version, the error codes, the event
 * and parameter enums, the event record's layout) comes from protocol/facts.json;
 * scripts/generate-facts.ts (npm run facts) runs this too.
 *
 *   tsx bindings/c/generate-header.ts          rewrite include/*.h
 *   tsx bindings/c/generate-header.ts --check  exit 1 if the committed headers differ
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import FACTS from '../../protocol/facts.json';

/** The shared protocol facts (protocol/facts.json). */
export type Facts = typeof FACTS;

export interface ApiFunction {
  readonly name: string;
  readonly returns: string;
  readonly params: readonly (readonly [type: string, name: string])[];
  readonly doc: string;
}

interface ApiSection {
  readonly title: string;
  readonly raw?: readonly string[];
  readonly types?: readonly { doc: string; c: string }[];
  /** An enum lists its values, or names the list of protocol/facts.json they come from. */
  /** `typedef`: also declare the enum's name as a type (dora's headers do, and nodes use it bare). */
  readonly enums?: readonly { doc: string; name: string; typedef?: boolean; values?: readonly (readonly [string, string])[]; facts?: keyof typeof FACT_ENUMS }[];
  readonly functions?: readonly ApiFunction[];
}

export interface Api {
  readonly header: string;
  readonly guard: string;
  readonly intro: readonly string[];
  readonly includes: readonly string[];
  readonly sections: readonly ApiSection[];
}

export const API_FILE = path.join(__dirname, 'api.json');
const INCLUDE_DIR = path.join(__dirname, 'include');

export function loadApi(): Api {
  return JSON.parse(fs.readFileSync(API_FILE, 'utf8')) as Api;
}

/** Every function of the API, in header order. */
export function apiFunctions(api: Api = loadApi()): ApiFunction[] {
  return api.sections.flatMap((s) => s.functions ?? []);
}

/** Wraps text into comment lines of at most `width` characters. */
function wrap(text: string, prefix: string, width = 90): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && prefix.length + line.length + 1 + word.length > width) {
      lines.push(prefix + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(prefix + line);
  return lines;
}

const docComment = (text: string) => ['/**', ...wrap(text, ' * '), ' */'];

/** Enum values taken from protocol/facts.json: [C declaration, documentation]. */
const FACT_ENUMS = {
  eventTypes: (facts: Facts) => facts.eventTypes.map((e) => [`${e.c} = ${e.value}`, e.doc] as const),
  parameterTags: (facts: Facts) => [
    ['DORA_PARAMETER_NONE = 0', 'No parameter with that key.'] as const,
    ...facts.parameterTags.map((t) => [`DORA_PARAMETER_${t.name} = ${t.value}`, t.c] as const),
  ],
  errors: (facts: Facts) => facts.errors.map((e) => [`DORA_E_${e.name} = ${e.code}`, e.doc] as const),
};

/** The event record's layout (dora_next_event_record), in words, from protocol/facts.json. */
export function describeEventRecord(facts: Facts = FACTS): string {
  const r = facts.eventRecord;
  const fields = r.fields.map((f) => `${f.type} ${f.doc}`).join(', ');
  const flags = r.flags.map((f) => `${f.value}: ${f.doc}`).join('; ');
  return `Layout (little-endian): ${fields}; then at offset ${r.body} the Arrow layout and the parameters in their wire encoding (docs/protocol.md), the message (stop cause or error text, UTF-8), and at the next multiple of 8 a copy of an inline payload. Flags: ${flags}.`;
}

/** A function's documentation with its {placeholders} filled from protocol/facts.json. */
const functionDoc = (f: ApiFunction, facts: Facts) => f.doc.replace('{eventRecord}', describeEventRecord(facts));

function declaration(f: ApiFunction): string {
  const params = f.params.length === 0 ? 'void' : f.params.map(([t, n]) => `${t}${t.endsWith('*') ? '' : ' '}${n}`).join(', ');
  return `${f.returns}${f.returns.endsWith('*') ? '' : ' '}${f.name}(${params});`;
}

export function renderHeader(api: Api, facts: Facts = FACTS): string {
  const out: string[] = ['/*', ...api.intro.map((l) => (l ? ` * ${l}` : ' *')), ' */'];
  out.push(`#ifndef ${api.guard}`, `#define ${api.guard}`, '');
  for (const inc of api.includes) out.push(`#include ${inc}`);
  const [major, minor, patch] = facts.version.split('.');
  out.push('', `#define DORA_NODE_API_VERSION_MAJOR ${major}`, `#define DORA_NODE_API_VERSION_MINOR ${minor}`, `#define DORA_NODE_API_VERSION_PATCH ${patch}`);
  out.push('', '#ifdef __cplusplus', 'extern "C" {', '#endif');
  for (const section of api.sections) {
    out.push('', `/* ${'-'.repeat(84)} */`, `/* ${section.title} */`, '');
    if (section.raw) out.push(...section.raw, '');
    for (const t of section.types ?? []) out.push(...docComment(t.doc), t.c, '');
    for (const e of section.enums ?? []) {
      out.push(...docComment(e.doc), `enum ${e.name} {`);
      for (const [value, doc] of e.facts ? FACT_ENUMS[e.facts](facts) : (e.values ?? [])) {
        const lines = wrap(doc, '  /** ', 86).map((l, i) => (i === 0 ? l : l.replace('  /** ', '   * ')));
        lines[lines.length - 1] += ' */';
        out.push(...lines, `  ${value},`);
      }
      out.push('};', ...(e.typedef ? [`typedef enum ${e.name} ${e.name};`] : []), '');
    }
    for (const f of section.functions ?? []) out.push(...docComment(functionDoc(f, facts)), declaration(f), '');
  }
  out.push('#ifdef __cplusplus', '}', '#endif', '', `#endif /* ${api.guard} */`, '');
  return out.join('\n');
}

/** dora's header name, for nodes written against dora: it only includes ours. */
export function renderCompatHeader(api: Api): string {
  return [
    '/*',
    ' * dora\'s C node API header name. Nodes written for dora include "node_api.h"; this',
    ` * includes ${api.header}, which declares dora's functions with dora's signatures.`,
    ' *',
    ' * GENERATED by bindings/c/generate-header.ts. Do not edit.',
    ' */',
    '#ifndef DORA_NODE_API_COMPAT_H',
    '#define DORA_NODE_API_COMPAT_H',
    `#include "${api.header}"`,
    '#endif',
    '',
  ].join('\n');
}

/** The linker version script: the API's functions are the library's only exported symbols. */
export function renderExports(api: Api): string {
  const names = apiFunctions(api).map((f) => `    ${f.name};`);
  return ['/* GENERATED by bindings/c/generate-header.ts from api.json. Do not edit. */', 'DORA_NODE_API_0 {', '  global:', ...names, '  local:', '    *;', '};', ''].join('\n');
}

export function renderAll(api: Api = loadApi(), facts: Facts = FACTS): Map<string, string> {
  return new Map([
    [path.join(INCLUDE_DIR, api.header), renderHeader(api, facts)],
    [path.join(INCLUDE_DIR, 'node_api.h'), renderCompatHeader(api)],
    [path.join(__dirname, 'src', 'exports.map'), renderExports(api)],
  ]);
}

function main(): void {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, text] of renderAll()) {
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (current === text) continue;
    if (check) {
      console.error(`${path.relative(process.cwd(), file)} differs from bindings/c/api.json: run \`npm run c:header\``);
      stale++;
    } else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
      console.log(`wrote ${path.relative(process.cwd(), file)}`);
    }
  }
  process.exit(stale > 0 ? 1 : 0);
}

if (require.main === module) main();
