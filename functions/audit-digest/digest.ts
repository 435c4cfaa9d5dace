import { createHash } from 'node:crypto';
import type { ChainHeadSource, ChainHeadState, DigestStore, StoredDigest } from './ports';

/**
 * External digests of the audit store, after CloudTrail's log-file integrity validation: every few minutes the
 * head of every chain (topic-partition, seq, row hash, recording time) is written to a bucket nobody can
 * rewrite (S3 Object Lock, compliance mode), and each digest names the previous one by key and sha256. A row
 * changed later, even with every hash recomputed inside the database, no longer hashes to what a digest says.
 */

/** One chain's head in a digest, as JSON. */
export interface DigestChainEntry {
  topic: string;
  partition: number;
  /** Decimal text: seq is a bigint. */
  seq: string;
  /** Hex of the row hash at seq. */
  hash: string;
  recordedAt: string | null;
}

export interface ChainDigest {
  version: 1;
  createdAt: string;
  /** The digest before this one (null for the first): its key and the sha256 (hex) of its bytes. */
  previous: { key: string; sha256: string } | null;
  chains: DigestChainEntry[];
}

export class DigestFormatError extends Error {}

const sha256Hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Keys sort in time order: <prefix>YYYY/MM/DD/<ISO time with ':' as '-'>.json. */
export function digestKey(prefix: string, at: Date): string {
  const iso = at.toISOString();
  return `${prefix}${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.replaceAll(':', '-')}.json`;
}

export function buildDigest(
  heads: readonly ChainHeadState[],
  previous: StoredDigest | undefined,
  at: Date,
  prefix: string,
): StoredDigest {
  const key = digestKey(prefix, at);
  if (previous && previous.key >= key) {
    throw new Error(`the newest digest ${previous.key} is not older than ${key}: is the clock behind?`);
  }
  const digest: ChainDigest = {
    version: 1,
    createdAt: at.toISOString(),
    previous: previous ? { key: previous.key, sha256: sha256Hex(previous.body) } : null,
    chains: [...heads]
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
      .map((head) => ({
        topic: head.topic,
        partition: head.partition,
        seq: head.seq.toString(),
        hash: head.hash.toString('hex'),
        recordedAt: head.recordedAt?.toISOString() ?? null,
      })),
  };
  return { key, body: Buffer.from(`${JSON.stringify(digest, null, 1)}\n`) };
}

/** Reads the heads and writes the next digest, chained to the newest one in the store. */
export async function writeDigest(
  deps: { heads: ChainHeadSource; store: DigestStore; now?: () => Date },
  prefix: string,
): Promise<{ key: string; chains: number }> {
  const [heads, previous] = await Promise.all([deps.heads.heads(), deps.store.latest()]);
  const digest = buildDigest(heads, previous, (deps.now ?? (() => new Date()))(), prefix);
  await deps.store.put(digest);
  return { key: digest.key, chains: heads.length };
}

/** A row hash a digest vouches for: a checkpoint of `audit verify`'s chain walk (ops/audit/chain-verifier.ts). */
export interface DigestCheckpoint {
  hash: Buffer;
  reason: 'digest-mismatch';
  /** The digest's key, for the report. */
  source: string;
}

export interface DigestCheck {
  digests: number;
  /** `${topic}-${partition}` => seq => the row hash a digest vouches for. */
  checkpoints: Map<string, Map<bigint, DigestCheckpoint>>;
  /** The first problem with the digests themselves (a broken digest chain, a malformed digest). */
  problem?: { key: string; reason: string };
}

/**
 * Checks that the digests are chained (each names an earlier one by key and sha256: the one before it, or, when
 * two scheduled runs overlapped, the same one as its sibling), and collects what they vouch for. A replaced
 * digest no longer matches the sha256 later digests name; two digests that name different hashes for one seq
 * contradict each other: both are problems.
 */
export async function readDigests(digests: AsyncIterable<StoredDigest>): Promise<DigestCheck> {
  const check: DigestCheck = { digests: 0, checkpoints: new Map() };
  const seen = new Map<string, string>();
  let previous: StoredDigest | undefined;
  for await (const stored of digests) {
    let digest: ChainDigest;
    try {
      digest = parseDigest(stored.body);
    } catch (error) {
      check.problem = { key: stored.key, reason: `not a digest: ${(error as Error).message}` };
      return check;
    }
    const link = digest.previous;
    if (previous) {
      const named = link ? seen.get(link.key) : undefined;
      if (!link || named !== link.sha256) {
        const before = { key: previous.key, sha256: sha256Hex(previous.body) };
        check.problem = {
          key: stored.key,
          reason:
            `digest chain broken: it names ${link ? `${link.key} sha256 ${link.sha256}` : 'no previous digest'}` +
            (link && named ? `, whose sha256 is ${named}` : link ? ', which is not listed before it' : '') +
            `; the digest before it is ${before.key} sha256 ${before.sha256}`,
        };
        return check;
      }
    } else if (link) {
      // The oldest digest listed names one before it: older digests are gone (or were not listed).
      check.problem = { key: stored.key, reason: `the first digest names ${link.key}, which is not there` };
      return check;
    }
    for (const entry of digest.chains) {
      const chain = `${entry.topic}-${entry.partition}`;
      let seqs = check.checkpoints.get(chain);
      if (!seqs) {
        seqs = new Map();
        check.checkpoints.set(chain, seqs);
      }
      const seq = BigInt(entry.seq);
      const hash = Buffer.from(entry.hash, 'hex');
      const known = seqs.get(seq);
      if (known && !known.hash.equals(hash)) {
        check.problem = {
          key: stored.key,
          reason: `${chain} seq ${seq}: hash ${entry.hash}, but ${known.source} says ${known.hash.toString('hex')}`,
        };
        return check;
      }
      if (!known) seqs.set(seq, { hash, reason: 'digest-mismatch', source: `digest ${stored.key}` });
    }
    check.digests += 1;
    seen.set(stored.key, sha256Hex(stored.body));
    previous = stored;
  }
  return check;
}

function parseDigest(body: Buffer): ChainDigest {
  const digest = JSON.parse(body.toString('utf8')) as ChainDigest;
  if (digest?.version !== 1 || !Array.isArray(digest.chains))
    throw new DigestFormatError('version 1 expected');
  for (const entry of digest.chains) {
    if (
      typeof entry.topic !== 'string' ||
      !Number.isInteger(entry.partition) ||
      !/^\d+$/.test(entry.seq) ||
      !/^[0-9a-f]{64}$/.test(entry.hash)
    ) {
      throw new DigestFormatError(`bad chain entry ${JSON.stringify(entry)}`);
    }
  }
  return digest;
}

/** s3://bucket/prefix/ -> { bucket, prefix } (the prefix ends with '/' unless empty). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!match) throw new DigestFormatError(`the digests location must be s3://bucket[/prefix], got "${url}"`);
  const prefix = match[2] ?? '';
  return {
    bucket: match[1] as string,
    prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
  };
}
