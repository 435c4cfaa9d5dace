import { describe, expect, it } from 'vitest';
import { sampleData } from '../../../schemas/samples';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import { kafkaClientOptions, kafkaSettingsFromEnv } from '../../../shared/kafka/client-options';
import type { OutgoingEvent } from '../../../shared/kafka/event-message';
import { EventProducer, kafkaProducerOptions, type MessageSender } from '../../../shared/kafka/producer';
import { kafkaEvent, kafkaEventRecord } from '../../../shared/msk/build';
import { type DecodedEvent, decodeEvent } from '../../../shared/msk/decode';

const incident = sampleData['incident.detected'](1);
const event: OutgoingEvent = {
  topic: 'incident.detected',
  key: incident.incidentId,
  id: 'evt-1',
  type: 'incident.detected',
  source: 'urn:mobility:fleet-anomaly-detection',
  subject: incident.incidentId,
  time: '2026-03-02T08:01:00.000Z',
  data: incident,
  correlationId: 'corr-1',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

function fakeSender() {
  const sent: Parameters<MessageSender['send']>[0]['messages'] = [];
  const sender: MessageSender = {
    send: async ({ messages }) => {
      sent.push(...messages);
    },
    close: async () => undefined,
  };
  return { sent, sender };
}

describe('EventProducer', () => {
  it('encodes at once but sends only once `after` resolves, and never when it rejects', async () => {
    const { sent, sender } = fakeSender();
    const producer = new EventProducer(sender);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const publishing = producer.publish([event], gate);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(sent).toHaveLength(0);
    release();
    await publishing;
    expect(sent).toHaveLength(1);

    await expect(producer.publish([event], Promise.reject(new Error('outcomes not stored')))).rejects.toThrow(
      'outcomes not stored',
    );
    expect(sent).toHaveLength(1);
    // An event that cannot be encoded fails the publish before the gate is waited for.
    await expect(
      producer.publish([{ ...event, data: { ...incident, severity: 42 } }], new Promise(() => undefined)),
    ).rejects.toThrow();
  });

  it('sends key = aggregate id, CloudEvents headers and Confluent-framed Avro that decodes back', async () => {
    const { sent, sender } = fakeSender();
    await new EventProducer(sender).publish([event]);
    expect(sent).toHaveLength(1);
    const message = sent[0] as (typeof sent)[number];
    expect(message.key.toString()).toBe(incident.incidentId);
    expect(message.value[0]).toBe(0);
    expect(message.value.readUInt32BE(1)).toBe(registry.latest('incident.detected').id);
    const headers = Object.fromEntries([...message.headers].map(([k, v]) => [k.toString(), v.toString()]));
    expect(headers).toMatchObject({
      ce_type: 'incident.detected',
      ce_id: 'evt-1',
      'content-type': 'application/avro',
    });

    const record = kafkaEventRecord({
      topic: message.topic,
      partition: 0,
      offset: 1,
      timestamp: 0,
      key: message.key,
      value: message.value,
      headers,
    });
    const [partition] = await decodeEvent(kafkaEvent([record]), { registry });
    const decoded = partition?.records[0] as DecodedEvent;
    expect(decoded.data).toEqual(incident);
    expect(decoded.cloudEvent).toMatchObject({ correlationId: 'corr-1', traceparent: event.traceparent });
  });

  it('refuses the whole publish when one event does not match its schema, naming the field', async () => {
    const { sent, sender } = fakeSender();
    const bad = { ...event, data: { ...incident, severity: 'SEVERE' } };
    await expect(new EventProducer(sender).publish([event, bad])).rejects.toThrow(/severity="SEVERE"/);
    expect(sent).toEqual([]);
  });
});

describe('Kafka client options', () => {
  it('are plaintext by default and OAUTHBEARER + TLS with MSK IAM', () => {
    expect(kafkaClientOptions({ brokers: ['127.0.0.1:9092'], clientId: 'c' })).toEqual({
      clientId: 'c',
      bootstrapBrokers: ['127.0.0.1:9092'],
    });
    const iam = kafkaClientOptions({ brokers: ['b-1:9098'], clientId: 'c', iam: { region: 'eu-west-1' } });
    expect(iam.sasl?.mechanism).toBe('OAUTHBEARER');
    expect(typeof iam.sasl?.token).toBe('function');
    expect(iam.tls).toEqual({});
  });

  it('make the producer idempotent with acks=all, with or without MSK IAM', () => {
    for (const iam of [undefined, { region: 'eu-west-1' }]) {
      const options = kafkaProducerOptions({ brokers: ['b-1:9098'], clientId: 'c', ...(iam ? { iam } : {}) });
      expect(options).toMatchObject({ idempotent: true, acks: -1, autocreateTopics: false });
      expect(options.sasl?.mechanism).toBe(iam ? 'OAUTHBEARER' : undefined);
    }
  });

  it('read KAFKA_BROKERS and KAFKA_AUTH from the environment', () => {
    expect(kafkaSettingsFromEnv('c', { KAFKA_BROKERS: 'a:1, b:2' })).toEqual({
      brokers: ['a:1', 'b:2'],
      clientId: 'c',
    });
    expect(kafkaSettingsFromEnv('c', { KAFKA_AUTH: 'iam', AWS_REGION: 'eu-west-1' }).iam).toEqual({
      region: 'eu-west-1',
    });
    expect(() => kafkaSettingsFromEnv('c', { KAFKA_AUTH: 'iam' })).toThrow(/AWS_REGION/);
  });
});
