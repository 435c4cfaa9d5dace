import { describe, expect, it } from 'vitest';
import type { TariffTable } from '../../../functions/billing/pricing';
import { processBillingBatch } from '../../../functions/billing/process-billing-batch';
import tariffsFile from '../../../functions/billing/tariffs.json';
import { sampleData } from '../../../schemas/samples';
import type { DecodedPartition, DecodedRecord } from '../../../shared/msk';
import { MemoryLedger } from './memory-ledger';

const TYPE = 'booking.completed';
const tariffs = tariffsFile as TariffTable;

function partition(number: number, count: number): DecodedPartition {
  const records = Array.from({ length: count }, (_, offset) => {
    const n = number * 100 + offset;
    return {
      topic: TYPE,
      partition: number,
      offset,
      tombstone: false,
      cloudEvent: { id: `event-${n}`, source: 'urn:test', type: TYPE },
      data: sampleData[TYPE](n),
    } as unknown as DecodedRecord<unknown>;
  });
  return { topic: TYPE, partition: number, key: `${TYPE}-${number}`, records } as unknown as DecodedPartition;
}

class FatalError extends Error {}

describe('processBillingBatch', () => {
  it('fails the invocation on a fatal error of the store instead of reporting records', async () => {
    const ledger = new MemoryLedger();
    ledger.find = async () => {
      throw new FatalError('BILLING_TABLE does not exist');
    };
    await expect(
      processBillingBatch(
        [partition(0, 2)],
        tariffs,
        ledger,
        { error: () => {} },
        (e) => e instanceof FatalError,
      ),
    ).rejects.toThrow(FatalError);
  });

  it('reports a bad record with its successors but bills the successors (effects commute)', async () => {
    const ledger = new MemoryLedger();
    const bad = partition(0, 3);
    (bad.records[1] as { data: Record<string, unknown> }).data = {
      ...(bad.records[1] as { data: Record<string, unknown> }).data,
      durationSeconds: -1,
    };
    const outcome = await processBillingBatch([bad, partition(1, 2)], tariffs, ledger, { error: () => {} });
    expect(outcome.response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: `${TYPE}-0`, offset: 1 } },
      { itemIdentifier: { partition: `${TYPE}-0`, offset: 2 } },
    ]);
    expect(outcome).toMatchObject({ processed: 4, failed: 1 });
    expect(ledger.invoices.size).toBe(4);
  });

  it('bills a batch in a fixed number of store calls whatever its size, and a redelivery in two', async () => {
    const ledger = new MemoryLedger();
    await processBillingBatch([partition(0, 50), partition(1, 50)], tariffs, ledger);
    // R1, W1, R3: independent of the 100 records.
    expect(ledger.calls).toBe(3);
    ledger.calls = 0;
    const again = await processBillingBatch([partition(0, 50), partition(1, 50)], tariffs, ledger);
    expect(again).toMatchObject({ alreadyApplied: 100, applied: 0 });
    expect(ledger.calls).toBe(2);
  });
});
