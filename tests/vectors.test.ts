/**
 * The golden vectors (tests/vectors/) on the TypeScript side: the committed bytes
 * are exactly what the encoder produces, and every vector decodes — through the
 * header and Arrow codecs the node API uses — to the value its JSON describes.
 * Invalid headers and layouts are refused with a WireError of the stated class,
 * never a crash or a read outside the payload. How messages arrive (frames, shared
 * memory) is the node core's: tests/c-api.test.ts checks every vector there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { decodeArrow, decodeControl, decodeDataHeader, encodeDataHeader, decodeDropTokens, encodeControl, prepareArrow, WireError, type Parameters } from '../protocol';
import { generateVectors, VECTORS_DIR } from '../scripts/generate-vectors';
import { dataType, toJson, type TypeJson, type ValueJson } from './support/arrow-json';
import { ERRORS } from './support/vector-errors';

const read = (rel: string) => new Uint8Array(fs.readFileSync(path.join(VECTORS_DIR, rel)));
const readJson = (rel: string) => JSON.parse(fs.readFileSync(path.join(VECTORS_DIR, rel), 'utf8'));
const jsonFiles = (dir: string) => fs.readdirSync(path.join(VECTORS_DIR, dir)).filter((f) => f.endsWith('.json')).sort();

type Decoded =
  | { readonly kind: 'data'; readonly timestamp: bigint; readonly seq: bigint; readonly parameters: Parameters; readonly data: arrow.Data }
  | { readonly kind: 'eos'; readonly timestamp: bigint };

/** Decodes an inline data message's header and Arrow payload with the TypeScript codecs. */
function decode(frames: Uint8Array[]): Decoded {
  const header = decodeDataHeader(frames[0]);
  if (header.kind === 'eos') return header;
  const data = decodeArrow(header.layout, frames[1] ?? new Uint8Array(0));
  return { kind: 'data', timestamp: header.timestamp, seq: header.seq, parameters: header.parameters, data };
}

/** Refusals that only a node's runtime makes (frame counts, payload lengths, shared memory): the core's, checked in C. */
const RUNTIME_CHECKS = new Set(['frames', 'payload-length', 'shm-offset', 'shm-missing', 'shm-range', 'shm-name']);

function expectType(type: arrow.DataType, name: string, nullable: boolean, expected: TypeJson): void {
  expect(String(type)).toBe(String(dataType(expected)));
  expect(name).toBe(expected.name ?? '');
  expect(nullable).toBe(expected.nullable ?? true);
  const fields = (type as arrow.DataType).children ?? [];
  expect(fields.length).toBe(expected.children?.length ?? 0);
  fields.forEach((f, i) => expectType(f.type, f.name, f.nullable, expected.children![i]));
}

test('the committed vectors are exactly what the encoder produces (npm run vectors rewrites them)', () => {
  const generated = generateVectors();
  const onDisk = ['arrow', 'messages', 'invalid'].flatMap((dir) => fs.readdirSync(path.join(VECTORS_DIR, dir)).map((f) => `${dir}/${f}`));
  expect(onDisk.sort()).toEqual([...generated.keys()].sort());
  for (const [rel, content] of generated) {
    const expected = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    expect({ rel, equal: Buffer.from(read(rel)).equals(Buffer.from(expected)) }).toEqual({ rel, equal: true });
  }
});

describe('arrow vectors', () => {
  const files = jsonFiles('arrow');
  test('cover every type the protocol carries', () => {
    const formats = new Set<string>();
    const collect = (t: TypeJson): void => {
      formats.add(t.format.replace(/:.*$/, ':'));
      t.children?.forEach(collect);
    };
    files.forEach((f) => collect(readJson(`arrow/${f}`).type));
    for (const f of ['n', 'b', 'c', 'C', 's', 'S', 'i', 'I', 'l', 'L', 'e', 'f', 'g', 'u', 'U', 'z', 'Z', 'w:', '+l', '+L', '+w:', '+s', 'tdD', 'tdm', 'ttm', 'ttn', 'tsu:', 'tsn:', 'tDm']) {
      expect([f, formats.has(f)]).toEqual([f, true]);
    }
  });

  test.each(files)('%s decodes to the described value and re-encodes to the same bytes', (file) => {
    const v = readJson(`arrow/${file}`);
    const frames: Uint8Array[] = v.frames.map((f: string) => read(`arrow/${f}`));
    const decoded = decode(frames);
    if (decoded.kind !== 'data') throw new Error('expected a data message');
    expect(decoded.timestamp.toString()).toBe(v.timestamp);
    expect(decoded.seq.toString()).toBe(v.seq);
    expect(decoded.parameters).toEqual({});
    expectType(decoded.data.type, '', true, v.type);
    expect(decoded.data.length).toBe(v.length);
    expect(toJson(decoded.data)).toEqual(v.values);

    // Encoding what was decoded gives the vector's bytes back — or, for a vector
    // with a non-zero offset, the canonical offset-0 form of the same values.
    const again = prepareArrow(decoded.data);
    const payload = new Uint8Array(again.payloadSize);
    again.writePayload(payload);
    if (v.decodeOnly) {
      expect(again.layout.offset).toBe(0);
      const header = reencodeHeader(frames[0], again);
      const redecoded = decode(payload.length > 0 ? [header, payload] : [header]);
      expect(redecoded.kind === 'data' && toJson(redecoded.data)).toEqual(v.values);
    } else {
      const header = decodeDataHeader(frames[0]);
      expect(header.kind === 'data' && header.layout).toEqual(again.layout);
      expect(Buffer.from(payload).equals(Buffer.from(frames[1] ?? new Uint8Array(0)))).toBe(true);
    }
  });
});

