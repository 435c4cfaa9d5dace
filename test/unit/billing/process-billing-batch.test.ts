import { describe, expect, it } from 'vitest';
import type { BillingBatchResult } from '../../../functions/billing/bill';
import type { TariffTable } from '../../../functions/billing/pricing';
import { billingPolicy } from '../../../functions/billing/process-billing-batch';
import tariffsFile from '../../../functions/billing/tariffs.json';
import { sampleData } from '../../../schemas/samples';
import { ConfigurationError } from '../../../shared/config';
import { type BatchPartition, type DecodedRecord, runBatch } from '../../../shared/msk';
import { MemoryLedger } from './memory-ledger';

const TYPE = 'booking.completed';
const tariffs = tariffsFile as TariffTable;
const silent = { error: () => {}, warn: () => {} };

function partition(number: number, count: number): BatchPartition {
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
  // The aggregate policy never looks at the raw records.
  return {
    topic: TYPE,
    partition: number,
    key: `${TYPE}-${number}`,
    records,
    raw: [],
  } as unknown as BatchPartition;
}

async function run(partitions: BatchPartition[], ledger: MemoryLedger) {
  let result: BillingBatchResult | undefined;
  const outcome = await runBatch(
    partitions,
    billingPolicy(tariffs, ledger, (done) => {
      result = done;
    }),
    { logger: silent },
  );
  return { ...outcome, result: result as BillingBatchResult };
}

describe('billingPolicy', () => {
  it('fails the invocation on a configuration error of the store instead of reporting records', async () => {
    const ledger = new MemoryLedger();
    ledger.find = async () => {
      throw new ConfigurationError('BILLING_TABLE does not exist');
    };
    await expect(run([partition(0, 2)], ledger)).rejects.toThrow(ConfigurationError);
  });

  it('rides out a store outage inside the invocation: the whole batch runs again, no record is reported', async () => {
    const ledger = new MemoryLedger();
    const record = ledger.record.bind(ledger);
    let outages = 2;
    // The write of the first two attempts fails half-way, as a DynamoDB throttle after the SDK's retries.
    ledger.record = async (facts) => {
      if (outages-- <= 0) return record(facts);
      await record(facts.slice(0, 3));
      const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      return facts.slice(3).map((fact) => ({ fact, error: throttled }));
    };
    let result: BillingBatchResult | undefined;
    const outcome = await runBatch(
      [partition(0, 5)],
      billingPolicy(tariffs, ledger, (done) => {
        result = done;
      }),
      { logger: silent, retryUntil: Date.now() + 10_000, retryDelayMs: () => 1 },
    );
    expect(outcome).toMatchObject({ response: { batchItemFailures: [] }, retries: 2 });
    expect(result?.failures).toEqual([]);
    expect(ledger.invoices.size).toBe(5);
    expect(ledger.lines.size).toBe(5);
  });

  it('reports a bad record with its successors but bills the successors (effects commute)', async () => {
    const ledger = new MemoryLedger();
    const bad = partition(0, 3);
    const second = bad.records[1] as { data: Record<string, unknown> };
    second.data = { ...second.data, durationSeconds: -1 };
    const { response, result } = await run([bad, partition(1, 2)], ledger);
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: `${TYPE}-0`, offset: 1 } },
      { itemIdentifier: { partition: `${TYPE}-0`, offset: 2 } },
    ]);
    expect(result).toMatchObject({ applied: 4, alreadyApplied: 0 });
    expect(result.failures).toHaveLength(1);
    expect(ledger.invoices.size).toBe(4);
  });

  it('bills a batch in a fixed number of store calls whatever its size, and a redelivery in two', async () => {
    const ledger = new MemoryLedger();
    await run([partition(0, 50), partition(1, 50)], ledger);
    // R1, W1, R3: independent of the 100 records.
    expect(ledger.calls).toBe(3);
    ledger.calls = 0;
    const again = await run([partition(0, 50), partition(1, 50)], ledger);
    expect(again.result).toMatchObject({ alreadyApplied: 100, applied: 0 });
    expect(ledger.calls).toBe(2);
  });
});
