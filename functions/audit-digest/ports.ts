/** The head of one topic-partition chain of the audit store, as a digest records it. */
export interface ChainHeadState {
  topic: string;
  partition: number;
  seq: bigint;
  hash: Buffer;
  recordedAt: Date | null;
}

/** A digest object: its key and its bytes. */
export interface StoredDigest {
  key: string;
  body: Buffer;
}

/** What the digest writer reads: the head of every chain. */
export interface ChainHeadSource {
  heads(): Promise<ChainHeadState[]>;
}

/** Where digests live: write-once objects, listed in key (= time) order. */
export interface DigestStore {
  latest(): Promise<StoredDigest | undefined>;
  /** Writes a new object; must refuse to replace an existing one. */
  put(digest: StoredDigest): Promise<void>;
  all(): AsyncIterable<StoredDigest>;
}
