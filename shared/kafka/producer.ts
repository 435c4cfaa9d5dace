/**
 * The project's producer (sample traffic, the GenAI events the incident function emits). Idempotent
 * (acks=all, idempotent=true), so a client retry never writes a duplicate; each event is encoded and
 * validated before anything is sent, so a bad event fails the whole publish instead of half of it.
 */
import './node20-polyfills';
import { ProduceAcks, Producer } from '@platformatic/kafka';
import type { FileCatalogSchemaRegistry } from '../contracts/file-catalog-registry';
import { type KafkaConnectionSettings, kafkaClientOptions } from './client-options';
import { type KafkaMessage, type OutgoingEvent, toKafkaMessage } from './event-message';

/** The subset of a @platformatic/kafka Producer used here (tests pass a fake). */
export interface MessageSender {
  send(options: {
    messages: { topic: string; key: Buffer; value: Buffer; headers: Map<Buffer, Buffer> }[];
  }): Promise<unknown>;
  close(): Promise<void>;
}

/** Producer options: the connection (plaintext or MSK IAM) plus the idempotence settings. */
export function kafkaProducerOptions(settings: KafkaConnectionSettings) {
  return {
    ...kafkaClientOptions(settings),
    idempotent: true,
    acks: ProduceAcks.ALL,
    // Topics are created by the platform (serverless.yml custom.kafka.topics), never by a typo here.
    autocreateTopics: false,
  };
}

export function createKafkaSender(settings: KafkaConnectionSettings): MessageSender {
  return new Producer(kafkaProducerOptions(settings));
}

export function toProducerRecord(message: KafkaMessage) {
  const headers = new Map<Buffer, Buffer>();
  for (const [name, value] of Object.entries(message.headers)) {
    headers.set(Buffer.from(name), Buffer.from(value, 'utf8'));
  }
  return { topic: message.topic, key: Buffer.from(message.key, 'utf8'), value: message.value, headers };
}

export class EventProducer {
  readonly #sender: MessageSender;
  readonly #registry: FileCatalogSchemaRegistry | undefined;

  constructor(sender: MessageSender, registry?: FileCatalogSchemaRegistry) {
    this.#sender = sender;
    this.#registry = registry;
  }

  static connect(settings: KafkaConnectionSettings): EventProducer {
    return new EventProducer(createKafkaSender(settings));
  }

  /** Encodes the events now and sends them once `after` resolves (never, if it rejects). */
  async publish(events: readonly OutgoingEvent[], after?: Promise<unknown>): Promise<void> {
    const messages = events.map((event) => toProducerRecord(toKafkaMessage(event, this.#registry)));
    await after;
    if (messages.length === 0) return;
    await this.#sender.send({ messages });
  }

  close(): Promise<void> {
    return this.#sender.close();
  }
}
