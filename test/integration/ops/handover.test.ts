// handover against the real broker: the receiving group gets the other's committed offsets, and nothing is
// touched when it must not be (it already has offsets, or the giving group has none). Run-scoped names.
import '../../../shared/kafka/node20-polyfills';
import type { Admin } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { committedOffsets } from '../../../local/esm/starting-position';
import { applyHandover, planHandover } from '../../../ops/handover';
import { createTopic, produce, testAdmin, uniqueName } from '../../support/kafka';

let admin: Admin;
const topic = uniqueName('handover-it');
const from = uniqueName('handover-from');
const to = uniqueName('handover-to');

describe('handover on the local broker', () => {
  beforeAll(async () => {
    admin = testAdmin();
    await createTopic(topic, 2);
    await produce(
      topic,
      [0, 0, 0, 1, 1].map((partition, i) => ({ partition, value: `r${i}` })),
    );
  });
  afterAll(async () => {
    await admin.deleteGroups({ groups: [from, to] }).catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.close();
  });

  it('refuses while the giving group has no offset on every partition, changing nothing', async () => {
    await admin.alterConsumerGroupOffsets({
      groupId: from,
      topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset: 2n }] }],
    });
    await expect(planHandover(admin, topic, from, to)).rejects.toThrow(
      new RegExp(`group ${from} has no committed offset on ${topic} partition\\(s\\) 1; nothing changed`),
    );
    expect((await committedOffsets(admin, to, topic, [0, 1])).size).toBe(0);
  });

  it("gives the receiving group the giving group's offsets, then refuses a second handover", async () => {
    await admin.alterConsumerGroupOffsets({
      groupId: from,
      topics: [{ name: topic, partitionOffsets: [{ partition: 1, offset: 1n }] }],
    });
    const plan = await planHandover(admin, topic, from, to);
    expect([...plan.offsets]).toEqual([
      [0, 2n],
      [1, 1n],
    ]);
    await applyHandover(admin, plan);
    expect([...(await committedOffsets(admin, to, topic, [0, 1]))]).toEqual([
      [0, 2n],
      [1, 1n],
    ]);
    await expect(planHandover(admin, topic, from, to)).rejects.toThrow(
      new RegExp(`group ${to} already has offsets on ${topic} \\(partitions 0, 1\\)`),
    );
  });

  it('names a topic the cluster does not have', async () => {
    await expect(planHandover(admin, uniqueName('no-such-topic'), from, to)).rejects.toThrow(
      /the cluster has no topic no-such-topic-/,
    );
  });
});
