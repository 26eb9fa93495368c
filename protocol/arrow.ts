/**
 * Arrow data on the wire: the serialized Arrow C Data Interface.
 *
 * A message's Arrow array is described by a layout tree (one node per array:
 * C Data Interface format string, field name, nullability, length, null count,
 * offset, and where each buffer sits in the payload) and its buffers are laid
 * out back to back in a payload region, each starting at a multiple of 64 bytes.
 * The receiver builds arrays whose buffers are views of the payload — with
 * shared memory, views of the sender's bytes — so nothing is copied or parsed
 * beyond the small layout tree. docs/protocol.md specifies the bytes.
 */
import * as arrow from 'apache-arrow';
import { BUFFER_ALIGNMENT, ErrorCode, MAX_DEPTH } from './facts';
import { ByteReader, ByteWriter, WireError } from './wire';

/** Alignment of every buffer inside the payload (Arrow's recommended alignment; protocol/facts.json). */
export { BUFFER_ALIGNMENT } from './facts';
const ABSENT = 0xffff_ffff_ffff_ffffn;

/** Where one buffer of an array lives in the payload. */
export interface BufferRange {
  readonly offset: number;
  readonly length: number;
}

/** One array of the layout tree: the C Data Interface's ArrowSchema and ArrowArray fields, together. */
export interface ArrowLayout {
  /** C Data Interface format string, e.g. `C` (uint8), `u` (utf8), `+s` (struct). */
  readonly format: string;
  /** Field name (empty at the top level). */
  readonly name: string;
  readonly nullable: boolean;
  readonly length: number;
  /** Number of nulls, or -1 when unknown. */
  readonly nullCount: number;
  /** Logical offset into the buffers, as in the C Data Interface. */
  readonly offset: number;
  /** Buffers in C Data Interface order; null for an absent buffer (a validity bitmap without nulls). */
  readonly buffers: readonly (BufferRange | null)[];
  readonly children: readonly ArrowLayout[];
}

// ---------------------------------------------------------------------------
// Type <-> format string

interface FixedWidth {
  /** The typed-array constructor arrow-js uses for the values. */
  readonly ctor: TypedArrayCtor;
  /** Elements of `ctor` per value. */
  readonly stride: number;
}
type TypedArrayCtor =
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

const TIME_UNITS = ['s', 'm', 'u', 'n'] as const;

/** The C Data Interface format string of an arrow-js type. */
export function formatOf(type: arrow.DataType): string {
  const T = arrow.Type;
  switch (type.typeId) {
    case T.Null:
      return 'n';
    case T.Bool:
      return 'b';
    case T.Int: {
      const t = type as arrow.Int;
      const code = { 8: 'c', 16: 's', 32: 'i', 64: 'l' }[t.bitWidth as 8 | 16 | 32 | 64];
      return t.isSigned ? code : code.toUpperCase();
    }
    case T.Float:
      return ['e', 'f', 'g'][(type as arrow.Float).precision];
    case T.Utf8:
      return 'u';
    case T.LargeUtf8:
      return 'U';
    case T.Binary:
      return 'z';
    case T.LargeBinary:
      return 'Z';
    case T.FixedSizeBinary:
      return `w:${(type as arrow.FixedSizeBinary).byteWidth}`;
    case T.Date:
      return (type as arrow.Date_).unit === arrow.DateUnit.DAY ? 'tdD' : 'tdm';
    case T.Time:
      return `tt${TIME_UNITS[(type as arrow.Time).unit]}`;
    case T.Timestamp: {
      const t = type as arrow.Timestamp;
      return `ts${TIME_UNITS[t.unit]}:${t.timezone ?? ''}`;
    }
    case T.Duration:
      return `tD${TIME_UNITS[(type as arrow.Duration).unit]}`;
    case T.List:
      return '+l';
    case T.LargeList:
      return '+L';
    case T.FixedSizeList:
      return `+w:${(type as arrow.FixedSizeList).listSize}`;
    case T.Struct:
      return '+s';
    default:
      throw new WireError(`Arrow type ${type} cannot be sent yet (supported: null, bool, integers, floats, utf8, binary and their large variants, fixed-size binary, date, time, timestamp, duration, list, large list, fixed-size list, struct)`, ErrorCode.UNSUPPORTED_TYPE);
  }
}

