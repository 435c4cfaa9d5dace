/**
 * Schema-registry wire framing of a record value.
 * - Confluent: magic byte 0, 4-byte big-endian schema id, Avro body.
 * - AWS Glue: header version byte 3, compression byte (0 none, 5 zlib), 16-byte schema version UUID, body.
 * - JSON: what an ESM with native schema-registry support and EventRecordFormat=JSON delivers.
 */

export const CONFLUENT_MAGIC_BYTE = 0;
export const CONFLUENT_HEADER_BYTES = 5;
export const GLUE_HEADER_VERSION = 3;
export const GLUE_COMPRESSION_NONE = 0;
export const GLUE_COMPRESSION_ZLIB = 5;
export const GLUE_HEADER_BYTES = 18;

export type Framing =
  | { kind: 'confluent'; schemaId: number; bodyOffset: number }
  | { kind: 'glue'; schemaVersionId: string; compressed: boolean; bodyOffset: number }
  | { kind: 'json' }
  | { kind: 'invalid'; reason: 'wrong-magic-byte' | 'truncated-header'; detail: string };

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const QUOTE = 0x22;

function isJsonStart(byte: number): boolean {
  // JSON texts of event data start with an object; whitespace first happens with pretty-printed producers.
  return byte === OPEN_BRACE || byte === OPEN_BRACKET || byte === QUOTE || byte === 0x20 || byte === 0x0a;
}

export function readFraming(value: Buffer): Framing {
  if (value.length === 0) return { kind: 'invalid', reason: 'truncated-header', detail: 'empty value' };
  const first = value[0] as number;
  if (first === CONFLUENT_MAGIC_BYTE) {
    if (value.length < CONFLUENT_HEADER_BYTES) {
      return { kind: 'invalid', reason: 'truncated-header', detail: 'Confluent header shorter than 5 bytes' };
    }
    return { kind: 'confluent', schemaId: value.readUInt32BE(1), bodyOffset: CONFLUENT_HEADER_BYTES };
  }
  if (first === GLUE_HEADER_VERSION) {
    if (value.length < GLUE_HEADER_BYTES) {
      return { kind: 'invalid', reason: 'truncated-header', detail: 'Glue header shorter than 18 bytes' };
    }
    const compression = value[1] as number;
    if (compression !== GLUE_COMPRESSION_NONE && compression !== GLUE_COMPRESSION_ZLIB) {
      return {
        kind: 'invalid',
        reason: 'wrong-magic-byte',
        detail: `Glue compression byte ${compression} (expected 0 or 5)`,
      };
    }
    return {
      kind: 'glue',
      schemaVersionId: uuidFromBytes(value, 2),
      compressed: compression === GLUE_COMPRESSION_ZLIB,
      bodyOffset: GLUE_HEADER_BYTES,
    };
  }
  if (isJsonStart(first)) return { kind: 'json' };
  return {
    kind: 'invalid',
    reason: 'wrong-magic-byte',
    detail: `first byte 0x${first.toString(16).padStart(2, '0')} is neither Confluent (0x00), Glue (0x03) nor JSON`,
  };
}

export function confluentHeader(schemaId: number): Buffer {
  const header = Buffer.allocUnsafe(CONFLUENT_HEADER_BYTES);
  header[0] = CONFLUENT_MAGIC_BYTE;
  header.writeUInt32BE(schemaId, 1);
  return header;
}

export function glueHeader(schemaVersionId: string, compressed: boolean): Buffer {
  const header = Buffer.allocUnsafe(GLUE_HEADER_BYTES);
  header[0] = GLUE_HEADER_VERSION;
  header[1] = compressed ? GLUE_COMPRESSION_ZLIB : GLUE_COMPRESSION_NONE;
  uuidToBytes(schemaVersionId).copy(header, 2);
  return header;
}

export function uuidFromBytes(buffer: Buffer, offset: number): string {
  const hex = buffer.toString('hex', offset, offset + 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function uuidToBytes(uuid: string): Buffer {
  const hex = uuid.replaceAll('-', '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`Not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}
