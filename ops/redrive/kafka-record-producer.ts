// Produces redriven records with @platformatic/kafka: idempotent, every in-sync replica acknowledging, so a
// retried request never writes a record twice. Plaintext locally, MSK IAM in AWS (shared/kafka/client-options).
import '../../shared/kafka/node20-polyfills';
import { ProduceAcks, Producer } from '@platformatic/kafka';
import { type KafkaConnectionSettings, kafkaClientOptions } from '../../shared/kafka/client-options';
import type { RecordProducer } from './redrive';

export function kafkaRecordProducer(
  settings: KafkaConnectionSettings,
): RecordProducer & { close(): Promise<void> } {
  let producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  return {
    async produce(records) {
      producer ??= new Producer<Buffer, Buffer, Buffer, Buffer>({
        ...kafkaClientOptions(settings),
        idempotent: true,
        acks: ProduceAcks.ALL,
      });
      await producer.send({
        messages: records.map((r) => ({
          topic: r.topic,
          ...(r.partition === undefined ? {} : { partition: r.partition }),
          ...(r.key === null ? {} : { key: r.key }),
          // A tombstone stays a record without a value.
          ...(r.value === null ? {} : { value: r.value }),
          headers: new Map(r.headers),
        })),
      });
    },
    async close() {
      await producer?.close();
    },
  };
}
