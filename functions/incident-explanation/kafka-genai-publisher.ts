import { kafkaSettingsFromEnv } from '../../shared/kafka/client-options';
import type { EventProducer } from '../../shared/kafka/producer';
import type { GenAiEventPublisher, OutgoingEvent } from './ports';

/**
 * Produces the genai.* events with the project's producer: key = incident id, CloudEvents headers (ce_id is
 * the deterministic id), Avro value with Confluent framing. The producer is idempotent (acks=all), and one
 * publish sends all events of an incident together; a failure rejects and the record is retried.
 */
export class KafkaGenAiEventPublisher implements GenAiEventPublisher {
  #producer: Promise<Pick<EventProducer, 'publish' | 'close'>> | undefined;

  /**
   * `producer` is called once, on the first publish; the instance is kept for the life of the process.
   * `topicPrefix` is put before every topic name (none by default; the reliability suite's run-scoped topics).
   */
  constructor(
    private readonly producer: () => Promise<Pick<EventProducer, 'publish' | 'close'>>,
    private readonly topicPrefix = '',
  ) {}

  async publish(events: OutgoingEvent[], after?: Promise<unknown>): Promise<void> {
    // A failed creation is not cached: the record is retried and the next publish tries again.
    this.#producer ??= this.producer().catch((error: unknown) => {
      this.#producer = undefined;
      throw error;
    });
    const prefix = this.topicPrefix;
    return (await this.#producer).publish(
      prefix ? events.map((event) => ({ ...event, topic: `${prefix}${event.topic}` })) : events,
      after,
    );
  }

  /** Disconnects, if connected; the next publish connects again. */
  async close(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    if (producer) await (await producer.catch(() => undefined))?.close();
  }
}

/**
 * KAFKA_BROKERS, KAFKA_AUTH (none | iam) and KAFKA_TOPIC_PREFIX (optional) from the environment, checked now; the Kafka client is loaded
 * and created on the first publish (loading it compiles its option schemas: about half of this function's
 * cold start, bench/RESULTS.md "Bundles"), and connects on the first send.
 */
export function kafkaGenAiEventPublisher(env: NodeJS.ProcessEnv = process.env): KafkaGenAiEventPublisher {
  const settings = kafkaSettingsFromEnv('incident-explanation', env);
  return new KafkaGenAiEventPublisher(async () => {
    const { EventProducer } = await import('../../shared/kafka/producer');
    return EventProducer.connect(settings);
  }, env.KAFKA_TOPIC_PREFIX ?? '');
}
