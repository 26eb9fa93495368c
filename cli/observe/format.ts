/**
 * Messages made readable for a terminal (`dora topic echo`): a single value as itself,
 * small arrays and structs as JSON, and anything large summarised by its type, length and
 * first values, never megabytes of text.
 */
import type * as arrow from 'apache-arrow';
import type { Parameters } from '../../protocol';

/** Arrays longer than this, or printing longer than MAX_TEXT characters, are summarised. */
const MAX_ITEMS = 32;
const MAX_TEXT = 2000;
const FIRST = 8;

/** A plain JSON value: bigints become numbers when exact, strings otherwise; typed arrays become arrays. */
export function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value === null || value === undefined) return null;
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<unknown>, plain);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object') {
    const v = value as { toJSON?: () => unknown; toArray?: () => unknown };
    if (typeof v.toJSON === 'function') return plain(v.toJSON());
    if (typeof v.toArray === 'function') return plain(v.toArray());
    return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, plain(x)]));
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

export interface Summary {
  readonly type: string;
  readonly length: number;
  readonly first: unknown[];
  /** From the message's `shape` parameter, when the sender gave one. */
  readonly shape?: unknown;
}

/** The message as JSON: its values when small, a summary otherwise. */
export function valueOrSummary(data: arrow.Vector, parameters: Parameters): { value: unknown } | { summary: Summary } {
  if (data.length <= MAX_ITEMS) {
    const values = plain(data.toArray()) as unknown[];
    const value = data.length === 1 ? values[0] : values;
    if (JSON.stringify(value).length <= MAX_TEXT) return { value };
  }
  const first: unknown[] = [];
  for (let i = 0; i < Math.min(FIRST, data.length); i++) first.push(plain(data.get(i)));
  const shape = (parameters as Record<string, unknown>).shape;
  return { summary: { type: String(data.type), length: data.length, first, ...(shape !== undefined ? { shape: plain(shape) } : {}) } };
}

/** One line for a terminal. */
export function formatMessage(data: arrow.Vector, parameters: Parameters): string {
  const shown = valueOrSummary(data, parameters);
  if ('value' in shown) {
    const v = shown.value;
    return typeof v === 'string' ? JSON.stringify(v) : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  }
  const s = shown.summary;
  const first = s.first.map((v) => (typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : JSON.stringify(v))).join(', ');
  return `<${s.type} × ${s.length}${s.shape !== undefined ? `, shape ${JSON.stringify(s.shape)}` : ''}: [${first}${s.length > s.first.length ? ', …' : ''}]>`;
}

/** The parameters as JSON (bigints as numbers), or '' when there are none. */
export function formatParameters(parameters: Parameters): string {
  return Object.keys(parameters).length === 0 ? '' : JSON.stringify(plain(parameters));
}

/** 1234567 → "1.2 MB". */
export function bytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) (v /= 1000), i++;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** A message timestamp (ns since the epoch) as ISO 8601 with microseconds. */
export function isoTime(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const us = Number((ns / 1000n) % 1000n);
  return new Date(ms).toISOString().replace('Z', `${String(us).padStart(3, '0')}Z`);
}
