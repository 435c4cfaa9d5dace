import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeConfluent } from '../../../shared/contracts/avro-codec';
import { cloudEventHeaders } from '../../../shared/contracts/cloudevents';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import { type KafkaEvent, kafkaEvent, kafkaEventRecord } from '../../../shared/msk';
import { createUniqueTable, demandTableDefinition, documentClient, snapshot } from './dynamo-test-support';

const context = { getRemainingTimeInMillis: () => 60_000, functionName: 'demand' } as unknown as Context;
const T0 = Date.parse('2026-11-23T07:10:00Z');

function created(partition: number, offset: number, zoneId: string) {
  const bookingId = `b-${partition}-${offset}`;
  return kafkaEventRecord({
    topic: 'booking.created',
    partition,
    offset,
    timestamp: T0,
    key: bookingId,
    value: encodeConfluent(fileCatalogSchemaRegistry.latest('booking.created'), {
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
    }),
    headers: cloudEventHeaders({
      id: `evt-${bookingId}`,
      type: 'booking.created',
      source: 'urn:mobility:booking',
      specversion: '1.0',
      time: new Date(T0).toISOString(),
      subject: bookingId,
      datacontenttype: 'application/avro',
    }),
  });
}

describe('demand-prediction-update handler (real MSK event, Avro values, dynalite)', () => {
  let client: DynamoDBDocumentClient;
  let handler: (event: KafkaEvent, context: Context) => Promise<{ batchItemFailures: unknown[] }>;

  beforeAll(async () => {
    client = await documentClient();
    process.env.DEMAND_TABLE = await createUniqueTable(client, 'demand-handler', demandTableDefinition);
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    ({ handler } = await import('../../../functions/demand-prediction-update/handler'));
  });

  it('applies the batch, reports the unknown-zone record and its successors, and is idempotent on redelivery', async () => {
    const event = kafkaEvent([
      created(0, 1, 'ber-mitte'),
      created(0, 2, 'atlantis'),
      created(0, 3, 'ber-mitte'),
      created(1, 1, 'ber-kreuzberg'),
    ]);
    const response = await handler(event, context);
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'booking.created-0', offset: 2 } },
      { itemIdentifier: { partition: 'booking.created-0', offset: 3 } },
    ]);
    const table = process.env.DEMAND_TABLE as string;
    const first = await snapshot(client, table);
    expect(first).toContain('"booked": 2');

    // Redelivery from the failed offset, then the whole batch again: nothing changes.
    await handler(kafkaEvent([created(0, 2, 'atlantis'), created(0, 3, 'ber-mitte')]), context);
    await handler(event, context);
    expect(await snapshot(client, table)).toBe(first);
  });
});
