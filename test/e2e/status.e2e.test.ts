import { Admin } from '@platformatic/kafka';
import { afterAll, describe, expect, it } from 'vitest';
import { RecordTimes } from '../../local/esm/record-times';
import { statusReport } from '../../local/status';
import { createTopic, kafkaBrokers, produce, uniqueName } from '../support/kafka';

const admin = new Admin({ clientId: 'status-test', bootstrapBrokers: kafkaBrokers() });
const times = new RecordTimes(kafkaBrokers());
afterAll(() => Promise.all([admin.close(), times.close()]));

describe('esm:status (real broker)', () => {
  it('shows the lag of every ESM per partition in records and seconds, and the totals', async () => {
    const topic = uniqueName('e2e-status');
    await createTopic(topic, 2);
    // A CreateTime topic, so the record times are these (the stack's topics are LogAppendTime: the broker's).
    const t0 = 1_700_000_000_000n;
    await produce(topic, [
      { partition: 0, value: 'a', timestamp: t0 },
      { partition: 0, value: 'b', timestamp: t0 + 1_000n },
      { partition: 0, value: 'c', timestamp: t0 + 2_000n },
      { partition: 1, value: 'd', timestamp: t0 + 500n },
      { partition: 1, value: 'e', timestamp: t0 + 4_000n },
    ]);
    // One group has processed p0 up to offset 1 and never committed on p1; the other has committed nothing.
    const behind = `${topic}-billing`;
    await admin.alterConsumerGroupOffsets({
      groupId: behind,
      topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset: 1n }] }],
    });

    // Now: 42 s after the first record. Lag in seconds is measured from the oldest record not consumed yet.
    const now = () => Number(t0) + 42_000;
    const report = await statusReport(
      admin,
      [
        { functionKey: 'billing', topic, consumerGroupId: behind },
        { functionKey: 'notifications', topic, consumerGroupId: `${topic}-new` },
      ],
      times,
      now,
    );
    const rows = report
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/));
    expect(rows[0]).toEqual([
      'function',
      'topic',
      'group',
      'partition',
      'committed',
      'latest',
      'lag',
      'lag',
      's',
    ]);
    expect(rows.slice(1, 5)).toEqual([
      ['billing', topic, behind, '0', '1', '3', '2', '41.0'],
      ['billing', topic, behind, '1', '-', '2', '2', '41.5'],
      ['notifications', topic, `${topic}-new`, '0', '-', '3', '3', '42.0'],
      ['notifications', topic, `${topic}-new`, '1', '-', '2', '2', '41.5'],
    ]);
    expect(report.trim().split('\n').at(-1)).toBe('total lag 9, oldest unconsumed record 42.0 s');
  });
});
