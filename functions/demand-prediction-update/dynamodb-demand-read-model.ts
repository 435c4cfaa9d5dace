import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { addHours, offsetRanges, SUPPLY_ITEM, withoutApplied, type ZoneHourUpdate } from './demand-model';
import type { ApplyOutcome, DemandReadModel, SupplyAndDemand, ZoneForecast, ZoneHourDemand } from './ports';

/*
 * DemandTable layout (access patterns are documented next to the table in serverless.yml):
 *   pk ZONE#<zoneId>  sk HOUR#<YYYY-MM-DDTHH>   one item per zone and UTC hour
 *   booked, completed, cancelled               counts (ADD)
 *   becameAvailable, leftAvailable             vehicles entering / leaving AVAILABLE in the hour (ADD)
 *   forecast1Milli..forecastNMilli             forecast of bookings for h+1..h+N, milli-bookings (integer)
 *   forecastHour                               h+1: GSI TopZonesByHour (forecastHour, forecast1Milli)
 *   fence:<topic>-<partition>                  highest offset of that partition applied to this item
 *   pk ZONE#<zoneId>  sk SUPPLY                one item per zone: available (vehicles available now, ADD of
 *                                              becameAvailable - leftAvailable), with its own fences
 */
export const TOP_ZONES_INDEX = 'TopZonesByHour';
const MAX_ATTEMPTS = 4;

export const demandItemKey = (zoneId: string, hour: string) => ({
  pk: `ZONE#${zoneId}`,
  sk: hour === SUPPLY_ITEM ? SUPPLY_ITEM : `HOUR#${hour}`,
});
const fenceAttribute = (partitionKey: string) => `fence:${partitionKey}`;

function isConditionalCheckFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** Runs `task` over `items` with at most `limit` in flight, keeping the result order. */
async function mapWithConcurrency<T, R>(
  items: T[],
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export class DynamoDbDemandReadModel implements DemandReadModel {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly concurrency = 16,
  ) {}

  apply(updates: ZoneHourUpdate[]): Promise<ApplyOutcome[]> {
    return mapWithConcurrency(updates, this.concurrency, async (update) => {
      try {
        return { update, status: await this.applyOne(update) };
      } catch (error) {
        return { update, status: 'FAILED', error };
      }
    });
  }

  /**
   * One conditional UpdateItem per zone-hour. The optimistic condition says "no record of this batch has been
   * applied here yet" (every partition's fence below the batch's first offset for this item). When that fails
   * (a redelivery), the item's fences are read and only the records above them are applied, under the exact
   * fences seen, so a concurrent duplicate cannot slip in between.
   */
  private async applyOne(update: ZoneHourUpdate): Promise<'APPLIED' | 'ALREADY_APPLIED'> {
    let pending = update;
    let observed: Record<string, number | undefined> | undefined;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      try {
        await this.client.send(this.updateCommand(pending, observed));
        return 'APPLIED';
      } catch (error) {
        if (!isConditionalCheckFailure(error)) throw error;
      }
      observed = await this.readFences(update);
      pending = withoutApplied(update, observed);
      if (pending.signals.length === 0) return 'ALREADY_APPLIED';
    }
    throw new Error(
      `Demand item ${update.zoneId} ${update.hour}: fence kept moving after ${MAX_ATTEMPTS} attempts`,
    );
  }

  private async readFences(update: ZoneHourUpdate): Promise<Record<string, number | undefined>> {
    const partitions = [...offsetRanges(update).keys()];
    const names = Object.fromEntries(partitions.map((p, i) => [`#f${i}`, fenceAttribute(p)]));
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: demandItemKey(update.zoneId, update.hour),
        ConsistentRead: true,
        ProjectionExpression: Object.keys(names).join(', '),
        ExpressionAttributeNames: names,
      }),
    );
    return Object.fromEntries(partitions.map((p) => [p, Item?.[fenceAttribute(p)] as number | undefined]));
  }

  private updateCommand(update: ZoneHourUpdate, observedFences?: Record<string, number | undefined>) {
    const names: Record<string, string> = { '#zoneId': 'zoneId' };
    const values: Record<string, unknown> = { ':zoneId': update.zoneId };
    const sets = ['#zoneId = :zoneId'];
    const adds: string[] = [];
    const add = (attribute: string, value: number) => {
      names[`#${attribute}`] = attribute;
      values[`:${attribute}`] = value;
      adds.push(`#${attribute} :${attribute}`);
    };
    if (update.hour === SUPPLY_ITEM) {
      add('available', update.becameAvailable - update.leftAvailable);
    } else {
      Object.assign(names, { '#hour': 'hour', '#forecastHour': 'forecastHour' });
      Object.assign(values, { ':hour': update.hour, ':forecastHour': addHours(update.hour, 1) });
      sets.push('#hour = :hour', '#forecastHour = :forecastHour');
      add('booked', update.booked);
      add('completed', update.completed);
      add('cancelled', update.cancelled);
    }
    add('becameAvailable', update.becameAvailable);
    add('leftAvailable', update.leftAvailable);
    for (const { k, interceptMilli, slopeMilli } of update.forecast) {
      names[`#forecast${k}`] = `forecast${k}Milli`;
      values[`:intercept${k}`] = interceptMilli;
      values[`:delta${k}`] = slopeMilli * update.booked;
      sets.push(`#forecast${k} = if_not_exists(#forecast${k}, :intercept${k}) + :delta${k}`);
    }
    const conditions: string[] = [];
    [...offsetRanges(update).entries()].forEach(([partition, { first, last }], i) => {
      names[`#fence${i}`] = fenceAttribute(partition);
      values[`:last${i}`] = last;
      sets.push(`#fence${i} = :last${i}`);
      if (observedFences === undefined) {
        values[`:first${i}`] = first;
        conditions.push(`(attribute_not_exists(#fence${i}) OR #fence${i} < :first${i})`);
      } else {
        const seen = observedFences[partition];
        if (seen === undefined) conditions.push(`attribute_not_exists(#fence${i})`);
        else {
          values[`:seen${i}`] = seen;
          conditions.push(`#fence${i} = :seen${i}`);
        }
      }
    });
    return new UpdateCommand({
      TableName: this.tableName,
      Key: demandItemKey(update.zoneId, update.hour),
      UpdateExpression: `SET ${sets.join(', ')} ADD ${adds.join(', ')}`,
      ConditionExpression: conditions.join(' AND '),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  async zoneDemand(zoneId: string, fromHour: string, toHour: string): Promise<ZoneHourDemand[]> {
    const demand: ZoneHourDemand[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: {
            ':pk': demandItemKey(zoneId, fromHour).pk,
            ':from': `HOUR#${fromHour}`,
            ':to': `HOUR#${toHour}`,
          },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) demand.push(toZoneHourDemand(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return demand;
  }

  async supplyAndDemand(zoneId: string, hour: string): Promise<SupplyAndDemand> {
    const get = (bucket: string) =>
      this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: demandItemKey(zoneId, bucket),
          ConsistentRead: true,
        }),
      );
    const [supply, demand] = await Promise.all([get(SUPPLY_ITEM), get(hour)]);
    const availableVehicles = (supply.Item?.available as number | undefined) ?? 0;
    const forecastMilli = demand.Item?.forecast1Milli as number | undefined;
    return {
      zoneId,
      hour,
      availableVehicles,
      forecastNextHourMilli: forecastMilli ?? null,
      // Vehicles per forecast booking of the next hour: below 1, the zone is short of vehicles.
      supplyDemandRatio: forecastMilli
        ? Math.round((availableVehicles * 1000 * 1000) / forecastMilli) / 1000
        : null,
    };
  }

  async topZones(hour: string, limit: number): Promise<ZoneForecast[]> {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TOP_ZONES_INDEX,
        KeyConditionExpression: 'forecastHour = :hour',
        ExpressionAttributeValues: { ':hour': hour },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return Items.map((item) => ({
      zoneId: item.zoneId as string,
      hour,
      forecastMilli: item.forecast1Milli as number,
    }));
  }

  /** Deletes every item: the first step of a rebuild (replay from earliest). Fences go with the items. */
  async clear(): Promise<number> {
    let deleted = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          ProjectionExpression: 'pk, sk',
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
      const keys = page.Items ?? [];
      for (let i = 0; i < keys.length; i += 25) {
        const chunk = keys.slice(i, i + 25);
        let requests: Record<string, unknown>[] | undefined = chunk.map((key) => ({
          DeleteRequest: { Key: { pk: key.pk, sk: key.sk } },
        }));
        while (requests && requests.length > 0) {
          const result = await this.client.send(
            new BatchWriteCommand({ RequestItems: { [this.tableName]: requests as never } }),
          );
          requests = result.UnprocessedItems?.[this.tableName] as Record<string, unknown>[] | undefined;
        }
        deleted += chunk.length;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return deleted;
  }
}

function toZoneHourDemand(item: Record<string, unknown>): ZoneHourDemand {
  const forecastMilli: number[] = [];
  for (let k = 1; typeof item[`forecast${k}Milli`] === 'number'; k++) {
    forecastMilli.push(item[`forecast${k}Milli`] as number);
  }
  return {
    zoneId: item.zoneId as string,
    hour: item.hour as string,
    booked: (item.booked as number) ?? 0,
    completed: (item.completed as number) ?? 0,
    cancelled: (item.cancelled as number) ?? 0,
    becameAvailable: (item.becameAvailable as number) ?? 0,
    leftAvailable: (item.leftAvailable as number) ?? 0,
    forecastMilli,
  };
}
