import { Admin } from '@platformatic/kafka';
import { afterAll, describe, expect, it } from 'vitest';
import { statusReport } from '../../local/status';
import { brokers, createTopic, produce, uniqueName } from './kafka-helpers';

const admin = new Admin({ clientId: 'status-test', bootstrapBrokers: brokers() });
afterAll(() => admin.close());

describe('esm:status (real broker)', () => {
  it('shows the lag of every ESM per partition, and the total', async () => {
    const topic = uniqueName('e2e-status');
    await createTopic(topic, 2);
    await produce(topic, [
      { partition: 0, value: 'a' },
      { partition: 0, value: 'b' },
      { partition: 0, value: 'c' },
      { partition: 1, value: 'd' },
      { partition: 1, value: 'e' },
    ]);
    // One group has processed p0 up to offset 1 and never committed on p1; the other has committed nothing.
    const behind = `${topic}-billing`;
    await admin.alterConsumerGroupOffsets({
      groupId: behind,
      topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset: 1n }] }],
    });

    const report = await statusReport(admin, [
      { functionKey: 'billing', topic, consumerGroupId: behind },
      { functionKey: 'notifications', topic, consumerGroupId: `${topic}-new` },
    ]);
    const rows = report
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/));
    expect(rows[0]).toEqual(['function', 'topic', 'group', 'partition', 'committed', 'latest', 'lag']);
    expect(rows.slice(1, 5)).toEqual([
      ['billing', topic, behind, '0', '1', '3', '2'],
      ['billing', topic, behind, '1', '-', '2', '2'],
      ['notifications', topic, `${topic}-new`, '0', '-', '3', '3'],
      ['notifications', topic, `${topic}-new`, '1', '-', '2', '2'],
    ]);
    expect(report.trim().split('\n').at(-1)).toBe('total lag 9');
  });
});
