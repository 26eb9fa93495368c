/**
 * Writes the golden test vectors in tests/vectors/ (see its README): the exact
 * bytes of every message kind and of every supported Arrow type, each with a
 * JSON description of what it decodes to, plus frames every implementation
 * must refuse. `npm run vectors` rewrites the files; tests/vectors.test.ts
 * fails if they differ from what this script produces, so the committed bytes
 * and the codec cannot drift apart silently.
 *
 * Everything here is deterministic: fixed timestamps, fixed names, no randomness.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ByteWriter,
  DATA_MAGIC,
  encodeControl,
  encodeDataHeader,
  encodeDropTokens,
  encodeTimerTick,
  PROTOCOL_VERSION,
  prepareArrow,
  type ArrowLayout,
  type DaemonEvent,
  type NodeRequest,
  type Parameters,
  type RegisterReply,
} from '../protocol';
import { fromJson, type TypeJson, type ValueJson } from '../tests/support/arrow-json';

export const VECTORS_DIR = path.join(__dirname, '..', 'tests', 'vectors');

/** 2023-11-14T22:13:20Z in nanoseconds: the timestamp of every vector message. */
export const VECTOR_TIMESTAMP = 1_700_000_000_000_000_000n;

/** Name of the shared-memory segment the shm vectors refer to (tests create it from the .segment.bin file). */
export const VECTOR_SEGMENT = 'dora-ts-vectors-5f3c9a0e7b21';

interface ArrowVector {
  readonly name: string;
  readonly description: string;
  readonly type: TypeJson;
  readonly values: readonly ValueJson[];
  /** For decode-only vectors: the logical offset written into the top-level layout. */
  readonly offset?: number;
}

const item = (format: string, extra: Partial<TypeJson> = {}): TypeJson => ({ format, name: 'item', nullable: true, ...extra });

