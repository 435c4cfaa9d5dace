import { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import type { RecordHandler } from '../../../shared/msk/batch';
import { kafkaEvent } from '../../../shared/msk/build';
import { decodeEvent } from '../../../shared/msk/decode';
import { type EngineLogger, runBatch, withRawRecords } from '../../../shared/msk/engine';
import { sampleAvroRecord } from '../../support/msk-records';

const topic = 'payment.failed';

function record(partition: number, offset: number, correlationId?: string) {
  return sampleAvroRecord({
    topic,
    partition,
    offset,
    ...(correlationId === undefined ? {} : { correlationId }),
  });
}

/** The JSON lines a Powertools Logger writes: outside POWERTOOLS_DEV, to process.stdout and (warn, error) stderr. */
function captureOutput(): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  const capture = (chunk: string | Uint8Array) => {
    for (const line of String(chunk).split('\n')) if (line.startsWith('{')) lines.push(JSON.parse(line));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  return lines;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.restoreAllMocks();
});

/** The engine's stop policy over the decoded event (the records as delivered beside them). */
async function stop(
  event: ReturnType<typeof kafkaEvent>,
  handle: RecordHandler<Record<string, unknown>>,
  logger: EngineLogger,
) {
  const partitions = withRawRecords(await decodeEvent(event, { registry }), event.records);
  return (await runBatch(partitions, { kind: 'stop', handle }, { logger })).response;
}

describe('record logging in the batch engine, stop policy', () => {
  it('gives every line written while a record is handled that record’s coordinates and ids, partitions interleaved', async () => {
    const lines = captureOutput();
    const logger = new Logger({ serviceName: 'record-logger-test' });
    const event = kafkaEvent([
      record(0, 10, 'corr-a'),
      record(0, 11), // no correlation id: the previous record's must not stay on the logger
      record(0, 12, 'corr-c'),
      record(1, 20, 'corr-x'),
      record(1, 21, 'corr-y'),
    ]);

    const response = await stop(
      event,
      async (r, log) => {
        // Yield between lines so the two partitions' records run interleaved.
        await nextTurn();
        log.info('handling', { handled: `${r.partition}@${r.offset}` });
        await nextTurn();
        log.warn('still handling', { handled: `${r.partition}@${r.offset}` });
      },
      logger,
    );

    expect(response).toEqual({ batchItemFailures: [] });
    const handled = lines.filter((line) => typeof line.handled === 'string');
    expect(handled).toHaveLength(10);
    // The partitions really interleaved: lines of partition 1 came between lines of partition 0.
    const order = handled.map((line) => line.partition);
    expect(order.indexOf(1)).toBeLessThan(order.lastIndexOf(0));

    const expected: Record<string, Record<string, unknown>> = {
      '0@10': { partition: 0, offset: 10, eventId: 'evt-0-10', correlationId: 'corr-a' },
      '0@11': { partition: 0, offset: 11, eventId: 'evt-0-11' },
      '0@12': { partition: 0, offset: 12, eventId: 'evt-0-12', correlationId: 'corr-c' },
      '1@20': { partition: 1, offset: 20, eventId: 'evt-1-20', correlationId: 'corr-x' },
      '1@21': { partition: 1, offset: 21, eventId: 'evt-1-21', correlationId: 'corr-y' },
    };
    for (const line of handled) {
      const keys = expected[line.handled as string];
      expect(line).toMatchObject({ service: 'record-logger-test', topic, eventType: topic, ...keys });
      if (!keys || !('correlationId' in keys)) expect(line).not.toHaveProperty('correlationId');
    }
  });

  it('leaves the given logger’s own lines without record keys', async () => {
    const lines = captureOutput();
    const logger = new Logger({ serviceName: 'record-logger-test' });
    await stop(kafkaEvent([record(3, 30, 'corr-z')]), (_r, log) => log.info('inside'), logger);
    logger.info('after the batch');
    const after = lines.find((line) => line.message === 'after the batch');
    expect(lines.find((line) => line.message === 'inside')).toMatchObject({ partition: 3, offset: 30 });
    expect(after).toBeDefined();
    for (const key of ['topic', 'partition', 'offset', 'eventId', 'correlationId']) {
      expect(after).not.toHaveProperty(key);
    }
  });

  it('keys the console lines of a caller that passes no Powertools Logger', async () => {
    const lines: Record<string, unknown>[] = [];
    vi.spyOn(console, 'info').mockImplementation((line: string) => {
      lines.push(JSON.parse(line));
    });
    await stop(kafkaEvent([record(2, 5, 'corr-q')]), (_r, log) => log.info('inside', { extra: 1 }), {
      error: () => {},
      warn: () => {},
    });
    expect(lines).toEqual([
      {
        level: 'INFO',
        message: 'inside',
        topic,
        partition: 2,
        offset: 5,
        eventId: 'evt-2-5',
        eventType: topic,
        correlationId: 'corr-q',
        extra: 1,
      },
    ]);
  });
});

describe('record logging in the batch engine', () => {
  it('keys every line with its own record when records of one partition run concurrently (commute)', async () => {
    const lines = captureOutput();
    const logger = new Logger({ serviceName: 'record-logger-test' });
    const event = kafkaEvent([10, 11, 12, 13, 14, 15].map((offset) => record(0, offset, `corr-${offset}`)));
    const { response } = await runBatch(
      withRawRecords(await decodeEvent(event, { registry }), event.records),
      {
        kind: 'commute',
        concurrency: 3,
        handle: async (r, log) => {
          await nextTurn();
          log.info('handling', { handled: r.offset });
          await nextTurn();
          log.info('still handling', { handled: r.offset });
        },
      },
      { logger },
    );
    expect(response).toEqual({ batchItemFailures: [] });
    const handled = lines.filter((line) => typeof line.handled === 'number');
    expect(handled).toHaveLength(12);
    for (const line of handled) {
      expect(line).toMatchObject({
        partition: 0,
        offset: line.handled,
        eventId: `evt-0-${line.handled}`,
        correlationId: `corr-${line.handled}`,
      });
    }
  });
});
