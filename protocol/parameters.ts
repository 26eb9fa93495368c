/**
 * User metadata parameters: dora's `MetadataParameters` — a map from string
 * keys to booleans, integers, floats, strings or lists of those.
 *
 * On the wire each value carries a tag, so an integer stays an integer in C and
 * Python even though JavaScript has one number type: a JS number that is an
 * integer is sent as an integer, any other number as a float. Integers come
 * back as `number` when they are safe integers and as `bigint` otherwise.
 * A `Date` travels as a timestamp (nanoseconds since the Unix epoch).
 */
import { ErrorCode, MAX_PARAMETERS, ParameterTag } from './facts';
import { ByteReader, ByteWriter, WireError } from './wire';

/** Wire tags of parameter values (protocol/facts.json, docs/protocol.md). */
export { ParameterTag } from './facts';

/** A value of a message parameter: what dora's metadata parameters can hold. */
export type ParameterValue =
  | boolean
  | number
  | bigint
  | string
  | Date
  | readonly boolean[]
  | readonly (number | bigint)[]
  | readonly string[];

/** The user parameters of a message, by name (sent with `sendOutput`, received in `event.metadata`). */
export type Parameters = Readonly<Record<string, ParameterValue>>;

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

function toInt64(key: string, value: number | bigint): number | bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  const big = BigInt(value);
  if (big < I64_MIN || big > I64_MAX) throw new WireError(`parameter "${key}": ${value} does not fit a 64-bit integer`, ErrorCode.INVALID_ARGUMENT);
  return big;
}


const isInteger = (v: unknown): v is number | bigint => typeof v === 'bigint' || Number.isInteger(v);

/** Appends `parameters` as `u32 count` followed by `str16 key, u8 tag, value` entries. */
export function writeParameters(writer: ByteWriter, parameters: Parameters): void {
  let count = 0;
  for (const key in parameters) if (parameters[key] !== undefined) count++;
  if (count > MAX_PARAMETERS) throw new WireError(`too many parameters (${count}, at most ${MAX_PARAMETERS})`, ErrorCode.INVALID_ARGUMENT);
  writer.u32(count);
  for (const key in parameters) {
    const value = parameters[key];
    if (value === undefined) continue;
    writer.str16(key);
    if (typeof value === 'boolean') writer.u8(ParameterTag.Bool).u8(value ? 1 : 0);
    else if (typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value))) writer.u8(ParameterTag.Int).i64(toInt64(key, value));
    else if (typeof value === 'number') writer.u8(ParameterTag.Float).f64(value);
    else if (typeof value === 'string') writer.u8(ParameterTag.String).str32(value);
    else if (value instanceof Date) {
      if (Number.isNaN(value.getTime())) throw new WireError(`parameter "${key}": invalid Date`, ErrorCode.INVALID_ARGUMENT);
      writer.u8(ParameterTag.Timestamp).i64(BigInt(value.getTime()) * 1_000_000n);
    }
    else if (Array.isArray(value)) {
      const list = value as readonly unknown[];
      if (list.every((v) => typeof v === 'boolean')) {
        writer.u8(ParameterTag.ListBool).u32(list.length);
        for (const v of list) writer.u8(v ? 1 : 0);
      } else if (list.every(isInteger)) {
        writer.u8(ParameterTag.ListInt).u32(list.length);
        for (const v of list) writer.i64(toInt64(key, v));
      } else if (list.every((v) => typeof v === 'number')) {
        writer.u8(ParameterTag.ListFloat).u32(list.length);
        for (const v of list) writer.f64(v);
      } else if (list.every((v) => typeof v === 'string')) {
        writer.u8(ParameterTag.ListString).u32(list.length);
        for (const v of list) writer.str32(v);
      } else {
        throw new WireError(`parameter "${key}": a list must hold only booleans, only numbers or only strings`, ErrorCode.UNSUPPORTED_TYPE);
      }
    } else {
      throw new WireError(`parameter "${key}": ${typeof value} values are not supported (use boolean, number, bigint, string or a list of those)`, ErrorCode.UNSUPPORTED_TYPE);
    }
  }
}

/** Reads what writeParameters wrote. */
export function readParameters(reader: ByteReader): Parameters {
  const count = reader.u32('parameter count');
  if (count > MAX_PARAMETERS) throw new WireError(`too many parameters (${count})`);
  const out: Record<string, ParameterValue> = {};
  for (let i = 0; i < count; i++) {
    const key = reader.str16('parameter key');
    const tag = reader.u8('parameter tag');
    const what = 'parameter value';
    const listLength = () => {
      const n = reader.u32(what);
      // Every element takes at least one byte: a length beyond the frame is a lie.
      if (n > reader.remaining) throw new WireError(`parameter "${key}": list of ${n} elements exceeds the frame`);
      return n;
    };
    switch (tag) {
      case ParameterTag.Bool:
        out[key] = reader.u8(what) !== 0;
        break;
      case ParameterTag.Int:
        out[key] = reader.int(what);
        break;
      case ParameterTag.Float:
        out[key] = reader.f64(what);
        break;
      case ParameterTag.String:
        out[key] = reader.str32(what);
        break;
      case ParameterTag.Timestamp:
        // Date keeps milliseconds; finer digits are dropped.
        out[key] = new Date(Number(reader.i64(what) / 1_000_000n));
        break;
      case ParameterTag.ListBool:
        out[key] = Array.from({ length: listLength() }, () => reader.u8(what) !== 0);
        break;
      case ParameterTag.ListInt:
        out[key] = Array.from({ length: listLength() }, () => reader.int(what));
        break;
      case ParameterTag.ListFloat:
        out[key] = Array.from({ length: listLength() }, () => reader.f64(what));
        break;
      case ParameterTag.ListString:
        out[key] = Array.from({ length: listLength() }, () => reader.str32(what));
        break;
      default:
        throw new WireError(`parameter "${key}" has unknown tag ${tag}`);
    }
  }
  return out;
}
