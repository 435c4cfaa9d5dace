/**
 * Decodes MSK headers (arrays of single-key objects mapping names to byte arrays) to a name -> UTF-8
 * string map. A header that is not an array of bytes is reported, not coerced: Buffer.from would silently
 * wrap 256 to 0 or turn "abc" into NaN bytes.
 */
import type { KafkaRecordHeader } from './event';

export type HeadersDecodeResult =
  | { ok: true; headers: Record<string, string> }
  | { ok: false; problem: string };

export function decodeHeaders(raw: KafkaRecordHeader[] | null | undefined): HeadersDecodeResult {
  const headers: Record<string, string> = {};
  if (raw === null || raw === undefined) return { ok: true, headers };
  if (!Array.isArray(raw)) return { ok: false, problem: 'headers is not an array' };
  for (const entry of raw) {
    if (typeof entry !== 'object' || entry === null) {
      return { ok: false, problem: 'header entry is not an object' };
    }
    for (const name in entry) {
      const bytes = entry[name];
      const text = bytesToString(bytes);
      if (text === undefined) return { ok: false, problem: `header "${name}" is not a byte array` };
      // Kafka allows repeated names; the last one wins, as in most Kafka clients' lastHeader().
      headers[name] = text;
    }
  }
  return { ok: true, headers };
}

/** UTF-8 text of a byte array, or undefined when it is not one. ASCII (the usual case) avoids a Buffer. */
function bytesToString(bytes: unknown): string | undefined {
  if (!Array.isArray(bytes)) return undefined;
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (typeof byte !== 'number' || !Number.isInteger(byte) || byte < 0 || byte > 255) return undefined;
    if (byte > 0x7f) ascii = false;
  }
  if (!ascii) return Buffer.from(bytes as number[]).toString('utf8');
  // fromCharCode.apply is limited by the engine's argument count; headers are small, chunk to be safe.
  if (bytes.length <= 4096) return String.fromCharCode.apply(null, bytes as number[]);
  return Buffer.from(bytes as number[]).toString('latin1');
}

/** MSK header form of a name -> string map (fixtures, the local ESM emulator). */
export function encodeHeaders(headers: Readonly<Record<string, string>>): KafkaRecordHeader[] {
  return Object.entries(headers).map(([name, value]) => ({ [name]: [...Buffer.from(value, 'utf8')] }));
}
