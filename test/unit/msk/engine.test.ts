import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../shared/config';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import { kafkaEvent } from '../../../shared/msk/build';
import { decodeEvent, RecordDecodeError } from '../../../shared/msk/decode';
import {
  type BatchPartition,
  type BatchPolicy,
  type EngineOptions,
  runBatch,
  withRawRecords,
} from '../../../shared/msk/engine';
import type { KafkaBatchResponse, KafkaEvent } from '../../../shared/msk/event';
import { createKafkaHandler } from '../../../shared/msk/handler';
import { lambdaContext } from '../../support/lambda-context';
import { sampleAvroRecord } from '../../support/msk-records';

const topic = 'payment.failed';

function record(partition: number, offset: number, poison = false) {
  return sampleAvroRecord({ topic, partition, offset, poison });
}

/** Partitions 0..n-1 with offsets 1..perPartition each; `poison` lists "p@o" records that do not decode. */
function batchOf(partitions: number, perPartition: number, poison: string[] = []): KafkaEvent {
  return kafkaEvent(
    Array.from({ length: partitions }, (_, p) =>
      Array.from({ length: perPartition }, (_, i) => record(p, i + 1, poison.includes(`${p}@${i + 1}`))),
    ).flat(),
  );
}

async function decoded(event: KafkaEvent): Promise<BatchPartition[]> {
  return withRawRecords(await decodeEvent(event, { registry }), event.records);
}

const ids = (response: KafkaBatchResponse) =>
  response.batchItemFailures.map(
    ({ itemIdentifier }) => `${itemIdentifier.partition}@${itemIdentifier.offset}`,
  );

const silent = { error: () => {}, warn: () => {} };
const quick: EngineOptions = { logger: silent, retryDelayMs: () => 1 };
const tick = (ms = 2) => new Promise((resolve) => setTimeout(resolve, ms));

/** A connection refused, as node and the AWS SDK report it. */
const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4567'), { code: 'ECONNREFUSED' });

describe('runBatch, stop policy', () => {
  it('handles each partition strictly in offset order and stops it at the first failure', async () => {
    const effects: string[] = [];
    let inPartition0 = 0;
    let overlapped = false;
    const policy: BatchPolicy = {
      kind: 'stop',
      handle: async (r) => {
        if (r.partition === 0 && ++inPartition0 > 1) overlapped = true;
        await tick();
        if (r.partition === 0) inPartition0--;
        if (r.partition === 0 && r.offset === 3) throw new Error('invoice total negative');
        effects.push(`${r.partition}@${r.offset}`);
      },
    };
    const { response } = await runBatch(await decoded(batchOf(2, 5)), policy, quick);
    expect(ids(response)).toEqual([`${topic}-0@3`, `${topic}-0@4`, `${topic}-0@5`]);
    expect(effects.filter((e) => e.startsWith('0@'))).toEqual(['0@1', '0@2']);
    expect(effects.filter((e) => e.startsWith('1@'))).toEqual(['1@1', '1@2', '1@3', '1@4', '1@5']);
    expect(overlapped).toBe(false);
  });

  it('stops a partition at a record that does not decode, without calling the handler for it', async () => {
    const seen: string[] = [];
    const policy: BatchPolicy = { kind: 'stop', handle: (r) => void seen.push(`${r.partition}@${r.offset}`) };
    const { response } = await runBatch(await decoded(batchOf(1, 4, ['0@2'])), policy, quick);
    expect(ids(response)).toEqual([`${topic}-0@2`, `${topic}-0@3`, `${topic}-0@4`]);
    expect(seen).toEqual(['0@1']);
  });
});

