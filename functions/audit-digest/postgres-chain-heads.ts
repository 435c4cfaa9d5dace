import type { Queryable } from '../audit-append/postgres-pool';
import type { ChainHeadSource, ChainHeadState } from './ports';

/** The head of every chain, read from audit_chain_head (role audit_reader may read that table only). */
export class PostgresChainHeads implements ChainHeadSource {
  constructor(private readonly database: Queryable) {}

  async heads(): Promise<ChainHeadState[]> {
    const { rows } = await this.database.query<{
      topic: string;
      kafka_partition: number;
      last_seq: string;
      last_hash: Buffer;
      last_recorded_at: Date | null;
    }>(
      `SELECT topic, kafka_partition, last_seq::text, last_hash, last_recorded_at
       FROM audit_chain_head ORDER BY topic, kafka_partition`,
    );
    return rows.map((row) => ({
      topic: row.topic,
      partition: row.kafka_partition,
      seq: BigInt(row.last_seq),
      hash: row.last_hash,
      recordedAt: row.last_recorded_at,
    }));
  }
}