const PRIMITIVES: Record<string, () => arrow.DataType> = {
  n: () => new arrow.Null(),
  b: () => new arrow.Bool(),
  c: () => new arrow.Int8(),
  C: () => new arrow.Uint8(),
  s: () => new arrow.Int16(),
  S: () => new arrow.Uint16(),
  i: () => new arrow.Int32(),
  I: () => new arrow.Uint32(),
  l: () => new arrow.Int64(),
  L: () => new arrow.Uint64(),
  e: () => new arrow.Float16(),
  f: () => new arrow.Float32(),
  g: () => new arrow.Float64(),
  u: () => new arrow.Utf8(),
  U: () => new arrow.LargeUtf8(),
  z: () => new arrow.Binary(),
  Z: () => new arrow.LargeBinary(),
  tdD: () => new arrow.DateDay(),
  tdm: () => new arrow.DateMillisecond(),
  tts: () => new arrow.TimeSecond(),
  ttm: () => new arrow.TimeMillisecond(),
  ttu: () => new arrow.TimeMicrosecond(),
  ttn: () => new arrow.TimeNanosecond(),
  tDs: () => new arrow.DurationSecond(),
  tDm: () => new arrow.DurationMillisecond(),
  tDu: () => new arrow.DurationMicrosecond(),
  tDn: () => new arrow.DurationNanosecond(),
};

function positiveSize(text: string, format: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) throw new WireError(`format "${format}": size must be a positive integer`);
  return Number(text);
}

/** The arrow-js type for a layout node (children's types come from the children). */
function typeOf(layout: ArrowLayout, childFields: () => arrow.Field[]): arrow.DataType {
  const f = layout.format;
  const primitive = PRIMITIVES[f];
  if (primitive) return primitive();
  const one = () => {
    const fields = childFields();
    if (fields.length !== 1) throw new WireError(`format "${f}" needs exactly one child, got ${fields.length}`);
    return fields[0];
  };
  if (f.startsWith('w:')) return new arrow.FixedSizeBinary(positiveSize(f.slice(2), f));
  if (f.startsWith('+w:')) return new arrow.FixedSizeList(positiveSize(f.slice(3), f), one());
  if (f === '+l') return new arrow.List(one());
  if (f === '+L') return new arrow.LargeList(one());
  if (f === '+s') return new arrow.Struct(childFields());
  const ts = /^ts([smun]):(.*)$/s.exec(f);
  if (ts) return new arrow.Timestamp(TIME_UNITS.indexOf(ts[1] as (typeof TIME_UNITS)[number]), ts[2] === '' ? null : ts[2]);
  throw new WireError(`unsupported Arrow format string "${f}"`);
}

