/**
 * Partial batch responses for Kafka ESMs. Kafka commits per partition, so once a record of a partition fails,
 * that record AND every later record of the partition are reported (and not processed): the ESM then
 * redelivers from the failed offset and per-partition order is never broken.
 */
import type { DecodedPartition, DecodedRecord } from './decode';
import { RecordDecodeError } from './decode';
import { type KafkaBatchItemFailure, type KafkaBatchResponse, topicPartitionKey } from './event';

/** What a record handler logs with; its lines carry the record's Kafka coordinates and CloudEvent ids. */
export interface RecordLogger {
  debug(message: string, ...attributes: Record<string, unknown>[]): void;
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
  error(message: string, ...attributes: Record<string, unknown>[]): void;
}

/** A logger with keys of its own, rekeyed per record; a Powertools Logger satisfies it. */
export interface KeyedLogger extends RecordLogger {
  appendKeys(keys: Record<string, unknown>): void;
  removeKeys(keys: string[]): void;
}

/** The subset of a logger used here; a Powertools Logger satisfies it. */
export interface BatchLogger {
  error(message: string, attributes: Record<string, unknown>): void;
  /**
   * A new logger with its own keys (Powertools' `createChild`), one per partition: partitions run
   * concurrently, so keys set on one shared logger would leak between them. Without it, record handlers
   * log JSON to the console.
   */
  createChild?(): KeyedLogger;
}

/** JSON lines on the console with the keys set on it; for callers that pass no Powertools Logger. */
class ConsoleKeyedLogger implements KeyedLogger {
  readonly #keys: Record<string, unknown> = {};

  appendKeys(keys: Record<string, unknown>): void {
    Object.assign(this.#keys, keys);
  }

  removeKeys(keys: string[]): void {
    for (const key of keys) delete this.#keys[key];
  }

  debug(message: string, ...attributes: Record<string, unknown>[]): void {
    console.debug(this.#line('DEBUG', message, attributes));
  }

  info(message: string, ...attributes: Record<string, unknown>[]): void {
    console.info(this.#line('INFO', message, attributes));
  }

  warn(message: string, ...attributes: Record<string, unknown>[]): void {
    console.warn(this.#line('WARN', message, attributes));
  }

  error(message: string, ...attributes: Record<string, unknown>[]): void {
    console.error(this.#line('ERROR', message, attributes));
  }

  #line(level: string, message: string, attributes: Record<string, unknown>[]): string {
    return JSON.stringify(Object.assign({ level, message, ...this.#keys }, ...attributes));
  }
}

const consoleLogger: BatchLogger = {
  error: (message, attributes) => console.error(JSON.stringify({ level: 'ERROR', message, ...attributes })),
};

/** A logger for the records of one partition, keyed with its topic and partition. */
export function partitionLogger(
  logger: BatchLogger | undefined,
  partition: DecodedPartition<unknown>,
): KeyedLogger {
  const child = logger?.createChild ? logger.createChild() : new ConsoleKeyedLogger();
  child.appendKeys({ topic: partition.topic, partition: partition.partition });
  return child;
}

/**
 * Sets the record's keys on its partition's logger. Appending overwrites the previous record's keys; a key
 * this record lacks is removed first (a removal costs as much as the append, so only then).
 */
export function keyRecord(log: KeyedLogger, record: DecodedRecord<unknown>): void {
  const ce = record.cloudEvent;
  if (ce === null) {
    log.removeKeys(['eventId', 'eventType', 'correlationId']);
    log.appendKeys({ offset: record.offset });
    return;
  }
  if (ce.correlationId === undefined) {
    log.removeKeys(['correlationId']);
    log.appendKeys({ offset: record.offset, eventId: ce.id, eventType: ce.type });
    return;
  }
  log.appendKeys({
    offset: record.offset,
    eventId: ce.id,
    eventType: ce.type,
    correlationId: ce.correlationId,
  });
}

function describeCause(cause: unknown): Record<string, unknown> {
  if (cause instanceof RecordDecodeError) {
    return { reason: cause.reason, error: cause.message };
  }
  if (cause instanceof Error) return { reason: cause.name, error: cause.message, stack: cause.stack };
  return { reason: 'non-error-thrown', error: String(cause) };
}

/** What an operator searches the logs by: the CloudEvents id, type and correlation id, when the record has them. */
function eventIdentity(record: DecodedPartition<unknown>['records'][number]): Record<string, string> {
  if (record instanceof RecordDecodeError || record.cloudEvent === null) return {};
  const { id, type, correlationId } = record.cloudEvent;
  return correlationId === undefined
    ? { eventId: id, eventType: type }
    : { eventId: id, eventType: type, correlationId };
}

/** Collects batch item failures; the reason of every failure is logged once per partition. */
export class BatchFailures {
  readonly #failures = new Map<string, KafkaBatchItemFailure[]>();
  readonly #logger: BatchLogger;

  constructor(logger: BatchLogger = consoleLogger) {
    this.#logger = logger;
  }

  /**
   * Reports the record at `index` and every later record of the partition, and logs why. The caller must
   * stop processing that partition. Calling it again for the same partition keeps the earliest offset.
   */
  failFrom(partition: DecodedPartition<unknown>, index: number, cause: unknown): void {
    const failed = partition.records.slice(index);
    const first = failed[0];
    if (!first) return;
    const identifiers = failed.map((record) => ({
      itemIdentifier: { partition: topicPartitionKey(record.topic, record.partition), offset: record.offset },
    }));
    const existing = this.#failures.get(partition.key);
    if (existing && (existing[0]?.itemIdentifier.offset ?? Number.POSITIVE_INFINITY) <= first.offset) return;
    this.#failures.set(partition.key, identifiers);
    this.#logger.error('Kafka record failed; it and the later records of its partition are reported', {
      partition: partition.key,
      offset: first.offset,
      reportedRecords: identifiers.length,
      ...eventIdentity(first),
      ...describeCause(cause),
    });
  }

  /** Reports a whole partition (e.g. a batch write covering it failed). */
  failPartition(partition: DecodedPartition<unknown>, cause: unknown): void {
    this.failFrom(partition, 0, cause);
  }

  hasFailed(partitionKey: string): boolean {
    return this.#failures.has(partitionKey);
  }

  get count(): number {
    let count = 0;
    for (const failures of this.#failures.values()) count += failures.length;
    return count;
  }

  /** The response the ESM expects; an empty list means the whole batch succeeded. */
  toResponse(): KafkaBatchResponse {
    const keys = [...this.#failures.keys()].sort();
    return { batchItemFailures: keys.flatMap((key) => this.#failures.get(key) ?? []) };
  }
}

/** `log` is the record's partition logger, keyed with topic, partition, offset, eventId, eventType, correlationId. */
export type RecordHandler<Data> = (record: DecodedRecord<Data>, log: RecordLogger) => Promise<void> | void;
