import { describe, expect, it } from 'vitest';
import { byteaArray, integerArray, textArray } from '../../../functions/audit-append/pg-binary-array';

// Expected bytes are what PostgreSQL 15 writes with array_send() for the same arrays: what array_recv reads.
const hex = (buffer: Buffer) => buffer.toString('hex');

describe('PostgreSQL binary arrays', () => {
  it('writes text[] with UTF-8 byte lengths, NULLs and empty strings', () => {
    expect(hex(textArray(['é€', null, '']))).toBe(
      '000000010000000100000019000000030000000100000005c3a9e282acffffffff00000000',
    );
  });

  it('writes jsonb[] as version 1 and the JSON text', () => {
    expect(hex(textArray(['{"a": 1}'], 'jsonb'))).toBe(
      '000000010000000000000eda000000010000000100000009017b2261223a20317d',
    );
  });

  it('writes int4[] and int8[], refusing what they cannot hold exactly', () => {
    expect(hex(integerArray([1, -2], 'int4'))).toBe(
      '0000000100000000000000170000000200000001000000040000000100000004fffffffe',
    );
    expect(hex(integerArray([Number.MAX_SAFE_INTEGER], 'int8'))).toBe(
      '000000010000000000000014000000010000000100000008001fffffffffffff',
    );
    expect(() => integerArray([1.5], 'int8')).toThrow(RangeError);
  });

  it('writes bytea[] byte for byte', () => {
    expect(hex(byteaArray([Buffer.from([0, 255]), null]))).toBe(
      '00000001000000010000001100000002000000010000000200ffffffffff',
    );
  });
});
