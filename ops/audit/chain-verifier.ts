import {
  type AuditContent,
  bodyHashOf,
  chainHash,
  contentHashOf,
} from '../../functions/audit-append/audit-record';

/** A stored audit row as `audit verify` reads it. */
export interface StoredAuditRow extends AuditContent {
  seq: bigint;
  recordedAtMicros: bigint;
  ceId: string | null;
  /** Query columns (ce_type, ce_time, ...) that no longer equal the hashed CloudEvents attributes. */
  changedColumns?: string;
  /** What the id guard (audit_event_ids) holds for this row's source + id, when it does not point back at this row. */
  guardMismatch?: string;
  bodyHash: Buffer;
  contentHash: Buffer;
  prevHash: Buffer;
  rowHash: Buffer;
}

export type ChainBreakReason =
  | 'missing-link' // a sequence number is absent (a row was deleted)
  | 'content-changed' // the row's content no longer matches the content hash recorded when it was appended
  | 'body-hash-mismatch' // the stored body hash is not the hash of the stored body (a pre-claimed ce_id)
  | 'id-guard-mismatch' // the id guard does not name this row with its body hash
  | 'anchor-mismatch' // a retention anchor covers rows that still exist and do not hash to it, or is forged
  | 'digest-mismatch' // an external digest vouched for another hash at this seq (or for a chain not stored)
  | 'prev-hash-mismatch' // the row does not point at the previous row's hash
  | 'row-hash-mismatch' // the row hash does not follow from previous hash, content, seq and recording time
  | 'columns-changed' // a query column (ce_type, ce_time, ...) no longer equals the hashed attribute
  | 'head-mismatch'; // the chain ends somewhere else than its head says (rows removed or added at the end)

export interface ChainBreak {
  topic: string;
  partition: number;
  /** Sequence number of the first broken link (for head-mismatch: the head's). */
  seq: bigint;
  offset: number | null;
  ceId: string | null;
  reason: ChainBreakReason;
  /** Hex of what the chain says it should be, and of what it is now. */
  expected: string;
  actual: string;
}

/** Walks one topic-partition chain in seq order and stops at the first broken link. */
export class ChainWalker {
  private seq: bigint;
  private hash: Buffer;
  private checked = 0;
  private broken: ChainBreak | undefined;
  private readonly startSeq: bigint;
  private lastCheckpoint: bigint | undefined;

  /**
   * @param checkpoints hashes the chain must have at given seqs (retention anchors over rows that still exist,
   *   digests): seq => expected row hash, and the reason to report when it does not.
   */
  constructor(
    readonly topic: string,
    readonly partition: number,
    start: { seq: bigint; hash: Buffer },
    private readonly checkpoints: ReadonlyMap<bigint, Checkpoint> = new Map(),
  ) {
    this.seq = start.seq;
    this.hash = start.hash;
    this.startSeq = start.seq;
  }

  get rowsChecked(): number {
    return this.checked;
  }

  get lastSeq(): bigint {
    return this.seq;
  }

  get firstBreak(): ChainBreak | undefined {
    return this.broken;
  }

