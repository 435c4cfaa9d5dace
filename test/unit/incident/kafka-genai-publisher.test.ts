import { describe, expect, it } from 'vitest';
import {
  KafkaGenAiEventPublisher,
  kafkaGenAiEventPublisher,
} from '../../../functions/incident-explanation/kafka-genai-publisher';
import type { OutgoingEvent } from '../../../functions/incident-explanation/ports';

const event = (topic: string): OutgoingEvent => ({
  topic,
  key: 'inc-1',
  id: `id-${topic}`,
  type: topic,
  source: 'mobility-events/incident-explanation',
  subject: 'inc-1',
  time: '2026-12-06T10:00:00.000Z',
  data: {},
});

function recording(prefix?: string) {
  const sent: string[] = [];
  const publisher = new KafkaGenAiEventPublisher(
    async () => ({
      publish: async (events: OutgoingEvent[]) => {
        sent.push(...events.map((e) => `${e.topic} ${e.type}`));
      },
      close: async () => {},
    }),
    prefix,
  );
  return { publisher, sent };
}

describe('KafkaGenAiEventPublisher topics', () => {
  it('produces to the canonical topics by default', async () => {
    const { publisher, sent } = recording();
    await publisher.publish([event('genai.request'), event('genai.response')]);
    expect(sent).toEqual(['genai.request genai.request', 'genai.response genai.response']);
  });

  it('puts KAFKA_TOPIC_PREFIX before the topic, never before the CloudEvents type', async () => {
    const { publisher, sent } = recording('rel-abc.');
    await publisher.publish([event('genai.hitl.requested')]);
    expect(sent).toEqual(['rel-abc.genai.hitl.requested genai.hitl.requested']);
    expect(
      kafkaGenAiEventPublisher({ KAFKA_BROKERS: '127.0.0.1:1', KAFKA_TOPIC_PREFIX: 'x.' }),
    ).toBeInstanceOf(KafkaGenAiEventPublisher);
  });
});
