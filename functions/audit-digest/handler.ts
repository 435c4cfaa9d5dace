import { s3 } from '../../shared/aws-clients';
import { requireEnv } from '../../shared/config';
import { createObservability } from '../../shared/observability';
import { secretsManagerReader } from '../audit-append/database-secret';
import { databaseSettingsFromEnv } from '../audit-append/database-settings';
import { LambdaDatabase } from '../audit-append/postgres-pool';
import { writeDigest } from './digest';
import { PostgresChainHeads } from './postgres-chain-heads';
import { S3DigestStore } from './s3-digest-store';

// Wiring only: on every scheduled invocation, read the chain heads (as audit_reader) and write the next digest
// to the Object Lock bucket, chained to the newest one there.
const { logger } = createObservability('audit-digest');
const { DIGEST_BUCKET } = requireEnv('DIGEST_BUCKET');
const prefix = process.env.DIGEST_PREFIX ?? 'audit-digests/';
const database = new LambdaDatabase(databaseSettingsFromEnv(), secretsManagerReader(), (error) =>
  logger.warn('Idle database connection failed', { error }),
);
const heads = { heads: () => database.withConnection((client) => new PostgresChainHeads(client).heads()) };
const store = new S3DigestStore(s3(), DIGEST_BUCKET, prefix);

export const handler = async (): Promise<{ key: string; chains: number }> => {
  const written = await writeDigest({ heads, store }, prefix);
  logger.info('Audit digest written', written);
  return written;
};
