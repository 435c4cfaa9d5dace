import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainerSettingsFromEnv } from '../../functions/incident-explanation/explainer-config';
import { DEFAULT_EXPLAIN_CONCURRENCY } from '../../functions/incident-explanation/incident-batch';
import { SNS_BATCH } from '../../functions/notifications/aws-channels';
import { DEFAULT_CHANNEL_CONCURRENCY } from '../../functions/notifications/channel-config';
import { codeOf, consumers, roleLogicalId } from '../../local/consumers';
import { AT_TAG, STATUS_TAG, VIA_TAG } from '../../ops/redrive/redrive';
import { DEFAULT_RETRY_MARGIN_MS } from '../../shared/msk/handler';
import {
  AWS_STAGE_PARAMS,
  type CloudFormationResource,
  type CloudFormationTemplate,
  type PackageResult,
  packageStage,
  projectRoot,
  removePackage,
} from './package-stage';

// The packaged CloudFormation template is the deployment contract (no AWS account here): every stage is
// packaged offline, in parallel, into private copies of the service, and the templates are checked.

// Every function of the consumers map (serverless/consumers.cjs), with the logical ids osls gives its resources.
const FUNCTIONS = Object.fromEntries(
  Object.keys(consumers).map((fn) => [
    fn,
    { id: fn.charAt(0).toUpperCase() + fn.slice(1).replaceAll('-', 'Dash'), role: roleLogicalId(fn) },
  ]),
);
type FunctionKey = string;
const FUNCTION_KEYS = Object.keys(FUNCTIONS);
const idOf = (fn: FunctionKey) => FUNCTIONS[fn]!.id;
const roleOf = (fn: FunctionKey) => FUNCTIONS[fn]!.role;

// Which tables each function may touch: nothing else, and nobody else's. Written out here, not read from the
// consumers map's grants, so that a function given a table is a deliberate second edit (none: no table).
const TABLES: Record<FunctionKey, string[]> = {
  'incident-explanation': ['IncidentsTable', 'IncidentIdempotencyTable'],
  'audit-append': [],
  'audit-digest': [],
  'demand-prediction-update': ['DemandTable'],
  billing: ['BillingTable'],
  notifications: ['NotificationsTable'],
  'oncall-paging': ['NotificationsTable'],
};
const IDEMPOTENCY_TABLES = ['IncidentIdempotencyTable'];
const READ_MODEL_TABLES = ['IncidentsTable', 'DemandTable', 'BillingTable', 'NotificationsTable'];

// The only actions allowed on Resource "*": AWS supports no resource-level permissions for them.
const WILDCARD_ACTIONS = new Set([
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DeleteNetworkInterface',
  'ec2:DescribeVpcs',
  'ec2:DescribeSubnets',
  'ec2:DescribeSecurityGroups',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
]);

// CloudFormation JSON is asserted on field by field; a loose type keeps those assertions readable.
// biome-ignore lint/suspicious/noExplicitAny: untyped template JSON under test
type Loose = any;

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

function resourcesOfType(template: CloudFormationTemplate, type: string): [string, CloudFormationResource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

function roleStatements(template: CloudFormationTemplate, roleId: string): Statement[] {
  const role = template.Resources[roleId];
  expect(role?.Type, `${roleId} exists`).toBe('AWS::IAM::Role');
  const policies = role?.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[];
  return policies.flatMap((policy) => policy.PolicyDocument.Statement);
}

/** Every `Fn::GetAtt` / `Ref` target a value mentions, recursively. */
function referencedLogicalIds(value: unknown): Set<string> {
  const ids = new Set<string>();
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (typeof record.Ref === 'string') ids.add(record.Ref);
      const getAtt = record['Fn::GetAtt'];
      if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') ids.add(getAtt[0]);
      Object.values(record).forEach(walk);
    }
  };
  walk(value);
  return ids;
}

/** ESMs per function: one per topic it consumes (its consumers entry). */
const ESM_COUNTS: Record<FunctionKey, number> = Object.fromEntries(
  Object.entries(consumers).map(([fn, consumer]) => [fn, consumer.topics?.length ?? 0]),
);
const ESM_TOTAL = Object.values(ESM_COUNTS).reduce((sum, count) => sum + count, 0);

/** The functions fed by ESMs (audit-digest runs on a schedule and decodes nothing). */
const ESM_FUNCTION_KEYS = FUNCTION_KEYS.filter((fn) => ESM_COUNTS[fn]! > 0);

function esmsOf(template: CloudFormationTemplate, fn: FunctionKey) {
  return resourcesOfType(template, 'AWS::Lambda::EventSourceMapping').filter(([id]) =>
    id.startsWith(`${idOf(fn)}EventSourceMappingMSK`),
  );
}

