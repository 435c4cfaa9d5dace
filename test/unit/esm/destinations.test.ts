import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { QueuedRecord } from '../../../local/esm/batcher';
import { destinationWriter } from '../../../local/esm/destinations';
import { toMskEvent } from '../../../local/esm/event';
import { queued } from './records';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('SQS and SNS on-failure destinations', () => {
  it.each([
    ['sqs', 'arn:aws:sqs:eu-west-1:000000000000:failed-records'],
    ['sns', 'arn:aws:sns:eu-west-1:000000000000:failed-records'],
  ] as const)(
    '%s receives the invocation record with metadata only, never the records',
    async (type, arn) => {
      dir = await mkdtemp(path.join(tmpdir(), 'esm-destinations-'));
      const entries = [queued(0, 5), queued(0, 6), queued(2, 9)];
      const partitions = new Map<string, QueuedRecord[]>([
        ['t-0', entries.slice(0, 2)],
        ['t-2', entries.slice(2)],
      ]);
      const event = toMskEvent(
        { eventSourceArn: 'arn:aws:kafka:eu-west-1:000000000000:cluster/c/1', bootstrapServers: 'b:9092' },
        entries.map((e) => e.record),
      );
      const write = destinationWriter({ type, arn }, { outboxDir: dir });
      await write({
        esmUuid: 'uuid-1',
        failure: {
          condition: 'RetryAttemptsExhausted',
          requestId: 'req-1',
          functionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:fn',
          approximateInvokeCount: 3,
        },
        event,
        partitions,
      });

      const [file] = await readdir(dir);
      const lines = (await readFile(path.join(dir, file as string), 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(1);
      const record = JSON.parse(lines[0] as string);
      expect(record).not.toHaveProperty('payload');
      expect(record.requestContext).toEqual({
        requestId: 'req-1',
        functionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:fn',
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: 3,
      });
      expect(record.KafkaBatchInfo).toMatchObject({
        batchSize: 3,
        eventSourceArn: 'arn:aws:kafka:eu-west-1:000000000000:cluster/c/1',
        bootstrapServers: 'b:9092',
        recordsInfo: {
          't-0': { firstRecordOffset: '5', lastRecordOffset: '6' },
          't-2': { firstRecordOffset: '9', lastRecordOffset: '9' },
        },
      });
      // Neither keys nor values of the records travel: only their coordinates.
      const encodedValue = event.records['t-0']?.[0]?.value as string;
      expect(lines[0]).not.toContain(encodedValue);
    },
  );
});
