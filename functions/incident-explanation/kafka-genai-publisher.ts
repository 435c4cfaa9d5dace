import { kafkaSettingsFromEnv } from '../../shared/kafka/client-options';
import { EventProducer } from '../../shared/kafka/producer';
import type { GenAiEventPublisher, OutgoingEvent } from './ports';

/**
 * Produces the genai.* events with the project's producer: key = incident id, CloudEvents headers (ce_id is
 * the deterministic id), Avro value with Confluent framing. The producer is idempotent (acks=all), and one
 * publish sends all events of an incident together; a failure rejects and the record is retried.
 */
export class KafkaGenAiEventPublisher implements GenAiEventPublisher {
  constructor(private readonly producer: Pick<EventProducer, 'publish'>) {}

  publish(events: OutgoingEvent[]): Promise<void> {
    return this.producer.publish(events);
  }
}

/** KAFKA_BROKERS and KAFKA_AUTH (none | iam) from the environment; connects on first publish. */
export function kafkaGenAiEventPublisher(env: NodeJS.ProcessEnv = process.env): KafkaGenAiEventPublisher {
  return new KafkaGenAiEventPublisher(
    EventProducer.connect(kafkaSettingsFromEnv('incident-explanation', env)),
  );
}
