/**
 * dora's typed ports: type URNs (`std/<category>/v<N>/<Type>`, optionally parameterized
 * `…/AudioFrame[sample_type=f32]`, and `List<T>`), what they mean as Arrow data, and when
 * an output's type may feed an input's. Types are optional: an unannotated port is
 * dynamic. `std/core/v1` and `std/math/v1` are known here type by type (a misspelt name is
 * an error with a suggestion); other `std/` categories (media, vision, control, …) and
 * other namespaces are taken as declared and compared by name and parameters.
 */

/** A parsed type URN. */
export interface PortType {
  /** The URN without parameters, e.g. `std/core/v1/Float32`; for lists, `std/core/v1/List`. */
  readonly base: string;
  readonly params: Readonly<Record<string, string>>;
  /** A list's element type. */
  readonly element?: PortType;
}

const CORE = 'std/core/v1/';

/** The core types, with the Arrow C Data Interface format a message of that type has (undefined: any). */
const CORE_FORMATS: Readonly<Record<string, string | undefined>> = {
  Bool: 'b',
  Int8: 'c',
  Int16: 's',
  Int32: 'i',
  Int64: 'l',
  UInt8: 'C',
  UInt16: 'S',
  UInt32: 'I',
  UInt64: 'L',
  Float32: 'f',
  Float64: 'g',
  String: 'u',
  Bytes: undefined, // LargeBinary in dora; any data is compatible with it
};

/** Types known name by name, per category; categories not listed here are open. */
const KNOWN: Readonly<Record<string, readonly string[]>> = {
  'std/core/v1/': [...Object.keys(CORE_FORMATS), 'List'],
  'std/math/v1/': ['Vector3', 'Quaternion', 'Pose', 'Transform'],
};

/** What timers send: a tick is typed as a UInt64 (dora's rule). */
export const TIMER_TYPE: PortType = { base: `${CORE}UInt64`, params: {} };

/** Parses a URN; a string is an error message, with a suggestion when one is close. */
export function parsePortType(text: string, suggest: (word: string, candidates: readonly string[]) => string | undefined): PortType | string {
  const trimmed = text.trim();
  const list = /^(.*\/)List<(.+)>$/.exec(trimmed);
  if (list) {
    // `std/core/v1/List<std/core/v1/Float32>`; a bare element name is in the list's own package
    const inner = list[2].includes('/') ? list[2] : `${list[1]}${list[2]}`;
    const element = parsePortType(inner, suggest);
    if (typeof element === 'string') return element;
    if (list[1] !== CORE) return `\`${trimmed}\`: List is a type of ${CORE}*, not of ${list[1]}*`;
    return { base: `${CORE}List`, params: {}, element };
  }
  const m = /^([A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*\/)([A-Za-z0-9_]+)(?:\[([^\]]*)\])?$/.exec(trimmed);
  if (!m) return `\`${trimmed}\` is not a type URN (expected \`std/<category>/v<N>/<Type>\`, e.g. \`std/core/v1/Float32\`)`;
  const [, prefix, name, paramText] = m;
  const params: Record<string, string> = {};
  for (const part of paramText ? paramText.split(',') : []) {
    const [key, value, extra] = part.split('=').map((s) => s.trim());
    if (!key || value === undefined || extra !== undefined) return `\`${trimmed}\`: parameters are written \`[key=value,…]\``;
    params[key] = value;
  }
  if (prefix.startsWith('std/') && !/^std\/[a-z_]+\/v\d+\/$/.test(prefix)) return `\`${trimmed}\`: std types are \`std/<category>/v<N>/<Type>\``;
  const known = KNOWN[prefix];
  if (known && !known.includes(name)) {
    const suggestion = suggest(name, known);
    return `unknown type \`${prefix}${name}\`${suggestion ? ` (did you mean \`${prefix}${suggestion}\`?)` : ` (${prefix}* has ${known.join(', ')})`}`;
  }
  if (prefix === CORE && name === 'List') return `\`${trimmed}\`: a list names its element type, e.g. \`${CORE}List<Float32>\``;
  return { base: `${prefix}${name}`, params };
}

/** The URN as written canonically. */
export function formatPortType(t: PortType): string {
  if (t.element) return `${CORE}List<${formatPortType(t.element)}>`;
  const params = Object.entries(t.params);
  return params.length ? `${t.base}[${params.map(([k, v]) => `${k}=${v}`).join(',')}]` : t.base;
}

/** Whether data of type `from` (an output's) is acceptable where `to` (an input's) is declared. */
export function compatible(from: PortType, to: PortType): boolean {
  if (to.base === `${CORE}Bytes`) return true;
  if (from.base !== to.base) return false;
  if (from.element || to.element) return from.element !== undefined && to.element !== undefined && compatible(from.element, to.element);
  // same base: equal parameters, or one side unparameterized (a wildcard)
  for (const [key, value] of Object.entries(from.params)) if (key in to.params && to.params[key] !== value) return false;
  return true;
}

/**
 * The Arrow format string a message of this type has, for the runtime check; undefined
 * when it cannot be checked by format alone (Bytes, struct types, open categories).
 */
export function arrowFormat(t: PortType): string | undefined {
  if (t.element) {
    const inner = arrowFormat(t.element);
    return inner === undefined ? undefined : `+l<${inner}>`;
  }
  return t.base.startsWith(CORE) ? CORE_FORMATS[t.base.slice(CORE.length)] : undefined;
}
