/**
 * Bounds-checked little-endian byte reading and writing for the binary wire
 * messages. A reader never reads past its frame: anything short or out of range
 * raises a WireError, which receivers log and drop instead of crashing.
 */
import { DoraError } from './errors';
import { ErrorCode } from './facts';

/**
 * A frame could not be decoded (truncated, malformed: MALFORMED_MESSAGE, or from another
 * protocol version: PROTOCOL_VERSION), or a value cannot be encoded (UNSUPPORTED_TYPE,
 * INVALID_ARGUMENT).
 */
export class WireError extends DoraError {
  override name = 'WireError';
  constructor(message: string, code: ErrorCode = ErrorCode.MALFORMED_MESSAGE) {
    super(message, { code });
  }
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** Strings up to this many characters take the short paths below (keys, formats, field names). */
const SHORT_STRING = 32;

/**
 * Short strings read recently, by content: a node reads the same keys and formats in
 * every message, and a TextDecoder call costs microseconds while V8 still interprets
 * the code (as it does at 100 messages a second).
 */
const recentStrings: { bytes: Uint8Array; value: string }[] = new Array(64);

function shortString(bytes: Uint8Array, what: string): string {
  let hash = bytes.length;
  for (let i = 0; i < bytes.length; i++) hash = (hash * 31 + bytes[i]) & 63;
  const hit = recentStrings[hash];
  if (hit && hit.bytes.length === bytes.length) {
    let same = true;
    for (let i = 0; i < bytes.length && same; i++) same = hit.bytes[i] === bytes[i];
    if (same) return hit.value;
  }
  const value = decodeUtf8(bytes, what);
  recentStrings[hash] = { bytes: bytes.slice(), value };
  return value;
}

/** Appends little-endian values to a growable buffer. */
export class ByteWriter {
  private bytes: Uint8Array;
  private view: DataView;
  private at = 0;

  constructor(capacity = 256) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  get length(): number {
    return this.at;
  }

  private reserve(n: number): number {
    const start = this.at;
    if (start + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, start + n));
      grown.set(this.bytes.subarray(0, start));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.at += n;
    return start;
  }

  u8(value: number): this {
    const at = this.reserve(1);
    this.view.setUint8(at, value);
    return this;
  }
  u16(value: number): this {
    const at = this.reserve(2);
    this.view.setUint16(at, value, true);
    return this;
  }
  u32(value: number): this {
    const at = this.reserve(4);
    this.view.setUint32(at, value, true);
    return this;
  }
  /** An unsigned 64-bit value given as a non-negative safe integer or bigint. */
  u64(value: number | bigint): this {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(value), true);
    return this;
  }
  i64(value: number | bigint): this {
    const at = this.reserve(8);
    if (typeof value === 'number' && Number.isSafeInteger(value)) {
      // Two 32-bit halves: no BigInt on the hot path (costly while V8 still interprets it).
      const high = Math.floor(value / 0x1_0000_0000);
      this.view.setUint32(at, value - high * 0x1_0000_0000, true);
      this.view.setInt32(at + 4, high, true);
    } else {
      this.view.setBigInt64(at, BigInt(value), true);
    }
    return this;
  }
  f64(value: number): this {
    const at = this.reserve(8);
    this.view.setFloat64(at, value, true);
    return this;
  }
  raw(bytes: Uint8Array): this {
    const at = this.reserve(bytes.length); // before touching this.bytes: reserve() may replace it
    this.bytes.set(bytes, at);
    return this;
  }
  /** A UTF-8 string prefixed by its byte length as u16 (names, formats, keys). */
  str16(value: string): this {
    if (value.length <= SHORT_STRING) {
      // Short ASCII strings (keys, formats) are written in place, without a TextEncoder call.
      const at = this.reserve(2 + value.length);
      let ascii = true;
      for (let i = 0; i < value.length; i++) {
        const c = value.charCodeAt(i);
        if (c > 0x7f) {
          ascii = false;
          break;
        }
        this.bytes[at + 2 + i] = c;
      }
      if (ascii) {
        this.view.setUint16(at, value.length, true);
        return this;
      }
      this.at = at;
    }
    const encoded = textEncoder.encode(value);
    if (encoded.length > 0xffff) throw new WireError(`string of ${encoded.length} bytes is too long for a u16-prefixed field`, ErrorCode.INVALID_ARGUMENT);
    return this.u16(encoded.length).raw(encoded);
  }
  /** A UTF-8 string prefixed by its byte length as u32 (parameter values). */
  str32(value: string): this {
    const encoded = textEncoder.encode(value);
    return this.u32(encoded.length).raw(encoded);
  }

  /** The bytes written so far, as a view of the writer's buffer (valid until the next write or reset). */
  written(): Uint8Array {
    return this.bytes.subarray(0, this.at);
  }

  /** Starts over, keeping the buffer. */
  reset(): this {
    this.at = 0;
    return this;
  }

  /** The bytes written so far, in a buffer of exactly that size. */
  finish(): Uint8Array {
    return this.bytes.slice(0, this.at);
  }
}