/** One vector per Arrow type the protocol carries; nulls wherever the type allows them. */
export const ARROW_VECTORS: readonly ArrowVector[] = [
  { name: 'null', description: 'null array (what timer ticks carry, with length 0)', type: { format: 'n' }, values: [null, null, null] },
  { name: 'bool', description: 'booleans; validity and values bitmaps span two bytes', type: { format: 'b' }, values: [true, false, null, true, true, false, false, true, null, true] },
  { name: 'int8', description: 'int8 extremes', type: { format: 'c' }, values: [-128, -1, 0, null, 127] },
  { name: 'uint8', description: 'uint8 extremes', type: { format: 'C' }, values: [0, 1, null, 255] },
  { name: 'int16', description: 'int16 with nulls at both ends of a 20-element bitmap', type: { format: 's' }, values: [null, -32768, 2, 3, 4, 5, 6, 7, 8, null, 10, 11, 12, 13, 14, 15, 16, 17, 32767, null] },
  { name: 'uint16', description: 'uint16 extremes', type: { format: 'S' }, values: [0, 65535, null] },
  { name: 'int32', description: 'int32 extremes', type: { format: 'i' }, values: [-2147483648, 0, null, 2147483647] },
  { name: 'int32-empty', description: 'an empty int32 array: no payload frame at all', type: { format: 'i' }, values: [] },
  { name: 'uint32', description: 'uint32 extremes', type: { format: 'I' }, values: [0, 4294967295, null] },
  { name: 'int64', description: 'int64 extremes (64-bit values are decimal strings in JSON)', type: { format: 'l' }, values: ['-9223372036854775808', '0', null, '9223372036854775807'] },
  { name: 'uint64', description: 'uint64 extremes', type: { format: 'L' }, values: ['0', '18446744073709551615', null] },
  { name: 'float16', description: 'half floats, exactly representable values', type: { format: 'e' }, values: [1, -2, 0.5, null, 65504] },
  { name: 'float32', description: 'single floats', type: { format: 'f' }, values: [1.5, -0.25, null, 3.4028234663852886e38] },
  { name: 'float64', description: 'double floats', type: { format: 'g' }, values: [3.141592653589793, -1e-300, null, 1.7976931348623157e308] },
  { name: 'utf8', description: 'utf8 strings, empty and multi-byte included', type: { format: 'u' }, values: ['hello', '', null, 'grüße 🤖'] },
  { name: 'large-utf8', description: 'large utf8 (64-bit offsets)', type: { format: 'U' }, values: ['hello', '', null, 'grüße 🤖'] },
  { name: 'binary', description: 'binary (values are hex strings in JSON)', type: { format: 'z' }, values: ['00ff10', '', null, 'deadbeef'] },
  { name: 'large-binary', description: 'large binary (64-bit offsets)', type: { format: 'Z' }, values: ['00ff10', '', null, 'deadbeef'] },
  { name: 'fixed-size-binary', description: 'fixed-size binary of 3 bytes', type: { format: 'w:3' }, values: ['010203', null, 'fffefd'] },
  { name: 'date32', description: 'days since the epoch', type: { format: 'tdD' }, values: [0, 19675, null] },
  { name: 'date64', description: 'milliseconds since the epoch', type: { format: 'tdm' }, values: ['1700000000000', null] },
  { name: 'time32-ms', description: 'time of day in milliseconds (32-bit)', type: { format: 'ttm' }, values: [0, 86399999, null] },
  { name: 'time64-ns', description: 'time of day in nanoseconds (64-bit)', type: { format: 'ttn' }, values: ['0', '86399999999999', null] },
  { name: 'timestamp-us-utc', description: 'timestamps in microseconds, zone UTC', type: { format: 'tsu:UTC' }, values: ['1700000000000000', null, '-1'] },
  { name: 'timestamp-ns', description: 'timestamps in nanoseconds, no zone', type: { format: 'tsn:' }, values: ['1700000000000000000', null] },
  { name: 'duration-ms', description: 'durations in milliseconds', type: { format: 'tDm' }, values: ['-5', '1000', null] },
  { name: 'list-int32', description: 'list<int32>: empty list, null list, null element', type: { format: '+l', children: [item('i')] }, values: [[1, 2, 3], [], null, [4, null]] },
  { name: 'large-list-utf8', description: 'large_list<utf8>', type: { format: '+L', children: [item('u')] }, values: [['a', 'bc'], null, []] },
  {
    name: 'fixed-size-list-float32',
    description: 'fixed_size_list<float32, 3> (a null list still occupies 3 child slots, all null)',
    type: { format: '+w:3', children: [item('f')] },
    values: [[1, 2, 3], null, [4, 5, 6]],
  },
  {
    name: 'struct',
    description: 'struct<x: float64, label: utf8, valid: bool> with a null row and a null field',
    type: { format: '+s', children: [{ format: 'g', name: 'x', nullable: false }, { format: 'u', name: 'label' }, { format: 'b', name: 'valid' }] },
    values: [{ x: 1.5, label: 'a', valid: true }, null, { x: -2, label: null, valid: false }],
  },
  {
    name: 'list-struct',
    description: 'list<struct<id: uint32, tags: list<utf8>>>: nesting three deep (detections with tags)',
    type: { format: '+l', children: [item('+s', { children: [{ format: 'I', name: 'id' }, { format: '+l', name: 'tags', children: [item('u')] }] })] },
    values: [[{ id: 1, tags: ['person'] }, { id: 2, tags: [] }], [], [{ id: 3, tags: ['car', 'red'] }]],
  },
  // Decode-only: the encoder always writes offset 0, but a C or Python sender may
  // forward a sliced array as it is. These carry a non-zero top-level offset.
  { name: 'offset-int32', description: 'int32 with offset 2 over 5 stored values [10, 20, null, 40, 50]', type: { format: 'i' }, values: [10, 20, null, 40, 50], offset: 2 },
  { name: 'offset-bool', description: 'bool with offset 3 over 10 stored values (bit positions not byte-aligned)', type: { format: 'b' }, values: [true, false, null, true, true, false, false, true, null, true], offset: 3 },
  { name: 'offset-utf8', description: 'utf8 with offset 1 over ["a", "bc", null, "def"]', type: { format: 'u' }, values: ['a', 'bc', null, 'def'], offset: 1 },
  { name: 'offset-list-int32', description: 'list<int32> with offset 1', type: { format: '+l', children: [item('i')] }, values: [[1], [2, 3], null, [4, 5, 6]], offset: 1 },
  {
    name: 'offset-struct',
    description: 'struct with offset 1: the parent offset applies to the children too',
    type: { format: '+s', children: [{ format: 'i', name: 'a' }, { format: 'u', name: 'b' }] },
    values: [{ a: 1, b: 'x' }, { a: 2, b: 'y' }, null, { a: 4, b: null }],
    offset: 1,
  },
];

