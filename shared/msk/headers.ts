/**
 * Decodes MSK headers (arrays of single-key objects mapping names to byte arrays) to a name -> UTF-8
 * string map. A header that is not an array of bytes, or whose bytes are not UTF-8, is reported, not coerced:
 * Buffer.from would silently wrap 256 to 0 or turn "abc" into NaN bytes, and a lenient UTF-8 decode turns every
 * invalid sequence into U+FFFD, so ce_id bytes `61 ff` and `61 fe` would become the same id.
 */
import type { KafkaRecordHeader } from './event';

/** The headers, or a string describing the problem (no wrapper object: this is on the hot path). */
export function readHeaders(raw: KafkaRecordHeader[] | null | undefined): Record<string, string> | string {
  const headers: Record<string, string> = {};
  if (raw === null || raw === undefined) return headers;
  if (!Array.isArray(raw)) return 'headers is not an array';
  for (let i = 0; i < raw.length; i++) {
    const entry = raw[i];
    if (typeof entry !== 'object' || entry === null) return 'header entry is not an object';
    for (const name in entry) {
      const bytes = entry[name];
      const text = bytesToString(bytes);
      if (text === undefined) return `header "${name}" is not a byte array`;
      if (text === null) return `header "${name}" is not valid UTF-8: bytes ${hexPreview(bytes as number[])}`;
      // Kafka allows repeated names; the last one wins, as in most Kafka clients' lastHeader().
      headers[name] = text;
    }
  }
  return headers;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The bytes in hex (the first 64, then how many more), for an error message. */
export function hexPreview(bytes: ArrayLike<number>): string {
  const shown = Buffer.from(Array.prototype.slice.call(bytes, 0, 64) as number[]).toString('hex');
  const pairs = shown.replace(/(..)(?!$)/g, '$1 ');
  return bytes.length > 64 ? `${pairs} ... (${bytes.length} bytes)` : pairs;
}

/** Strict UTF-8 text of bytes, or null when they are not UTF-8. */
export function utf8Strict(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * UTF-8 text of a byte array; undefined when it is not a byte array, null when the bytes are not UTF-8.
 * ASCII (the usual case) avoids a Buffer.
 */
function bytesToString(bytes: unknown): string | undefined | null {
  if (!Array.isArray(bytes)) return undefined;
  const length = bytes.length;
  let i = 0;
  // One test per byte: (b & 0x7f) === b holds exactly for integers 0..127 (a string, 1.5, -1, null fail).
  while (i < length && ((bytes[i] as number) & 0x7f) === bytes[i]) i++;
  if (i === length && length <= 4096) return String.fromCharCode.apply(null, bytes as number[]);
  for (; i < length; i++) {
    if (((bytes[i] as number) & 0xff) !== bytes[i]) return undefined;
  }
  return utf8Strict(Buffer.from(bytes as number[]));
}

/** MSK header form of a name -> string map (fixtures, the local ESM emulator). */
export function encodeHeaders(headers: Readonly<Record<string, string>>): KafkaRecordHeader[] {
  return Object.entries(headers).map(([name, value]) => ({ [name]: [...Buffer.from(value, 'utf8')] }));
}