function environmentOf(template: CloudFormationTemplate, fn: FunctionKey): Record<string, unknown> {
  const lambda = template.Resources[`${idOf(fn)}LambdaFunction`];
  return (lambda!.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

const CREATE: Record<string, string> = { ...AWS_STAGE_PARAMS, auroraMode: 'create' };
const IMPORTED_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit-db-AbCdEf';
const IMPORTED_DIGEST_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit-digest-db-AbCdEf';
const IMPORTED_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/0f0f0f0f-1111-2222-3333-444444444444';
const { vpcId: _unusedWithImport, ...IMPORT_BASE } = AWS_STAGE_PARAMS;
// Staging also decodes with the Glue schema registry (prod keeps the committed catalog).
const GLUE_REGISTRY = 'mobility-events';
const IMPORT: Record<string, string> = {
  ...IMPORT_BASE,
  auroraMode: 'import',
  auroraSecretArn: IMPORTED_SECRET,
  auroraDigestSecretArn: IMPORTED_DIGEST_SECRET,
  auroraSecretKmsKeyArn: IMPORTED_KEY,
  schemaRegistry: 'glue',
  glueRegistryName: GLUE_REGISTRY,
};
const {
  auroraSecretArn: _omitted,
  auroraDigestSecretArn: _omittedToo,
  glueRegistryName: _alsoOmitted,
  ...withoutSecret
} = IMPORT;

let local: PackageResult;
let prod: PackageResult;
let imported: PackageResult;
let missingAll: PackageResult;
let missingImport: PackageResult;
let invalid: PackageResult;

beforeAll(async () => {
  [local, prod, imported, missingAll, missingImport, invalid] = await Promise.all([
    packageStage({ stage: 'local' }),
    packageStage({ stage: 'prod', params: CREATE }),
    packageStage({ stage: 'staging', params: IMPORT }),
    packageStage({ stage: 'prod' }),
    packageStage({ stage: 'staging', params: withoutSecret }),
    packageStage({
      stage: 'prod',
      params: {
        ...CREATE,
        subnetIds: 'subnet-1,not-a-subnet',
        auroraMode: 'copy',
        schemaRegistry: 'confluent',
      },
    }),
  ]);
  for (const result of [local, prod, imported]) {
    if (!result.ok) throw new Error(`serverless package failed:\n${result.output}`);
  }
}, 900_000);

afterAll(async () => {
  await Promise.all(
    [local, prod, imported, missingAll, missingImport, invalid].filter(Boolean).map(removePackage),
  );
});

const packaged = () =>
  [
    ['local', local],
    ['prod (Aurora created)', prod],
    ['staging (Aurora imported)', imported],
  ] as const;

describe('every packaged stage', () => {
  it('gives every ESM a unique consumer group, a batch size, provisioned pollers and full error handling', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      const esms = resourcesOfType(template, 'AWS::Lambda::EventSourceMapping');
      expect(ESM_TOTAL).toBeGreaterThanOrEqual(19);
      expect(esms.length, stage).toBe(ESM_TOTAL);
      const groups = new Set<string>();
      for (const [id, esm] of esms) {
        const p = esm.Properties as Record<string, Loose>;
        const group = p.AmazonManagedKafkaEventSourceConfig?.ConsumerGroupId as string;
        expect(group, `${stage} ${id} consumer group`).toMatch(/^mobility-events-[a-z]+-[a-z-]+$/);
        expect(groups.has(group), `${stage} ${id} duplicate group ${group}`).toBe(false);
        groups.add(group);
        expect(p.BatchSize, `${stage} ${id}`).toBeGreaterThan(0);
        // Explicitly 0: an absent window is 500 ms for Kafka (osls drops a 0; the extension writes it).
        expect(p.MaximumBatchingWindowInSeconds, `${stage} ${id}`).toBe(0);
        expect(p.ProvisionedPollerConfig?.MinimumPollers, `${stage} ${id}`).toBeGreaterThanOrEqual(1);
        expect(p.ProvisionedPollerConfig?.MaximumPollers, `${stage} ${id}`).toBeLessThanOrEqual(6);
        expect(p.ProvisionedPollerConfig?.PollerGroupName, `${stage} ${id}`).toBe(
          `mobility-events-${stage.split(' ')[0]}`,
        );
        expect(p.FunctionResponseTypes, `${stage} ${id}`).toEqual(['ReportBatchItemFailures']);
        expect(p.BisectBatchOnFunctionError, `${stage} ${id}`).toBe(true);
        expect(p.DestinationConfig, `${stage} ${id}`).toEqual({
          OnFailure: { Destination: { 'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'] } },
        });
        expect(p.StartingPosition, `${stage} ${id}`).toBe('TRIM_HORIZON');
      }
      // custom.esm: the audit log retries long before giving up; the others 3 times within 6 hours.
      for (const [fn, count] of Object.entries(ESM_COUNTS) as Array<[FunctionKey, number]>) {
        const own = esmsOf(template, fn);
        expect(own, `${stage} ${fn}`).toHaveLength(count);
        const [retries, age] = fn === 'audit-append' ? [10, 604_800] : [3, 21_600];
        for (const [id, esm] of own) {
          expect(esm.Properties.MaximumRetryAttempts, `${stage} ${id}`).toBe(retries);
          expect(esm.Properties.MaximumRecordAgeInSeconds, `${stage} ${id}`).toBe(age);
        }
      }
    }
  });

  it('batches for throughput where it is cheap: audit-append 500, notifications, the page and resolutions 200, incidents 50 (the model bounds them)', () => {
    const template = prod.template!;
    for (const [id, esm] of esmsOf(template, 'audit-append')) {
      expect(esm.Properties.BatchSize, id).toBe(500);
    }
    // incident-explanation: 50 incidents (the model's waves bound them, next test); resolutions, which never ask
    // the model, 200.
    const incidentEsms = esmsOf(template, 'incident-explanation');
    expect(incidentEsms.map(([, esm]) => [esm.Properties.Topics, esm.Properties.BatchSize]).sort()).toEqual([
      [['genai.hitl.resolved'], 200],
      [['incident.detected'], 50],
    ]);
    // A batch costs notifications the same round trips whatever its size: 50 capped a busy run's throughput.
    for (const fn of ['notifications', 'oncall-paging']) {
      const own = esmsOf(template, fn);
      expect(own.length, fn).toBeGreaterThan(0);
      for (const [id, esm] of own) expect(esm.Properties.BatchSize, id).toBe(200);
    }
  });

  it("sends a full batch of notifications' code in one round of channel calls, as a send attempt's bound assumes", () => {
    // DEFAULT_ATTEMPT_TIMEOUT_MS (no attempt starts that could outlast the lease) is two rounds of calls: a refused
    // call, then its messages alone. A partition's messages of one kind (one per record at most) fit in one round
    // only while the batch size is within SNS_BATCH x CHANNEL_CONCURRENCY; beyond it an attempt could end after the
    // lease, and another invocation holding the lapsed lease could send the same notification.
    const template = prod.template!;
    for (const fn of ['notifications', 'oncall-paging'] as const) {
      const configured = environmentOf(template, fn).CHANNEL_CONCURRENCY;
      if (configured !== undefined) expect(typeof configured, `${fn} CHANNEL_CONCURRENCY`).toBe('string');
      const concurrency = Number(configured ?? DEFAULT_CHANNEL_CONCURRENCY);
      for (const [id, esm] of esmsOf(template, fn)) {
        expect(esm.Properties.BatchSize as number, id).toBeLessThanOrEqual(SNS_BATCH * concurrency);
      }
    }
  });

  it("leaves a full batch of incident-explanation's model calls at most half of the invocation", () => {
    // A batch may hold one partition's records only: ceil(size / explainConcurrency) waves of model calls, each
    // bounded by BEDROCK_TIMEOUT_MS. Model time can be lost in the invocation an outage begins in and in the one
    // it ends in (the read before the model fails in between), so with at most half of the 105 s an invocation
    // rides out, an outage is still ridden out for >= 2 x 52.5 + 2 x 105 s > 5 minutes (next test).
    const template = prod.template!;
    const lambda = template.Resources[`${idOf('incident-explanation')}LambdaFunction`]!;
    const variables =
      (lambda.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
    for (const name of ['BEDROCK_TIMEOUT_MS', 'EXPLAIN_CONCURRENCY']) {
      const value = variables[name];
      // A value the test cannot read (an intrinsic function) must not fall back to the default unnoticed.
      if (value !== undefined) expect(typeof value, name).toBe('string');
    }
    const env = variables as Record<string, string>;
    const modelMs = explainerSettingsFromEnv(env).timeoutMs;
    const concurrency = Number(env.EXPLAIN_CONCURRENCY ?? DEFAULT_EXPLAIN_CONCURRENCY);
    const budgetMs = ((lambda.Properties.Timeout as number) * 1000 - DEFAULT_RETRY_MARGIN_MS) / 2;
    // Only incident.detected asks the model; resolutions (genai.hitl.resolved) never do.
    const explained = esmsOf(template, 'incident-explanation').filter(([, esm]) =>
      (esm.Properties.Topics as string[]).includes('incident.detected'),
    );
    expect(explained).toHaveLength(1);
    for (const [id, esm] of explained) {
      const waves = Math.ceil((esm.Properties.BatchSize as number) / concurrency);
      expect(waves * modelMs, `${id}: ${waves} waves of ${modelMs} ms`).toBeLessThanOrEqual(budgetMs);
    }
  });

  it('lets every ESM ride out a 5-minute store outage before a valid record can reach the bucket', () => {
    // The engine retries an outage until DEFAULT_RETRY_MARGIN_MS before the timeout (less one backoff of at
    // most 5 s), then fails the invocation: each failed invocation of an outage lasts at least that long, and a
    // record reaches the bucket only after MaximumRetryAttempts + 1 of them (README "Failures").
    const template = prod.template!;
    for (const fn of FUNCTION_KEYS) {
      const timeout = template.Resources[`${idOf(fn)}LambdaFunction`]!.Properties.Timeout as number;
      const perInvocation = timeout - DEFAULT_RETRY_MARGIN_MS / 1000 - 5;
      for (const [id, esm] of esmsOf(template, fn)) {
        const attempts = (esm.Properties.MaximumRetryAttempts as number) + 1;
        expect(attempts * perInvocation, `${id}: ${attempts} x ${perInvocation} s`).toBeGreaterThanOrEqual(
          300,
        );
        expect(esm.Properties.MaximumRecordAgeInSeconds as number, id).toBeGreaterThan(attempts * timeout);
      }
    }
  });

  it('gives each function its own role and creates no shared default role', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      expect(template.Resources.IamRoleLambdaExecution, stage).toBeUndefined();
      expect(
        resourcesOfType(template, 'AWS::IAM::Role')
          .map(([id]) => id)
          .sort(),
        stage,
      ).toEqual(FUNCTION_KEYS.map((fn) => roleOf(fn)).sort());
      for (const fn of FUNCTION_KEYS) {
        const lambda = template.Resources[`${idOf(fn)}LambdaFunction`]!;
        expect(lambda.Properties.Role, `${stage} ${fn}`).toEqual({
          'Fn::GetAtt': [roleOf(fn), 'Arn'],
        });
        for (const [id, esm] of esmsOf(template, fn)) {
          expect(asArray(esm.DependsOn ?? []), `${stage} ${id}`).toContain(roleOf(fn));
        }
      }
    }
  });

  it('allows wildcard resources only for actions without resource-level permissions, and no wildcard actions', () => {
    for (const [stage, result] of packaged()) {
      for (const fn of FUNCTION_KEYS) {
        for (const statement of roleStatements(result.template!, roleOf(fn))) {
          expect(statement.Effect).toBe('Allow');
          for (const action of asArray(statement.Action)) {
            expect(action, `${stage} ${fn} ${statement.Sid}`).not.toMatch(/\*/);
          }
          const resources = asArray(statement.Resource);
          if (resources.includes('*')) {
            expect(resources, `${stage} ${fn} ${statement.Sid}`).toEqual(['*']);
            for (const action of asArray(statement.Action)) {
              expect(WILDCARD_ACTIONS.has(action), `${stage} ${fn} ${action} on *`).toBe(true);
            }
          }
          for (const resource of resources) {
            if (typeof resource !== 'string' || resource === '*') continue;
            // Kafka ARNs name the exact cluster, topic or group: no wildcard in them.
            expect(resource, `${stage} ${fn} ${statement.Sid}`).not.toMatch(/\*/);
          }
        }
      }
    }
  });

  it('grants each function only its own tables, with the actions it uses', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      const tableIds = resourcesOfType(template, 'AWS::DynamoDB::Table').map(([id]) => id);
      for (const fn of FUNCTION_KEYS) {
        const statements = roleStatements(template, roleOf(fn));
        const tables = [...referencedLogicalIds(statements)].filter((id) => tableIds.includes(id)).sort();
        expect(tables, `${stage} ${fn}`).toEqual([...(TABLES[fn] ?? [])].sort());
        const dynamoActions = statements
          .flatMap((s) => asArray(s.Action))
          .filter((a) => a.startsWith('dynamodb:'));
        // billing writes immutable facts in batches (functions/billing/bill.ts); notifications writes its log
        // entries in batches under its partition lease (functions/notifications); incident-explanation writes
        // a batch's views, each with its outcome, and reviews in batches (functions/incident-explanation).
        const forbidden = ['dynamodb:Scan', 'dynamodb:DeleteTable'];
        if (!['billing', 'notifications', 'oncall-paging', 'incident-explanation'].includes(fn))
          forbidden.push('dynamodb:BatchWriteItem');
        for (const action of forbidden) expect(dynamoActions, `${stage} ${fn}`).not.toContain(action);
        // The outcomes earlier releases stored: read, never written (incident-explanation stores its outcomes
        // with their views now).
        const onIdempotencyTables = statements.filter((s) =>
          [...referencedLogicalIds(s.Resource)].some((id) => IDEMPOTENCY_TABLES.includes(id)),
        );
        for (const statement of onIdempotencyTables) {
          expect([...asArray(statement.Action)].sort(), `${stage} ${fn}`).toEqual(['dynamodb:BatchGetItem']);
        }
        if (fn === 'incident-explanation') expect(onIdempotencyTables, stage).not.toHaveLength(0);
      }
    }
  });

  it('lets the ESM of each function read only its topics and use only its consumer groups', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      const kafka = roleStatements(template, roleOf('audit-digest')).flatMap((s) => asArray(s.Action));
      expect(
        kafka.filter((a) => a.startsWith('kafka')),
        stage,
      ).toEqual([]);
      for (const fn of ESM_FUNCTION_KEYS) {
        const esms = esmsOf(template, fn).map(([, esm]) => esm.Properties as Record<string, Loose>);
        const cluster = esms[0]!.EventSourceArn as string;
        const topicPrefix = cluster.replace(':cluster/', ':topic/');
        const groupPrefix = cluster.replace(':cluster/', ':group/');
        const statements = roleStatements(template, roleOf(fn));
        const bySid = (sid: string) => statements.find((s) => s.Sid === sid)!;
        expect(bySid('EventSourceMappingCluster').Resource, `${stage} ${fn}`).toEqual([cluster]);
        expect(bySid('EventSourceMappingCluster').Action).toEqual(
          expect.arrayContaining([
            'kafka:DescribeCluster',
            'kafka:GetBootstrapBrokers',
            'kafka-cluster:Connect',
            'kafka-cluster:DescribeClusterDynamicConfiguration',
          ]),
        );
        expect([...asArray(bySid('EventSourceMappingReadTopics').Resource as string[])].sort()).toEqual(
          [...new Set(esms.map((p) => `${topicPrefix}/${p.Topics[0]}`))].sort(),
        );
        expect(bySid('EventSourceMappingReadTopics').Action).toEqual([
          'kafka-cluster:DescribeTopic',
          'kafka-cluster:ReadData',
        ]);
        expect([...asArray(bySid('EventSourceMappingConsumerGroups').Resource as string[])].sort()).toEqual(
          esms.map((p) => `${groupPrefix}/${p.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId}`).sort(),
        );
        expect(bySid('EventSourceMappingConsumerGroups').Action).toEqual([
          'kafka-cluster:DescribeGroup',
          'kafka-cluster:AlterGroup',
        ]);
        // Produce rights: only incident-explanation, only on the GenAI topics it writes.
        const writes = statements.filter((s) => asArray(s.Action).includes('kafka-cluster:WriteData'));
        if (fn === 'incident-explanation') {
          expect(writes.flatMap((s) => asArray(s.Resource as string[])).sort()).toEqual(
            ['genai.hitl.requested', 'genai.request', 'genai.response'].map((t) => `${topicPrefix}/${t}`),
          );
        } else {
          expect(writes, `${stage} ${fn}`).toEqual([]);
        }
      }
    }
  });

  it('lets every role write failed records to the bucket of this account only, and log to its own group', () => {
    for (const [stage, result] of packaged()) {
      for (const fn of FUNCTION_KEYS) {
        const statements = roleStatements(result.template!, roleOf(fn));
        const s3 = statements.filter((s) => asArray(s.Action).some((a) => a.startsWith('s3:')));
        // audit-digest has no ESM: it writes the digest bucket only (checked with the digests below).
        const failedRecordStatements = s3.filter((s) =>
          referencedLogicalIds(s.Resource).has('FailedRecordsBucket'),
        );
        expect(failedRecordStatements.flatMap((s) => asArray(s.Action)).sort(), `${stage} ${fn}`).toEqual(
          fn === 'audit-digest' ? [] : ['s3:ListBucket', 's3:PutObject'],
        );
        for (const statement of failedRecordStatements) {
          expect(statement.Condition, `${stage} ${fn}`).toEqual({
            StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } },
          });
          expect([...referencedLogicalIds(statement.Resource)]).toEqual(['FailedRecordsBucket']);
        }
        expect(s3.length - failedRecordStatements.length, `${stage} ${fn}`).toBe(
          fn === 'audit-digest' ? 2 : 0,
        );
        const logs = statements.find((s) => s.Sid === 'OwnLogGroup')!;
        expect(JSON.stringify(logs.Resource)).toContain(`log-group:/aws/lambda/mobility-events-`);
        expect(JSON.stringify(logs.Resource)).toContain(`-${fn}:*`);
      }
    }
  });

  it('keeps table keys, on-demand billing, point-in-time recovery, TTL on idempotency tables, deletion protection in AWS', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      for (const id of [...READ_MODEL_TABLES, ...IDEMPOTENCY_TABLES]) {
        const table = template.Resources[id]!.Properties as Record<string, Loose>;
        expect(table.BillingMode, `${stage} ${id}`).toBe('PAY_PER_REQUEST');
        // The local platform and LocalStack recreate their tables; a deployed stage must not lose them.
        expect(table.DeletionProtectionEnabled, `${stage} ${id}`).toBe(stage !== 'local');
        expect(table.PointInTimeRecoverySpecification, `${stage} ${id}`).toEqual({
          PointInTimeRecoveryEnabled: true,
        });
        if (IDEMPOTENCY_TABLES.includes(id)) {
          expect(table.KeySchema).toEqual([{ AttributeName: 'id', KeyType: 'HASH' }]);
          expect(table.TimeToLiveSpecification).toEqual({ AttributeName: 'expiration', Enabled: true });
        } else {
          expect(table.KeySchema).toEqual([
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ]);
        }
      }
    }
  });

  it('protects the failed-records bucket: encrypted, private, TLS only, expiring, retained', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      const bucket = template.Resources.FailedRecordsBucket!;
      const p = bucket.Properties as Record<string, Loose>;
      expect(bucket.DeletionPolicy, stage).toBe('Retain');
      expect(
        p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm,
      ).toBe('AES256');
      expect(p.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(p.LifecycleConfiguration.Rules[0]).toMatchObject({ Status: 'Enabled', ExpirationInDays: 90 });
      const policy = template.Resources.FailedRecordsBucketPolicy!.Properties as Record<string, Loose>;
      expect(policy.Bucket).toEqual({ Ref: 'FailedRecordsBucket' });
      const denyPlainHttp = (policy.PolicyDocument.Statement as Statement[]).find(
        (s) => s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      );
      expect(denyPlainHttp).toMatchObject({ Effect: 'Deny', Principal: '*', Action: 's3:*' });
      expect(asArray(denyPlainHttp!.Resource)).toHaveLength(2);
    }
  });

  it('alarms on OffsetLag and record age per ESM, errors and destination failures per function, and failed-record writes', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      const alarms = resourcesOfType(template, 'AWS::CloudWatch::Alarm').map(
        ([, a]) => a.Properties as Loose,
      );
      for (const [esmId, esm] of resourcesOfType(template, 'AWS::Lambda::EventSourceMapping')) {
        const lag = alarms.filter(
          (a) => a.MetricName === 'OffsetLag' && JSON.stringify(a.Dimensions).includes(`"Ref":"${esmId}"`),
        );
        expect(lag, `${stage} ${esmId}`).toHaveLength(1);
        expect(lag[0].Namespace).toBe('AWS/Lambda');
        expect(lag[0].Dimensions).toEqual([
          { Name: 'FunctionName', Value: { Ref: (esm.Properties.FunctionName as Loose)['Fn::GetAtt'][0] } },
          { Name: 'EventSourceMappingUUID', Value: { Ref: esmId } },
        ]);
      }
      // Lag as time, per ESM: 10 s on the high-priority flows (incident alerts, HITL), looser elsewhere.
      const highPriority = [
        'incident-explanation incident.detected',
        'oncall-paging incident.detected',
        'notifications genai.hitl.requested',
      ];
      const ages = alarms.filter((a) => a.MetricName === 'OldestRecordAgeMs');
      const esms = resourcesOfType(template, 'AWS::Lambda::EventSourceMapping');
      expect(ages).toHaveLength(esms.length);
      for (const [esmId, esm] of esms) {
        const functionKey = FUNCTION_KEYS.find(
          (fn) => `${idOf(fn)}LambdaFunction` === (esm.Properties.FunctionName as Loose)['Fn::GetAtt'][0],
        ) as string;
        const topic = (esm.Properties.Topics as string[])[0] as string;
        const age = ages.filter(
          (a) =>
            JSON.stringify(a.Dimensions) ===
            JSON.stringify([
              { Name: 'service', Value: functionKey },
              { Name: 'topic', Value: topic },
            ]),
        );
        expect(age, `${stage} ${esmId}`).toHaveLength(1);
        expect(age[0]).toMatchObject({ Namespace: 'mobility-events', Statistic: 'Maximum', Period: 60 });
        const urgent = highPriority.includes(`${functionKey} ${topic}`);
        expect(age[0].Threshold, `${functionKey} ${topic}`).toBe(
          urgent
            ? 10_000
            : ['incident-explanation', 'notifications', 'oncall-paging'].includes(functionKey)
              ? 60_000
              : 300_000,
        );
        expect(age[0].EvaluationPeriods).toBe(urgent ? 2 : 5);
      }
      for (const fn of FUNCTION_KEYS) {
        // Only a function with ESMs has an on-failure destination.
        for (const metric of fn === 'audit-digest' ? ['Errors'] : ['Errors', 'DestinationDeliveryFailures']) {
          const matching = alarms.filter(
            (a) =>
              a.MetricName === metric &&
              JSON.stringify(a.Dimensions) ===
                JSON.stringify([{ Name: 'FunctionName', Value: { Ref: `${idOf(fn)}LambdaFunction` } }]),
          );
          expect(matching, `${stage} ${fn} ${metric}`).toHaveLength(1);
        }
      }
      const writes = alarms.filter((a) => a.Namespace === 'AWS/S3' && a.MetricName === 'PutRequests');
      expect(writes).toHaveLength(1);
      expect(writes[0].Dimensions).toContainEqual({ Name: 'FilterId', Value: 'failed-record-writes' });
      expect((template.Resources.FailedRecordsBucket!.Properties as Loose).MetricsConfigurations).toEqual([
        { Id: 'failed-record-writes' },
      ]);
      for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([{ Ref: 'AlarmTopic' }]);
    }
    const subscription = resourcesOfType(prod.template!, 'AWS::SNS::Subscription');
    expect(subscription.map(([, s]) => s.Properties)).toEqual([
      { TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: 'ops@example.com' },
    ]);
    expect(resourcesOfType(local.template!, 'AWS::SNS::Subscription')).toEqual([]);
  });

  it('sets Powertools service names, log level and active tracing on every function', () => {
    for (const [stage, result] of packaged()) {
      for (const fn of FUNCTION_KEYS) {
        const lambda = result.template!.Resources[`${idOf(fn)}LambdaFunction`]!;
        expect(lambda.Properties.TracingConfig, `${stage} ${fn}`).toEqual({ Mode: 'Active' });
        const env = environmentOf(result.template!, fn);
        expect(env.POWERTOOLS_SERVICE_NAME, `${stage} ${fn}`).toBe(fn);
        expect(env.POWERTOOLS_LOG_LEVEL).toBe('INFO');
        expect(env.STAGE).toBe(stage.split(' ')[0]);
      }
      // Plain names, the same string as the table's TableName: `serverless invoke local` cannot resolve a Ref.
      const template = result.template!;
      const tableName = (id: string) => template.Resources[id]!.Properties.TableName as string;
      const expected: Record<string, Record<string, string>> = {
        'incident-explanation': {
          INCIDENTS_TABLE: 'IncidentsTable',
          IDEMPOTENCY_TABLE: 'IncidentIdempotencyTable',
        },
        'demand-prediction-update': { DEMAND_TABLE: 'DemandTable' },
        billing: { BILLING_TABLE: 'BillingTable' },
        notifications: { NOTIFICATIONS_TABLE: 'NotificationsTable' },
        'oncall-paging': { NOTIFICATIONS_TABLE: 'NotificationsTable' },
      };
      for (const [fn, tables] of Object.entries(expected)) {
        for (const [variable, id] of Object.entries(tables)) {
          expect(tableName(id), `${stage} ${id}`).toMatch(
            new RegExp(`^mobility-events-${stage.split(' ')[0]}-[a-z-]+$`),
          );
          expect(environmentOf(template, fn as FunctionKey)[variable], `${stage} ${fn} ${variable}`).toBe(
            tableName(id),
          );
        }
      }
    }
  });
});

