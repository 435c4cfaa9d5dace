import { describe, expect, it } from 'vitest';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import { BatchFailures, type RecordHandler } from '../../../shared/msk/batch';
import { kafkaEvent } from '../../../shared/msk/build';
import { type DecodedPartition, type DecodedRecord, decodeEvent } from '../../../shared/msk/decode';
import { type EngineLogger, runBatch } from '../../../shared/msk/engine';
import { loadEvent } from '../../support/load-event';
import { sampleAvroRecord } from '../../support/msk-records';

function record(
  topic: 'payment.failed' | 'booking.created',
  partition: number,
  offset: number,
  poison = false,
) {
  return sampleAvroRecord({ topic, partition, offset, poison, id: `evt-${topic}-${partition}-${offset}` });
}

function recordingLogger() {
  const lines: { message: string; attributes: Record<string, unknown> }[] = [];
  const logger: EngineLogger = {
    error: (message, attributes) => lines.push({ message, attributes }),
    warn: () => undefined,
  };
  return { lines, logger };
}

const ids = (response: { batchItemFailures: { itemIdentifier: { partition: string; offset: number } }[] }) =>
  response.batchItemFailures.map(
    ({ itemIdentifier }) => `${itemIdentifier.partition}@${itemIdentifier.offset}`,
  );

/** The engine's `stop` policy over decoded partitions: how every in-order function runs its records. */
async function stop(
  partitions: DecodedPartition[],
  handle: RecordHandler<Record<string, unknown>>,
  logger?: EngineLogger,
) {
  const batch = partitions.map((partition) => ({ ...partition, raw: [] }));
  return (await runBatch(batch, { kind: 'stop', handle }, logger ? { logger } : {})).response;
}

describe('runBatch, stop policy: responses and logs', () => {
  it('returns an empty failure list when every record succeeds, processing each once in order', async () => {
    const seen: string[] = [];
    const event = kafkaEvent([
      record('payment.failed', 0, 1),
      record('payment.failed', 0, 2),
      record('payment.failed', 3, 9),
    ]);
    const response = await stop(await decodeEvent(event, { registry }), (r) => {
      seen.push(`${r.partition}@${r.offset}`);
    });
    expect(response).toEqual({ batchItemFailures: [] });
    expect(seen.filter((s) => s.startsWith('0@'))).toEqual(['0@1', '0@2']);
    expect(seen).toHaveLength(3);
  });

  it('reports the failed record and every later record of its partition, exactly in the AWS shape', async () => {
    const { lines, logger } = recordingLogger();
    const processed: string[] = [];
    const event = kafkaEvent([
      ...[10, 11, 12, 13].map((offset) => record('payment.failed', 0, offset)),
      ...[20, 21].map((offset) => record('payment.failed', 1, offset)),
    ]);
    const response = await stop(
      await decodeEvent(event, { registry }),
      async (r: DecodedRecord) => {
        if (r.partition === 0 && r.offset === 11) throw new Error('invoice refused');
        processed.push(`${r.partition}@${r.offset}`);
      },
      logger,
    );
    expect(response).toEqual({
      batchItemFailures: [
        { itemIdentifier: { partition: 'payment.failed-0', offset: 11 } },
        { itemIdentifier: { partition: 'payment.failed-0', offset: 12 } },
        { itemIdentifier: { partition: 'payment.failed-0', offset: 13 } },
      ],
    });
    // 12 and 13 were never processed; partition 1 was unaffected.
    expect(processed.sort()).toEqual(['0@10', '1@20', '1@21']);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.attributes).toMatchObject({
      partition: 'payment.failed-0',
      offset: 11,
      reportedRecords: 3,
      eventId: 'evt-payment.failed-0-11',
      eventType: 'payment.failed',
      reason: 'Error',
      error: 'invoice refused',
    });
  });

  it('reports a poison record (decode error) and the rest of its partition, with the reason logged', async () => {
    const { lines, logger } = recordingLogger();
    const handled: number[] = [];
    const event = kafkaEvent([
      record('booking.created', 2, 5),
      record('booking.created', 2, 6, true),
      record('booking.created', 2, 7),
    ]);
    const response = await stop(
      await decodeEvent(event, { registry }),
      (r) => {
        handled.push(r.offset);
      },
      logger,
    );
    expect(ids(response)).toEqual(['booking.created-2@6', 'booking.created-2@7']);
    expect(handled).toEqual([5]);
    expect(lines[0]?.attributes).toMatchObject({ reason: 'wrong-magic-byte', offset: 6 });
    expect(String(lines[0]?.attributes.error)).toContain('booking.created-2 offset 6');
  });

  it('runs partitions concurrently but each partition strictly sequentially', async () => {
    let active = 0;
    let maxActive = 0;
    const perPartition = new Map<number, number>();
    const overlaps: string[] = [];
    const seen = new Map<number, number[]>();
    const event = kafkaEvent(
      [0, 1, 2].flatMap((partition) =>
        [1, 2, 3].map((offset) => record('payment.failed', partition, offset)),
      ),
    );
    // Recorded, not asserted in the handler: a throw there would only become a batch item failure.
    const response = await stop(await decodeEvent(event, { registry }), async (r) => {
      const inPartition = (perPartition.get(r.partition) ?? 0) + 1;
      perPartition.set(r.partition, inPartition);
      if (inPartition !== 1) overlaps.push(`${r.partition}@${r.offset}`);
      seen.set(r.partition, [...(seen.get(r.partition) ?? []), r.offset]);
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((resolve) => setTimeout(resolve, 5));
      active--;
      perPartition.set(r.partition, inPartition - 1);
    });
    expect(response).toEqual({ batchItemFailures: [] });
    expect(overlaps).toEqual([]);
    expect([...seen.entries()].sort()).toEqual([
      [0, [1, 2, 3]],
      [1, [1, 2, 3]],
      [2, [1, 2, 3]],
    ]);
    expect(maxActive).toBe(3);
  });
});

describe('BatchFailures', () => {
  it('keeps the earliest failure of a partition and sorts partitions', async () => {
    const event = kafkaEvent([
      record('payment.failed', 1, 1),
      ...[1, 2, 3].map((offset) => record('payment.failed', 0, offset)),
    ]);
    const partitions = await decodeEvent(event, { registry });
    const [p1, p0] = partitions as [(typeof partitions)[number], (typeof partitions)[number]];
    const failures = new BatchFailures(recordingLogger().logger);
    failures.failFrom(p0, 2, new Error('late'));
    failures.failFrom(p0, 1, new Error('earlier'));
    failures.failFrom(p0, 2, new Error('later again'));
    failures.failPartition(p1, new Error('batch insert failed'));
    expect(ids(failures.toResponse())).toEqual([
      'payment.failed-0@2',
      'payment.failed-0@3',
      'payment.failed-1@1',
    ]);
    expect(failures.hasFailed('payment.failed-0')).toBe(true);
    expect(failures.count).toBe(3);
  });
});

describe('decode and the stop policy together', () => {
  it('report the poison fixture: the record and the rest of its partition only', async () => {
    const seen: number[] = [];
    const response = await stop(
      await decodeEvent(loadEvent('oncall-paging/poison.json'), { registry }),
      (r) => {
        seen.push(r.offset);
      },
      recordingLogger().logger,
    );
    expect(ids(response)).toEqual(['incident.detected-2@901', 'incident.detected-2@902']);
    expect(seen.sort()).toEqual([400, 401, 900]);
  });
});
