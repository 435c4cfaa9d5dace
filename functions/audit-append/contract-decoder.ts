import type { SchemaRegistry } from '../../shared/contracts/schema-registry';
import { type DecodeOutcome, decodeRecord, isRecordDecodeError } from '../../shared/msk/decode';
import type { KafkaEventRecord } from '../../shared/msk/event';
import { type AuditDecoder, BatchRetryError } from './append-batch';
import { type DecodedEvent, UnstorableRecordError } from './audit-record';

/** What the audit stores of a decoded record; throws for a poison record. */
export function toAuditEvent(outcome: DecodeOutcome): DecodedEvent {
  if (isRecordDecodeError(outcome)) throw outcome;
  if (!outcome.cloudEvent) {
    throw new UnstorableRecordError('tombstone without CloudEvents headers: nothing to record');
  }
  return { cloudEvent: { ...outcome.cloudEvent }, data: outcome.data };
}

/**
 * The project's contract decoder (CloudEvents headers, Confluent/Glue Avro or JSON values) as the audit needs
 * it: a RecordDecodeError is a poison record; a schema registry that cannot be reached fails the batch.
 * A tombstone is stored when it carries CloudEvents headers (data null), else it is a poison record.
 */
export function contractDecoder(registry: SchemaRegistry): AuditDecoder<KafkaEventRecord> {
  const toEvent = toAuditEvent;
  return (record) => {
    const outcome = decodeRecord(record, { registry });
    if (!(outcome instanceof Promise)) return toEvent(outcome);
    return outcome.then(toEvent, (error: unknown) => {
      throw new BatchRetryError(`schema registry unavailable: ${(error as Error).message}`);
    });
  };
}
