/**
 * Canonical JSON for hashing: object keys sorted (by UTF-16 code units), no insignificant whitespace,
 * properties with undefined values left out (as JSON.stringify does), numbers and strings as JSON.stringify
 * writes them; bytes, dates and bigints as toJsonValue turns them into JSON (canonicalJson(x) ===
 * canonicalJson(toJsonValue(x))). A value read back from a PostgreSQL jsonb column and parsed again gives the
 * same text, which is what lets `audit verify` recompute a hash from stored rows.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no representation for ${value}`);
      return JSON.stringify(value);
    case 'bigint':
      return `"${value.toString()}"`;
    case 'object': {
      // Decoded Avro may hold bytes and dates: written as toJsonValue stores them.
      if (value instanceof Uint8Array) {
        return `"${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}"`;
      }
      if (value instanceof Date) return JSON.stringify(value.toISOString());
      if (Array.isArray(value)) {
        let text = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) text += ',';
          text += canonicalJson(value[i] ?? null);
        }
        return `${text}]`;
      }
      const object = value as Record<string, unknown>;
      const { sorted, prefixes } = keyOrder(object);
      let text = '{';
      let first = true;
      for (let i = 0; i < sorted.length; i++) {
        const item = object[sorted[i] as string];
        if (item === undefined || typeof item === 'function') continue;
        text += `${first ? '' : ','}${prefixes[i]}${canonicalJson(item)}`;
        first = false;
      }
      return `${text}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no representation for a ${typeof value}`);
  }
}

export interface KeyOrder {
  /** The object's own keys in insertion order, as Object.keys gives them. */
  keys: string[];
  /** The same keys sorted, and each written as JSON with its colon. */
  sorted: string[];
  prefixes: string[];
}

/**
 * The key orders last seen per prototype: the objects of a batch come in a few shapes (decoded Avro records of one
 * class, CloudEvents attributes, the nested objects of JSON data), so each shape is sorted and its keys escaped
 * once. A hit is checked key by key: an object with other keys is never written in a stale order.
 */
const keyOrders = new WeakMap<object, KeyOrder[]>();
const SHAPES_PER_PROTOTYPE = 8;
const NO_PROTOTYPE = {};

export function keyOrder(object: object): KeyOrder {
  const keys = Object.keys(object);
  const prototype = (Object.getPrototypeOf(object) as object | null) ?? NO_PROTOTYPE;
  let known = keyOrders.get(prototype);
  if (known) {
    for (const order of known) if (sameKeys(order.keys, keys)) return order;
  } else {
    known = [];
    keyOrders.set(prototype, known);
  }
  const sorted = [...keys].sort();
  const order = { keys, sorted, prefixes: sorted.map((key) => `${JSON.stringify(key)}:`) };
  if (known.length === SHAPES_PER_PROTOTYPE) known.pop();
  known.unshift(order);
  return order;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Turns decoded event data into plain JSON values the way they will be stored: Buffers and byte arrays become
 * base64 strings, bigints decimal strings, Dates ISO strings. Anything else that JSON cannot hold is an error.
 */
export function toJsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${value} cannot be stored as JSON`);
    return value;
  }
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      if (item !== undefined && typeof item !== 'function') result[key] = toJsonValue(item);
    }
    return result;
  }
  throw new TypeError(`a ${typeof value} cannot be stored as JSON`);
}