/** A parameter as the vectors describe it: the wire tag's name and the value (64-bit integers as strings). */
type ParameterJson = { readonly type: 'bool' | 'int' | 'float' | 'string' | 'list-bool' | 'list-int' | 'list-float' | 'list-string' | 'timestamp'; readonly value: ValueJson };

const PARAMETERS_JSON: Record<string, ParameterJson> = {
  flag: { type: 'bool', value: true },
  count: { type: 'int', value: '-42' },
  big: { type: 'int', value: '9223372036854775807' },
  ratio: { type: 'float', value: 0.25 },
  whole_float: { type: 'float', value: 2.5 },
  frame_id: { type: 'string', value: 'camera_left' },
  mask: { type: 'list-bool', value: [true, false, true] },
  shape: { type: 'list-int', value: ['480', '640', '3'] },
  scale: { type: 'list-float', value: [0.5, 1.5] },
  labels: { type: 'list-string', value: ['a', 'bé'] },
  captured_at: { type: 'timestamp', value: '1700000000123000000' },
};

/** The same parameters as TypeScript values (integers as numbers/bigints, a Date for the timestamp). */
const PARAMETERS: Parameters = {
  flag: true,
  count: -42,
  big: 9223372036854775807n,
  ratio: 0.25,
  whole_float: 2.5,
  frame_id: 'camera_left',
  mask: [true, false, true],
  shape: [480, 640, 3],
  scale: [0.5, 1.5],
  labels: ['a', 'bé'],
  captured_at: new Date(1700000000123),
};

const CONTROL_MESSAGES: { description: string; socket: string; message: NodeRequest | RegisterReply | DaemonEvent }[] = [
  { description: 'node → daemon: the first message of a node', socket: 'DEALER → ROUTER', message: { t: 'register', node: 'camera', version: PROTOCOL_VERSION, pid: 4242 } },
  { description: 'daemon → node: registration accepted', socket: 'ROUTER → DEALER', message: { t: 'ok' } },
  { description: 'daemon → node: registration refused', socket: 'ROUTER → DEALER', message: { t: 'error', message: 'node "camera" speaks protocol version 2, the daemon speaks version 1' } },
  { description: 'node → daemon: subscriptions in place, subscribers joined', socket: 'DEALER → ROUTER', message: { t: 'ready', node: 'camera' } },
  { description: 'node → daemon: a log record', socket: 'DEALER → ROUTER', message: { t: 'log', node: 'camera', level: 'info', message: 'opened /dev/video0', target: 'camera::driver' } },
  { description: 'node → daemon: end of stream published on every output', socket: 'DEALER → ROUTER', message: { t: 'outputs-closed', node: 'camera' } },
  { description: 'daemon → node: the start barrier is passed', socket: 'XPUB topic dora/events/<node>', message: { t: 'start' } },
  { description: 'daemon → node: stop (dora stop / Ctrl-C)', socket: 'XPUB topic dora/events/<node>', message: { t: 'stop', cause: 'MANUAL' } },
  { description: 'daemon → node: a peer exited before the start barrier', socket: 'XPUB topic dora/events/<node>', message: { t: 'peer-exited', node: 'camera' } },
  { description: 'daemon → node: inputs whose sender died', socket: 'XPUB topic dora/events/<node>', message: { t: 'inputs-closed', inputs: ['image'], reason: 'camera exited with signal SIGKILL' } },
];

interface InvalidVector {
  readonly name: string;
  readonly description: string;
  /** Which decoder the frames go to. */
  readonly message: 'data' | 'drop-tokens';
  readonly frames: readonly Uint8Array[];
  /** The class of failure; tests map it to the implementation's own error message. */
  readonly error: string;
  /** A segment to create (filled with zeros) before decoding, for shared-memory cases. */
  readonly segment?: { readonly name: string; readonly size: number };
}

const timestamp = VECTOR_TIMESTAMP;

function dataMessage(layout: ArrowLayout, payload: Uint8Array, parameters: Parameters = {}, seq = 0n): Uint8Array[] {
  const header = encodeDataHeader({ kind: 'data', timestamp, seq, parameters, layout, payload: { location: 'inline', length: payload.length } });
  return payload.length > 0 ? [header, payload] : [header];
}

