/**
 * The one Kafka handler every function exports: what each used to repeat around its records. Per invocation:
 * Lambda context on the logger, decode with the schema registry, the batch
 * engine under the function's policy, batch metrics published in a `finally` (also when the batch fails as a
 * whole), and a batch-level error logged once and rethrown so the ESM retries the whole batch.
 *
 *   export const handler = createKafkaHandler({ logger, metrics, registry, policy: { kind: 'stop', handle } });
 */
import type { Context } from 'aws-lambda';
import type { SchemaRegistry } from '../contracts/schema-registry';
import type { KeyedLogger } from './batch';
import { type DecodedPartition, decodeEvent } from './decode';
import {
  type AggregateResult,
  type BatchPolicy,
  type EngineLogger,
  type EngineOptions,
  runBatch,
  withRawRecords,
  withTransientRetries,
} from './engine';
import { isBatchLevelError, isStoreOutage } from './errors';
import type { KafkaBatchResponse, KafkaEvent } from './event';
import { type BatchMetricsSink, publishBatchMetrics } from './metrics';

/** What the wrapper logs with; a Powertools Logger satisfies it. */
export interface HandlerLogger extends EngineLogger {
  addContext(context: Context): void;
  createChild?(): KeyedLogger;
}

/** Powertools Metrics as far as the wrapper uses it. */
export interface HandlerMetrics extends BatchMetricsSink {
  publishStoredMetrics(): void;
}

export interface KafkaHandlerOptions<Data, Result extends AggregateResult = AggregateResult> {
  logger: HandlerLogger;
  metrics: HandlerMetrics;
  registry: SchemaRegistry;
  /** How the function's records are run (see engine.ts). */
  policy: BatchPolicy<Data, Result>;
  /** Values larger than this are record failures (decode.ts). */
  maxValueBytes?: number;
  isBatchLevel?: EngineOptions['isBatchLevel'];
  isTransient?: EngineOptions['isTransient'];
  retryDelayMs?: EngineOptions['retryDelayMs'];
  /**
   * Time kept free at the end of the invocation: transient retries stop this long before the function
   * timeout, so the invocation fails as an error (metrics published) rather than as a timeout. Default 10 s.
   */
  retryMarginMs?: number;
}

export type KafkaHandler = (event: KafkaEvent, context?: Context) => Promise<KafkaBatchResponse>;

export const DEFAULT_RETRY_MARGIN_MS = 10_000;

export function createKafkaHandler<
  Data = Record<string, unknown>,
  Result extends AggregateResult = AggregateResult,
>(options: KafkaHandlerOptions<Data, Result>): KafkaHandler {
  const { logger, metrics, registry, policy } = options;
  const isBatchLevel = options.isBatchLevel ?? isBatchLevelError;
  const isTransient = options.isTransient ?? isStoreOutage;
  const margin = options.retryMarginMs ?? DEFAULT_RETRY_MARGIN_MS;
  const perTopic = metrics.singleMetric();
  return async (event, context) => {
    if (context) {
      logger.addContext(context);
    }
    // Without a context (tests, benches) there is no time budget to retry in.
    const retryUntil = context ? Date.now() + context.getRemainingTimeInMillis() - margin : 0;
    let retries = 0;
    const engine: EngineOptions = {
      onRetry: () => {
        retries++;
      },
      logger,
      isBatchLevel,
      isTransient,
      retryUntil,
      ...(options.retryDelayMs ? { retryDelayMs: options.retryDelayMs } : {}),
    };
    let response: KafkaBatchResponse | undefined;
    try {
      // Decoding rejects only when the schema registry cannot be reached: an outage like any other.
      const decoded = await withTransientRetries(
        () =>
          decodeEvent(event, {
            registry,
            ...(options.maxValueBytes === undefined ? {} : { maxValueBytes: options.maxValueBytes }),
          }),
        engine,
        { step: 'decode' },
      );
      const partitions = withRawRecords(decoded as unknown as DecodedPartition<Data>[], event.records ?? {});
      const outcome = await runBatch<Data, Result>(partitions, policy, engine);
      response = outcome.response;
      return response;
    } catch (error) {
      logger.error('Batch failed as a whole; the ESM retries it (no record is reported)', {
        reason: error instanceof Error ? error.name : 'non-error-thrown',
        error: error instanceof Error ? error.message : String(error),
        outage: isTransient(error),
      });
      throw error;
    } finally {
      if (retries > 0) metrics.addMetric('TransientRetries', 'Count', retries);
      // A failed batch counts every record as failed: the ESM delivers all of them again. The one place
      // every function's batch metrics (OldestRecordAgeMs per topic, which the per-ESM alarms read) come from.
      publishBatchMetrics(metrics, perTopic, event, response ?? everyRecordFailed(event));
      metrics.publishStoredMetrics();
    }
  };
}

function everyRecordFailed(event: KafkaEvent): KafkaBatchResponse {
  const batchItemFailures: KafkaBatchResponse['batchItemFailures'] = [];
  for (const [partition, records] of Object.entries(event.records ?? {})) {
    for (const record of records)
      batchItemFailures.push({ itemIdentifier: { partition, offset: record.offset } });
  }
  return { batchItemFailures };
}
