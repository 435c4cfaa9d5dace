import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { batchDeleteAll, batchGetAll, batchPutAll, insertAll } from '../../../shared/dynamodb';
import { isBatchLevelError, isStoreOutage } from '../../../shared/msk/errors';

// DynamoDB may answer a batch request with part of it unprocessed (capacity); dynalite never does, so the resend
// path is driven here by a client that holds back what it is told to.
type Input = { RequestItems: Record<string, { Keys?: unknown[] } | unknown[]> };

function holdingBack(table: string, heldPerRequest: number[]) {
  const sent: number[] = [];
  const stored: unknown[] = [];
  const client = {
    send: async (command: { input: Input }) => {
      const request = command.input.RequestItems[table];
      const hold = heldPerRequest[sent.length] ?? 0;
      if (Array.isArray(request)) {
        sent.push(request.length);
        stored.push(...request.slice(hold));
        return { UnprocessedItems: hold > 0 ? { [table]: request.slice(0, hold) } : {} };
      }
      const keys = (request as { Keys: unknown[] }).Keys;
      sent.push(keys.length);
      return {
        Responses: { [table]: keys.slice(hold) },
        UnprocessedKeys: hold > 0 ? { [table]: { Keys: keys.slice(0, hold) } } : {},
      };
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, sent, stored };
}

const keys = (n: number) => Array.from({ length: n }, (_, i) => ({ pk: `k${i}` }));

describe('batchGetAll and batchPutAll resend what DynamoDB left unprocessed', () => {
  it('reads every key, resending the unprocessed ones', async () => {
    const { client, sent } = holdingBack('T', [3, 1]);
    const items = await batchGetAll(client, 'T', keys(10), 1);
    expect(sent).toEqual([10, 3, 1]);
    expect(items.map((item) => item.pk).sort()).toEqual(
      keys(10)
        .map((k) => k.pk)
        .sort(),
    );
  });

  it('writes every item, resending the unprocessed ones', async () => {
    const { client, sent, stored } = holdingBack('T', [5, 2]);
    await batchPutAll(client, 'T', ['pk'], keys(20), 1);
    expect(sent).toEqual([20, 5, 2]);
    expect(stored).toHaveLength(20);
  });

  it('gives up after its attempts with an error classified as an outage (retried, never a record failure)', async () => {
    const { client, sent } = holdingBack('T', Array(20).fill(1));
    const failure = await batchPutAll(client, 'T', ['pk'], keys(2), 1).catch((error: unknown) => error);
    expect(sent).toHaveLength(8);
    expect(String(failure)).toContain('still unprocessed after 8 attempts');
    expect(isStoreOutage(failure)).toBe(true);
  });
});

// What a BatchGetItem / BatchWriteItem request carried, per table: keys (reads) or items (writes).
interface Sent {
  kind: 'get' | 'put';
  tables: Record<string, { entries: Record<string, unknown>[]; projection?: string[] }>;
}

/**
 * A DynamoDB that serves every key it is asked for as an item (`{...key, read: true}`), stores what it is given,
 * and, per request in order, fails it or holds back the entries `holdBack` picks.
 */
function recording(
  options: {
    failRequest?: number;
    /** The name of the error the failed request throws (default: a plain Error). */
    failWith?: string;
    /** Refuses a request carrying such an entry, as DynamoDB refuses an invalid item (ValidationException). */
    refuse?: (entry: Record<string, unknown>) => boolean;
    holdBack?: (request: number, table: string, entry: Record<string, unknown>) => boolean;
  } = {},
) {
  const sent: Sent[] = [];
  const client = {
    send: async (command: { input: { RequestItems: Record<string, unknown> } }) => {
      const index = sent.length;
      const isPut = Object.values(command.input.RequestItems).every(Array.isArray);
      const record: Sent = { kind: isPut ? 'put' : 'get', tables: {} };
      sent.push(record);
      if (index === options.failRequest)
        throw Object.assign(
          new Error(`request ${index} failed`),
          options.failWith ? { name: options.failWith } : {},
        );
      const held = (table: string, entry: Record<string, unknown>) =>
        options.holdBack?.(index, table, entry) ?? false;
      if (isPut) {
        const unprocessed: Record<string, unknown[]> = {};
        for (const [table, requests] of Object.entries(command.input.RequestItems)) {
          const writes = requests as Array<{
            PutRequest?: { Item: Record<string, unknown> };
            DeleteRequest?: { Key: Record<string, unknown> };
          }>;
          const entry = (r: (typeof writes)[number]) =>
            r.PutRequest?.Item ?? { ...r.DeleteRequest?.Key, deleted: true };
          record.tables[table] = { entries: writes.map(entry) };
          if (writes.map(entry).some((e) => options.refuse?.(e)))
            throw Object.assign(new Error('One or more parameter values were invalid'), {
              name: 'ValidationException',
            });
          const left = writes.filter((r) => held(table, entry(r)));
          if (left.length > 0) unprocessed[table] = left;
        }
        return { UnprocessedItems: unprocessed };
      }
      const responses: Record<string, unknown[]> = {};
      const unprocessed: Record<string, { Keys: unknown[] }> = {};
      for (const [table, request] of Object.entries(command.input.RequestItems)) {
        const { Keys, ExpressionAttributeNames } = request as {
          Keys: Record<string, unknown>[];
          ExpressionAttributeNames?: Record<string, string>;
        };
        record.tables[table] = {
          entries: Keys,
          ...(ExpressionAttributeNames ? { projection: Object.values(ExpressionAttributeNames).sort() } : {}),
        };
        responses[table] = Keys.filter((key) => !held(table, key)).map((key) => ({ ...key, read: true }));
        const left = Keys.filter((key) => held(table, key));
        if (left.length > 0) unprocessed[table] = { Keys: left };
      }
      return { Responses: responses, UnprocessedKeys: unprocessed };
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, sent };
}

const incidentKeys = (prefix: string, n: number, sk = 'VIEW') =>
  Array.from({ length: n }, (_, i) => ({ pk: `${prefix}${i}`, sk }));
const pks = (items: Record<string, unknown>[]) => items.map((item) => String(item.pk)).sort();

describe('batch requests begun in one tick share requests', () => {
  it('two reads of one table go out as one BatchGetItem, and each gets back only its own items', async () => {
    const { client, sent } = recording();
    const [views, reviews] = await Promise.all([
      batchGetAll(client, 'T', incidentKeys('i', 3), 4, ['outcome']),
      batchGetAll(client, 'T', incidentKeys('i', 3, 'REVIEW'), 4),
    ]);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.tables.T?.entries).toHaveLength(6);
    // One projection per table and request: one read wants every attribute, so the request asks for all.
    expect(sent[0]?.tables.T?.projection).toBeUndefined();
    expect(views.every((item) => item.sk === 'VIEW')).toBe(true);
    expect(reviews.every((item) => item.sk === 'REVIEW')).toBe(true);
    expect(pks(views)).toEqual(['i0', 'i1', 'i2']);
  });

  it('projections of reads sharing a request are joined, with the key attributes', async () => {
    const { client, sent } = recording();
    await Promise.all([
      batchGetAll(client, 'T', incidentKeys('a', 1), 4, ['outcome']),
      batchGetAll(client, 'T', incidentKeys('b', 1), 4, ['status']),
    ]);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.tables.T?.projection).toEqual(['outcome', 'pk', 'sk', 'status']);
  });

  it('reads of two tables share a request; reads over 100 keys in all take another, a read never split', async () => {
    const { client, sent } = recording();
    const [a, b, c] = await Promise.all([
      batchGetAll(client, 'A', incidentKeys('a', 60), 4),
      batchGetAll(client, 'B', incidentKeys('b', 30), 4),
      batchGetAll(client, 'A', incidentKeys('c', 20), 4),
    ]);
    expect(
      sent.map((s) => Object.fromEntries(Object.entries(s.tables).map(([t, v]) => [t, v.entries.length]))),
    ).toEqual([{ A: 60, B: 30 }, { A: 20 }]);
    expect([a.length, b.length, c.length]).toEqual([60, 30, 20]);
  });

  it('a key asked for twice goes out in two requests (DynamoDB refuses a key twice in one)', async () => {
    const { client, sent } = recording();
    const [first, second] = await Promise.all([
      batchGetAll(client, 'T', incidentKeys('i', 2), 4),
      batchGetAll(client, 'T', incidentKeys('i', 1), 4),
    ]);
    expect(sent).toHaveLength(2);
    expect([first.length, second.length]).toEqual([2, 1]);
  });

  it('reads begun in later ticks go out in requests of their own', async () => {
    const { client, sent } = recording();
    await batchGetAll(client, 'T', incidentKeys('a', 1), 4);
    await batchGetAll(client, 'T', incidentKeys('b', 1), 4);
    expect(sent).toHaveLength(2);
  });

  it('unprocessed keys go back to the read that asked for them, and only its keys are sent again', async () => {
    const { client, sent } = recording({
      holdBack: (request, _table, key) => request === 0 && key.pk === 'b1',
    });
    const [a, b] = await Promise.all([
      batchGetAll(client, 'T', incidentKeys('a', 2), 4),
      batchGetAll(client, 'T', incidentKeys('b', 2), 4),
    ]);
    expect(pks(a)).toEqual(['a0', 'a1']);
    expect(pks(b)).toEqual(['b0', 'b1']);
    expect(sent.map((s) => s.tables.T?.entries.map((k) => k.pk))).toEqual([['a0', 'a1', 'b0', 'b1'], ['b1']]);
  });

  it('two writes share a BatchWriteItem up to 25 items, across tables; unprocessed items go back to their writer', async () => {
    const { client, sent } = recording({
      holdBack: (request, table, item) => request === 0 && table === 'V' && item.pk === 'v1',
    });
    await Promise.all([
      batchPutAll(client, 'R', ['pk', 'sk'], incidentKeys('r', 5, 'REVIEW')),
      batchPutAll(client, 'V', ['pk', 'sk'], incidentKeys('v', 10)),
      batchPutAll(client, 'V', ['pk', 'sk'], incidentKeys('w', 12)),
    ]);
    expect(
      sent.map((s) => Object.fromEntries(Object.entries(s.tables).map(([t, v]) => [t, v.entries.length]))),
    ).toEqual([{ R: 5, V: 10 }, { V: 12 }, { V: 1 }]);
    expect(sent[2]?.tables.V?.entries.map((item) => item.pk)).toEqual(['v1']);
  });

  it('deletes share a BatchWriteItem with puts, never with a put of the same key; unprocessed deletes are resent', async () => {
    const { client, sent } = recording({
      holdBack: (request, _table, entry) => request === 1 && entry.deleted === true && entry.pk === 'd0',
    });
    await Promise.all([
      batchPutAll(client, 'T', ['pk', 'sk'], incidentKeys('p', 3)),
      batchDeleteAll(client, 'T', [...incidentKeys('d', 2), ...incidentKeys('p', 1)]),
    ]);
    // p0 is put and deleted: the delete share cannot join the put's request and goes in a request of its own, sent
    // at the same time (the order of the two is not kept).
    expect(
      sent.map((s) => s.tables.T?.entries.map((e) => `${e.deleted ? 'delete' : 'put'} ${e.pk}`)),
    ).toEqual([['put p0', 'put p1', 'put p2'], ['delete d0', 'delete d1', 'delete p0'], ['delete d0']]);
  });

  it('a store outage fails every read of the request, without sending them again', async () => {
    const { client, sent } = recording({
      failRequest: 0,
      failWith: 'ProvisionedThroughputExceededException',
    });
    const [first, second, third] = await Promise.allSettled([
      batchGetAll(client, 'T', incidentKeys('a', 60), 4),
      batchGetAll(client, 'T', incidentKeys('b', 40), 4),
      batchGetAll(client, 'T', incidentKeys('c', 10), 4),
    ]);
    expect(first.status).toBe('rejected');
    expect(second.status).toBe('rejected');
    expect(String((first as PromiseRejectedResult).reason)).toContain('request 0 failed');
    expect(third).toEqual({ status: 'fulfilled', value: expect.any(Array) });
    expect(sent).toHaveLength(2);
  });

  it("a request refused for another reason is sent again share by share: one caller's bad item fails it alone", async () => {
    const { client, sent } = recording({ refuse: (entry) => entry.pk === 'bad0' });
    const [good, bad] = await Promise.allSettled([
      batchPutAll(client, 'T', ['pk', 'sk'], incidentKeys('good', 2)),
      batchPutAll(client, 'T', ['pk', 'sk'], incidentKeys('bad', 2)),
    ]);
    expect(good.status).toBe('fulfilled');
    expect(String((bad as PromiseRejectedResult).reason)).toContain('ValidationException');
    expect(sent.map((s) => s.tables.T?.entries.length)).toEqual([4, 2, 2]);
  });

  it('shares of one table with different key schemas never share a request', async () => {
    const { client, sent } = recording();
    await Promise.all([
      batchGetAll(client, 'T', [{ pk: 'a', sk: 'x' }], 4),
      batchGetAll(client, 'T', [{ id: 'a' }], 4),
      batchPutAll(client, 'T', ['sk', 'pk'], [{ pk: 'a', sk: 'y' }]),
      batchDeleteAll(client, 'T', [{ pk: 'b', sk: 'y' }]),
    ]);
    expect(sent.map((s) => `${s.kind} ${s.tables.T?.entries.length}`)).toEqual(['get 1', 'get 1', 'put 2']);
  });

  it('an answer with a key no caller asked for fails the callers instead of reaching the wrong one', async () => {
    const client = {
      send: async () => ({ Responses: { T: [{ pk: 'stranger', sk: 'VIEW' }] }, UnprocessedKeys: {} }),
    } as unknown as DynamoDBDocumentClient;
    const failure = await batchGetAll(client, 'T', incidentKeys('a', 1), 4).catch((error: unknown) => error);
    expect(String(failure)).toContain('a key none of its callers asked for');
  });
});

