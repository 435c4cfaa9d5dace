import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { BillingCommand } from '../../../functions/billing/billing-events';
import type { BillingProcessor } from '../../../functions/billing/billing-processor';
import type { TariffTable } from '../../../functions/billing/pricing';
import { processBillingBatch } from '../../../functions/billing/process-billing-batch';
import tariffsFile from '../../../functions/billing/tariffs.json';
import { sampleData } from '../../../schemas/samples';
import type { DecodedPartition, DecodedRecord } from '../../../shared/msk';

const TYPE = 'booking.completed';

function partition(number: number, count: number): DecodedPartition {
  const records = Array.from({ length: count }, (_, offset) => {
    const n = number * 100 + offset;
    return {
      topic: TYPE,
      partition: number,
      offset,
      tombstone: false,
      cloudEvent: { id: `event-${n}`, type: TYPE },
      data: sampleData[TYPE](n),
    } as unknown as DecodedRecord<unknown>;
  });
  return { topic: TYPE, partition: number, records } as unknown as DecodedPartition;
}

class FatalError extends Error {}

describe('processBillingBatch', () => {
  it('fails the batch on a fatal error only after every partition has stopped writing', async () => {
    const processed: string[] = [];
    let settledAt: number | undefined;
    const processor = {
      registerLambdaContext: () => {},
      process: async (command: BillingCommand) => {
        // Partition 0 fails at once; partition 1 is still writing its later records then.
        if (command.eventId === 'event-0') throw new FatalError('IDEMPOTENCY_TABLE is not set');
        await sleep(5);
        expect(settledAt, `${command.eventId} written after the batch failed`).toBeUndefined();
        processed.push(command.eventId);
        return {} as never;
      },
    } as unknown as BillingProcessor;

    const outcome = processBillingBatch(
      [partition(0, 1), partition(1, 5)],
      tariffsFile as TariffTable,
      processor,
      { error: () => {} },
      (error) => error instanceof FatalError,
    ).finally(() => {
      settledAt = Date.now();
    });

    await expect(outcome).rejects.toThrow(FatalError);
    expect(processed).toEqual(['event-100', 'event-101', 'event-102', 'event-103', 'event-104']);
  });
});
