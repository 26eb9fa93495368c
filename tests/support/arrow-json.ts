/**
 * The JSON description of Arrow values used by the golden vectors
 * (tests/vectors/README.md states the conventions), and its two directions:
 * `fromJson` builds arrow-js data from a description, `toJson` reads decoded
 * arrow-js data back into one. They share no code with protocol/arrow.ts, so a
 * vector checks the codec against an independent reading of the same values.
 */
import * as arrow from 'apache-arrow';

/** An Arrow type as the vectors describe it: a C Data Interface format string and its children. */
export interface TypeJson {
  readonly format: string;
  readonly name?: string;
  readonly nullable?: boolean;
  readonly children?: readonly TypeJson[];
}

/** A JSON value: numbers, strings (64-bit integers, hex bytes, text), booleans, arrays, objects, null. */
export type ValueJson = null | boolean | number | string | readonly ValueJson[] | { readonly [key: string]: ValueJson };

const UNITS: Record<string, arrow.TimeUnit> = { s: arrow.TimeUnit.SECOND, m: arrow.TimeUnit.MILLISECOND, u: arrow.TimeUnit.MICROSECOND, n: arrow.TimeUnit.NANOSECOND };

function field(t: TypeJson): arrow.Field {
  return new arrow.Field(t.name ?? '', dataType(t), t.nullable ?? true);
}

export function dataType(t: TypeJson): arrow.DataType {
  const f = t.format;
  const kids = (t.children ?? []).map(field);
  const simple: Record<string, () => arrow.DataType> = {
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
    '+l': () => new arrow.List(kids[0]),
    '+L': () => new arrow.LargeList(kids[0]),
    '+s': () => new arrow.Struct(kids),
  };
  if (simple[f]) return simple[f]();
  let m: RegExpExecArray | null;
  if ((m = /^w:(\d+)$/.exec(f))) return new arrow.FixedSizeBinary(Number(m[1]));
  if ((m = /^\+w:(\d+)$/.exec(f))) return new arrow.FixedSizeList(Number(m[1]), kids[0]);
  if ((m = /^tt([smun])$/.exec(f))) return new arrow.Time(UNITS[m[1]], m[1] === 's' || m[1] === 'm' ? 32 : 64);
  if ((m = /^ts([smun]):(.*)$/.exec(f))) return new arrow.Timestamp(UNITS[m[1]], m[2] === '' ? null : m[2]);
  if ((m = /^tD([smun])$/.exec(f))) return new arrow.Duration(UNITS[m[1]]);
  throw new Error(`vector type "${f}" is not known to the test support`);
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
const unhex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

function floatToHalf(value: number): number {
  // Only what the vectors use: values exactly representable as normal halves, or zero.
  if (value === 0) return Object.is(value, -0) ? 0x8000 : 0;
  const sign = value < 0 ? 0x8000 : 0;
  let v = Math.abs(value);
  let exp = Math.floor(Math.log2(v));
  v = v / 2 ** exp - 1;
  exp += 15;
  if (exp <= 0 || exp >= 31) throw new Error(`${value} is not a normal float16`);
  const mant = v * 1024;
  if (!Number.isInteger(mant)) throw new Error(`${value} is not exactly representable as float16`);
  return sign | (exp << 10) | mant;
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function validity(values: readonly ValueJson[]): { bitmap: Uint8Array | undefined; nullCount: number } {
  const nullCount = values.filter((v) => v === null).length;
  if (nullCount === 0) return { bitmap: undefined, nullCount };
  const bitmap = new Uint8Array(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v !== null) bitmap[i >> 3] |= 1 << (i & 7);
  });
  return { bitmap, nullCount };
}

