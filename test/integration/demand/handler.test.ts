import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { type KafkaEvent, kafkaEvent } from '../../../shared/msk';
import { createTable, documentClient, snapshot } from '../../support/dynamodb';
import { lambdaContext } from '../../support/lambda-context';
import { loadEvent } from '../../support/load-event';
import { avroRecord } from '../../support/msk-records';

const T0 = Date.parse('2026-11-23T07:10:00Z');

function created(partition: number, offset: number, zoneId: string) {
  const bookingId = `b-${partition}-${offset}`;
  return avroRecord({
    topic: 'booking.created',
    partition,
    offset,
    timestamp: T0,
    key: bookingId,
    id: `evt-${bookingId}`,
    source: 'urn:mobility:booking',
    data: {
      bookingId,
      customerId: 'c-1',
      vehicleId: 'v-1',
      vehicleType: 'SCOOTER',
      zoneId,
      pickup: { lat: 52.52, lon: 13.4 },
      quotedPrice: { amountMinor: 425, currency: 'EUR' },
      createdAt: T0 + offset * 1000,
      channel: 'APP',
      promoCode: null,
    },
  });
}

describe('demand-prediction-update handler (real MSK event, Avro values, dynalite)', () => {
  let client: DynamoDBDocumentClient;
  let handler: (event: KafkaEvent, context: Context) => Promise<{ batchItemFailures: unknown[] }>;

  beforeAll(async () => {
    client = await documentClient();
    process.env.DEMAND_TABLE = await createTable(client, 'DemandTable');
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    ({ handler } = await import('../../../functions/demand-prediction-update/handler'));
  });

  it('applies the batch, reports the unknown-zone record and its successors, and is idempotent on redelivery', async () => {
    const event = kafkaEvent([
      created(0, 1, 'zone-berlin-mitte'),
      created(0, 2, 'atlantis'),
      created(0, 3, 'zone-berlin-mitte'),
      created(1, 1, 'zone-berlin-kreuzberg'),
    ]);
    const response = await handler(event, lambdaContext('demand'));
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'booking.created-0', offset: 2 } },
      { itemIdentifier: { partition: 'booking.created-0', offset: 3 } },
    ]);
    const table = process.env.DEMAND_TABLE as string;
    const first = await snapshot(client, table);
    expect(first).toContain('"booked": 2');

    // Redelivery from the failed offset, then the whole batch again: nothing changes.
    await handler(
      kafkaEvent([created(0, 2, 'atlantis'), created(0, 3, 'zone-berlin-mitte')]),
      lambdaContext('demand'),
    );
    await handler(event, lambdaContext('demand'));
    expect(await snapshot(client, table)).toBe(first);
  });

  it('handles the generated sample events: every booking type, vehicle status, several partitions, a tombstone and a poison record', async () => {
    for (const name of [
      'booking-created',
      'booking-completed',
      'booking-cancelled',
      'vehicle-status-changed',
      'multi-partition',
      'tombstone',
    ]) {
      expect(
        (await handler(loadEvent(`demand-prediction-update/${name}.json`), lambdaContext('demand')))
          .batchItemFailures,
      ).toEqual([]);
    }
    const poison = await handler(loadEvent('demand-prediction-update/poison.json'), lambdaContext('demand'));
    // The undecodable record (offset 901) and its successor are reported; the other partition is applied.
    expect(poison.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'booking.created-2', offset: 901 } },
      { itemIdentifier: { partition: 'booking.created-2', offset: 902 } },
    ]);
    const items = await snapshot(client, process.env.DEMAND_TABLE as string);
    expect(items).toContain('"fence:booking.created-4": 401');
    expect(items).toContain('"fence:booking.cancelled-4": 322');
    // The vehicle sample (one vehicle becoming available) reached its zone's SUPPLY item.
    expect(items).toMatch(/"sk": "SUPPLY"[\s\S]*"available": 1/);
  });
});
