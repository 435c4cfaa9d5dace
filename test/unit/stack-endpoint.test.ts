import { describe, expect, it } from 'vitest';
import { shownEndpoint } from '../../local/stack/index';

describe('shownEndpoint (what the stack prints of an endpoint)', () => {
  it('masks the password of a URL and leaves everything else as it is', () => {
    expect(shownEndpoint('postgres://audit:s3cr%40t@db.internal:5432/audit?sslmode=verify-full')).toBe(
      'postgres://audit:***@db.internal:5432/audit?sslmode=verify-full',
    );
    expect(shownEndpoint('postgres://postgres@127.0.0.1:55432/postgres')).toBe(
      'postgres://postgres@127.0.0.1:55432/postgres',
    );
    expect(shownEndpoint('http://127.0.0.1:4567')).toBe('http://127.0.0.1:4567');
    expect(shownEndpoint('127.0.0.1:9092,127.0.0.1:9094')).toBe('127.0.0.1:9092,127.0.0.1:9094');
  });
});
