// Creates what the deployment defines, locally: Kafka topics (custom.kafka.topics), every DynamoDB table and
// the failed-records bucket (resources.Resources), and the database schema (migrations/*.sql). The source is
// the resolved serverless config, so local and AWS cannot drift apart. Everything here is idempotent.
import '../shared/kafka/node20-polyfills';
import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Admin } from '@platformatic/kafka';
import { runMigrations } from '../ops/migrations';
import { applyPlan, formatPlan, planTopics, readTopics, type TopicSpec, topicSpecs } from '../ops/topics';
import { LOCAL_STAGE, resolvedServerlessConfig } from './serverless-config';

export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_REGION = 'eu-west-1';

// biome-ignore lint/suspicious/noExplicitAny: the resolved serverless config is free-form YAML
type Json = any;

export interface LocalDefinitions {
  topics: TopicSpec[];
  /** Logical id => CreateTable input (key schema, attributes, indexes). */
  tables: Record<string, CreateTableCommandInput>;
  /** Env var name (IncidentsTable -> INCIDENTS_TABLE) => table name of the stage. */
  tableEnv: Record<string, string>;
  failedRecordsBucket: string;
  /** The audit digests' bucket (serverless/audit-digests.yml), when serverless.yml defines one. */
  auditDigestBucket?: string;
  notes: string[];
}

let stageTables: LocalDefinitions['tables'] | undefined;

/**
 * A table shaped exactly like one of serverless.yml's local stage (keys, attributes, indexes) under another
 * name: tests and benchmarks create their own tables from the definitions `stack up` provisions.
 */
export function stageTableDefinition(logicalId: string, tableName: string): CreateTableCommandInput {
  stageTables ??= localDefinitions().tables;
  const definition = stageTables[logicalId];
  if (!definition) throw new Error(`serverless.yml defines no table ${logicalId}`);
  return { ...definition, TableName: tableName };
}

/** Resolves the CloudFormation pseudo parameters a local stage can know; anything else is an error. */
export function substitutePseudoParameters(value: Json, service: string, stage: string): string {
  if (typeof value === 'string') return value;
  const template = value?.['Fn::Sub'];
  if (typeof template !== 'string') {
    throw new Error(`cannot resolve ${JSON.stringify(value)} locally (only plain strings and Fn::Sub)`);
  }
  const known: Record<string, string> = {
    'AWS::AccountId': LOCAL_ACCOUNT_ID,
    'AWS::Region': LOCAL_REGION,
    'AWS::StackName': `${service}-${stage}`,
    'AWS::Partition': 'aws',
  };
  return template.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
    const resolved = known[name];
    if (resolved === undefined) throw new Error(`cannot resolve \${${name}} in ${template} locally`);
    return resolved;
  });
}

