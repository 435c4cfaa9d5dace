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
      const keys = Object.keys(object).sort();
      let text = '{';
      let first = true;
      for (const key of keys) {
        const item = object[key];
        if (item === undefined || typeof item === 'function') continue;
        text += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
        first = false;
      }
      return `${text}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no representation for a ${typeof value}`);
  }
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
