import { describe, expect, it } from 'vitest';
import { toMskEvent } from '../../../local/esm/event';
import { esmUuid } from '../../../local/esm/uuid';
import { sourceRecord } from './records';

describe('toMskEvent', () => {
  it('builds the MSK shape: records keyed by topic-partition, base64, byte-array headers, nulls kept', () => {
    const tombstone = { ...sourceRecord(1, 7, null), key: null };
    const event = toMskEvent({ eventSourceArn: 'arn:x', bootstrapServers: 'b1:9092,b2:9092' }, [
      sourceRecord(0, 3, 'v'),
      tombstone,
    ]);
    expect(event.eventSource).toBe('aws:kafka');
    expect(event.bootstrapServers).toBe('b1:9092,b2:9092');
    expect(Object.keys(event.records)).toEqual(['t-0', 't-1']);
    const [first] = event.records['t-0'] ?? [];
    expect(first).toMatchObject({
      topic: 't',
      partition: 0,
      offset: 3,
      timestampType: 'CREATE_TIME',
      key: Buffer.from('k0').toString('base64'),
      value: Buffer.from('v').toString('base64'),
      headers: [{ ce_type: [...Buffer.from('test')] }],
    });
    expect(event.records['t-1']?.[0]).toMatchObject({ key: null, value: null });
  });

  it('derives a stable, well-formed UUID per ESM', () => {
    const uuid = esmUuid('billing', 'payment.failed', 'group');
    expect(uuid).toBe(esmUuid('billing', 'payment.failed', 'group'));
    expect(uuid).not.toBe(esmUuid('billing', 'payment.failed', 'other'));
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
