import { describe, expect, it } from 'vitest';
import { buildAuditRecord, chainHash, GENESIS_HASH } from '../../../../functions/audit-append/audit-record';
import { ChainWalker, describeBreak, type StoredAuditRow } from '../../../../ops/audit/chain-verifier';
import { cloudEventRecord, decodeJsonCloudEvent } from '../../audit/support/msk';

function chain(length: number): StoredAuditRow[] {
  let prev = GENESIS_HASH;
  return Array.from({ length }, (_, index) => {
    const kafka = cloudEventRecord({ offset: 100 + index });
    const record = buildAuditRecord(kafka, decodeJsonCloudEvent(kafka));
    const seq = BigInt(index + 1);
    const recordedAtMicros = 1_800_000_000_000_000n + seq;
    const rowHash = chainHash(prev, record.contentHash, seq, recordedAtMicros);
    // data is a getter of the built record, which a spread does not copy.
    const row = {
      ...record,
      data: record.data,
      seq,
      recordedAtMicros,
      ceId: String(record.ce.id),
      prevHash: prev,
      rowHash,
    };
    prev = rowHash;
    return row;
  });
}

function walk(rows: StoredAuditRow[], head?: { seq: bigint; hash: Buffer }) {
  const walker = new ChainWalker('genai.request', 0, { seq: 0n, hash: GENESIS_HASH });
  for (const row of rows) if (walker.next(row)) break;
  return walker.finish(head ?? { seq: rows.at(-1)?.seq ?? 0n, hash: rows.at(-1)?.rowHash ?? GENESIS_HASH });
}

describe('ChainWalker', () => {
  it('accepts an intact chain', () => {
    expect(walk(chain(5))).toBeUndefined();
  });

  it('names a changed row with the hash it was appended with and the hash it has now', () => {
    const rows = chain(5);
    const original = rows[2] as StoredAuditRow;
    rows[2] = { ...original, data: { prompt: 'changed' } };
    const broken = walk(rows);
    expect(broken).toMatchObject({
      seq: 3n,
      offset: 102,
      reason: 'content-changed',
      expected: original.contentHash.toString('hex'),
    });
    expect(describeBreak(broken as NonNullable<typeof broken>)).toMatch(
      /^genai\.request-0 seq 3 \(offset 102, ce_id genai\.request-0-102\): content-changed, expected [0-9a-f]{64}, actual [0-9a-f]{64}$/,
    );
  });

  it('finds a removed row, a reordered row, a changed recording time and a cut tail', () => {
    const rows = chain(5);
    expect(walk([rows[0], rows[2]] as StoredAuditRow[], { seq: 5n, hash: GENESIS_HASH })).toMatchObject({
      seq: 2n,
      reason: 'missing-link',
    });
    const swapped = chain(3);
    const [first, second] = swapped as [StoredAuditRow, StoredAuditRow];
    expect(
      walk([
        { ...second, seq: 1n },
        { ...first, seq: 2n },
      ]),
    ).toMatchObject({ seq: 1n, reason: 'prev-hash-mismatch' });
    const moved = chain(3);
    moved[1] = { ...(moved[1] as StoredAuditRow), recordedAtMicros: 1n };
    expect(walk(moved)).toMatchObject({ seq: 2n, reason: 'row-hash-mismatch' });
    const full = chain(4);
    const last = full.at(-1) as StoredAuditRow;
    expect(walk(full.slice(0, 3), { seq: 4n, hash: last.rowHash })).toMatchObject({
      seq: 4n,
      reason: 'head-mismatch',
    });
  });
});

describe('ChainWalker against a pre-claimed id and checkpoints (issue 21)', () => {
  it('recomputes the body hash: a row holding the body hash of another (future) event is refused', () => {
    const rows = chain(3);
    const future = cloudEventRecord({ offset: 999 });
    const futureBodyHash = buildAuditRecord(future, decodeJsonCloudEvent(future)).bodyHash;
    // Content and chain are consistent; only the identity the caller claimed is someone else's.
    rows[1] = { ...(rows[1] as StoredAuditRow), bodyHash: futureBodyHash };
    expect(walk(rows)).toMatchObject({
      seq: 2n,
      reason: 'body-hash-mismatch',
      actual: futureBodyHash.toString('hex'),
    });
  });

  it('checks the row hash at a checkpoint and refuses a checkpoint past the end of the chain', () => {
    const rows = chain(4);
    const at = (seq: bigint, hash: Buffer) =>
      new Map([[seq, { hash, reason: 'anchor-mismatch' as const, source: 'test' }]]);
    const run = (checkpoints: ReturnType<typeof at>) => {
      const walker = new ChainWalker('genai.request', 0, { seq: 0n, hash: GENESIS_HASH }, checkpoints);
      for (const row of rows) if (walker.next(row)) break;
      return walker.finish(undefined);
    };
    expect(run(at(2n, (rows[1] as StoredAuditRow).rowHash))).toBeUndefined();
    expect(run(at(2n, GENESIS_HASH))).toMatchObject({ seq: 2n, reason: 'anchor-mismatch' });
    expect(run(at(9n, GENESIS_HASH))).toMatchObject({
      seq: 9n,
      reason: 'anchor-mismatch',
      actual: 'the chain ends at seq 4',
    });
  });
});
