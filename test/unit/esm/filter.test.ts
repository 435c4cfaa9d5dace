import { describe, expect, it } from 'vitest';
import { compileFilter } from '../../../local/esm/filter';
import { sourceRecord } from './records';

const passes = (patterns: unknown[], value: unknown) => compileFilter(patterns)(sourceRecord(0, 0, value));

describe('compileFilter', () => {
  it('filters on the value only, as Kafka event source mappings do, and refuses a pattern on anything else', () => {
    expect(() => compileFilter([{ partition: [0] }])).toThrow(
      'Filter pattern {"partition":[0]} uses partition: Kafka event source mappings filter on value only',
    );
    expect(() => compileFilter([{ value: { a: [1] }, topic: ['t'] }])).toThrow(/uses topic/);
    expect(passes([{ value: { a: [1] } }], { a: 1 })).toBe(true);
  });

  it('passes everything without patterns', () => {
    expect(passes([], 'anything')).toBe(true);
  });

  it('matches JSON fields: exact, prefix, anything-but, exists, numeric', () => {
    expect(passes([{ value: { type: ['a'] } }], { type: 'a' })).toBe(true);
    expect(passes([{ value: { type: ['a'] } }], { type: 'b' })).toBe(false);
    expect(passes([{ value: { id: [{ prefix: 'AB' }] } }], { id: 'ABC' })).toBe(true);
    expect(passes([{ value: { s: [{ 'anything-but': ['error'] }] } }], { s: 'error' })).toBe(false);
    expect(passes([{ value: { s: [{ 'anything-but': ['error'] }] } }], { s: 'ok' })).toBe(true);
    expect(passes([{ value: { x: [{ exists: true }] } }], { x: 1 })).toBe(true);
    expect(passes([{ value: { x: [{ exists: false }] } }], { x: 1 })).toBe(false);
    expect(passes([{ value: { x: [{ exists: false }] } }], { y: 1 })).toBe(true);
    expect(passes([{ value: { n: [{ numeric: ['>', 0, '<=', 5] }] } }], { n: 5 })).toBe(true);
    expect(passes([{ value: { n: [{ numeric: ['>', 0, '<=', 5] }] } }], { n: 6 })).toBe(false);
    expect(passes([{ value: { a: { b: ['x'] } } }], { a: { b: 'x' } })).toBe(true);
  });

  it('matches plain strings directly and never mixes the formats', () => {
    expect(passes([{ value: [{ prefix: 'hel' }] }], 'hello')).toBe(true);
    expect(passes([{ value: { type: ['a'] } }], 'type a')).toBe(false);
    expect(passes([{ value: ['x'] }], { type: 'x' })).toBe(false);
  });

  it('passes when any of several patterns matches, including CloudFormation {Pattern} strings', () => {
    const patterns = [{ Pattern: JSON.stringify({ value: { t: ['a'] } }) }, { value: { t: ['b'] } }];
    expect(passes(patterns, { t: 'b' })).toBe(true);
    expect(passes(patterns, { t: 'c' })).toBe(false);
  });
});
