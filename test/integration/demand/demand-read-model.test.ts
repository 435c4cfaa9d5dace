import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type {
  DemandModelConfig,
  ZoneHourUpdate,
} from '../../../functions/demand-prediction-update/demand-model';
import { DynamoDbDemandReadModel } from '../../../functions/demand-prediction-update/dynamodb-demand-read-model';
import type { ApplyOutcome, DemandReadModel } from '../../../functions/demand-prediction-update/ports';
import { demandReadModelRebuilder } from '../../../functions/demand-prediction-update/rebuild';
import { type DemandInput, updateDemand } from '../../../functions/demand-prediction-update/update-demand';
import zonesFile from '../../../functions/demand-prediction-update/zones.json';
import { countRequests, createTable, documentClient, snapshot } from '../../support/dynamodb';

const config = zonesFile as DemandModelConfig;
const knownZones = new Set(config.zones.map((z) => z.zoneId));

type Kind = 'created' | 'completed' | 'cancelled';
const timeField = { created: 'createdAt', completed: 'completedAt', cancelled: 'cancelledAt' } as const;

/** A decoded booking record as the handler hands it to updateDemand. */
function booking(
  kind: Kind,
  partition: number,
  offset: number,
  zoneId: string,
  iso: string,
  extra: Record<string, unknown> = {},
): DemandInput {
  const data: Record<string, unknown> = {
    bookingId: `b-${kind}-${partition}-${offset}`,
    zoneId,
    [timeField[kind]]: new Date(iso),
  };
  if (kind === 'completed') Object.assign(data, { durationSeconds: 600, distanceMeters: 2500 });
  return {
    ok: true,
    topic: `booking.${kind}`,
    partition,
    offset,
    eventType: `booking.${kind}`,
    data: { ...data, ...extra },
  };
}

/** A decoded vehicle.status.changed record. */
function vehicle(
  partition: number,
  offset: number,
  zoneId: string,
  previousStatus: string,
  status: string,
  iso: string,
): DemandInput {
  return {
    ok: true,
    topic: 'vehicle.status.changed',
    partition,
    offset,
    eventType: 'vehicle.status.changed',
    data: { vehicleId: `v-${partition}-${offset}`, zoneId, previousStatus, status, changedAt: new Date(iso) },
  };
}

/** A deterministic mixed history: 3 partitions of booking.created plus some completions and cancellations. */
function history(): DemandInput[] {
  const zones = [
    'zone-berlin-mitte',
    'zone-berlin-mitte',
    'zone-berlin-kreuzberg',
    'zone-berlin-mitte',
    'zone-berlin-wedding',
    'zone-berlin-kreuzberg',
    'zone-berlin-buch',
  ];
  const records: DemandInput[] = [];
  for (let partition = 0; partition < 3; partition++) {
    for (let offset = 0; offset < 40; offset++) {
      const zone = zones[(offset * 7 + partition * 3) % zones.length] as string;
      const minute = (offset * 13 + partition * 17) % 180;
      const iso = new Date(Date.parse('2026-11-23T07:00:00Z') + minute * 60_000).toISOString();
      records.push(booking('created', partition, offset, zone, iso));
      if (offset % 5 === 0) records.push(booking('cancelled', partition, offset / 5, zone, iso));
      if (offset % 3 === 0) records.push(booking('completed', partition, offset / 3, zone, iso));
    }
  }
  return records;
}

/** Batches as an ESM would cut them: per topic, `size` records, partitions interleaved by `order`. */
function batches(records: DemandInput[], size: number): DemandInput[][] {
  const out: DemandInput[][] = [];
  for (let i = 0; i < records.length; i += size) out.push(records.slice(i, i + size));
  return out;
}