/** The header of `original` with its layout replaced by `prepared`'s. */
function reencodeHeader(original: Uint8Array, prepared: ReturnType<typeof prepareArrow>): Uint8Array {
  const h = decodeDataHeader(original);
  if (h.kind !== 'data') throw new Error('expected a data header');
  return encodeDataHeader({ ...h, layout: prepared.layout, payload: { location: 'inline', length: prepared.payloadSize } });
}

describe('message vectors', () => {
  test('data message with every parameter type', () => {
    const v = readJson('messages/data-parameters.json');
    const decoded = decode(v.frames.map((f: string) => read(`messages/${f}`)));
    if (decoded.kind !== 'data') throw new Error('expected a data message');
    const expected: Record<string, unknown> = {};
    for (const [key, p] of Object.entries(v.parameters as Record<string, { type: string; value: ValueJson }>)) {
      const int = (s: ValueJson) => (Number.isSafeInteger(Number(s)) ? Number(s) : BigInt(s as string));
      expected[key] = p.type === 'int' ? int(p.value) : p.type === 'list-int' ? (p.value as string[]).map(int) : p.type === 'timestamp' ? new Date(Number(BigInt(p.value as string) / 1_000_000n)) : p.value;
    }
    expect(decoded.parameters).toEqual(expected as Parameters);
    expect(decoded.seq).toBe(7n);
    expect(toJson(decoded.data)).toEqual(v.values);
  });

  test('end of stream and timer tick', () => {
    const eos = readJson('messages/end-of-stream.json');
    expect(decode([read(`messages/${eos.frames[0]}`)])).toEqual({ kind: 'eos', timestamp: BigInt(eos.timestamp) });
    const tick = readJson('messages/timer-tick.json');
    const decoded = decode([read(`messages/${tick.frames[0]}`)]);
    expect(decoded.kind === 'data' && [String(decoded.data.type), decoded.data.length, decoded.seq]).toEqual(['Null', 0, 5n]);
  });

  test.each(['drop-tokens.json', 'drop-tokens-empty.json'])('%s', (file) => {
    const v = readJson(`messages/${file}`);
    const tokens = decodeDropTokens(read(`messages/${v.frames[0]}`));
    expect(tokens.receiver).toBe(v.receiver);
    expect(tokens.samples.map(String)).toEqual(v.samples);
    expect(tokens.lost.map((l) => ({ output: l.output, first: String(l.first), last: String(l.last) }))).toEqual(v.lost);
  });

  test('control messages are tagged JSON objects and re-encode to the same text', () => {
    for (const c of readJson('messages/control.json') as { frame: string }[]) {
      const message = decodeControl<{ t: string }>(new TextEncoder().encode(c.frame));
      expect(message).toBeDefined();
      expect(encodeControl(message as never).toString('utf8')).toBe(c.frame);
    }
  });
});

describe('invalid vectors are refused with a clear error', () => {
  const codecChecks = jsonFiles('invalid').filter((f) => !RUNTIME_CHECKS.has(readJson(`invalid/${f}`).error));
  test.each(codecChecks)('%s', (file) => {
    const v = readJson(`invalid/${file}`);
    const frames: Uint8Array[] = v.frames.map((f: string) => read(`invalid/${f}`));
    const attempt = () => (v.message === 'drop-tokens' ? decodeDropTokens(frames[0]) : decode(frames));
    const run = () => {
      let error: unknown;
      try {
        attempt();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(WireError);
      expect((error as Error).message).toMatch(ERRORS[v.error]);
    };
    run();
  });
});