describe('the local stage', () => {
  it('needs no AWS parameter: no VPC, rules explainer, local database, outbox channel', () => {
    const template = local.template!;
    for (const fn of FUNCTION_KEYS) {
      expect(template.Resources[`${idOf(fn)}LambdaFunction`]!.Properties.VpcConfig, fn).toBeUndefined();
    }
    expect(environmentOf(template, 'incident-explanation')).toMatchObject({
      BEDROCK_MODEL_ID: '',
      KAFKA_AUTH: 'none',
    });
    expect(environmentOf(template, 'audit-append')).toMatchObject({ DATABASE_SECRET_ARN: '' });
    expect(environmentOf(template, 'audit-append').DATABASE_URL).toMatch(/^postgres:\/\//);
    expect(environmentOf(template, 'notifications')).toMatchObject({
      CUSTOMER_TOPIC_ARN: '',
      EMAIL_FROM: '',
    });
    expect(environmentOf(template, 'oncall-paging')).toMatchObject({ ONCALL_TOPIC_ARN: '' });
    expect(template.Conditions?.AuroraCreate).toEqual({ 'Fn::Equals': ['none', 'create'] });
    const names = roleStatements(template, roleOf('audit-append')).map((s) => s.Sid);
    expect(names).not.toContain('DatabaseSecret');
    expect(roleStatements(template, roleOf('incident-explanation')).map((s) => s.Sid)).not.toContain(
      'BedrockInvoke',
    );
  });
});

describe('an AWS stage', () => {
  it('puts the MSK producer and the Aurora client in the VPC, and nothing else', () => {
    const template = prod.template!;
    const vpcOf = (fn: FunctionKey) => template.Resources[`${idOf(fn)}LambdaFunction`]!.Properties.VpcConfig;
    expect(vpcOf('incident-explanation')).toEqual({
      SubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
      SecurityGroupIds: ['sg-0123456789abcdef0'],
    });
    expect(vpcOf('audit-append')).toEqual({
      SubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
      SecurityGroupIds: ['sg-0123456789abcdef0', { 'Fn::GetAtt': ['AuroraClientSecurityGroup', 'GroupId'] }],
    });
    expect(vpcOf('audit-digest')).toEqual(vpcOf('audit-append'));
    for (const fn of ['demand-prediction-update', 'billing', 'notifications', 'oncall-paging'] as const) {
      expect(vpcOf(fn), fn).toBeUndefined();
    }
    expect(environmentOf(template, 'incident-explanation')).toMatchObject({
      BEDROCK_MODEL_ID: AWS_STAGE_PARAMS.bedrockModelId,
      KAFKA_AUTH: 'iam',
      KAFKA_BROKERS: AWS_STAGE_PARAMS.kafkaBrokers,
    });
    expect(environmentOf(template, 'notifications')).toMatchObject({
      CUSTOMER_TOPIC_ARN: AWS_STAGE_PARAMS.notificationsPushTopicArn,
      EMAIL_FROM: AWS_STAGE_PARAMS.notificationsEmailFrom,
      REVIEWERS_EMAIL: AWS_STAGE_PARAMS.notificationsReviewersEmail,
    });
    // Kept for the upgrade window (serverless/consumers.cjs).
    expect(environmentOf(template, 'notifications').ONCALL_TOPIC_ARN).toBe(
      AWS_STAGE_PARAMS.notificationsPagerTopicArn,
    );
    expect(environmentOf(template, 'oncall-paging')).toMatchObject({
      ONCALL_TOPIC_ARN: AWS_STAGE_PARAMS.notificationsPagerTopicArn,
    });
    for (const name of ['CUSTOMER_TOPIC_ARN', 'EMAIL_FROM', 'REVIEWERS_EMAIL'])
      expect(environmentOf(template, 'oncall-paging')[name], name).toBeUndefined();
  });

  it('gives Bedrock to incident-explanation only, through the inference profile and its models', () => {
    const template = prod.template!;
    for (const fn of FUNCTION_KEYS) {
      const bedrock = roleStatements(template, roleOf(fn)).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('bedrock:')),
      );
      if (fn !== 'incident-explanation') {
        expect(bedrock, fn).toEqual([]);
        continue;
      }
      expect(bedrock).toHaveLength(1);
      expect(bedrock[0]!.Action).toEqual(['bedrock:InvokeModel']);
      expect(JSON.stringify(bedrock[0]!.Resource)).toContain(
        'inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0',
      );
    }
  });

  it('lets oncall-paging page and nothing else, notifications page (upgrade), push and mail, nobody else', () => {
    const template = prod.template!;
    for (const fn of FUNCTION_KEYS) {
      const statements = roleStatements(template, roleOf(fn));
      const sends = statements.filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('sns:') || a.startsWith('ses:')),
      );
      if (fn === 'oncall-paging') {
        expect(sends.map((s) => [s.Sid, s.Action, s.Resource])).toEqual([
          ['NotificationTopics', ['sns:Publish'], [AWS_STAGE_PARAMS.notificationsPagerTopicArn]],
        ]);
      } else if (fn === 'notifications') {
        expect(sends.map((s) => s.Sid)).toEqual(['NotificationTopics', 'NotificationEmail']);
        expect(sends[0]!.Resource).toEqual([
          AWS_STAGE_PARAMS.notificationsPagerTopicArn,
          AWS_STAGE_PARAMS.notificationsPushTopicArn,
        ]);
        // SendBulkEmail requires an identity and a template resource and has no ses:FromAddress key (a
        // condition on it would deny every call): the sender's identity (its domain by default) bounds it.
        const domain = String(AWS_STAGE_PARAMS.notificationsEmailFrom).split('@')[1];
        expect(sends[1]!.Action).toEqual(['ses:SendBulkEmail']);
        expect(sends[1]!.Resource).toEqual([
          { 'Fn::Sub': `arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:identity/${domain}` },
          { 'Fn::Sub': `arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:template/*` },
        ]);
        expect(sends[1]!.Condition).toBeUndefined();
      } else expect(sends, fn).toEqual([]);
    }
  });

  it('creates Aurora Serverless v2 with its secret when auroraMode=create, readable by audit-append only', () => {
    const template = prod.template!;
    expect(template.Conditions?.AuroraCreate).toEqual({ 'Fn::Equals': ['create', 'create'] });
    const cluster = template.Resources.AuroraCluster!;
    expect(cluster.Condition).toBe('AuroraCreate');
    expect(cluster.DeletionPolicy).toBe('Snapshot');
    expect(cluster.Properties).toMatchObject({
      Engine: 'aurora-postgresql',
      StorageEncrypted: true,
      DeletionProtection: true,
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
    });
    expect(template.Resources.AuroraWriterInstance!.Properties.DBInstanceClass).toBe('db.serverless');
    expect(template.Resources.AuroraClusterParameterGroup!.Properties).toMatchObject({
      Family: 'aurora-postgresql16',
      Parameters: { 'rds.force_ssl': '1' },
    });
    expect(template.Resources.AuroraSecretAttachment!.Properties).toMatchObject({
      SecretId: { Ref: 'AuroraSecret' },
      TargetId: { Ref: 'AuroraCluster' },
    });
    const ingress = (template.Resources.AuroraSecurityGroup!.Properties as Loose).SecurityGroupIngress;
    expect(ingress).toEqual([
      expect.objectContaining({
        FromPort: 5432,
        SourceSecurityGroupId: { 'Fn::GetAtt': ['AuroraClientSecurityGroup', 'GroupId'] },
      }),
    ]);
    expect(environmentOf(template, 'audit-append')).toMatchObject({
      DATABASE_SECRET_ARN: { Ref: 'AuditAppendDatabaseSecret' },
      // Node 20+ runtimes do not trust the RDS CAs unless told to.
      NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
    });
    for (const fn of FUNCTION_KEYS) {
      const secretReaders = roleStatements(template, roleOf(fn)).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('secretsmanager:')),
      );
      // Each audit function reads its own login's secret; nobody reads the master secret (issue 21).
      const own: Partial<Record<FunctionKey, string>> = {
        'audit-append': 'AuditAppendDatabaseSecret',
        'audit-digest': 'AuditDigestDatabaseSecret',
      };
      expect(
        secretReaders.map((s) => s.Resource),
        fn,
      ).toEqual(own[fn] ? [{ Ref: own[fn] }] : []);
    }
  });

  it('creates no database when auroraMode=import and reads the given secret (and its key) instead', () => {
    const template = imported.template!;
    expect(template.Conditions?.AuroraCreate).toEqual({ 'Fn::Equals': ['import', 'create'] });
    for (const id of ['AuroraCluster', 'AuroraWriterInstance', 'AuroraSecret', 'AuroraSecurityGroup']) {
      expect(template.Resources[id]!.Condition, id).toBe('AuroraCreate');
    }
    expect(environmentOf(template, 'audit-append')).toMatchObject({ DATABASE_SECRET_ARN: IMPORTED_SECRET });
    expect(environmentOf(template, 'audit-digest')).toMatchObject({
      DATABASE_SECRET_ARN: IMPORTED_DIGEST_SECRET,
      DATABASE_ROLE: 'audit_reader',
    });
    expect(
      roleStatements(template, roleOf('audit-digest')).find((s) => s.Sid === 'DatabaseSecret'),
    ).toMatchObject({ Resource: IMPORTED_DIGEST_SECRET });
    expect(template.Resources.AuditDashappendLambdaFunction!.Properties.VpcConfig).toEqual({
      SubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
      SecurityGroupIds: ['sg-0123456789abcdef0'],
    });
    const statements = roleStatements(template, roleOf('audit-append'));
    expect(statements.find((s) => s.Sid === 'DatabaseSecret')!.Resource).toBe(IMPORTED_SECRET);
    expect(statements.find((s) => s.Sid === 'DatabaseSecretKey')).toMatchObject({
      Action: ['kms:Decrypt'],
      Resource: [IMPORTED_KEY],
    });
  });

  it('grants every function (each decodes through SCHEMA_REGISTRY) glue:GetSchemaVersion on its registry only, and only with schemaRegistry=glue', () => {
    const glueStatements = (template: CloudFormationTemplate, fn: FunctionKey) =>
      roleStatements(template, roleOf(fn)).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('glue:')),
      );
    for (const stage of [prod, local, imported])
      expect(glueStatements(stage.template!, 'audit-digest')).toEqual([]);
    for (const fn of ESM_FUNCTION_KEYS) {
      expect(environmentOf(imported.template!, fn).SCHEMA_REGISTRY, fn).toBe('glue');
      expect(environmentOf(prod.template!, fn).SCHEMA_REGISTRY, fn).toBe('file');
      expect(glueStatements(prod.template!, fn), `prod ${fn}`).toEqual([]);
      expect(glueStatements(local.template!, fn), `local ${fn}`).toEqual([]);
      expect(glueStatements(imported.template!, fn), `staging ${fn}`).toEqual([
        {
          Sid: 'SchemaRegistryRead',
          Effect: 'Allow',
          Action: ['glue:GetSchemaVersion'],
          Resource: [
            {
              'Fn::Sub': `arn:\${AWS::Partition}:glue:eu-west-1:\${AWS::AccountId}:registry/${GLUE_REGISTRY}`,
            },
            {
              'Fn::Sub': `arn:\${AWS::Partition}:glue:eu-west-1:\${AWS::AccountId}:schema/${GLUE_REGISTRY}/*`,
            },
          ],
        },
      ]);
    }
  });
});