function encodeValues(type: TypeJson, values: readonly ValueJson[]): { layout: ArrowLayout; payload: Uint8Array } {
  const prepared = prepareArrow(fromJson(type, values));
  const payload = new Uint8Array(prepared.payloadSize);
  prepared.writePayload(payload);
  return { layout: prepared.layout, payload };
}

const uint8Layout = (length: number, bufferLength = length): ArrowLayout => ({
  format: 'C',
  name: '',
  nullable: true,
  length,
  nullCount: 0,
  offset: 0,
  buffers: [null, { offset: 0, length: bufferLength }],
  children: [],
});

/** A header written field by field, for frames the encoder refuses to produce. */
function rawHeader(build: (w: ByteWriter) => void): Uint8Array {
  const w = new ByteWriter();
  build(w);
  return w.finish();
}

function writeLayoutRaw(w: ByteWriter, l: { format: string; length: number; nullCount?: number; offset?: number; buffers: [number, number][]; children?: number }): void {
  w.str16(l.format).str16('').u8(1).u64(l.length).i64(l.nullCount ?? 0).u64(l.offset ?? 0).u8(l.buffers.length);
  for (const [at, len] of l.buffers) w.u64(at === -1 ? 0xffff_ffff_ffff_ffffn : at).u64(len);
  w.u8(l.children ?? 0);
}

