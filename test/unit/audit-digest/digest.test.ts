import { describe, expect, it } from 'vitest';
import {
  buildDigest,
  type ChainHeadState,
  digestKey,
  parseS3Url,
  readDigests,
  type StoredDigest,
  writeDigest,
} from '../../../functions/audit-digest/digest';

const head = (topic: string, partition: number, seq: bigint, byte: number): ChainHeadState => ({
  topic,
  partition,
  seq,
  hash: Buffer.alloc(32, byte),
  recordedAt: new Date('2026-12-06T10:00:00Z'),
});

async function* list(digests: StoredDigest[]) {
  yield* digests;
}

/** An in-memory DigestStore: write-once keys, listed in key order. */
function memoryStore() {
  const objects = new Map<string, Buffer>();
  const sorted = () => [...objects.keys()].sort().map((key) => ({ key, body: objects.get(key) as Buffer }));
  return {
    objects,
    async latest() {
      return sorted().at(-1);
    },
    async put(digest: StoredDigest) {
      if (objects.has(digest.key)) throw new Error(`${digest.key} exists`);
      objects.set(digest.key, digest.body);
    },
    all: () => list(sorted()),
  };
}

describe('digests', () => {
  it('names keys in time order and chains each digest to the one before it', async () => {
    expect(digestKey('d/', new Date('2026-12-06T09:05:00.123Z'))).toBe(
      'd/2026/12/06/2026-12-06T09-05-00.123Z.json',
    );
    const store = memoryStore();
    const start = Date.parse('2026-12-06T09:00:00Z');
    const heads = { heads: async () => [head('b', 1, 5n, 2), head('a', 0, 3n, 1)] };
    for (let i = 0; i < 3; i++) {
      const at = new Date(start + i * 300_000);
      await writeDigest({ heads, store, now: () => at }, 'd/');
    }
    const check = await readDigests(store.all());
    expect(check.problem).toBeUndefined();
    expect(check.digests).toBe(3);
    expect([...check.checkpoints.keys()]).toEqual(['a-0', 'b-1']);
    expect(check.checkpoints.get('a-0')?.get(3n)).toMatchObject({
      hash: Buffer.alloc(32, 1),
      reason: 'digest-mismatch',
    });
    const first = JSON.parse(([...store.objects.values()][0] as Buffer).toString());
    expect(first).toMatchObject({
      version: 1,
      previous: null,
      chains: [
        { topic: 'a', seq: '3' },
        { topic: 'b', seq: '5' },
      ],
    });
  });

  it('refuses a changed digest, a missing one, and two that contradict each other', async () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 11, 6, 9, minute));
    const one = buildDigest([head('a', 0, 3n, 1)], undefined, at(0), 'd/');
    const two = buildDigest([head('a', 0, 4n, 2)], one, at(5), 'd/');
    const three = buildDigest([head('a', 0, 5n, 3)], two, at(10), 'd/');
    expect((await readDigests(list([one, two, three]))).problem).toBeUndefined();

    const changed = { key: two.key, body: Buffer.from(two.body.toString().replace('"4"', '"9"')) };
    expect((await readDigests(list([one, changed, three]))).problem).toMatchObject({
      key: three.key,
      reason: expect.stringMatching(/^digest chain broken/),
    });
    expect((await readDigests(list([one, three]))).problem).toMatchObject({ key: three.key });
    expect((await readDigests(list([two, three]))).problem).toMatchObject({
      key: two.key,
      reason: `the first digest names ${one.key}, which is not there`,
    });
    // Two overlapping scheduled runs both chained to the same digest: a fork, not a break.
    const sibling = buildDigest([head('a', 0, 4n, 2)], one, at(6), 'd/');
    expect((await readDigests(list([one, two, sibling]))).problem).toBeUndefined();
    const contradicting = buildDigest([head('a', 0, 3n, 9)], one, at(5), 'd/');
    expect((await readDigests(list([one, contradicting]))).problem?.reason).toMatch(/^a-0 seq 3: hash 0909/);
    expect(() => buildDigest([], three, at(1), 'd/')).toThrow(/not older/);
  });

  it('parses s3 URLs', () => {
    expect(parseS3Url('s3://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(parseS3Url('s3://my-bucket/audit-digests')).toEqual({
      bucket: 'my-bucket',
      prefix: 'audit-digests/',
    });
    expect(() => parseS3Url('https://x')).toThrow(/s3:\/\/bucket/);
  });
});