/** Typed-array constructor and stride of a fixed-width type's values buffer, if it has one. */
function fixedWidth(type: arrow.DataType): FixedWidth | undefined {
  const T = arrow.Type;
  switch (type.typeId) {
    case T.Int:
    case T.Float:
    case T.Date:
    case T.Time:
    case T.Timestamp:
    case T.Duration:
    case T.FixedSizeBinary:
      return { ctor: (type as arrow.DataType & { ArrayType: TypedArrayCtor }).ArrayType, stride: type.typeId === T.FixedSizeBinary ? (type as arrow.FixedSizeBinary).byteWidth : 1 };
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------
// Encoding

/** A layout plus the buffers to copy into the payload. */
export interface PreparedArrow {
  readonly layout: ArrowLayout;
  /** Total payload size in bytes. */
  readonly payloadSize: number;
  /** Writes the payload (buffers at their offsets, zeroed padding) into `target`, which holds at least payloadSize bytes. */
  writePayload(target: Uint8Array): void;
}

function bytesOf(view: ArrayBufferView, byteLength: number): Uint8Array {
  if (byteLength > view.byteLength) throw new WireError(`array buffer holds ${view.byteLength} bytes, ${byteLength} needed`, ErrorCode.INVALID_ARGUMENT);
  return new Uint8Array(view.buffer, view.byteOffset, byteLength);
}

/** Copies `length` bits starting at bit `offset` into a fresh bitmap starting at bit 0. */
function realignBits(bits: Uint8Array, offset: number, length: number): Uint8Array {
  if (offset % 8 === 0) return bits.subarray(offset / 8, offset / 8 + Math.ceil(length / 8));
  const out = new Uint8Array(Math.ceil(length / 8));
  for (let i = 0; i < length; i++) {
    const j = offset + i;
    if (bits[j >> 3] & (1 << (j & 7))) out[i >> 3] |= 1 << (i & 7);
  }
  return out;
}

const roundUp = (n: number) => Math.ceil(n / BUFFER_ALIGNMENT) * BUFFER_ALIGNMENT;

/**
 * Plans the payload of `data`. arrow-js keeps sliced arrays in its own shape
 * (values already shifted, bitmaps not), so the encoder always writes offset 0:
 * bitmaps of sliced arrays are realigned (a small copy), everything else is
 * written as it is.
 */
export function prepareArrow(data: arrow.Data): PreparedArrow {
  const chunks: { at: number; bytes: Uint8Array }[] = [];
  let size = 0;
  const place = (bytes: Uint8Array | null): BufferRange | null => {
    if (bytes === null) return null;
    const range = { offset: size, length: bytes.byteLength };
    chunks.push({ at: size, bytes });
    size = roundUp(size + bytes.byteLength);
    return range;
  };

  const walk = (d: arrow.Data, name: string, nullable: boolean, depth: number): ArrowLayout => {
    if (depth > MAX_DEPTH) throw new WireError('Arrow data nested too deeply', ErrorCode.INVALID_ARGUMENT);
    const type = d.type as arrow.DataType;
    const format = formatOf(type);
    const length = d.length;
    const nullCount = d.nullCount;
    const T = arrow.Type;
    const buffers: (BufferRange | null)[] = [];
    const children: ArrowLayout[] = [];
    if (type.typeId !== T.Null) {
      const bitmap = nullCount > 0 && d.nullBitmap && d.nullBitmap.length > 0 ? realignBits(d.nullBitmap, d.offset, length) : null;
      buffers.push(place(bitmap));
    }
    const fixed = fixedWidth(type);
    if (fixed) {
      buffers.push(place(bytesOf(d.values as ArrayBufferView, length * fixed.stride * fixed.ctor.BYTES_PER_ELEMENT)));
    } else {
      switch (type.typeId) {
        case T.Null:
          break;
        case T.Bool:
          // arrow-js never shifts a boolean values bitmap when slicing.
          buffers.push(place(realignBits(d.values as Uint8Array, d.offset, length)));
          break;
        case T.Utf8:
        case T.LargeUtf8:
        case T.Binary:
        case T.LargeBinary: {
          const offsets = d.valueOffsets as Int32Array | BigInt64Array;
          const end = length === 0 ? 0 : Number(offsets[length]);
          buffers.push(place(bytesOf(offsets, (length + 1) * offsets.BYTES_PER_ELEMENT)));
          buffers.push(place(bytesOf(d.values as Uint8Array, end)));
          break;
        }
        case T.List:
        case T.LargeList: {
          const offsets = d.valueOffsets as Int32Array | BigInt64Array;
          buffers.push(place(bytesOf(offsets, (length + 1) * offsets.BYTES_PER_ELEMENT)));
          const field = (type as arrow.List).children[0];
          children.push(walk(d.children[0], field.name, field.nullable, depth + 1));
          break;
        }
        case T.FixedSizeList: {
          const field = (type as arrow.FixedSizeList).children[0];
          children.push(walk(d.children[0], field.name, field.nullable, depth + 1));
          break;
        }
        case T.Struct: {
          const fields = (type as arrow.Struct).children;
          fields.forEach((field, i) => children.push(walk(d.children[i], field.name, field.nullable, depth + 1)));
          break;
        }
      }
    }
    return { format, name, nullable, length, nullCount, offset: 0, buffers, children };
  };

  const layout = walk(data, '', true, 0);
  const payloadSize = chunks.length === 0 ? 0 : chunks[chunks.length - 1].at + chunks[chunks.length - 1].bytes.byteLength;
  return {
    layout,
    payloadSize,
    writePayload(target: Uint8Array) {
      let end = 0;
      for (const { at, bytes } of chunks) {
        target.fill(0, end, at); // padding is zero, so equal arrays give equal bytes
        target.set(bytes, at);
        end = at + bytes.byteLength;
      }
    },
  };
}

/** Writes a layout tree (see docs/protocol.md, "Arrow layout"). */
export function writeLayout(writer: ByteWriter, layout: ArrowLayout): void {
  writer.str16(layout.format).str16(layout.name).u8(layout.nullable ? 1 : 0);
  writer.u64(layout.length).i64(layout.nullCount).u64(layout.offset);
  writer.u8(layout.buffers.length);
  for (const b of layout.buffers) {
    if (b === null) writer.u64(ABSENT).u64(0);
    else writer.u64(b.offset).u64(b.length);
  }
  writer.u8(layout.children.length);
  for (const child of layout.children) writeLayout(writer, child);
}

/** Reads a layout tree; the ranges are checked against the payload later, by decodeArrow. */
export function readLayout(reader: ByteReader, depth = 0): ArrowLayout {
  if (depth > MAX_DEPTH) throw new WireError('Arrow layout nested too deeply');
  const format = reader.str16('format');
  const name = reader.str16('field name');
  const flags = reader.u8('nullable flag');
  if (flags > 1) throw new WireError(`invalid nullable flag ${flags}`);
  const length = reader.size('array length');
  const nullCountRaw = reader.i64('null count');
  if (nullCountRaw < -1n || nullCountRaw > BigInt(length)) throw new WireError(`null count ${nullCountRaw} is out of range for length ${length}`);
  const offset = reader.size('array offset');
  const bufferCount = reader.u8('buffer count');
  const buffers: (BufferRange | null)[] = [];
  for (let i = 0; i < bufferCount; i++) {
    const at = reader.u64('buffer offset');
    const len = reader.size('buffer length');
    if (at === ABSENT) buffers.push(null);
    else if (at > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(`buffer offset ${at} is out of range`);
    else buffers.push({ offset: Number(at), length: len });
  }
  const childCount = reader.u8('child count');
  const children: ArrowLayout[] = [];
  for (let i = 0; i < childCount; i++) children.push(readLayout(reader, depth + 1));
  return { format, name, nullable: flags === 1, length, nullCount: Number(nullCountRaw), offset, buffers, children };
}

// ---------------------------------------------------------------------------
// Decoding

/** A typed view of `range` in `payload`; copies only if the bytes are not aligned for the element type. */
function view<C extends TypedArrayCtor>(ctor: C, payload: Uint8Array, range: BufferRange, needBytes: number, what: string): InstanceType<C> {
  if (range.offset + range.length > payload.byteLength) {
    throw new WireError(`${what}: buffer [${range.offset}, ${range.offset + range.length}) lies outside the ${payload.byteLength}-byte payload`);
  }
  if (range.length < needBytes) throw new WireError(`${what}: buffer of ${range.length} bytes is shorter than the ${needBytes} bytes its length requires`);
  const width = ctor.BYTES_PER_ELEMENT;
  const count = Math.floor(needBytes / width);
  const start = payload.byteOffset + range.offset;
  if (start % width === 0) return new ctor(payload.buffer as ArrayBuffer, start, count) as InstanceType<C>;
  // Only reachable for a misaligned ZeroMQ frame; shared-memory payloads are page-aligned.
  const copy = new Uint8Array(count * width);
  copy.set(payload.subarray(range.offset, range.offset + count * width));
  return new ctor(copy.buffer, 0, count) as InstanceType<C>;
}

function expectBuffers(layout: ArrowLayout, n: number, what: string): void {
  if (layout.buffers.length !== n) throw new WireError(`${what}: format "${layout.format}" has ${n} buffers, got ${layout.buffers.length}`);
}

function required(range: BufferRange | null, what: string): BufferRange {
  if (range === null) throw new WireError(`${what} is absent`);
  return range;
}

/**
 * Builds arrow-js data over `payload` as `layout` describes, checking every
 * range and size first: a hostile layout raises WireError, it never reads
 * outside the payload.
 */
export function decodeArrow(layout: ArrowLayout, payload: Uint8Array): arrow.Data {
  return decodeNode(layout, payload, '$', 0).data;
}

/**
 * A decoder for payloads that all have `layout` (one input's messages usually do):
 * decodeArrow, with the type built once and, for the common flat primitive arrays
 * without nulls, a direct path that checks the one range and builds the view. It
 * saves tens of microseconds per message while V8 still interprets the code, as it
 * does at 100 messages a second.
 */
export function arrowDecoder(layout: ArrowLayout): (payload: Uint8Array) => arrow.Data {
  const general = (payload: Uint8Array) => decodeArrow(layout, payload);
  const [bitmap, values] = layout.buffers;
  if (layout.children.length > 0 || layout.offset !== 0 || !PRIMITIVES[layout.format]) return general;
  const type = typeOf(layout, () => []);
  const length = layout.length;
  if (type.typeId === arrow.Type.Null && layout.buffers.length === 0) return () => arrow.makeData({ type: type as arrow.Null, length });
  const fixed = fixedWidth(type);
  if (!fixed || layout.buffers.length !== 2 || bitmap !== null || values === null) return general;
  const { ctor } = fixed;
  const count = length * fixed.stride;
  const need = count * ctor.BYTES_PER_ELEMENT;
  return (payload) => {
    const start = payload.byteOffset + values.offset;
    // Anything unusual (a short or misaligned buffer) takes the general path, which says what is wrong or copies.
    if (values.length < need || values.offset + need > payload.byteLength || start % ctor.BYTES_PER_ELEMENT !== 0) return general(payload);
    return new arrow.Data(type, 0, length, 0, [undefined, new ctor(payload.buffer as ArrayBuffer, start, count), undefined] as never);
  };
}

function decodeNode(layout: ArrowLayout, payload: Uint8Array, path: string, depth: number): { data: arrow.Data; field: arrow.Field } {
  if (depth > MAX_DEPTH) throw new WireError('Arrow layout nested too deeply');
  const { length, offset } = layout;
  const total = offset + length; // elements the buffers must cover
  if (!Number.isSafeInteger(total)) throw new WireError(`${path}: offset + length overflows`);
  const childResults: { data: arrow.Data; field: arrow.Field }[] = [];
  const childFields = () => childResults.map((c) => c.field);
  const decodeChildren = () =>
    layout.children.forEach((c, i) => childResults.push(decodeNode(c, payload, `${path}.${c.name || i}`, depth + 1)));
  const T = arrow.Type;
  const isStructural = layout.format.startsWith('+');
  if (isStructural) decodeChildren();
  else if (layout.children.length > 0) throw new WireError(`${path}: format "${layout.format}" has no children, got ${layout.children.length}`);
  const type = typeOf(layout, childFields);
  const bitmapOf = (range: BufferRange | null) =>
    range === null ? undefined : view(Uint8Array, payload, range, Math.ceil(total / 8), `${path} validity bitmap`);
  const nullCountFor = (bitmap: Uint8Array | undefined) => (bitmap === undefined ? 0 : offset === 0 ? layout.nullCount : -1);

  let data: arrow.Data;
  const fixed = fixedWidth(type);
  if (type.typeId === T.Null) {
    expectBuffers(layout, 0, path);
    data = arrow.makeData({ type: type as arrow.Null, length: total });
  } else if (fixed) {
    expectBuffers(layout, 2, path);
    const nullBitmap = bitmapOf(layout.buffers[0]);
    const values = view(fixed.ctor, payload, required(layout.buffers[1], `${path} values`), total * fixed.stride * fixed.ctor.BYTES_PER_ELEMENT, `${path} values`);
    data = new arrow.Data(type, 0, total, nullCountFor(nullBitmap), [undefined, values, nullBitmap] as never);
  } else {
    switch (type.typeId) {
      case T.Bool: {
        expectBuffers(layout, 2, path);
        const nullBitmap = bitmapOf(layout.buffers[0]);
        const values = view(Uint8Array, payload, required(layout.buffers[1], `${path} values`), Math.ceil(total / 8), `${path} values`);
        data = new arrow.Data(type, 0, total, nullCountFor(nullBitmap), [undefined, values, nullBitmap] as never);
        break;
      }
      case T.Utf8:
      case T.LargeUtf8:
      case T.Binary:
      case T.LargeBinary: {
        expectBuffers(layout, 3, path);
        const nullBitmap = bitmapOf(layout.buffers[0]);
        const large = type.typeId === T.LargeUtf8 || type.typeId === T.LargeBinary;
        const ctor = large ? BigInt64Array : Int32Array;
        const offsets = view(ctor, payload, required(layout.buffers[1], `${path} offsets`), (total + 1) * ctor.BYTES_PER_ELEMENT, `${path} offsets`);
        const dataRange = required(layout.buffers[2], `${path} data`);
        const first = Number(offsets[0]);
        const last = Number(offsets[total]);
        if (first < 0 || last < first || last > dataRange.length) throw new WireError(`${path}: offsets [${first}, ${last}] exceed the ${dataRange.length}-byte data buffer`);
        const bytes = view(Uint8Array, payload, dataRange, dataRange.length, `${path} data`);
        data = new arrow.Data(type, 0, total, nullCountFor(nullBitmap), [offsets, bytes, nullBitmap] as never);
        break;
      }
      case T.List:
      case T.LargeList: {
        expectBuffers(layout, 2, path);
        const nullBitmap = bitmapOf(layout.buffers[0]);
        const ctor = type.typeId === T.LargeList ? BigInt64Array : Int32Array;
        const offsets = view(ctor, payload, required(layout.buffers[1], `${path} offsets`), (total + 1) * ctor.BYTES_PER_ELEMENT, `${path} offsets`);
        const child = childResults[0].data;
        const first = Number(offsets[0]);
        const last = Number(offsets[total]);
        if (first < 0 || last < first || last > child.length) throw new WireError(`${path}: offsets [${first}, ${last}] exceed the child's ${child.length} elements`);
        data = new arrow.Data(type, 0, total, nullCountFor(nullBitmap), [offsets, undefined, nullBitmap] as never, [child]);
        break;
      }
      case T.FixedSizeList: {
        expectBuffers(layout, 1, path);
        const nullBitmap = bitmapOf(layout.buffers[0]);
        const child = childResults[0].data;
        const listSize = (type as arrow.FixedSizeList).listSize;
        if (child.length < total * listSize) throw new WireError(`${path}: child has ${child.length} elements, ${total * listSize} needed`);
        data = new arrow.Data(type, 0, total, nullCountFor(nullBitmap), [undefined, undefined, nullBitmap] as never, [child]);
        break;
      }
      case T.Struct: {
        expectBuffers(layout, 1, path);
        const nullBitmap = bitmapOf(layout.buffers[0]);
        for (const c of childResults) {
          if (c.data.length < total) throw new WireError(`${path}: field "${c.field.name}" has ${c.data.length} elements, ${total} needed`);
        }
        data = new arrow.Data(type, 0, total, nullCountFor(nullBitmap), [undefined, undefined, nullBitmap] as never, childResults.map((c) => c.data));
        break;
      }
      default:
        throw new WireError(`${path}: unsupported Arrow format string "${layout.format}"`);
    }
  }
  if (offset !== 0) data = data.slice(offset, length);
  return { data, field: new arrow.Field(layout.name, type, layout.nullable) };
}

// ---------------------------------------------------------------------------
// What sendOutput accepts

/** Infers an Arrow type for plain JavaScript values: integers become int64, other numbers float64. */
function inferType(values: readonly unknown[], depth = 0): arrow.DataType {
  if (depth > MAX_DEPTH) throw new WireError('value nested too deeply', ErrorCode.INVALID_ARGUMENT);
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return new arrow.Null();
  if (present.every((v) => typeof v === 'boolean')) return new arrow.Bool();
  if (present.every((v) => typeof v === 'bigint')) return new arrow.Int64();
  if (present.every((v) => typeof v === 'number')) return present.every((v) => Number.isSafeInteger(v)) ? new arrow.Int64() : new arrow.Float64();
  if (present.every((v) => typeof v === 'string')) return new arrow.Utf8();
  if (present.every((v) => v instanceof Uint8Array)) return new arrow.Binary();
  if (present.every((v) => Array.isArray(v))) {
    return new arrow.List(new arrow.Field('item', inferType((present as unknown[][]).flat(), depth + 1), true));
  }
  if (present.every((v) => typeof v === 'object' && !ArrayBuffer.isView(v) && !Array.isArray(v))) {
    const keys = [...new Set(present.flatMap((v) => Object.keys(v as object)))];
    return new arrow.Struct(
      keys.map((k) => new arrow.Field(k, inferType(present.map((v) => (v as Record<string, unknown>)[k]), depth + 1), true)),
    );
  }
  throw new WireError('cannot infer an Arrow type for an array mixing different kinds of values; pass an arrow-js Vector instead', ErrorCode.UNSUPPORTED_TYPE);
}

/** arrow-js builds int64 columns from bigints only: converts the JS numbers inferType turned into int64. */
function coerce(value: unknown, type: arrow.DataType): unknown {
  if (value === null || value === undefined) return null;
  switch (type.typeId) {
    case arrow.Type.Int:
      return typeof value === 'number' ? BigInt(value) : value;
    case arrow.Type.List:
      return (value as unknown[]).map((v) => coerce(v, (type as arrow.List).children[0].type));
    case arrow.Type.Struct:
      return Object.fromEntries((type as arrow.Struct).children.map((f) => [f.name, coerce((value as Record<string, unknown>)[f.name], f.type)]));
    default:
      return value;
  }
}

/**
 * Turns what a user hands to sendOutput into Arrow data, without copying
 * typed arrays: arrow-js `Vector`/`Data` as they are; typed arrays, `Buffer`,
 * `ArrayBuffer` as primitive arrays over the same memory; plain arrays by type
 * inference (integers → int64, numbers → float64, strings → utf8, objects → struct).
 */
export function toArrowData(value: unknown): arrow.Data {
  if (value instanceof arrow.Data) return value;
  if (value instanceof arrow.Vector) {
    if (value.data.length === 1) return value.data[0];
    if (value.data.length === 0) return arrow.makeData({ type: value.type, length: 0 } as never);
    // Several chunks: concatenate (this one copies).
    return arrow.vectorFromArray([...value], value.type).data[0];
  }
  const typed: [new (...args: never[]) => ArrayBufferView, () => arrow.DataType][] = [
    [Uint8Array, () => new arrow.Uint8()],
    [Int8Array, () => new arrow.Int8()],
    [Uint16Array, () => new arrow.Uint16()],
    [Int16Array, () => new arrow.Int16()],
    [Uint32Array, () => new arrow.Uint32()],
    [Int32Array, () => new arrow.Int32()],
    [Float32Array, () => new arrow.Float32()],
    [Float64Array, () => new arrow.Float64()],
    [BigInt64Array, () => new arrow.Int64()],
    [BigUint64Array, () => new arrow.Uint64()],
  ];
  for (const [ctor, type] of typed) {
    if (value instanceof ctor) {
      const t = type();
      return arrow.makeData({ type: t as arrow.Int, data: value as never, length: (value as unknown as { length: number }).length });
    }
  }
  if (value instanceof Uint8ClampedArray) return toArrowData(new Uint8Array(value.buffer, value.byteOffset, value.length));
  if (value instanceof ArrayBuffer) return toArrowData(new Uint8Array(value));
  if (Array.isArray(value)) {
    const type = inferType(value);
    return arrow.vectorFromArray(value.map((v: unknown) => coerce(v, type)), type).data[0];
  }
  if (typeof value === 'string') return toArrowData([value]);
  throw new WireError(
    `cannot send a ${value === null ? 'null' : typeof value} value: pass an arrow-js Vector or Data, a typed array, a Buffer/Uint8Array, an ArrayBuffer, a string or a plain array`,
    ErrorCode.UNSUPPORTED_TYPE,
  );
}