function invalidVectors(): InvalidVector[] {
  const good = encodeValues({ format: 'i' }, [1, 2, 3]);
  const [header, payload] = dataMessage(good.layout, good.payload);
  const withByte = (at: number, value: number) => {
    const copy = header.slice();
    copy[at] = value;
    return copy;
  };
  const preamble = (w: ByteWriter, kind = 1, location = 1) => w.raw(DATA_MAGIC).u16(PROTOCOL_VERSION).u8(kind).u8(location).u64(timestamp).u64(0n).u32(0);
  const deep = rawHeader((w) => {
    preamble(w);
    w.u64(0);
    for (let i = 0; i < 70; i++) writeLayoutRaw(w, { format: '+l', length: 0, buffers: [[-1, 0], [-1, 0]], children: 1 });
    writeLayoutRaw(w, { format: 'i', length: 0, buffers: [[-1, 0], [-1, 0]] });
  });
  const utf8 = encodeValues({ format: 'u' }, ['ab', 'cd']);
  const badOffsets = utf8.payload.slice();
  new DataView(badOffsets.buffer).setInt32(8, 1000, true); // offsets[2] = 1000 > 4 data bytes
  const shmHeader = (offset: number, length: number) =>
    encodeDataHeader({ kind: 'data', timestamp, seq: 0n, parameters: {}, layout: uint8Layout(length), payload: { location: 'shm', segment: VECTOR_SEGMENT, sample: 1n, offset, length } });
  const dropPreamble = (w: ByteWriter) => w.raw(DATA_MAGIC).u16(PROTOCOL_VERSION).u8(3).u8(0).str16('receiver');
  return [
    { name: 'bad-magic', description: 'the first four bytes are not "DORA"', message: 'data', frames: [withByte(0, 0x58), payload], error: 'magic' },
    { name: 'version-2', description: 'a peer speaking protocol version 2', message: 'data', frames: [withByte(4, 2), payload], error: 'version' },
    { name: 'unknown-kind', description: 'message kind 9', message: 'data', frames: [withByte(6, 9), payload], error: 'kind' },
    { name: 'unknown-location', description: 'payload location 7', message: 'data', frames: [withByte(7, 7), payload], error: 'location' },
    { name: 'truncated-header', description: 'the header cut in the middle of the layout', message: 'data', frames: [header.subarray(0, header.length - 20), payload], error: 'truncated' },
    { name: 'trailing-bytes', description: 'the header followed by bytes that belong to nothing', message: 'data', frames: [Uint8Array.from([...header, 0, 0]), payload], error: 'trailing' },
    { name: 'payload-length-mismatch', description: 'the header announces more payload bytes than the frame holds', message: 'data', frames: [header, payload.subarray(0, 8)], error: 'payload-length' },
    { name: 'missing-payload-frame', description: 'an inline payload announced, no payload frame', message: 'data', frames: [header], error: 'payload-length' },
    { name: 'extra-frame', description: 'a frame after the payload', message: 'data', frames: [header, payload, new Uint8Array(1)], error: 'frames' },
    {
      name: 'buffer-outside-payload',
      description: 'a values buffer that ends past the payload',
      message: 'data',
      frames: [rawHeader((w) => (preamble(w), w.u64(16), writeLayoutRaw(w, { format: 'i', length: 4, buffers: [[-1, 0], [64, 16]] }))), new Uint8Array(16)],
      error: 'range',
    },
    {
      name: 'buffer-too-short',
      description: 'an int32 array of length 5 whose values buffer holds 16 bytes',
      message: 'data',
      frames: [rawHeader((w) => (preamble(w), w.u64(16), writeLayoutRaw(w, { format: 'i', length: 5, buffers: [[-1, 0], [0, 16]] }))), new Uint8Array(16)],
      error: 'range',
    },
    {
      name: 'offset-beyond-buffer',
      description: 'offset 3 + length 2 needs 5 values, the buffer holds 4',
      message: 'data',
      frames: [rawHeader((w) => (preamble(w), w.u64(16), writeLayoutRaw(w, { format: 'i', length: 2, offset: 3, buffers: [[-1, 0], [0, 16]] }))), new Uint8Array(16)],
      error: 'range',
    },
    { name: 'string-offsets-beyond-data', description: 'a utf8 offset pointing past the data buffer', message: 'data', frames: dataMessage(utf8.layout, badOffsets), error: 'range' },
    {
      name: 'null-count-out-of-range',
      description: 'null count 9 for an array of length 3',
      message: 'data',
      frames: [rawHeader((w) => (preamble(w), w.u64(12), writeLayoutRaw(w, { format: 'i', length: 3, nullCount: 9, buffers: [[-1, 0], [0, 12]] }))), new Uint8Array(12)],
      error: 'null-count',
    },
    {
      name: 'wrong-buffer-count',
      description: 'an int32 array with three buffers',
      message: 'data',
      frames: [rawHeader((w) => (preamble(w), w.u64(12), writeLayoutRaw(w, { format: 'i', length: 3, buffers: [[-1, 0], [0, 12], [0, 12]] }))), new Uint8Array(12)],
      error: 'buffers',
    },
    {
      name: 'absent-values-buffer',
      description: 'an int32 array whose values buffer is marked absent',
      message: 'data',
      frames: [rawHeader((w) => (preamble(w), w.u64(0), writeLayoutRaw(w, { format: 'i', length: 3, buffers: [[-1, 0], [-1, 0]] })))],
      error: 'buffers',
    },
    {
      name: 'unknown-format',
      description: 'format string "+ud:1,2" (unions are not carried)',
      message: 'data',
      frames: [rawHeader((w) => (preamble(w), w.u64(0), writeLayoutRaw(w, { format: '+ud:1,2', length: 0, buffers: [] })))],
      error: 'format',
    },
    {
      name: 'children-on-primitive',
      description: 'an int32 array with a child',
      message: 'data',
      frames: [
        rawHeader((w) => {
          preamble(w);
          w.u64(0);
          writeLayoutRaw(w, { format: 'i', length: 0, buffers: [[-1, 0], [-1, 0]], children: 1 });
          writeLayoutRaw(w, { format: 'i', length: 0, buffers: [[-1, 0], [-1, 0]] });
        }),
      ],
      error: 'children',
    },
    { name: 'nested-too-deep', description: '70 nested lists (at most 64 levels are accepted)', message: 'data', frames: [deep], error: 'depth' },
    {
      name: 'invalid-utf8',
      description: 'a format string that is not UTF-8',
      message: 'data',
      frames: [rawHeader((w) => (preamble(w), w.u64(0), w.u16(2).raw(Uint8Array.of(0xc3, 0x28)).str16('').u8(1).u64(0).i64(0).u64(0).u8(0).u8(0)))],
      error: 'utf8',
    },
    {
      name: 'parameter-unknown-tag',
      description: 'a parameter with tag 42',
      message: 'data',
      frames: [rawHeader((w) => w.raw(DATA_MAGIC).u16(PROTOCOL_VERSION).u8(1).u8(1).u64(timestamp).u64(0n).u32(1).str16('k').u8(42).u64(0))],
      error: 'parameter',
    },
    {
      name: 'parameter-list-too-long',
      description: 'a list parameter claiming a billion elements',
      message: 'data',
      frames: [rawHeader((w) => w.raw(DATA_MAGIC).u16(PROTOCOL_VERSION).u8(1).u8(1).u64(timestamp).u64(0n).u32(1).str16('k').u8(6).u32(1_000_000_000).u64(1))],
      error: 'parameter',
    },
    { name: 'eos-with-payload', description: 'an end-of-stream message claiming an inline payload', message: 'data', frames: [rawHeader((w) => w.raw(DATA_MAGIC).u16(PROTOCOL_VERSION).u8(2).u8(1).u64(timestamp))], error: 'location' },
    { name: 'shm-unaligned-offset', description: 'a shared-memory payload at offset 3 (offsets are multiples of 64)', message: 'data', frames: [shmHeader(3, 16)], error: 'shm-offset', segment: { name: VECTOR_SEGMENT, size: 4096 } },
    { name: 'shm-missing-segment', description: 'a handle to a segment that does not exist', message: 'data', frames: [shmHeader(0, 16)], error: 'shm-missing' },
    { name: 'shm-outside-segment', description: 'a payload range ending past the 4096-byte segment', message: 'data', frames: [shmHeader(0, 8192)], error: 'shm-range', segment: { name: VECTOR_SEGMENT, size: 4096 } },
    {
      name: 'shm-bad-segment-name',
      description: 'a segment name with a path in it',
      message: 'data',
      frames: [encodeDataHeader({ kind: 'data', timestamp, seq: 0n, parameters: {}, layout: uint8Layout(16), payload: { location: 'shm', segment: '../../etc/passwd', sample: 1n, offset: 0, length: 16 } })],
      error: 'shm-name',
    },
    { name: 'drop-tokens-count', description: 'drop tokens claiming more sample ids than the frame holds', message: 'drop-tokens', frames: [rawHeader((w) => (dropPreamble(w), w.u32(1000).u64(1)))], error: 'truncated' },
    { name: 'drop-tokens-empty-range', description: 'a lost range whose last sequence number precedes its first', message: 'drop-tokens', frames: [rawHeader((w) => (dropPreamble(w), w.u32(0).u32(1).str16('image').u64(5).u64(4)))], error: 'range' },
    { name: 'drop-tokens-wrong-kind', description: 'a data header sent to the drop-token socket', message: 'drop-tokens', frames: [header], error: 'kind' },
  ];
}