describe('runBatch, commute policy', () => {
  it('goes on past a failed record and reports it with every later record of its partition', async () => {
    const seen: string[] = [];
    const policy: BatchPolicy = {
      kind: 'commute',
      concurrency: 1,
      handle: (r) => {
        seen.push(`${r.partition}@${r.offset}`);
        if (r.partition === 1 && r.offset === 2) throw new Error('unknown tariff');
      },
    };
    const { response } = await runBatch(await decoded(batchOf(2, 4)), policy, quick);
    expect(ids(response)).toEqual([`${topic}-1@2`, `${topic}-1@3`, `${topic}-1@4`]);
    expect(seen).toHaveLength(8);
    // concurrency 1: in offset order.
    expect(seen.filter((s) => s.startsWith('1@'))).toEqual(['1@1', '1@2', '1@3', '1@4']);
  });

  it('never has more than `concurrency` records of a partition in flight, and uses that many', async () => {
    const inFlight = new Map<number, number>();
    const most = new Map<number, number>();
    const policy: BatchPolicy = {
      kind: 'commute',
      concurrency: 3,
      handle: async (r) => {
        const now = (inFlight.get(r.partition) ?? 0) + 1;
        inFlight.set(r.partition, now);
        most.set(r.partition, Math.max(most.get(r.partition) ?? 0, now));
        await tick(1 + (r.offset % 3));
        inFlight.set(r.partition, (inFlight.get(r.partition) ?? 0) - 1);
      },
    };
    const { response } = await runBatch(await decoded(batchOf(2, 10)), policy, quick);
    expect(response).toEqual({ batchItemFailures: [] });
    expect([...most.entries()].sort()).toEqual([
      [0, 3],
      [1, 3],
    ]);
  });

  it('reports the earliest failed record when later ones failed first (concurrent records)', async () => {
    const policy: BatchPolicy = {
      kind: 'commute',
      concurrency: 4,
      handle: async (r) => {
        await tick(r.offset === 2 ? 10 : 1);
        if (r.offset === 2 || r.offset === 4) throw new Error(`bad ${r.offset}`);
      },
    };
    const lines: Record<string, unknown>[] = [];
    const logger = { error: (_: string, a: Record<string, unknown>) => lines.push(a), warn: () => {} };
    const { response } = await runBatch(await decoded(batchOf(1, 5)), policy, { ...quick, logger });
    expect(ids(response)).toEqual([`${topic}-0@2`, `${topic}-0@3`, `${topic}-0@4`, `${topic}-0@5`]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ offset: 2, error: 'bad 2' });
  });

  it('goes on past a record that does not decode', async () => {
    const seen: number[] = [];
    const policy: BatchPolicy = { kind: 'commute', concurrency: 1, handle: (r) => void seen.push(r.offset) };
    const { response } = await runBatch(await decoded(batchOf(1, 4, ['0@2'])), policy, quick);
    expect(ids(response)).toEqual([`${topic}-0@2`, `${topic}-0@3`, `${topic}-0@4`]);
    expect(seen).toEqual([1, 3, 4]);
  });
});

describe('runBatch, aggregate policy', () => {
  it('hands over the whole batch with the records as delivered and reports each partition from its earliest failure', async () => {
    let given: BatchPartition[] = [];
    const policy: BatchPolicy = {
      kind: 'aggregate',
      handle: async (partitions) => {
        given = partitions;
        return {
          failures: [
            { record: { topic, partition: 1, offset: 3 }, error: new Error('zone unknown') },
            { record: { topic, partition: 1, offset: 2 }, error: new Error('zone unknown') },
          ],
        };
      },
    };
    const event = batchOf(2, 3, ['0@3']);
    const { response } = await runBatch(await decoded(event), policy, quick);
    expect(given.map((p) => p.key)).toEqual([`${topic}-0`, `${topic}-1`]);
    expect(given[0]?.raw).toEqual(event.records[`${topic}-0`]);
    expect(given[0]?.records[2]).toBeInstanceOf(RecordDecodeError);
    // The decode error is reported although the handler did not list it.
    expect(ids(response)).toEqual([`${topic}-0@3`, `${topic}-1@2`, `${topic}-1@3`]);
  });

  it('runs the handler again when a record failed transiently, and fails the batch when time runs out', async () => {
    let calls = 0;
    const policy: BatchPolicy = {
      kind: 'aggregate',
      handle: async () => {
        calls++;
        const error = calls < 3 ? refused() : new Error('zone unknown');
        return { failures: [{ record: { topic, partition: 0, offset: 2 }, error }] };
      },
    };
    const retried = await runBatch(await decoded(batchOf(1, 3)), policy, {
      ...quick,
      retryUntil: Date.now() + 60_000,
    });
    expect(calls).toBe(3);
    expect(retried.retries).toBe(2);
    expect(ids(retried.response)).toEqual([`${topic}-0@2`, `${topic}-0@3`]);

    calls = 0;
    await expect(runBatch(await decoded(batchOf(1, 3)), policy, quick)).rejects.toThrow('ECONNREFUSED');
    expect(calls).toBe(1);
  });

  it('stops at once on a failure waiting does not fix, even beside a transient one', async () => {
    let calls = 0;
    const policy: BatchPolicy = {
      kind: 'aggregate',
      handle: async () => {
        calls++;
        return {
          failures: [
            { record: { topic, partition: 0, offset: 1 }, error: refused() },
            {
              record: { topic, partition: 1, offset: 1 },
              error: new ConfigurationError('sender not verified'),
            },
          ],
        };
      },
    };
    // Time to retry the outage for a minute: running the batch again would repeat its work (a send whose answer
    // did not say if it went out, say) and still fail on the other.
    await expect(
      runBatch(await decoded(batchOf(2, 1)), policy, { ...quick, retryUntil: Date.now() + 60_000 }),
    ).rejects.toThrow('sender not verified');
    expect(calls).toBe(1);
  });

  it('fails the batch when the handler throws', async () => {
    const policy: BatchPolicy = {
      kind: 'aggregate',
      handle: async () => {
        throw new ConfigurationError('DEMAND_TABLE missing');
      },
    };
    await expect(runBatch(await decoded(batchOf(1, 2)), policy, quick)).rejects.toThrow('DEMAND_TABLE');
  });
});