describe('the redrive operator policies', () => {
  const policyOf = (template: CloudFormationTemplate, id: string) => {
    const policy = template.Resources[id] as Loose;
    expect(policy?.Type, id).toBe('AWS::IAM::ManagedPolicy');
    // Attached to nobody by the stack: the account decides who may redrive.
    expect(Object.keys(policy.Properties).sort(), id).toEqual([
      'Description',
      'ManagedPolicyName',
      'PolicyDocument',
    ]);
    return policy.Properties as { ManagedPolicyName: string; PolicyDocument: { Statement: Statement[] } };
  };

  it('let an operator find the ESMs, read and tag (only with redrive tags) the failed records, invoke the consumers: nothing more', () => {
    for (const [stage, result] of packaged()) {
      const name = stage.split(' ')[0];
      const policy = policyOf(result.template!, 'RedriveOperatorPolicy');
      expect(policy.ManagedPolicyName).toBe(`mobility-events-${name}-redrive`);
      const bySid = Object.fromEntries(policy.PolicyDocument.Statement.map((s) => [s.Sid, s]));
      const actions = policy.PolicyDocument.Statement.flatMap((s) => asArray(s.Action)).sort();
      expect(actions, stage).toEqual([
        'lambda:InvokeFunction',
        'lambda:ListEventSourceMappings',
        's3:GetObject',
        's3:GetObjectTagging',
        's3:ListBucket',
        's3:PutObjectTagging',
      ]);
      for (const statement of policy.PolicyDocument.Statement) {
        expect(statement.Effect).toBe('Allow');
        if (asArray(statement.Resource).includes('*'))
          expect(asArray(statement.Action), stage).toEqual(['lambda:ListEventSourceMappings']);
      }
      const invoked = asArray(bySid.InvokeConsumers!.Resource).map(
        (r) => (r as { 'Fn::Sub': string })['Fn::Sub'],
      );
      // The consumers only: audit-digest has no ESM, so no failed records to redrive into it.
      expect(invoked.sort(), stage).toEqual(
        ESM_FUNCTION_KEYS.map(
          (fn) =>
            `arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:mobility-events-${name}-${fn}`,
        ).sort(),
      );
      const account = { StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } } };
      expect(bySid.ListFailedRecords!.Condition).toEqual({
        ...account,
        StringLike: { 's3:prefix': ['aws/lambda/*'] },
      });
      for (const sid of ['ListFailedRecords', 'ReadFailedRecords', 'MarkFailedRecordsRedriven']) {
        expect([...referencedLogicalIds(bySid[sid]!.Resource)], sid).toEqual(['FailedRecordsBucket']);
      }
      for (const sid of ['ReadFailedRecords', 'MarkFailedRecordsRedriven'])
        expect(JSON.stringify(bySid[sid]!.Resource), sid).toContain('"/aws/lambda/*"');
      expect(bySid.ReadFailedRecords!.Condition).toEqual(account);
      // The tags redrive writes, and no others.
      expect(bySid.MarkFailedRecordsRedriven!.Condition).toEqual({
        ...account,
        'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': [STATUS_TAG, AT_TAG, VIA_TAG] },
      });
      expect(result.template!.Outputs?.RedriveOperatorPolicyArn).toBeDefined();
    }
  });

  it('let --to-topic produce idempotently to the consumed topics of this cluster only, in a policy of its own', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      const policy = policyOf(template, 'RedriveToTopicPolicy');
      const [cluster, topics] = policy.PolicyDocument.Statement;
      expect(asArray(cluster!.Action).sort()).toEqual([
        'kafka-cluster:Connect',
        'kafka-cluster:WriteDataIdempotently',
      ]);
      const clusterArn = resourcesOfType(template, 'AWS::Lambda::EventSourceMapping')[0]![1].Properties
        .EventSourceArn;
      expect(cluster!.Resource, stage).toEqual(clusterArn);
      expect(asArray(topics!.Action).sort()).toEqual([
        'kafka-cluster:DescribeTopic',
        'kafka-cluster:WriteData',
      ]);
      const consumed = new Set(
        resourcesOfType(template, 'AWS::Lambda::EventSourceMapping').flatMap(
          ([, esm]) => esm.Properties.Topics as string[],
        ),
      );
      const granted = asArray(topics!.Resource as string | string[]);
      expect(granted.map((arn) => arn.split('/').pop()).sort(), stage).toEqual([...consumed].sort());
      for (const arn of granted) expect(arn, stage).toMatch(/^arn:aws:kafka:[a-z0-9-]+:\d{12}:topic\/[^*]+$/);
      expect(template.Outputs?.RedriveToTopicPolicyArn).toBeDefined();
    }
  });
});

