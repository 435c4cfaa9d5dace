import { describe, expect, it } from 'vitest';
import type { KafkaRecordHeader } from '../../../shared/msk/event';
import { encodeHeaders, readHeaders } from '../../../shared/msk/headers';

const bytes = (text: string) => [...Buffer.from(text, 'utf8')];

/** Reads headers given as [name, bytes] pairs, one single-key object each, as MSK sends them. */
function read(...pairs: [string, unknown][]) {
  return readHeaders(pairs.map(([name, value]) => ({ [name]: value })) as KafkaRecordHeader[]);
}

// Several records in a row, as a batch reads them: a faster header decoder (a per-position cache of the last
// value, a compiled object shape per name sequence) must still pass these.
describe('readHeaders across records', () => {
  it('returns each record its own values when a repeated header changes', () => {
    const values = ['evt-0001', 'evt-0002', 'Evt-0002', 'evt-0002', 'evt-00021', 'evt', '', 'evt-0001'];
    for (const id of values) {
      expect(read(['ce_type', bytes('booking.created')], ['ce_id', bytes(id)])).toEqual({
        ce_type: 'booking.created',
        ce_id: id,
      });
    }
  });

  it('decodes non-ASCII UTF-8 before, after and instead of an ASCII value at the same position', () => {
    for (const note of ['plain', 'Grüße', 'Grüße', 'plain', '東京 🚲', 'plain']) {
      expect(read(['note', bytes(note)])).toEqual({ note });
    }
  });

  it.each([
    ['256', [101, 118, 256]],
    ['-1', [101, 118, -1]],
    ['1.5', [101, 118, 1.5]],
    ['a string', [101, 118, 'a']],
    ['null', [101, 118, null]],
    ['a string of digits', [101, 118, '116']],
  ])('reports a byte that is %s even when the bytes before it repeat the last value', (_, value) => {
    expect(read(['ce_id', bytes('evt')])).toEqual({ ce_id: 'evt' });
    expect(read(['ce_id', value])).toBe('header "ce_id" is not a byte array');
    expect(read(['ce_id', bytes('evt')])).toEqual({ ce_id: 'evt' });
  });

  it('reports a value that is not an array', () => {
    expect(read(['ce_id', 'evt'])).toBe('header "ce_id" is not a byte array');
  });

  it('is not fooled by a byte array changed in place after it was read', () => {
    const value = bytes('APP');
    expect(read(['channel', value])).toEqual({ channel: 'APP' });
    value[0] = 'W'.charCodeAt(0);
    expect(read(['channel', value])).toEqual({ channel: 'WPP' });
  });

  it('keeps the last value of a repeated name, in the position of its first', () => {
    for (let n = 0; n < 3; n++) {
      const headers = read(['a', bytes('1')], ['b', bytes('2')], ['a', bytes(`3-${n}`)]);
      expect(headers).toEqual({ a: `3-${n}`, b: '2' });
      expect(Object.keys(headers)).toEqual(['a', 'b']);
    }
  });

  it('builds the right object when the names, their order or their number change between records', () => {
    const sequences: [string, unknown][][] = [
      [
        ['x', bytes('1')],
        ['y', bytes('2')],
      ],
      [
        ['y', bytes('2')],
        ['x', bytes('1')],
      ],
      [['x', bytes('1')]],
      [
        ['x', bytes('1')],
        ['y', bytes('2')],
        ['z', bytes('3')],
      ],
      [
        ['x', bytes('1')],
        ['y', bytes('2')],
      ],
    ];
    for (const pairs of sequences) {
      const headers = read(...pairs);
      expect(headers).toEqual(
        Object.fromEntries(pairs.map(([name, value]) => [name, Buffer.from(value as number[]).toString()])),
      );
      expect(Object.keys(headers)).toEqual(pairs.map(([name]) => name));
    }
  });

  it('reads names that need quoting, and treats __proto__ as assignment does', () => {
    const names = ['content-type', 'with "quotes"', 'line\nbreak', 'x\u2028y', '__proto__', 'constructor'];
    for (let n = 0; n < 2; n++) {
      const headers = read(...names.map((name): [string, unknown] => [name, bytes(`v-${name}`)]));
      const expected: Record<string, string> = {};
      for (const name of names) expected[name] = `v-${name}`;
      expect(headers).toEqual(expected);
      expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
      expect(Object.hasOwn(headers as object, '__proto__')).toBe(false);
    }
  });

  it('stays correct over many distinct name sequences', () => {
    for (let n = 0; n < 100; n++) {
      expect(read([`name-${n}`, bytes(`${n}`)], ['ce_type', bytes('t')])).toEqual({
        [`name-${n}`]: `${n}`,
        ce_type: 't',
      });
    }
  });

  it('reads many headers, and entries with several names', () => {
    const many = Array.from({ length: 40 }, (_, n) => `h${n}`);
    for (let round = 0; round < 2; round++) {
      const raw = [
        ...encodeHeaders(Object.fromEntries(many.map((name) => [name, `${name}-${round}`]))),
        {
          p: bytes('1'),
          q: bytes('2'),
        },
      ];
      expect(readHeaders(raw)).toEqual({
        ...Object.fromEntries(many.map((name) => [name, `${name}-${round}`])),
        p: '1',
        q: '2',
      });
    }
  });
});
