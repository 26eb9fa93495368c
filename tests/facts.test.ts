/**
 * The shared protocol facts (protocol/facts.json) and the error catalogue: every
 * generated copy is current, the catalogue reaches every language, and failures carry
 * their code — the core's through the TypeScript binding as a DoraError.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DescriptorError, loadDescriptor } from '../coordinator';
import { Node } from '../node-api';
import { Sender } from '../node-api/send';
import { decodeDataHeader, DoraError, ErrorCode, errorName, ERROR_DOCS, RECORD, WireError, type NodeConfig } from '../protocol';
import { loadFacts, renderAll } from '../scripts/generate-facts';
import { buildC } from './support/build-c';
import { bindLibrary } from './support/c-library';
import { ROOT } from './support/dataflow';

beforeAll(() => {
  buildC([['all']]);
}, 120_000);

test('every file generated from protocol/facts.json is current (npm run facts)', () => {
  const r = spawnSync(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(ROOT, 'scripts/generate-facts.ts'), '--check'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

test('a changed fact makes every copy of it stale', () => {
  const facts = loadFacts();
  const current = renderAll(facts);
  const bumped = renderAll({ ...facts, version: '9.8.7', limits: { ...facts.limits, maxParameters: { ...facts.limits.maxParameters, value: 4095 } } });
  const changed = [...bumped].filter(([file, text]) => current.get(file) !== text).map(([file]) => path.relative(ROOT, file));
  expect(changed.sort()).toEqual(
    [
      'bindings/c/Makefile',
      'bindings/c/include/dora_node_api.h', // DORA_NODE_API_VERSION_*
      'bindings/c/src/facts.h',
      'bindings/python/dora/_facts.py',
      'bindings/python/pyproject.toml',
      'docs/protocol.md',
      'package-lock.json',
      'package.json',
      'protocol/facts.ts',
    ].sort(),
  );
});

test('the project version agrees everywhere', () => {
  const { version } = loadFacts();
  expect(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version).toBe(version);
  expect(fs.readFileSync(path.join(ROOT, 'bindings/c/Makefile'), 'utf8')).toMatch(new RegExp(`^VERSION\\s*:= ${version.replace(/\./g, '\\.')}$`, 'm'));
  expect(fs.readFileSync(path.join(ROOT, 'bindings/python/pyproject.toml'), 'utf8')).toContain(`version = "${version}"`);
  const [major, minor, patch] = version.split('.');
  const header = fs.readFileSync(path.join(ROOT, 'bindings/c/include/dora_node_api.h'), 'utf8');
  expect(header).toContain(`#define DORA_NODE_API_VERSION_MAJOR ${major}\n#define DORA_NODE_API_VERSION_MINOR ${minor}\n#define DORA_NODE_API_VERSION_PATCH ${patch}`);
});

test('the error catalogue: stable numbers, one name and one meaning each, the same in C', () => {
  const { errors } = loadFacts();
  expect(errors.map((e) => e.code)).toEqual(errors.map((_, i) => i));
  expect(new Set(errors.map((e) => e.name)).size).toBe(errors.length);
  expect(errors.slice(0, 13).map((e) => `${e.code} ${e.name}`)).toEqual([
    '0 OK',
    '1 NO_CONTEXT',
    '2 INVALID_ARGUMENT',
    '3 OUT_OF_MEMORY',
    '4 CONFIG',
    '5 PROTOCOL_VERSION',
    '6 DAEMON_GONE',
    '7 UNDECLARED_OUTPUT',
    '8 MALFORMED_MESSAGE',
    '9 SHARED_MEMORY',
    '10 TIMEOUT',
    '11 REGISTRATION',
    '12 ZMQ',
  ]);
  const fn = bindLibrary();
  for (const e of errors) {
    expect(ErrorCode[e.name as keyof typeof ErrorCode]).toBe(e.code);
    expect(errorName(e.code)).toBe(e.name);
    expect(ERROR_DOCS[e.code]).toBe(e.doc);
    expect(fn('dora_error_name')(e.code)).toBe(e.name);
  }
  expect(fn('dora_error_name')(errors.length)).toBeNull();
  expect(errorName(errors.length)).toBe('UNKNOWN');
});

test('the C library hands its error code over with the message (dora_init_context)', () => {
  const fn = bindLibrary();
  const error = Buffer.alloc(256);
  const code = new Int32Array([-1]);
  expect(fn('dora_init_context')('{not json', error, error.length, code)).toBeNull();
  expect(code[0]).toBe(ErrorCode.CONFIG);
  expect(error.toString('utf8', 0, error.indexOf(0))).toMatch(/^DORA_NODE_CONFIG is not valid JSON: invalid JSON at byte/);
  expect(fn('dora_last_error_code')()).toBe(ErrorCode.CONFIG);
  expect(fn('dora_send_output')(null, 'out', 3, 'x', 1)).toBe(-1);
  expect(fn('dora_last_error_code')()).toBe(ErrorCode.NO_CONTEXT);
});

describe('a core failure surfaces in TypeScript as a DoraError with the core\'s code', () => {
  const config = (fields: Partial<NodeConfig>) => ({ outputs: [], inputs: [], ...fields }) as unknown as NodeConfig;

  test('a configuration the core refuses: CONFIG, PROTOCOL_VERSION', () => {
    const refused = (fields: Partial<NodeConfig>) => {
      try {
        new Node({ config: config(fields) });
      } catch (err) {
        return err as DoraError;
      }
      throw new Error('the node was made');
    };
    const incomplete = refused({ protocolVersion: 1 });
    expect(incomplete).toBeInstanceOf(DoraError);
    expect([incomplete.code, incomplete.codeName]).toEqual([ErrorCode.CONFIG, 'CONFIG']);
    expect(incomplete.message).toBe('DORA_NODE_CONFIG lacks required fields');
    const other = refused({ protocolVersion: 99 });
    expect([other.code, other.codeName]).toEqual([ErrorCode.PROTOCOL_VERSION, 'PROTOCOL_VERSION']);
    expect(other.message).toMatch(/speaks protocol version 99/);
  });

  test('a send the core refuses: NO_CONTEXT', () => {
    const sender = new Sender(0n, 4096);
    const err = (() => {
      try {
        sender.send('out', new Uint8Array(8), {});
      } catch (e) {
        return e as DoraError;
      }
      throw new Error('sent');
    })();
    expect(err).toBeInstanceOf(DoraError);
    expect([err.code, err.codeName, err.message]).toEqual([ErrorCode.NO_CONTEXT, 'NO_CONTEXT', 'send: no open context']);
  });
});

test('the errors TypeScript raises itself are DoraErrors with codes', () => {
  let wire: unknown;
  try {
    decodeDataHeader(new Uint8Array([0x58, 0x4f, 0x52, 0x41, 1, 0]));
  } catch (err) {
    wire = err;
  }
  expect(wire).toBeInstanceOf(WireError);
  expect(wire).toBeInstanceOf(DoraError);
  expect((wire as DoraError).code).toBe(ErrorCode.MALFORMED_MESSAGE);

  const version = new Uint8Array([0x44, 0x4f, 0x52, 0x41, 2, 0]);
  expect(() => decodeDataHeader(version)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_VERSION, codeName: 'PROTOCOL_VERSION' }));

  let descriptor: unknown;
  try {
    loadDescriptor(path.join(ROOT, 'tests/no-such-dataflow.yml'));
  } catch (err) {
    descriptor = err;
  }
  expect(descriptor).toBeInstanceOf(DescriptorError);
  expect((descriptor as DoraError).code).toBe(ErrorCode.DESCRIPTOR);
});

test('the event record layout is the one of protocol/facts.json, documented in the header', () => {
  const { eventRecord } = loadFacts();
  expect(RECORD).toEqual({ ...Object.fromEntries(eventRecord.fields.map((f) => [f.name, f.offset])), body: eventRecord.body });
  const header = fs.readFileSync(path.join(ROOT, 'bindings/c/include/dora_node_api.h'), 'utf8').replace(/\s*\n \* /g, ' ');
  expect(header).toContain(`then at offset ${eventRecord.body} the Arrow layout`);
});