describe('missing or invalid parameters', () => {
  it('fail packaging with one message naming every missing parameter and how to pass it', () => {
    expect(missingAll.ok).toBe(false);
    const message = missingAll.output;
    expect(message).toContain('Deployment parameters for stage "prod" are missing or invalid');
    for (const name of [
      'mskClusterArn',
      'kafkaBrokers',
      'subnetIds',
      'securityGroupIds',
      'vpcId',
      'bedrockModelId',
      'alarmEmail',
      'notificationsPagerTopicArn',
      'notificationsPushTopicArn',
      'notificationsEmailFrom',
      'notificationsReviewersEmail',
    ]) {
      expect(message).toContain(`  - ${name}: missing`);
    }
    expect(message).toContain('--param="mskClusterArn=..."');
    expect(message).toContain('params.prod in serverless.yml');
    // One message, not one "Value not found" per reference.
    expect(message).not.toContain('Value not found at "param" source');
  });

  it('names the parameters a mode needs: the Aurora secret to import, the Glue registry to read', () => {
    expect(missingImport.ok).toBe(false);
    expect(missingImport.output).toContain('  - auroraSecretArn: missing');
    expect(missingImport.output).toContain('  - auroraDigestSecretArn: missing');
    expect(missingImport.output).toContain('  - glueRegistryName: missing');
    expect(missingImport.output).not.toContain('  - vpcId: missing');
  });

  it('names malformed values', () => {
    expect(invalid.ok).toBe(false);
    expect(invalid.output).toContain('  - subnetIds: "subnet-1,not-a-subnet" is not valid');
    expect(invalid.output).toContain('  - auroraMode: "copy" is not one of create, import');
    expect(invalid.output).toContain('  - schemaRegistry: "confluent" is not one of file, glue');
  });
});