  /** Checks the next row; returns the break when this row is the first broken link. */
  next(row: StoredAuditRow): ChainBreak | undefined {
    if (this.broken) return this.broken;
    const at = (reason: ChainBreakReason, expected: string, actual: string, seq = row.seq): ChainBreak => {
      this.broken = {
        topic: this.topic,
        partition: this.partition,
        seq,
        offset: row.offset,
        ceId: row.ceId,
        reason,
        expected,
        actual,
      };
      return this.broken;
    };
    if (row.seq !== this.seq + 1n) {
      return at('missing-link', `seq ${this.seq + 1n}`, `seq ${row.seq}`, this.seq + 1n);
    }
    const content = contentHashOf(row);
    if (!content.equals(row.contentHash)) return at('content-changed', hex(row.contentHash), hex(content));
    if (!row.prevHash.equals(this.hash)) return at('prev-hash-mismatch', hex(this.hash), hex(row.prevHash));
    const rowHash = chainHash(this.hash, content, row.seq, row.recordedAtMicros);
    if (!rowHash.equals(row.rowHash)) return at('row-hash-mismatch', hex(rowHash), hex(row.rowHash));
    // The body hash came from the caller of audit_append: recompute it, or a row could claim the identity of
    // another (future) event, which would then be taken for its duplicate and never stored.
    const body = bodyHashOf(row);
    if (!body.equals(row.bodyHash)) return at('body-hash-mismatch', hex(body), hex(row.bodyHash));
    if (row.changedColumns) {
      return at(
        'columns-changed',
        'query columns equal to the hashed attributes',
        `changed: ${row.changedColumns}`,
      );
    }
    if (row.guardMismatch) {
      return at(
        'id-guard-mismatch',
        `ce_id ${row.ceId} of source ${String(row.ce.source)} -> this row, body ${hex(body)}`,
        row.guardMismatch,
      );
    }
    const checkpoint = this.checkpoints.get(row.seq);
    if (checkpoint && !checkpoint.hash.equals(rowHash)) {
      // Everything up to the last checkpoint that held is as it was then; the change is after it.
      const since = this.lastCheckpoint ? `seq ${this.lastCheckpoint + 1n}` : `seq ${this.startSeq + 1n}`;
      return at(
        checkpoint.reason,
        `${hex(checkpoint.hash)} (${checkpoint.source})`,
        `${hex(rowHash)}: a row in ${since}..${row.seq} changed after the checkpoint was taken`,
      );
    }
    if (checkpoint) this.lastCheckpoint = row.seq;
    this.seq = row.seq;
    this.hash = rowHash;
    this.checked += 1;
    return undefined;
  }

  /** Refuses the chain at a seq without a row in hand (a forged anchor, a digest over missing rows). */
  fail(reason: ChainBreakReason, seq: bigint, expected: string, actual: string): ChainBreak {
    this.broken ??= {
      topic: this.topic,
      partition: this.partition,
      seq,
      offset: null,
      ceId: null,
      reason,
      expected,
      actual,
    };
    return this.broken;
  }

  /** After the last row: the chain must end where its head says. */
  finish(head: { seq: bigint; hash: Buffer } | undefined): ChainBreak | undefined {
    if (this.broken) return this.broken;
    for (const [seq, checkpoint] of this.checkpoints) {
      if (seq > this.seq) {
        return this.fail(
          checkpoint.reason,
          seq,
          `a row at seq ${seq} with hash ${hex(checkpoint.hash)} (${checkpoint.source})`,
          `the chain ends at seq ${this.seq}`,
        );
      }
    }
    if (!head) return this.broken;
    if (head.seq !== this.seq || !head.hash.equals(this.hash)) {
      this.broken = {
        topic: this.topic,
        partition: this.partition,
        seq: head.seq,
        offset: null,
        ceId: null,
        reason: 'head-mismatch',
        expected: `seq ${head.seq} ${hex(head.hash)}`,
        actual: `seq ${this.seq} ${hex(this.hash)}`,
      };
    }
    return this.broken;
  }
}

export interface Checkpoint {
  hash: Buffer;
  reason: ChainBreakReason;
  /** Where the expectation comes from, for the report (an anchor's partition, a digest's key). */
  source: string;
}

function hex(buffer: Buffer): string {
  return buffer.toString('hex');
}

export function describeBreak(chainBreak: ChainBreak): string {
  const where = `${chainBreak.topic}-${chainBreak.partition} seq ${chainBreak.seq}`;
  const record = chainBreak.offset === null ? '' : ` (offset ${chainBreak.offset}, ce_id ${chainBreak.ceId})`;
  return `${where}${record}: ${chainBreak.reason}, expected ${chainBreak.expected}, actual ${chainBreak.actual}`;
}