/** Builds arrow-js data holding `values` of type `t`. */
export function fromJson(t: TypeJson, values: readonly ValueJson[]): arrow.Data {
  const type = dataType(t);
  const n = values.length;
  const { bitmap, nullCount } = validity(values);
  const make = (offsets: unknown, data: unknown, children: arrow.Data[] = []) =>
    new arrow.Data(type, 0, n, nullCount, [offsets, data, bitmap] as never, children);
  const f = t.format;
  if (f === 'n') return arrow.makeData({ type: type as arrow.Null, length: n });
  if (f === 'b') {
    const bits = new Uint8Array(Math.ceil(n / 8));
    values.forEach((v, i) => {
      if (v === true) bits[i >> 3] |= 1 << (i & 7);
    });
    return make(undefined, bits);
  }
  if (['u', 'U', 'z', 'Z'].includes(f)) {
    const large = f === 'U' || f === 'Z';
    const parts = values.map((v) => (v === null ? new Uint8Array(0) : f === 'u' || f === 'U' ? new TextEncoder().encode(v as string) : unhex(v as string)));
    const offsets = large ? new BigInt64Array(n + 1) : new Int32Array(n + 1);
    let at = 0;
    parts.forEach((p, i) => {
      at += p.length;
      offsets[i + 1] = (large ? BigInt(at) : at) as never;
    });
    const data = new Uint8Array(at);
    parts.reduce((pos, p) => (data.set(p, pos), pos + p.length), 0);
    return make(offsets, data);
  }
  if (f === '+l' || f === '+L') {
    const large = f === '+L';
    const offsets = large ? new BigInt64Array(n + 1) : new Int32Array(n + 1);
    const flat: ValueJson[] = [];
    values.forEach((v, i) => {
      if (v !== null) flat.push(...(v as ValueJson[]));
      offsets[i + 1] = (large ? BigInt(flat.length) : flat.length) as never;
    });
    return make(offsets, undefined, [fromJson(t.children![0], flat)]);
  }
  if (f.startsWith('+w:')) {
    const size = Number(f.slice(3));
    const flat = values.flatMap((v) => (v === null ? Array<ValueJson>(size).fill(null) : (v as ValueJson[])));
    return make(undefined, undefined, [fromJson(t.children![0], flat)]);
  }
  if (f === '+s') {
    const children = t.children!.map((c) => fromJson(c, values.map((v) => (v === null ? null : (v as Record<string, ValueJson>)[c.name ?? '']))));
    return make(undefined, undefined, children);
  }
  // Fixed-width values: the storage type's typed array, zero where null.
  const ctor = (type as unknown as { ArrayType: new (n: number) => ArrayLike<number | bigint> & { [i: number]: number | bigint } }).ArrayType;
  if (f.startsWith('w:')) {
    const width = Number(f.slice(2));
    const bytes = new Uint8Array(n * width);
    values.forEach((v, i) => v !== null && bytes.set(unhex(v as string), i * width));
    return make(undefined, bytes);
  }
  const typed = new ctor(n);
  values.forEach((v, i) => {
    if (v === null) return;
    if (typed instanceof BigInt64Array || typed instanceof BigUint64Array) typed[i] = BigInt(v as string);
    else typed[i] = f === 'e' ? floatToHalf(v as number) : (v as number);
  });
  return make(undefined, typed);
}

/** Reads decoded arrow-js data (sliced or not) back into its JSON description. */
export function toJson(data: arrow.Data): ValueJson[] {
  const type = data.type as arrow.DataType;
  const T = arrow.Type;
  const out: ValueJson[] = [];
  const children = data.children.map((c) => toJson(c));
  for (let i = 0; i < data.length; i++) {
    if (type.typeId === T.Null || !data.getValid(i)) {
      out.push(null);
      continue;
    }
    switch (type.typeId) {
      case T.Bool: {
        const j = data.offset + i;
        out.push(((data.values as Uint8Array)[j >> 3] & (1 << (j & 7))) !== 0);
        break;
      }
      case T.Utf8:
      case T.LargeUtf8:
      case T.Binary:
      case T.LargeBinary: {
        const offsets = data.valueOffsets as Int32Array | BigInt64Array;
        const bytes = (data.values as Uint8Array).subarray(Number(offsets[i]), Number(offsets[i + 1]));
        out.push(type.typeId === T.Utf8 || type.typeId === T.LargeUtf8 ? new TextDecoder().decode(bytes) : hex(bytes));
        break;
      }
      case T.List:
      case T.LargeList: {
        const offsets = data.valueOffsets as Int32Array | BigInt64Array;
        out.push(children[0].slice(Number(offsets[i]), Number(offsets[i + 1])));
        break;
      }
      case T.FixedSizeList: {
        const size = (type as arrow.FixedSizeList).listSize;
        out.push(children[0].slice(i * size, (i + 1) * size));
        break;
      }
      case T.Struct:
        out.push(Object.fromEntries((type as arrow.Struct).children.map((f, k) => [f.name, children[k][i]])));
        break;
      case T.FixedSizeBinary: {
        const width = (type as arrow.FixedSizeBinary).byteWidth;
        out.push(hex((data.values as Uint8Array).subarray(i * width, (i + 1) * width)));
        break;
      }
      default: {
        // arrow-js shifts fixed-width values when slicing, so index i is element i.
        const v = (data.values as ArrayLike<number | bigint>)[i];
        if (typeof v === 'bigint') out.push(v.toString());
        else out.push(type.typeId === T.Float && (type as arrow.Float).precision === arrow.Precision.HALF ? halfToFloat(v) : v);
      }
    }
  }
  return out;
}
