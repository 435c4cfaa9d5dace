/**
 * One-dimensional PostgreSQL arrays in the binary wire format (what array_recv reads): node-postgres sends a
 * Buffer parameter as binary, so `$1::bytea[]` with such a Buffer arrives without any text to parse or bytes to
 * decode. Layout: int32 ndim (1), int32 has-nulls, uint32 element type oid, int32 length, int32 lower bound (1),
 * then per element an int32 byte length (-1 for NULL) and the element's binary form.
 */
export const ELEMENT_OID = { int4: 23, int8: 20, text: 25, bytea: 17, jsonb: 3802 } as const;

const HEADER_BYTES = 20;

/** text[] (UTF-8), or jsonb[] of JSON texts (jsonb's binary form is a version byte, 1, then the text). */
export function textArray(values: ReadonlyArray<string | null>, type: 'text' | 'jsonb' = 'text'): Buffer {
  const prefix = type === 'jsonb' ? 1 : 0;
  let size = HEADER_BYTES;
  let nulls = 0;
  for (const value of values) {
    if (value === null) nulls = 1;
    else size += prefix + Buffer.byteLength(value);
    size += 4;
  }
  const out = header(size, ELEMENT_OID[type], values.length, nulls);
  let at = HEADER_BYTES;
  for (const value of values) {
    if (value === null) {
      at = out.writeInt32BE(-1, at);
      continue;
    }
    const start = at + 4;
    let end = start;
    if (prefix) out[end++] = 1;
    end += out.write(value, end, 'utf8');
    out.writeInt32BE(end - start, at);
    at = end;
  }
  return out;
}

export function byteaArray(values: ReadonlyArray<Uint8Array | null>): Buffer {
  let size = HEADER_BYTES;
  let nulls = 0;
  for (const value of values) {
    if (value === null) nulls = 1;
    else size += value.length;
    size += 4;
  }
  const out = header(size, ELEMENT_OID.bytea, values.length, nulls);
  let at = HEADER_BYTES;
  for (const value of values) {
    if (value === null) {
      at = out.writeInt32BE(-1, at);
      continue;
    }
    at = out.writeInt32BE(value.length, at);
    out.set(value, at);
    at += value.length;
  }
  return out;
}

/** int4[] or int8[] of safe integers (no NULLs: Kafka coordinates always have them). */
export function integerArray(values: readonly number[], type: 'int4' | 'int8'): Buffer {
  const width = type === 'int4' ? 4 : 8;
  const out = header(HEADER_BYTES + values.length * (4 + width), ELEMENT_OID[type], values.length, 0);
  let at = HEADER_BYTES;
  for (const value of values) {
    if (!Number.isSafeInteger(value)) throw new RangeError(`${value} is not a safe integer for ${type}[]`);
    at = out.writeInt32BE(width, at);
    at = type === 'int4' ? out.writeInt32BE(value, at) : out.writeBigInt64BE(BigInt(value), at);
  }
  return out;
}

function header(size: number, oid: number, length: number, nulls: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  out.writeInt32BE(1, 0);
  out.writeInt32BE(nulls, 4);
  out.writeUInt32BE(oid, 8);
  out.writeInt32BE(length, 12);
  out.writeInt32BE(1, 16);
  return out;
}
