// Record age cannot be back-dated by a producer: every topic of serverless.yml is LogAppendTime, locally as
// on MSK, so the broker stamps each record. Against the stack's real broker.
import { ConfigResourceTypes, Producer, stringSerializers } from '@platformatic/kafka';
import { afterAll, describe, expect, it } from 'vitest';
import { RecordTimes } from '../../local/esm/record-times';
import { localDefinitions, provisionTopics } from '../../local/provision';
import { createTopic, kafkaBrokers, testAdmin, uniqueName } from '../support/kafka';

const admin = testAdmin();
const created: string[] = [];
afterAll(async () => {
  if (created.length > 0) await admin.deleteTopics({ topics: created }).catch(() => {});
  await admin.close();
});

async function timestampType(topic: string): Promise<string | null | undefined> {
  const [description] = await admin.describeConfigs({
    resources: [
      {
        resourceType: ConfigResourceTypes.TOPIC,
        resourceName: topic,
        configurationKeys: ['message.timestamp.type'],
      },
    ],
  });
  return description?.configs.find((c) => c.name === 'message.timestamp.type')?.value;
}

describe('topics stamp records with the broker time (message.timestamp.type=LogAppendTime)', () => {
  const definitions = localDefinitions().topics;

  it('is set for every topic of custom.kafka.topics, and on the stack topics provisioning created', async () => {
    expect(definitions.length).toBeGreaterThan(10);
    for (const topic of definitions) expect(topic.configs['message.timestamp.type']).toBe('LogAppendTime');
    // What `stack up` runs: topics that already existed without it (an older stack) get it too.
    await provisionTopics(kafkaBrokers().join(','), definitions);
    for (const topic of definitions)
      expect(await timestampType(topic.name), topic.name).toBe('LogAppendTime');
  });

  it('gives a record produced with a back-dated CreateTime the broker time', async () => {
    const topic = uniqueName('append-time');
    // Created without the setting, as before; provisioning from serverless.yml's definition adds it.
    await createTopic(topic, 1);
    created.push(topic);
    const configs = definitions.find((d) => d.name === 'incident.detected')?.configs ?? {};
    await provisionTopics(kafkaBrokers().join(','), [
      { name: topic, partitions: 1, replicationFactor: 1, configs },
    ]);
    expect(await timestampType(topic)).toBe('LogAppendTime');

    const producer = new Producer({
      clientId: uniqueName('append-time'),
      bootstrapBrokers: kafkaBrokers(),
      serializers: stringSerializers,
    });
    const twoDaysAgo = Date.now() - 2 * 24 * 3600 * 1000;
    const before = Date.now();
    try {
      await producer.send({
        messages: [{ topic, partition: 0, key: 'inc-1', value: 'v', timestamp: BigInt(twoDaysAgo) }],
      });
    } finally {
      await producer.close();
    }
    const after = Date.now();

    const times = new RecordTimes(kafkaBrokers());
    try {
      const time = (await times.at([{ topic, partition: 0, offset: 0n }])).get(`${topic}-0`);
      expect(time?.type).toBe('LOG_APPEND_TIME');
      // The broker's clock is this machine's: the append happened between send and acknowledgement.
      expect(time?.timestamp).toBeGreaterThanOrEqual(before - 1000);
      expect(time?.timestamp).toBeLessThanOrEqual(after + 1000);
    } finally {
      await times.close();
    }
  });
});
