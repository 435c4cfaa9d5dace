import { describe, expect, it } from 'vitest';
import { parseStatements } from '../../../local/stack/dynalite-server';

describe('the DynamoDB stand-in reads BatchExecuteStatement INSERTs', () => {
  it('the table, and each attribute name with its parameter (a doubled quote is one)', () => {
    expect(
      parseStatements({
        Statements: [
          {
            Statement: `insert into "IncidentsTable-1" value { 'pk' : ?, 'it''s':?,'sk': ? };`,
            Parameters: [{ S: 'a' }, { N: '1' }, { S: 'b' }],
          },
        ],
      }),
    ).toEqual([{ table: 'IncidentsTable-1', item: { pk: { S: 'a' }, "it's": { N: '1' }, sk: { S: 'b' } } }]);
  });

  it('refuses what it does not run with a message naming the statement, never a partial reading', () => {
    const one = (Statement: string, Parameters: unknown[] = [{ S: 'a' }]) =>
      parseStatements({ Statements: [{ Statement, Parameters }] });
    for (const statement of [
      `INSERT INTO "T1x" VALUE {'pk': 'literal'}`,
      `INSERT INTO "T1x" VALUE {'pk': ? 'sk': ?}`,
      `INSERT INTO "T1x" VALUE {'pk': ?} extra`,
      `UPDATE "T1x" SET a = ? WHERE pk = 'x'`,
      `INSERT INTO T1x VALUE {'pk': ?}`,
    ]) {
      expect(one(statement), statement).toMatch(/^Statements\[0\]: this local stand-in .* runs only INSERT/);
    }
    expect(one(`INSERT INTO "T1x" VALUE {'pk': ?, 'sk': ?}`)).toBe(
      'Statements[0]: 2 parameters expected, got 1',
    );
    expect(one(`INSERT INTO "T1x" VALUE {'pk': ?, 'pk': ?}`, [{ S: 'a' }, { S: 'b' }])).toBe(
      "Statements[0]: attribute 'pk' given twice",
    );
    expect(one(`INSERT INTO "T1x" VALUE {'pk': ?,}`)).toMatch(/runs only INSERT/);
    expect(
      parseStatements({
        Statements: [
          { Statement: `INSERT INTO "T1x" VALUE {'pk': ?}`, Parameters: [{ S: 'a' }], ConsistentRead: true },
        ],
      }),
    ).toBe('Statements[0]: this local stand-in does not run ConsistentRead');
    expect(parseStatements({ Statements: [], ReturnConsumedCapacity: 'TOTAL' })).toBe(
      'this local stand-in does not run ReturnConsumedCapacity',
    );
    expect(parseStatements({ Statements: [] })).toBe('Statements: at least one statement is required');
    for (const body of ['INSERT', [], null, 3])
      expect(parseStatements(body)).toBe('the request is not a JSON object');
    expect(
      parseStatements({
        Statements: Array.from({ length: 26 }, () => ({
          Statement: `INSERT INTO "T1x" VALUE {'pk': ?}`,
          Parameters: [{ S: 'a' }],
        })),
      }),
    ).toBe('Statements: at most 25 statements per batch, got 26');
  });
});