// BatchExecuteStatement answers each statement on its own; throttling and races come back per statement, which the
// stand-in never does, so a client answering as told drives insertAll's handling of each code here.
describe('insertAll: one outcome per item from BatchExecuteStatement', () => {
  type Statement = { Statement: string; Parameters: unknown[] };
  function answering(codes: Array<Array<string | undefined>>, answered?: (sent: number) => number) {
    const sent: Statement[][] = [];
    const client = {
      send: async (command: { input: { Statements: Statement[] } }) => {
        const statements = command.input.Statements;
        const round = codes[sent.length] ?? [];
        sent.push(statements);
        const responses = statements.map((_, i) => {
          const Code = round[i];
          return Code ? { TableName: 'T', Error: { Code, Message: `${Code} message` } } : { TableName: 'T' };
        });
        return { Responses: responses.slice(0, answered ? answered(statements.length) : undefined) };
      },
    } as unknown as DynamoDBDocumentClient;
    return { client, sent };
  }
  const settled = (results: PromiseSettledResult<boolean>[]) =>
    results.map((r) =>
      r.status === 'fulfilled' ? r.value : `${(r.reason as Error).name}: ${(r.reason as Error).message}`,
    );

  it('an INSERT per item with its attributes as parameters, 25 statements a request', async () => {
    const { client, sent } = answering([]);
    const items = Array.from({ length: 60 }, (_, i) => ({ pk: `k${i}`, "it's": i, gone: undefined }));
    expect(settled(await insertAll(client, 'T', items, 2))).toEqual(Array(60).fill(true));
    expect(sent.map((statements) => statements.length)).toEqual([25, 25, 10]);
    expect(sent[0]?.[1]).toEqual({
      Statement: `INSERT INTO "T" VALUE {'pk': ?, 'it''s': ?}`,
      Parameters: ['k1', 1],
    });
  });

  it('a taken key is false, throttled statements are resent alone, an item refused for itself fails alone', async () => {
    const { client, sent } = answering([
      [undefined, 'DuplicateItem', 'ThrottlingError', 'ValidationError', 'TransactionConflict'],
      [undefined, 'ProvisionedThroughputExceeded'],
      [],
    ]);
    const results = await insertAll(client, 'T', keys(5), 1);
    expect(sent.map((statements) => statements.length)).toEqual([5, 2, 1]);
    expect(sent[1]?.map((s) => s.Parameters[0])).toEqual(['k2', 'k4']);
    expect(settled(results)).toEqual([
      true,
      false,
      true,
      'StatementValidationError: INSERT into T refused: ValidationError: ValidationError message',
      true,
    ]);
    expect(isStoreOutage((results[3] as PromiseRejectedResult).reason)).toBe(false);
    expect(isBatchLevelError((results[3] as PromiseRejectedResult).reason)).toBe(false);
  });

  it('throttled every time: an outage after the resends; a missing table: batch-level, not retried', async () => {
    const { client } = answering(Array.from({ length: 20 }, () => ['ThrottlingError', 'ResourceNotFound']));
    const [throttled, missing] = await insertAll(client, 'T', keys(2), 1);
    expect(isStoreOutage((throttled as PromiseRejectedResult).reason)).toBe(true);
    expect(isBatchLevelError((missing as PromiseRejectedResult).reason)).toBe(true);
    expect(isStoreOutage((missing as PromiseRejectedResult).reason)).toBe(false);
  });

  it('an answer with fewer responses than statements fails them all, batch-level: nobody knows which went in', async () => {
    const { client } = answering([], (n) => n - 1);
    const results = await insertAll(client, 'T', keys(3), 1);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect(isBatchLevelError((result as PromiseRejectedResult).reason)).toBe(true);
    }
  });

  it('a statement refused for a reason that is not its item (no permission, a code this code does not know, no code): batch-level', async () => {
    const { client, sent } = answering([
      ['AccessDenied', 'SomethingNew', 'RequestLimitExceeded', 'InternalServerError'],
      [],
    ]);
    const results = await insertAll(client, 'T', keys(4), 1);
    expect(sent.map((statements) => statements.length)).toEqual([4, 2]);
    for (const result of results.slice(0, 2)) {
      expect(isBatchLevelError((result as PromiseRejectedResult).reason)).toBe(true);
      expect(isStoreOutage((result as PromiseRejectedResult).reason)).toBe(false);
    }
    expect(results.slice(2).map((r) => r.status === 'fulfilled' && r.value)).toEqual([true, true]);

    const codeless = {
      send: async () => ({ Responses: [{ Error: { Message: 'something' } }] }),
    } as unknown as DynamoDBDocumentClient;
    const [result] = await insertAll(codeless, 'T', keys(1), 1);
    expect(isBatchLevelError((result as PromiseRejectedResult).reason)).toBe(true);
  });

  it('a request refused as a whole for what one item holds is sent again one statement a request: that item fails alone', async () => {
    const sent: number[] = [];
    const client = {
      send: async (command: { input: { Statements: Array<{ Parameters: unknown[] }> } }) => {
        const statements = command.input.Statements;
        sent.push(statements.length);
        if (statements.some((s) => s.Parameters[0] === 'k1')) throw new Error('cannot marshal an empty set');
        return { Responses: statements.map(() => ({})) };
      },
    } as unknown as DynamoDBDocumentClient;
    const results = await insertAll(client, 'T', keys(3), 1);
    expect(sent).toEqual([3, 1, 1, 1]);
    expect(settled(results)).toEqual([true, 'Error: cannot marshal an empty set', true]);
  });

  it('a request refused as a whole for another reason than its items: every item batch-level, nothing resent', async () => {
    const refusing = (error: Error) => {
      let calls = 0;
      const client = {
        send: async () => {
          calls++;
          throw error;
        },
      } as unknown as DynamoDBDocumentClient;
      return { client, calls: () => calls };
    };
    const aws = (name: string) =>
      Object.assign(new Error(name), { name, $fault: 'client', $metadata: { httpStatusCode: 400 } });
    for (const error of [
      aws('SomethingNewException'),
      aws('AccessDeniedException'),
      aws('UnknownOperationException'),
    ]) {
      const { client, calls } = refusing(error);
      const results = await insertAll(client, 'T', keys(3), 1);
      expect(calls(), error.name).toBe(1);
      for (const result of results) {
        expect(isBatchLevelError((result as PromiseRejectedResult).reason), error.name).toBe(true);
        expect(isStoreOutage((result as PromiseRejectedResult).reason), error.name).toBe(false);
      }
    }
    // DynamoDB refusing the request as invalid: the items', each sent again alone.
    const { client, calls } = refusing(aws('ValidationException'));
    const invalid = await insertAll(client, 'T', keys(3), 1);
    expect(calls()).toBe(4);
    for (const result of invalid)
      expect(isBatchLevelError((result as PromiseRejectedResult).reason)).toBe(false);
  });

  it('resending alone stops at the first batch-level failure: the rest fail with it, unsent', async () => {
    let calls = 0;
    const client = {
      send: async () => {
        if (calls++ === 0) throw new Error('cannot marshal an empty set');
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
    } as unknown as DynamoDBDocumentClient;
    const results = await insertAll(client, 'T', keys(4), 1);
    expect(calls).toBe(2);
    for (const result of results) expect(isStoreOutage((result as PromiseRejectedResult).reason)).toBe(true);
  });

  it('a request that fails fails its own items only', async () => {
    let calls = 0;
    const client = {
      send: async (command: { input: { Statements: unknown[] } }) => {
        if (calls++ === 0) throw Object.assign(new Error('down'), { name: 'InternalServerError' });
        return { Responses: command.input.Statements.map(() => ({})) };
      },
    } as unknown as DynamoDBDocumentClient;
    const results = await insertAll(client, 'T', keys(30), 1);
    expect(results.slice(0, 25).every((r) => r.status === 'rejected')).toBe(true);
    expect(results.slice(25).every((r) => r.status === 'fulfilled' && r.value)).toBe(true);
  });
});