/** Reads little-endian values from one frame, refusing to read past its end. */
export class ByteReader {
  private readonly view: DataView;
  private at = 0;
  private limit: number;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.limit = bytes.length;
  }

  /** Reads bytes[start, end) from now on (one reader can serve a reused buffer: no allocation per message). */
  select(start: number, end: number): this {
    this.at = start;
    this.limit = end;
    return this;
  }

  get offset(): number {
    return this.at;
  }
  get remaining(): number {
    return this.limit - this.at;
  }

  private take(n: number, what: string): number {
    if (n > this.limit - this.at) {
      throw new WireError(`truncated frame: ${what} needs ${n} bytes at offset ${this.at}, ${this.limit - this.at} left`);
    }
    const start = this.at;
    this.at += n;
    return start;
  }

  u8(what: string): number {
    return this.view.getUint8(this.take(1, what));
  }
  u16(what: string): number {
    return this.view.getUint16(this.take(2, what), true);
  }
  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }
  u64(what: string): bigint {
    return this.view.getBigUint64(this.take(8, what), true);
  }
  /** A u64 that must fit a JavaScript safe integer (lengths, offsets, counts). */
  size(what: string): number {
    const value = this.u64(what);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(`${what} ${value} is out of range`);
    return Number(value);
  }
  i64(what: string): bigint {
    return this.view.getBigInt64(this.take(8, what), true);
  }
  /** An i64 as a number when it is a safe integer, else as a bigint (no BigInt on the common path). */
  int(what: string): number | bigint {
    const at = this.take(8, what);
    const high = this.view.getInt32(at + 4, true);
    // Well inside ±2^53: a number; near or beyond the edge, the exact BigInt comparison decides.
    if (high > -0x20_0000 && high < 0x1f_ffff) return high * 0x1_0000_0000 + this.view.getUint32(at, true);
    const value = this.view.getBigInt64(at, true);
    return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;
  }
  f64(what: string): number {
    return this.view.getFloat64(this.take(8, what), true);
  }
  raw(n: number, what: string): Uint8Array {
    const start = this.take(n, what);
    return this.bytes.subarray(start, start + n);
  }
  str16(what: string): string {
    const bytes = this.raw(this.u16(what), what);
    return bytes.length <= SHORT_STRING ? shortString(bytes, what) : decodeUtf8(bytes, what);
  }
  str32(what: string): string {
    return decodeUtf8(this.raw(this.u32(what), what), what);
  }

  /** Fails unless every byte of the frame was consumed. */
  end(what: string): void {
    if (this.remaining !== 0) throw new WireError(`${what}: ${this.remaining} unexpected trailing bytes`);
  }
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return textDecoder.decode(bytes);
  } catch {
    throw new WireError(`${what} is not valid UTF-8`);
  }
}