describe('runBatch, batch-level and transient errors', () => {
  it('rethrows a batch-level error only after every partition has stopped, never as a record failure', async () => {
    const finished: string[] = [];
    const policy: BatchPolicy = {
      kind: 'stop',
      handle: async (r) => {
        if (r.partition === 0) throw new ConfigurationError('INCIDENTS_TABLE missing');
        await tick(5);
        finished.push(`${r.partition}@${r.offset}`);
      },
    };
    await expect(runBatch(await decoded(batchOf(2, 3)), policy, quick)).rejects.toThrow(ConfigurationError);
    // Partition 1's record in flight at the error finished before the rejection; it took no new record.
    expect(finished).toEqual(['1@1']);
  });

  it('uses the predicate it is given for batch-level errors', async () => {
    const policy: BatchPolicy = {
      kind: 'commute',
      concurrency: 2,
      handle: () => {
        throw new RangeError('misconfigured');
      },
    };
    const options = { ...quick, isBatchLevel: (e: unknown) => e instanceof RangeError };
    await expect(runBatch(await decoded(batchOf(1, 3)), policy, options)).rejects.toThrow('misconfigured');
  });

  it('never turns an outage into a record failure, even under a predicate that does not know outages', async () => {
    const policy: BatchPolicy = { kind: 'commute', concurrency: 1, handle: () => Promise.reject(refused()) };
    const options = { ...quick, isBatchLevel: () => false };
    await expect(runBatch(await decoded(batchOf(1, 2)), policy, options)).rejects.toThrow('ECONNREFUSED');
  });

  it('retries a record that failed transiently, in place, keeping the partition order', async () => {
    const effects: number[] = [];
    let failuresLeft = 3;
    const policy: BatchPolicy = {
      kind: 'stop',
      handle: (r) => {
        if (r.offset === 2 && failuresLeft-- > 0) throw refused();
        effects.push(r.offset);
      },
    };
    const outcome = await runBatch(await decoded(batchOf(1, 3)), policy, {
      ...quick,
      retryUntil: Date.now() + 60_000,
    });
    expect(outcome.response).toEqual({ batchItemFailures: [] });
    expect(outcome.retries).toBe(3);
    expect(effects).toEqual([1, 2, 3]);
  });

  it('fails the whole batch on an outage that outlasts the time left, reporting no record', async () => {
    const policy: BatchPolicy = {
      kind: 'stop',
      handle: (r) => {
        if (r.offset === 2) throw refused();
      },
    };
    const retryUntil = Date.now() + 50;
    await expect(runBatch(await decoded(batchOf(2, 3)), policy, { ...quick, retryUntil })).rejects.toThrow(
      'ECONNREFUSED',
    );
  });
});

