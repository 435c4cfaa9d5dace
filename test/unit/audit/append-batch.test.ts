import { describe, expect, it } from 'vitest';
import { BatchRetryError, chunkEnds, isRecordLevelError } from '../../../functions/audit-append/append-batch';
import type { AuditRecord } from '../../../functions/audit-append/audit-record';
import type { AppendOutcome, AuditEventStore } from '../../../functions/audit-append/ports';
import { appendThroughEngine } from './support/append-through-engine';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from './support/msk';

/** cloudEventRecord's default ce_source. */
const SOURCE = 'urn:mobility:genai-service';

/** Fails a call when it contains a record of the given partition with a given error code. */
class FakeStore implements AuditEventStore {
  calls: AuditRecord[][] = [];
  /** Chunk sizes of each call. */
  chunks: number[][] = [];
  constructor(
    private readonly outcome: (record: AuditRecord) => AppendOutcome = () => ({
      outcome: 'appended',
      seq: 1n,
    }),
    private readonly failWhen?: (records: readonly AuditRecord[]) => string | undefined,
  ) {}
  async append(chunks: Iterable<readonly AuditRecord[]>): Promise<AppendOutcome[]> {
    const pulled = [...chunks];
    const records = pulled.flat();
    this.calls.push(records);
    this.chunks.push(pulled.map((chunk) => chunk.length));
    const code = this.failWhen?.(records);
    if (code) throw Object.assign(new Error(`failed with ${code}`), { code });
    return records.map(this.outcome);
  }
}