function envNameOf(logicalId: string): string {
  return logicalId.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export function localDefinitions(config: Json = resolvedServerlessConfig()): LocalDefinitions {
  const service: string = config.service;
  const stage: string = config.provider?.stage ?? LOCAL_STAGE;
  const notes: string[] = [];

  const topics = topicSpecs(config, stage);

  const tables: Record<string, CreateTableCommandInput> = {};
  const tableEnv: Record<string, string> = {};
  let failedRecordsBucket: string | undefined;
  let auditDigestBucket: string | undefined;
  // `resources` may be a list of resource sets (osls merges them; print usually shows them merged already).
  const resourceSets: Json[] = Array.isArray(config.resources) ? config.resources : [config.resources ?? {}];
  const resources = Object.assign({}, ...resourceSets.map((set) => set?.Resources ?? {}));
  for (const [logicalId, resource] of Object.entries<Json>(resources)) {
    if (resource.Type === 'AWS::DynamoDB::Table') {
      const p = resource.Properties;
      const tableName = substitutePseudoParameters(p.TableName, service, stage);
      tables[logicalId] = {
        TableName: tableName,
        KeySchema: p.KeySchema,
        AttributeDefinitions: p.AttributeDefinitions as AttributeDefinition[],
        BillingMode: p.BillingMode ?? 'PAY_PER_REQUEST',
        ...(p.BillingMode === 'PROVISIONED' ? { ProvisionedThroughput: p.ProvisionedThroughput } : {}),
        ...(p.GlobalSecondaryIndexes ? { GlobalSecondaryIndexes: p.GlobalSecondaryIndexes } : {}),
        ...(p.LocalSecondaryIndexes ? { LocalSecondaryIndexes: p.LocalSecondaryIndexes } : {}),
      };
      tableEnv[envNameOf(logicalId)] = tableName;
      if (p.TimeToLiveSpecification?.Enabled) {
        notes.push(
          `${tableName}: TTL on "${p.TimeToLiveSpecification.AttributeName}" not set (dynalite has no TTL API)`,
        );
      }
    }
    if (logicalId === 'FailedRecordsBucket') {
      failedRecordsBucket = substitutePseudoParameters(resource.Properties.BucketName, service, stage);
    }
    if (logicalId === 'AuditDigestBucket') {
      auditDigestBucket = substitutePseudoParameters(resource.Properties.BucketName, service, stage);
    }
    if (resource.Type === 'AWS::S3::Bucket' && resource.Properties?.ObjectLockEnabled) {
      notes.push(
        `${logicalId}: Object Lock (compliance mode) not emulated by s3rver: objects can be replaced and deleted locally`,
      );
    }
  }
  if (!failedRecordsBucket) throw new Error('serverless.yml has no resources.Resources.FailedRecordsBucket');
  return { topics, tables, tableEnv, failedRecordsBucket, auditDigestBucket, notes };
}

function isAlreadyExists(error: unknown): boolean {
  // Nested errors (MultipleErrors) carry the broker's per-topic error; its text is the reliable part.
  const text = JSON.stringify(error, Object.getOwnPropertyNames(error ?? {})) + String(error);
  return /already exists|TOPIC_ALREADY_EXISTS/i.test(text);
}

/**
 * `stack up`'s topics, through the same plan as `npm run topics -- apply` (ops/topics.ts): missing topics are
 * created, and a config serverless.yml changed since an older stack created a topic (message.timestamp.type,
 * say) is set on it. What `topics apply` would refuse without a flag (shorter retention, more partitions) is
 * left alone and returned as a note naming the command.
 */
export async function provisionTopics(
  brokers: string,
  topics: TopicSpec[],
): Promise<{ created: string[]; notes: string[] }> {
  const admin = new Admin({ clientId: 'stack-provision', bootstrapBrokers: [brokers], timeout: 15_000 });
  const created: string[] = [];
  try {
    const plan = planTopics(topics, await readTopics(admin));
    for (const change of plan.changes) {
      if (change.kind !== 'create') continue;
      try {
        await applyPlan(admin, { changes: [change], unmanaged: [] });
        created.push(change.topic);
      } catch (error) {
        if (!isAlreadyExists(error))
          throw new Error(`creating topic ${change.topic} failed: ${String(error)}`);
      }
    }
    const configs = plan.changes.filter((change) => change.kind === 'set-config' && !change.guard);
    if (configs.length > 0) await applyPlan(admin, { changes: configs, unmanaged: [] });
    const left = plan.changes.filter((change) => change.kind !== 'create' && !configs.includes(change));
    const notes =
      left.length === 0
        ? []
        : [
            formatPlan(
              { changes: left, unmanaged: [] },
              'Topics not changed by stack up (npm run topics -- plan):',
            ),
          ];
    return { created, notes };
  } finally {
    await admin.close();
  }
}

/** Dummy keys for the stand-ins (s3rver accepts exactly these); real credentials from the env win. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const credentials = () => (process.env.AWS_ACCESS_KEY_ID ? undefined : LOCAL_CREDENTIALS);

export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: process.env.AWS_REGION ?? LOCAL_REGION,
    credentials: credentials(),
  });
}

/**
 * Waits until a new table is ACTIVE. dynalite answers CreateTable with the table still CREATING and flips it
 * a moment later; a write in between fails with ResourceNotFoundException (seen on a loaded CI machine).
 * The SDK's waitUntilTableExists polls every 20 s, far too slow for a local stand-in.
 */
export async function waitUntilTableActive(
  client: Pick<DynamoDBClient, 'send'>,
  tableName: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > deadline) {
      throw new Error(`DynamoDB table ${tableName} is still ${Table?.TableStatus} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export async function provisionTables(
  endpoint: string,
  tables: CreateTableCommandInput[],
): Promise<string[]> {
  const client = localDynamoClient(endpoint);
  const created: string[] = [];
  try {
    for (const table of tables) {
      try {
        await client.send(new CreateTableCommand(table));
        await waitUntilTableActive(client, table.TableName as string);
        created.push(table.TableName as string);
      } catch (error) {
        if (!(error instanceof ResourceInUseException)) throw error;
      }
    }
    return created;
  } finally {
    client.destroy();
  }
}

export async function provisionBucket(endpoint: string, bucket: string): Promise<boolean> {
  const client = new S3Client({
    endpoint,
    region: process.env.AWS_REGION ?? LOCAL_REGION,
    forcePathStyle: true,
    credentials: credentials(),
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    return true;
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return false;
    throw error;
  } finally {
    client.destroy();
  }
}

export interface ProvisionEndpoints {
  kafkaBrokers: string;
  databaseUrl: string;
  dynamodbEndpoint: string;
  s3Endpoint: string;
}

export interface ProvisionReport {
  topicsCreated: string[];
  tablesCreated: string[];
  bucketCreated: boolean;
  migrationsApplied: string[];
  notes: string[];
}

export async function provisionAll(
  endpoints: ProvisionEndpoints,
  definitions: LocalDefinitions = localDefinitions(),
): Promise<ProvisionReport> {
  const [topics, tablesCreated, bucketCreated, migrationsApplied] = await Promise.all([
    provisionTopics(endpoints.kafkaBrokers, definitions.topics),
    provisionTables(endpoints.dynamodbEndpoint, Object.values(definitions.tables)),
    provisionBucket(endpoints.s3Endpoint, definitions.failedRecordsBucket),
    runMigrations(endpoints.databaseUrl),
    definitions.auditDigestBucket
      ? provisionBucket(endpoints.s3Endpoint, definitions.auditDigestBucket)
      : Promise.resolve(false),
  ]);
  return {
    topicsCreated: topics.created,
    tablesCreated,
    bucketCreated,
    migrationsApplied,
    notes: [...definitions.notes, ...topics.notes],
  };
}