describe('IAM against the code', () => {
  // SDK commands the functions' code sends, and the IAM action each needs.
  const COMMAND_ACTIONS: Record<string, string> = {
    GetCommand: 'dynamodb:GetItem',
    GetItemCommand: 'dynamodb:GetItem',
    PutCommand: 'dynamodb:PutItem',
    PutItemCommand: 'dynamodb:PutItem',
    UpdateCommand: 'dynamodb:UpdateItem',
    UpdateItemCommand: 'dynamodb:UpdateItem',
    DeleteCommand: 'dynamodb:DeleteItem',
    DeleteItemCommand: 'dynamodb:DeleteItem',
    QueryCommand: 'dynamodb:Query',
    ScanCommand: 'dynamodb:Scan',
    BatchGetCommand: 'dynamodb:BatchGetItem',
    BatchWriteCommand: 'dynamodb:BatchWriteItem',
    TransactWriteCommand: 'dynamodb:TransactWriteItems',
    ConverseCommand: 'bedrock:InvokeModel',
    InvokeModelCommand: 'bedrock:InvokeModel',
    PublishCommand: 'sns:Publish',
    PublishBatchCommand: 'sns:Publish',
    SendBulkEmailCommand: 'ses:SendBulkEmail',
    GetSecretValueCommand: 'secretsmanager:GetSecretValue',
    PutObjectCommand: 's3:PutObject',
    GetObjectCommand: 's3:GetObject',
    ListObjectsV2Command: 's3:ListBucket',
  };
  // The shared DynamoDB helpers (shared/dynamodb.ts) a function calls, and the action each sends.
  const HELPER_ACTIONS: Record<string, string> = {
    batchGetAll: 'dynamodb:BatchGetItem',
    batchPutAll: 'dynamodb:BatchWriteItem',
    batchDeleteAll: 'dynamodb:BatchWriteItem',
    insertAll: 'dynamodb:PartiQLInsert',
  };
  // In the code but never sent by the Lambda: read-model rebuild helpers (clear before a replay from earliest)
  // and `review list | resolve` (the open reviews, one review), run by an operator with their own credentials;
  // and a channel a function running shared code is not configured for.
  const NOT_SENT_BY_THE_LAMBDA: Partial<Record<FunctionKey, string[]>> = {
    'incident-explanation': ['dynamodb:Query', 'dynamodb:GetItem'],
    'demand-prediction-update': ['dynamodb:Scan', 'dynamodb:BatchWriteItem'],
    billing: ['dynamodb:Scan'],
    // listOutbox: what `dev` shows of the local outbox.
    notifications: ['dynamodb:Query'],
    // notifications' code, configured for PAGER alone (its environment has no EMAIL_FROM): the SES channel is
    // never built, and a record that would need it fails the invocation (functions/notifications/aws-channels.ts).
    'oncall-paging': ['dynamodb:Query', 'ses:SendBulkEmail'],
  };

  async function actionsUsedBy(fn: FunctionKey): Promise<Set<string>> {
    const dir = path.join(projectRoot, 'functions', codeOf(fn));
    const used = new Set<string>();
    for (const entry of await readdir(dir, { recursive: true })) {
      if (!entry.endsWith('.ts')) continue;
      const source = await readFile(path.join(dir, entry), 'utf8');
      for (const [command, action] of Object.entries(COMMAND_ACTIONS)) {
        if (new RegExp(`new ${command}\\(`).test(source)) used.add(action);
      }
      for (const [helper, action] of Object.entries(HELPER_ACTIONS)) {
        if (new RegExp(`\\b${helper}\\(`).test(source)) used.add(action);
      }
    }
    for (const action of NOT_SENT_BY_THE_LAMBDA[fn] ?? []) used.delete(action);
    return used;
  }

  it('allows every action the function code sends, and no read-model action it never sends', async () => {
    for (const fn of FUNCTION_KEYS) {
      const used = await actionsUsedBy(fn);
      const statements = roleStatements(prod.template!, roleOf(fn));
      const granted = new Set(statements.flatMap((s) => asArray(s.Action)));
      for (const action of used) expect(granted.has(action), `${fn} sends ${action}`).toBe(true);
      const readModelActions = statements
        .filter((s) => s.Sid?.startsWith('Table') && !s.Sid.endsWith('IdempotencyTable'))
        .flatMap((s) => asArray(s.Action));
      for (const action of readModelActions) expect(used.has(action), `${fn} granted ${action}`).toBe(true);
    }
  });
});