describe('appendBatch', () => {
  it('writes all partitions of a batch in one store call', async () => {
    const store = new FakeStore();
    const event = mskEvent(
      [0, 1, 2].flatMap((offset) => [
        cloudEventRecord({ offset }),
        cloudEventRecord({ topic: 'payment.failed', partition: 4, offset }),
      ]),
    );
    const result = await appendThroughEngine(event, { store, decode: decodeJsonCloudEvent });
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0]).toHaveLength(6);
    expect(result).toMatchObject({ appended: 6, batchItemFailures: [] });
  });

  it('reports a poison record with its successors and stores the rest', async () => {
    const store = new FakeStore();
    const event = mskEvent([
      cloudEventRecord({ offset: 7 }),
      cloudEventRecord({ offset: 8, rawValue: 'not json' }),
      cloudEventRecord({ offset: 9 }),
      cloudEventRecord({ partition: 1, offset: 3 }),
    ]);
    const result = await appendThroughEngine(event, { store, decode: decodeJsonCloudEvent });
    expect(store.calls[0]?.map((record) => [record.partition, record.offset])).toEqual([
      [0, 7],
      [0, 9],
      [1, 3],
    ]);
    expect(result.poison).toEqual([
      expect.objectContaining({ topic: 'genai.request', partition: 0, offset: 8 }),
    ]);
    expect(result.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'genai.request-0', offset: 8 } },
      { itemIdentifier: { partition: 'genai.request-0', offset: 9 } },
    ]);
  });

  it('hands a large batch over in chunks of 30% and 70%, in order, and a small one whole', async () => {
    expect([0, 1, 49, 50, 100, 500].map(chunkEnds)).toEqual([
      [0],
      [1],
      [49],
      [15, 50],
      [30, 100],
      [150, 500],
    ]);
    const store = new FakeStore();
    const records = Array.from({ length: 100 }, (_, i) => cloudEventRecord({ partition: i % 3, offset: i }));
    const result = await appendThroughEngine(mskEvent(records), { store, decode: decodeJsonCloudEvent });
    expect(store.chunks).toEqual([[30, 70]]);
    const byPartition = [0, 1, 2].flatMap((p) => records.filter((record) => record.partition === p));
    expect(store.calls[0]?.map((record) => [record.partition, record.offset])).toEqual(
      byPartition.map((record) => [record.partition, record.offset]),
    );
    expect(result).toMatchObject({ appended: 100, batchItemFailures: [] });

    const small = new FakeStore();
    await appendThroughEngine(mskEvent(records.slice(0, 10)), { store: small, decode: decodeJsonCloudEvent });
    expect(small.chunks).toEqual([[10]]);
  });

  it('reports a record that decodes but cannot be stored, found while a later chunk is built', async () => {
    const store = new FakeStore();
    const records = Array.from({ length: 100 }, (_, offset) =>
      cloudEventRecord({ offset, ...(offset === 40 ? { time: 'yesterday' } : {}) }),
    );
    const result = await appendThroughEngine(mskEvent(records), { store, decode: decodeJsonCloudEvent });
    expect(store.chunks).toEqual([[30, 69]]);
    expect(result.appended).toBe(99);
    expect(result.poison).toEqual([
      {
        topic: 'genai.request',
        partition: 0,
        offset: 40,
        reason: expect.stringContaining('"time" is not an RFC 3339 timestamp'),
      },
    ]);
    expect(result.batchItemFailures.map((failure) => failure.itemIdentifier.offset)).toEqual(
      Array.from({ length: 60 }, (_, i) => 40 + i),
    );
  });

  it('reports by offset even when a partition arrives out of order', async () => {
    const event = mskEvent([
      cloudEventRecord({ offset: 12 }),
      cloudEventRecord({ offset: 10, rawValue: 'not json' }),
      cloudEventRecord({ offset: 11 }),
    ]);
    const result = await appendThroughEngine(event, { store: new FakeStore(), decode: decodeJsonCloudEvent });
    expect(result.batchItemFailures.map((failure) => failure.itemIdentifier.offset)).toEqual([10, 11, 12]);
  });

  it('counts duplicates and reports conflicts with their coordinates', async () => {
    const store = new FakeStore((record) =>
      record.offset === 1
        ? { outcome: 'duplicate' }
        : record.offset === 2
          ? { outcome: 'conflict' }
          : { outcome: 'appended', seq: 9n },
    );
    const event = mskEvent([
      ...[0, 1, 2].map((offset) => cloudEventRecord({ offset })),
      cloudEventRecord({ partition: 1, offset: 2, correlationId: 'corr-7' }),
    ]);
    const result = await appendThroughEngine(event, { store, decode: decodeJsonCloudEvent });
    expect(result).toMatchObject({ appended: 1, duplicates: 1, batchItemFailures: [] });
    expect(result.conflicts).toEqual([
      { topic: 'genai.request', partition: 0, offset: 2, ceId: 'genai.request-0-2', source: SOURCE },
      {
        topic: 'genai.request',
        partition: 1,
        offset: 2,
        ceId: 'genai.request-1-2',
        source: SOURCE,
        correlationId: 'corr-7',
      },
    ]);
  });

  it('isolates a partition the database refuses and reports it from its first record', async () => {
    const store = new FakeStore(undefined, (records) =>
      records.some((record) => record.partition === 1) ? '23514' : undefined,
    );
    const event = mskEvent([
      cloudEventRecord({ offset: 0 }),
      cloudEventRecord({ partition: 1, offset: 5 }),
      cloudEventRecord({ partition: 1, offset: 6 }),
    ]);
    const result = await appendThroughEngine(event, { store, decode: decodeJsonCloudEvent });
    expect(store.calls.map((call) => call.length)).toEqual([3, 1, 2]);
    expect(result.appended).toBe(1);
    expect(result.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'genai.request-1', offset: 5 } },
      { itemIdentifier: { partition: 'genai.request-1', offset: 6 } },
    ]);
  });

  it('fails the batch on connection loss, timeouts and registry outages', async () => {
    const event = mskEvent([cloudEventRecord({ offset: 0 })]);
    await expect(
      appendThroughEngine(event, {
        store: new FakeStore(undefined, () => '08006'),
        decode: decodeJsonCloudEvent,
      }),
    ).rejects.toMatchObject({ code: '08006' });
    await expect(
      appendThroughEngine(event, {
        store: new FakeStore(),
        decode: () => Promise.reject(new BatchRetryError('registry unreachable')),
      }),
    ).rejects.toThrow('registry unreachable');
  });

  it('classifies database errors', () => {
    expect(['22P02', '23505', '54000', 'P0001'].map((code) => isRecordLevelError({ code }))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(
      ['08006', '57014', '40P01', '42501', undefined].map((code) => isRecordLevelError({ code })),
    ).toEqual([false, false, false, false, false]);
  });
});