describe('demand read model on the DynamoDB stand-in', () => {
  let client: DynamoDBDocumentClient;
  let tableName: string;
  let readModel: DynamoDbDemandReadModel;

  beforeAll(async () => {
    client = await documentClient();
  });
  beforeEach(async () => {
    tableName = await createTable(client, 'DemandTable');
    readModel = new DynamoDbDemandReadModel(client, tableName);
  });

  const apply = (batch: DemandInput[], model: DemandReadModel = readModel) =>
    updateDemand(batch, config, knownZones, model);

  it('writes one item per zone-hour touched with counts and forecast, queryable per zone and as top zones', async () => {
    const counter = countRequests(client);
    const batch = [
      booking('created', 0, 1, 'zone-berlin-mitte', '2026-11-23T07:05:00Z'),
      booking('created', 0, 2, 'zone-berlin-mitte', '2026-11-23T07:10:00Z'),
      booking('created', 1, 1, 'zone-berlin-mitte', '2026-11-23T07:15:00Z'),
      booking('created', 1, 2, 'zone-berlin-buch', '2026-11-23T07:20:00Z'),
    ];
    const result = await apply(batch);
    expect(result.failures).toEqual([]);
    expect(counter.count).toBe(2); // two zone-hours, two UpdateItem calls

    const [mitte] = await readModel.zoneDemand('zone-berlin-mitte', '2026-11-23T07', '2026-11-23T07');
    // zone-berlin-mitte Monday 07:00: base 60 x 2.0 = 120, 08:00: 132. A1 = 132*0.4 + 132*0.6*5/125 = 55.968,
    // B1 = 0.6336 -> stored 634 milli; 3 bookings -> 55968 + 3*634 = 57870 milli-bookings for 08:00.
    expect(mitte).toMatchObject({
      zoneId: 'zone-berlin-mitte',
      hour: '2026-11-23T07',
      booked: 3,
      completed: 0,
      cancelled: 0,
    });
    expect(mitte?.forecastMilli[0]).toBe(57_870);
    expect(mitte?.forecastMilli).toHaveLength(3);

    const top = await readModel.topZones('2026-11-23T08', 5);
    expect(top.map((z) => z.zoneId)).toEqual(['zone-berlin-mitte', 'zone-berlin-buch']);
    expect(top[0]?.forecastMilli).toBe(57_870);
  });

  it('keeps available vehicles per zone next to demand, exactly once, with the supply-demand ratio', async () => {
    const supply = [
      vehicle(0, 1, 'zone-berlin-mitte', 'IN_USE', 'AVAILABLE', '2026-11-23T07:01:00Z'),
      vehicle(0, 2, 'zone-berlin-mitte', 'CHARGING', 'AVAILABLE', '2026-11-23T07:02:00Z'),
      vehicle(1, 1, 'zone-berlin-mitte', 'MAINTENANCE', 'AVAILABLE', '2026-11-23T07:03:00Z'),
      vehicle(1, 2, 'zone-berlin-mitte', 'AVAILABLE', 'RESERVED', '2026-11-23T08:30:00Z'),
      // Neither entering nor leaving AVAILABLE: a valid event with no effect.
      vehicle(1, 3, 'zone-berlin-mitte', 'CHARGING', 'MAINTENANCE', '2026-11-23T08:31:00Z'),
      booking('created', 0, 1, 'zone-berlin-mitte', '2026-11-23T07:05:00Z'),
    ];
    const counter = countRequests(client);
    const first = await apply(supply);
    expect(first.failures).toEqual([]);
    // Hours 07 and 08, and the zone's SUPPLY item: three writes for six records.
    expect(counter.count).toBe(3);
    const hours = await readModel.zoneDemand('zone-berlin-mitte', '2026-11-23T07', '2026-11-23T08');
    expect(hours.map((h) => [h.hour, h.booked, h.becameAvailable, h.leftAvailable])).toEqual([
      ['2026-11-23T07', 1, 3, 0],
      ['2026-11-23T08', 0, 0, 1],
    ]);
    const outlook = await readModel.supplyAndDemand('zone-berlin-mitte', '2026-11-23T07');
    // 2 vehicles available; the forecast for 08:00 is 55968 + 634 = 56602 milli-bookings (see above).
    expect(outlook).toEqual({
      zoneId: 'zone-berlin-mitte',
      hour: '2026-11-23T07',
      availableVehicles: 2,
      forecastNextHourMilli: 56_602,
      supplyDemandRatio: 0.035,
    });

    // A redelivery overlapping what was applied, plus one new record: only the new one counts.
    const again = await apply([
      ...supply,
      vehicle(0, 3, 'zone-berlin-mitte', 'AVAILABLE', 'IN_USE', '2026-11-23T07:50:00Z'),
    ]);
    expect(again.failures).toEqual([]);
    expect((await readModel.supplyAndDemand('zone-berlin-mitte', '2026-11-23T07')).availableVehicles).toBe(1);
    const [seven] = await readModel.zoneDemand('zone-berlin-mitte', '2026-11-23T07', '2026-11-23T07');
    expect([seven?.booked, seven?.becameAvailable, seven?.leftAvailable]).toEqual([1, 3, 1]);
  });

  it('applies the same batch delivered twice only once', async () => {
    const batch = history().slice(0, 100);
    await apply(batch);
    const once = await snapshot(client, tableName);
    const again = await apply(batch);
    expect(again.failures).toEqual([]);
    expect(again.outcomes.every((o) => o.status === 'ALREADY_APPLIED')).toBe(true);
    expect(await snapshot(client, tableName)).toBe(once);
  });

  it('survives two invocations of the same batch running concurrently', async () => {
    const batch = history().slice(0, 120);
    const reference = await createTable(client, 'DemandTable');
    await apply(batch, new DynamoDbDemandReadModel(client, reference));
    await Promise.all([apply(batch), apply(batch), apply(batch)]);
    expect(await snapshot(client, tableName)).toBe(await snapshot(client, reference));
  });

  it('reports bad input by field and record while the rest of the batch is applied', async () => {
    const batch = [
      booking('created', 0, 10, 'zone-berlin-mitte', '2026-11-23T07:05:00Z'),
      booking('created', 0, 11, 'atlantis', '2026-11-23T07:06:00Z'),
      booking('created', 0, 12, 'zone-berlin-mitte', '2026-11-23T07:07:00Z'),
      booking('completed', 1, 3, 'zone-berlin-mitte', '2026-11-23T07:08:00Z', { durationSeconds: -5 }),
      booking('completed', 1, 4, 'zone-berlin-mitte', '2026-11-23T07:09:00Z'),
    ];
    const result = await apply(batch);
    expect(result.failures.map((f) => [f.record.topic, f.record.offset, String(f.error)])).toEqual([
      [
        'booking.created',
        11,
        'InvalidDemandEvent: booking.created-0@11: field "zoneId" "atlantis" is not a known zone (zones.json)',
      ],
      [
        'booking.completed',
        3,
        'InvalidDemandEvent: booking.completed-1@3: field "durationSeconds" must be a number >= 0, got -5',
      ],
    ]);
    const [mitte] = await readModel.zoneDemand('zone-berlin-mitte', '2026-11-23T07', '2026-11-23T07');
    expect(mitte).toMatchObject({ booked: 2, completed: 1 });
  });

  it('ends correct when a batch is retried after a partial failure (redelivery overlaps what was applied)', async () => {
    const all = history();
    const batch = all.slice(0, 100);
    // The write of one zone-hour fails (e.g. throttled): its records fail, every other zone-hour is applied.
    const flaky: DemandReadModel = {
      apply: async (updates: ZoneHourUpdate[]) => {
        const [first, ...rest] = updates;
        const outcomes: ApplyOutcome[] = [
          { update: first as ZoneHourUpdate, status: 'FAILED', error: new Error('throttled') },
        ];
        return [...outcomes, ...(await readModel.apply(rest))];
      },
      zoneDemand: readModel.zoneDemand.bind(readModel),
      topZones: readModel.topZones.bind(readModel),
      supplyAndDemand: readModel.supplyAndDemand.bind(readModel),
    };
    const first = await apply(batch, flaky);
    expect(first.failures.length).toBeGreaterThan(0);
    // The ESM redelivers each failed partition from its earliest failed offset, plus newer records.
    const earliest = new Map<string, number>();
    for (const { record } of first.failures) {
      const key = `${record.topic}-${record.partition}`;
      earliest.set(key, Math.min(earliest.get(key) ?? Number.POSITIVE_INFINITY, record.offset));
    }
    const redelivered = all
      .slice(0, 160)
      .filter(
        (r) =>
          (earliest.get(`${r.topic}-${r.partition}`) ?? Number.POSITIVE_INFINITY) <= r.offset ||
          all.indexOf(r) >= 100,
      );
    const retry = await apply(redelivered);
    expect(retry.failures).toEqual([]);

    const reference = await createTable(client, 'DemandTable');
    await apply(all.slice(0, 160), new DynamoDbDemandReadModel(client, reference));
    expect(await snapshot(client, tableName)).toBe(await snapshot(client, reference));
  });

  it('rebuilds byte for byte: clear and replay with other batch boundaries and partition interleaving', async () => {
    const all = history();
    for (const batch of batches(all, 100)) await apply(batch);
    const original = await snapshot(client, tableName);
    expect(original).toContain('fence:booking.created-2');

    await demandReadModelRebuilder(client, tableName).clear();
    expect(await snapshot(client, tableName)).toBe('[]');

    // Replay: per-partition order kept, partitions interleaved differently, smaller batches, applied concurrently
    // per topic the way independent ESMs would.
    const byTopic = new Map<string, DemandInput[]>();
    for (const record of [...all].reverse()) {
      byTopic.set(record.topic, [...(byTopic.get(record.topic) ?? []), record]);
    }
    const inPartitionOrder = (records: DemandInput[]) =>
      [...records].sort((a, b) => b.partition - a.partition || a.offset - b.offset);
    await Promise.all(
      [...byTopic.values()].map(async (records) => {
        for (const batch of batches(inPartitionOrder(records), 37)) await apply(batch);
      }),
    );
    expect(await snapshot(client, tableName)).toBe(original);
  });
});