const stringify = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

/** Every vector file, by path relative to tests/vectors/. */
export function generateVectors(): Map<string, Uint8Array | string> {
  const files = new Map<string, Uint8Array | string>();
  const frameFiles = (dir: string, name: string, frames: readonly Uint8Array[], labels: readonly string[]) =>
    frames.map((frame, i) => {
      const file = `${name}.${labels[i] ?? i}.bin`;
      files.set(`${dir}/${file}`, frame);
      return file;
    });

  // Arrow: one inline data message per type.
  for (const v of ARROW_VECTORS) {
    let { layout, payload } = encodeValues(v.type, v.values);
    let values = v.values;
    if (v.offset !== undefined) {
      layout = { ...layout, offset: v.offset, length: layout.length - v.offset, nullCount: -1 };
      values = v.values.slice(v.offset);
    }
    const frames = frameFiles('arrow', v.name, dataMessage(layout, payload, {}, 1n), ['header', 'payload']);
    files.set(
      `arrow/${v.name}.json`,
      stringify({
        description: v.description,
        ...(v.offset !== undefined ? { decodeOnly: true } : {}),
        frames,
        timestamp: timestamp.toString(),
        seq: '1',
        parameters: {},
        type: v.type,
        length: values.length,
        values,
      }),
    );
  }

  // Messages.
  const u8 = encodeValues({ format: 'C' }, [1, 2, 3]);
  files.set(
    'messages/data-parameters.json',
    stringify({
      description: 'a data message with one parameter of every wire type',
      message: 'data',
      frames: frameFiles('messages', 'data-parameters', dataMessage(u8.layout, u8.payload, PARAMETERS, 7n), ['header', 'payload']),
      timestamp: timestamp.toString(),
      seq: '7',
      parameters: PARAMETERS_JSON,
      type: { format: 'C' },
      values: [1, 2, 3],
    }),
  );

  const segmentBytes = new Uint8Array(8192).map((_, i) => (i * 7) & 0xff);
  const shmLayout = uint8Layout(4096);
  files.set('messages/data-shm.segment.bin', segmentBytes);
  files.set(
    'messages/data-shm.json',
    stringify({
      description: 'a data message whose payload sits in shared memory: a uint8 array of 4096 bytes at offset 4096 of the segment',
      message: 'data',
      frames: frameFiles('messages', 'data-shm', [
        encodeDataHeader({ kind: 'data', timestamp, seq: 12n, parameters: {}, layout: shmLayout, payload: { location: 'shm', segment: VECTOR_SEGMENT, sample: 3n, offset: 4096, length: 4096 } }),
      ], ['header']),
      segment: { name: VECTOR_SEGMENT, file: 'data-shm.segment.bin' },
      handle: { segment: VECTOR_SEGMENT, sample: '3', offset: 4096, length: 4096 },
      timestamp: timestamp.toString(),
      seq: '12',
      parameters: {},
      type: { format: 'C' },
      values: 'bytes 4096..8191 of data-shm.segment.bin, byte i of the segment being (i * 7) mod 256',
    }),
  );

  files.set(
    'messages/end-of-stream.json',
    stringify({
      description: 'the sender closed this output',
      message: 'end-of-stream',
      frames: frameFiles('messages', 'end-of-stream', [encodeDataHeader({ kind: 'eos', timestamp })], ['header']),
      timestamp: timestamp.toString(),
    }),
  );

  files.set(
    'messages/timer-tick.json',
    stringify({
      description: 'the 6th tick of a timer: a data message carrying an empty null array',
      message: 'data',
      frames: frameFiles('messages', 'timer-tick', [encodeTimerTick(timestamp, 5n)], ['header']),
      timestamp: timestamp.toString(),
      seq: '5',
      parameters: {},
      type: { format: 'n' },
      values: [],
    }),
  );

  const tokens = { receiver: 'plotter', samples: [3n, 4n, 18446744073709551615n], lost: [{ output: 'image', first: 10n, last: 12n }] };
  files.set(
    'messages/drop-tokens.json',
    stringify({
      description: 'receiver "plotter" returns three samples and reports sequence numbers 10..12 of output "image" lost',
      message: 'drop-tokens',
      frames: frameFiles('messages', 'drop-tokens', [encodeDropTokens(tokens)], ['frame']),
      receiver: tokens.receiver,
      samples: tokens.samples.map(String),
      lost: tokens.lost.map((l) => ({ output: l.output, first: String(l.first), last: String(l.last) })),
    }),
  );
  files.set(
    'messages/drop-tokens-empty.json',
    stringify({
      description: 'drop tokens with nothing in them (valid, ignored)',
      message: 'drop-tokens',
      frames: frameFiles('messages', 'drop-tokens-empty', [encodeDropTokens({ receiver: 'r', samples: [], lost: [] })], ['frame']),
      receiver: 'r',
      samples: [],
      lost: [],
    }),
  );

  files.set(
    'messages/control.json',
    stringify(
      CONTROL_MESSAGES.map((c) => ({ description: c.description, socket: c.socket, frame: new TextDecoder().decode(encodeControl(c.message)) })),
    ),
  );

  // Invalid frames.
  for (const v of invalidVectors()) {
    files.set(
      `invalid/${v.name}.json`,
      stringify({
        description: v.description,
        message: v.message,
        frames: frameFiles('invalid', v.name, v.frames, []),
        error: v.error,
        ...(v.segment ? { segment: v.segment } : {}),
      }),
    );
  }
  return files;
}

/** Writes the vectors, removing stale .bin/.json files of earlier generations. */
function main(): void {
  const files = generateVectors();
  for (const dir of ['arrow', 'messages', 'invalid']) {
    const full = path.join(VECTORS_DIR, dir);
    fs.mkdirSync(full, { recursive: true });
    for (const f of fs.readdirSync(full)) if (!files.has(`${dir}/${f}`)) fs.rmSync(path.join(full, f));
  }
  for (const [rel, content] of files) fs.writeFileSync(path.join(VECTORS_DIR, rel), content);
  console.log(`wrote ${files.size} files under ${path.relative(process.cwd(), VECTORS_DIR) || '.'}`);
}

if (require.main === module) main();