describe('the packaged bundles', () => {
  const run = (file: string, args: string[], env?: NodeJS.ProcessEnv) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(file, args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  let dir: string;
  const functionDir = (fn: FunctionKey) => path.join(dir, fn, 'functions', codeOf(fn));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mobility-events-load-'));
    for (const fn of FUNCTION_KEYS) {
      const unzip = await run('unzip', [
        '-q',
        '-o',
        path.join(local.artifactDir, `${fn}.zip`),
        '-d',
        path.join(dir, fn),
      ]);
      expect(unzip.code, unzip.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('load in a fresh node process with the environment the template gives them', async () => {
    for (const fn of FUNCTION_KEYS) {
      // The local configuration, and an AWS one (MSK IAM, Bedrock, SNS/SES, Glue): each loads different code.
      for (const [stage, template] of [
        ['local', local.template!],
        ['staging', imported.template!],
      ] as const) {
        const env: NodeJS.ProcessEnv = {
          PATH: process.env.PATH,
          AWS_REGION: 'eu-west-1',
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
        };
        for (const [name, value] of Object.entries(environmentOf(template, fn))) {
          env[name] = typeof value === 'string' ? value : `test-${name.toLowerCase()}`;
        }
        const handler = path.join(functionDir(fn), 'handler.cjs');
        const loaded = await run(
          process.execPath,
          [
            '-e',
            'const m = require(process.argv[1]); if (typeof m.handler !== "function") process.exit(3);',
            handler,
          ],
          env,
        );
        expect(loaded.code, `${stage} ${fn}: ${loaded.stderr.split('\n').slice(0, 8).join('\n')}`).toBe(0);
      }
    }
  });

  it('carry only the AWS SDK commands their function sends, where the client is imported statically', async () => {
    const commandsIn = async (fn: FunctionKey, client: string) => {
      const bundle = await readFile(path.join(functionDir(fn), 'handler.cjs'), 'utf8');
      const marker = new RegExp(
        `^// (?:\\S*/)?node_modules/@aws-sdk/${client}/dist-es/commands/(\\w+)Command\\.js$`,
        'gm',
      );
      return [...bundle.matchAll(marker)].map((match) => match[1]).sort();
    };
    expect(await commandsIn('notifications', 'client-sns')).toEqual(['PublishBatch']);
    expect(await commandsIn('notifications', 'client-sesv2')).toEqual(['SendBulkEmail']);
    expect(await commandsIn('oncall-paging', 'client-sns')).toEqual(['PublishBatch']);
    expect(await commandsIn('incident-explanation', 'client-bedrock-runtime')).toEqual(['Converse']);
  });

  it('leave out the code Lambda never loads: nested credential clients, the STS client, the MSK signer', async () => {
    for (const fn of FUNCTION_KEYS) {
      const bundle = await readFile(path.join(functionDir(fn), 'handler.cjs'), 'utf8');
      // The check reads esbuild's `// <path>` module comments: they must be there for "none found" to mean absent.
      expect(bundle, fn).toMatch(/^\/\/ (?:\S*\/)?node_modules\/@smithy\/core\//m);
      const bundled = [
        ...bundle.matchAll(
          /^\/\/ (?:\S*\/)?node_modules\/(@aws-sdk\/nested-clients|@aws-sdk\/client-sts|aws-msk-iam-sasl-signer-js)\//gm,
        ),
      ].map((match) => match[1]);
      expect([...new Set(bundled)], fn).toEqual([]);
    }
    // Still reachable from the runtime's SDK when credentials do not come from the environment.
    const notifications = await readFile(path.join(functionDir('notifications'), 'handler.cjs'), 'utf8');
    expect(notifications).toContain('require("@aws-sdk/nested-clients/sso")');
  });
});

describe('an audit store that survives its operators (issue 21)', () => {
  const digestBucketArn = { 'Fn::GetAtt': ['AuditDigestBucket', 'Arn'] };

  it("gives the audit functions their own logins' secrets, generated by the deploy; none reads the master secret", () => {
    const template = prod.template!;
    for (const [id, login] of [
      ['AuditAppendDatabaseSecret', 'audit_append_login'],
      ['AuditDigestDatabaseSecret', 'audit_digest_login'],
    ] as const) {
      const secret = template.Resources[id]!;
      expect(secret.Condition, id).toBe('AuroraCreate');
      const generate = (secret.Properties as Loose).GenerateSecretString;
      expect(JSON.parse(generate.SecretStringTemplate)).toEqual({ username: login, dbname: 'audit' });
      expect(generate.GenerateStringKey).toBe('password');
      expect(template.Resources[`${id}Attachment`]!.Properties).toMatchObject({
        SecretId: { Ref: id },
        TargetId: { Ref: 'AuroraCluster' },
      });
    }
    expect(environmentOf(template, 'audit-digest')).toMatchObject({
      DATABASE_SECRET_ARN: { Ref: 'AuditDigestDatabaseSecret' },
      DATABASE_ROLE: 'audit_reader',
      DIGEST_BUCKET: { Ref: 'AuditDigestBucket' },
    });
    for (const [stage, result] of packaged()) {
      for (const fn of FUNCTION_KEYS) {
        const statements = roleStatements(result.template!, roleOf(fn));
        expect(referencedLogicalIds(statements).has('AuroraSecret'), `${stage} ${fn}`).toBe(false);
      }
    }
  });

  it('runs audit-digest every 5 minutes into an Object Lock bucket (compliance, >= the audit retention) that refuses replacing or deleting a digest', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      const rules = resourcesOfType(template, 'AWS::Events::Rule').filter(([, rule]) =>
        JSON.stringify(rule.Properties.Targets).includes('AuditDashdigestLambdaFunction'),
      );
      expect(
        rules.map(([, rule]) => rule.Properties.ScheduleExpression),
        stage,
      ).toEqual(['rate(5 minutes)']);

      const bucket = template.Resources.AuditDigestBucket!;
      const p = bucket.Properties as Loose;
      expect(bucket.DeletionPolicy, stage).toBe('Retain');
      expect(p.ObjectLockEnabled).toBe(true);
      expect(p.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(p.ObjectLockConfiguration.ObjectLockEnabled).toBe('Enabled');
      const retention = p.ObjectLockConfiguration.Rule.DefaultRetention;
      expect(retention.Mode).toBe('COMPLIANCE');
      // The audit retention (custom.audit.retentionDays), never below the 90 days the database enforces.
      expect(retention.Days).toBe(400);
      expect(retention.Days).toBeGreaterThanOrEqual(90);
      expect(p.LifecycleConfiguration).toBeUndefined();
      expect(p.PublicAccessBlockConfiguration).toMatchObject({
        BlockPublicPolicy: true,
        RestrictPublicBuckets: true,
      });

      const policy = (template.Resources.AuditDigestBucketPolicy!.Properties as Loose).PolicyDocument
        .Statement as Statement[];
      expect(policy.find((s) => s.Sid === 'DenyReplacingADigest')).toMatchObject({
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:PutObject',
        Condition: { Null: { 's3:if-none-match': 'true' } },
      });
      expect(policy.find((s) => s.Sid === 'DenyDeletingDigests')).toMatchObject({
        Effect: 'Deny',
        Principal: '*',
      });
      expect(asArray(policy.find((s) => s.Sid === 'DenyDeletingDigests')!.Action)).toEqual(
        expect.arrayContaining(['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention']),
      );

      // Only audit-digest touches the bucket: put and get under audit-digests/, list that prefix; no delete.
      for (const fn of FUNCTION_KEYS) {
        const statements = roleStatements(template, roleOf(fn)).filter((s) =>
          referencedLogicalIds(s.Resource).has('AuditDigestBucket'),
        );
        if (fn !== 'audit-digest') {
          expect(statements, `${stage} ${fn}`).toEqual([]);
          continue;
        }
        expect(statements).toEqual([
          expect.objectContaining({
            Action: ['s3:PutObject', 's3:GetObject'],
            Resource: { 'Fn::Join': ['', [digestBucketArn, '/audit-digests/*']] },
          }),
          expect.objectContaining({
            Action: ['s3:ListBucket'],
            Resource: digestBucketArn,
            Condition: {
              StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } },
              StringLike: { 's3:prefix': 'audit-digests/*' },
            },
          }),
        ]);
        const actions = roleStatements(template, roleOf(fn)).flatMap((s) => asArray(s.Action));
        expect(actions.filter((a) => a.startsWith('s3:')).sort()).toEqual([
          's3:GetObject',
          's3:ListBucket',
          's3:PutObject',
        ]);
      }
    }
  });

  it('keeps every failed-record object version an ESM wrote: versioned, no function may delete a version or change the rules', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      const p = template.Resources.FailedRecordsBucket!.Properties as Loose;
      expect(p.VersioningConfiguration, stage).toEqual({ Status: 'Enabled' });
      // No default retention: S3 would refuse Lambda's failed-record writes without a checksum (failed-records.yml).
      expect(p.ObjectLockConfiguration, stage).toBeUndefined();
      const rule = p.LifecycleConfiguration.Rules[0];
      // An overwritten version lives as long as the object it replaced would have.
      expect(rule.NoncurrentVersionExpiration.NoncurrentDays).toBeGreaterThanOrEqual(rule.ExpirationInDays);

      const policy = (template.Resources.FailedRecordsBucketPolicy!.Properties as Loose).PolicyDocument
        .Statement as Statement[];
      const deny = policy.find((s) => s.Sid === 'DenyFunctionsDeletingFailedRecords')!;
      expect(deny.Effect).toBe('Deny');
      expect(asArray(deny.Action)).toEqual(
        expect.arrayContaining([
          's3:DeleteObject',
          's3:DeleteObjectVersion',
          's3:PutObjectRetention',
          's3:BypassGovernanceRetention',
          's3:PutBucketVersioning',
          's3:PutBucketObjectLockConfiguration',
          's3:PutLifecycleConfiguration',
        ]),
      );
      // Every role of the template is named (CloudFormation truncates generated names: no pattern).
      const roles = resourcesOfType(template, 'AWS::IAM::Role').map(([id]) => ({
        'Fn::GetAtt': [id, 'Arn'],
      }));
      const named = (deny.Condition as Loose).ArnEquals['aws:PrincipalArn'];
      expect([...named].sort(byJson), stage).toEqual([...roles].sort(byJson));
      // And no role is granted anything but writing and listing there.
      for (const fn of FUNCTION_KEYS) {
        const actions = roleStatements(template, roleOf(fn))
          .filter((s) => referencedLogicalIds(s.Resource).has('FailedRecordsBucket'))
          .flatMap((s) => asArray(s.Action));
        for (const action of actions)
          expect(['s3:PutObject', 's3:ListBucket'], `${stage} ${fn}`).toContain(action);
      }
    }
  });
});

const byJson = (a: unknown, b: unknown) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1);