describe('createKafkaHandler', () => {
  function fakes() {
    const metrics: Array<[string, number]> = [];
    const singles: Array<{ dimensions: Record<string, string>; name: string }> = [];
    const singleInstances: number[] = [];
    const published: number[] = [];
    const contexts: unknown[] = [];
    const errors: Record<string, unknown>[] = [];
    return {
      metrics,
      singles,
      singleInstances,
      published,
      contexts,
      errors,
      logger: {
        addContext: (context: Context) => void contexts.push(context),
        error: (_: string, attributes: Record<string, unknown>) => void errors.push(attributes),
        warn: () => {},
      },
      sink: {
        addMetric: (name: string, _unit: string, value: number) => void metrics.push([name, value]),
        publishStoredMetrics: () => void published.push(metrics.length),
        // Like Powertools' single-metric instance: published at each addMetric, its dimensions then cleared.
        singleMetric: () => {
          singleInstances.push(1);
          let dimensions: Record<string, string> = {};
          return {
            addDimension: (name: string, value: string) => {
              dimensions[name] = value;
            },
            addMetric: (name: string) => {
              singles.push({ dimensions, name });
              dimensions = {};
            },
          };
        },
      },
    };
  }
  const context = lambdaContext('engine-test');

  it('adds the context to the logger, decodes, runs the policy and publishes the batch metrics, through one single-metric instance', async () => {
    const f = fakes();
    const handler = createKafkaHandler({
      logger: f.logger,
      metrics: f.sink,
      registry,
      policy: { kind: 'stop', handle: () => {} },
    });
    const response = await handler(batchOf(1, 3, ['0@3']), context);
    expect(ids(response)).toEqual([`${topic}-0@3`]);
    expect(f.contexts).toEqual([context]);
    expect(f.metrics.filter(([name]) => name.startsWith('Records'))).toEqual([
      ['RecordsProcessed', 2],
      ['RecordsFailed', 1],
    ]);
    // Lag as time, per topic (the per-ESM alarms' dimension), from here and from no handler.
    expect(f.singles).toEqual([{ dimensions: { topic }, name: 'OldestRecordAgeMs' }]);
    expect(f.published).toHaveLength(1);
    // One single-metric instance per handler, not one per batch (a new one costs ~90 us).
    await handler(batchOf(1, 2), context);
    expect(f.singleInstances).toHaveLength(1);
    expect(f.singles).toEqual([
      { dimensions: { topic }, name: 'OldestRecordAgeMs' },
      { dimensions: { topic }, name: 'OldestRecordAgeMs' },
    ]);
  });

  it('publishes the metrics when the batch fails as a whole, counting every record failed, and rethrows', async () => {
    const f = fakes();
    const handler = createKafkaHandler({
      logger: f.logger,
      metrics: f.sink,
      registry,
      policy: {
        kind: 'stop',
        handle: () => {
          throw new ConfigurationError('KAFKA_BROKERS missing');
        },
      },
    });
    await expect(handler(batchOf(2, 2), context)).rejects.toThrow('KAFKA_BROKERS missing');
    expect(f.metrics.filter(([name]) => name.startsWith('Records'))).toEqual([
      ['RecordsProcessed', 0],
      ['RecordsFailed', 4],
    ]);
    expect(f.singles).toEqual([{ dimensions: { topic }, name: 'OldestRecordAgeMs' }]);
    expect(f.published).toHaveLength(1);
    expect(f.errors.at(-1)).toMatchObject({ reason: 'ConfigurationError', outage: false });
  });

  it('retries a schema registry that cannot be reached while decoding, like any outage', async () => {
    const f = fakes();
    let lookups = 0;
    const flaky = {
      cached: () => undefined,
      resolve: async (id: number | string) => {
        if (++lookups <= 2) throw refused();
        return registry.cached(id);
      },
    };
    const seen: number[] = [];
    const handler = createKafkaHandler({
      logger: f.logger,
      metrics: f.sink,
      registry: flaky,
      retryDelayMs: () => 1,
      policy: { kind: 'stop', handle: (r) => void seen.push(r.offset) },
    });
    expect(await handler(batchOf(1, 2), context)).toEqual({ batchItemFailures: [] });
    expect(seen).toEqual([1, 2]);
    expect(f.metrics).toContainEqual(['TransientRetries', 2]);
  });

  it('retries an outage within the remaining time less the margin, then fails the batch', async () => {
    const f = fakes();
    let attempts = 0;
    const handler = createKafkaHandler({
      logger: f.logger,
      metrics: f.sink,
      registry,
      retryDelayMs: () => 5,
      retryMarginMs: 1_000,
      policy: {
        kind: 'stop',
        handle: () => {
          attempts++;
          throw refused();
        },
      },
    });
    await expect(handler(batchOf(1, 1), lambdaContext('engine-test', 1_100))).rejects.toThrow('ECONNREFUSED');
    expect(attempts).toBeGreaterThan(1);
    expect(f.errors.at(-1)).toMatchObject({ outage: true });
    expect(f.metrics).toContainEqual(['TransientRetries', attempts - 1]);
    expect(f.published).toHaveLength(1);
    // Without a context there is no time to retry in.
    attempts = 0;
    await expect(handler(batchOf(1, 1))).rejects.toThrow('ECONNREFUSED');
    expect(attempts).toBe(1);
  });
});
