import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const FUNCTIONS = {
  'incident-explanation': { id: 'IncidentDashexplanation', role: 'IncidentExplanationExecutionRole' },
  'audit-append': { id: 'AuditDashappend', role: 'AuditAppendExecutionRole' },
  'demand-prediction-update': {
    id: 'DemandDashpredictionDashupdate',
    role: 'DemandPredictionUpdateExecutionRole',
  },
  billing: { id: 'Billing', role: 'BillingExecutionRole' },
  notifications: { id: 'Notifications', role: 'NotificationsExecutionRole' },
} as const;
type FunctionKey = keyof typeof FUNCTIONS;
const FUNCTION_KEYS = Object.keys(FUNCTIONS) as FunctionKey[];

// Which tables each function may touch: nothing else, and nobody else's.
const TABLES: Record<FunctionKey, string[]> = {
  'incident-explanation': ['IncidentsTable', 'IncidentIdempotencyTable'],
  'audit-append': [],
  'demand-prediction-update': ['DemandTable'],
  billing: ['BillingTable', 'BillingIdempotencyTable'],
  notifications: ['NotificationsTable', 'NotificationsIdempotencyTable'],
};
const IDEMPOTENCY_TABLES = [
  'IncidentIdempotencyTable',
  'BillingIdempotencyTable',
  'NotificationsIdempotencyTable',
];
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

/** ESMs per function: one per topic it consumes (README, per-function table). */
const ESM_COUNTS: Record<FunctionKey, number> = {
  'incident-explanation': 2,
  'audit-append': 6,
  'demand-prediction-update': 3,
  billing: 3,
  notifications: 4,
};

function esmsOf(template: CloudFormationTemplate, fn: FunctionKey) {
  return resourcesOfType(template, 'AWS::Lambda::EventSourceMapping').filter(([id]) =>
    id.startsWith(`${FUNCTIONS[fn].id}EventSourceMappingMSK`),
  );
}

function environmentOf(template: CloudFormationTemplate, fn: FunctionKey): Record<string, unknown> {
  const lambda = template.Resources[`${FUNCTIONS[fn].id}LambdaFunction`];
  return (lambda!.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

const CREATE: Record<string, string> = { ...AWS_STAGE_PARAMS, auroraMode: 'create' };
const IMPORTED_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit-db-AbCdEf';
const IMPORTED_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/0f0f0f0f-1111-2222-3333-444444444444';
const { vpcId: _unusedWithImport, ...IMPORT_BASE } = AWS_STAGE_PARAMS;
// Staging also decodes with the Glue schema registry (prod keeps the committed catalog).
const GLUE_REGISTRY = 'mobility-events';
const IMPORT: Record<string, string> = {
  ...IMPORT_BASE,
  auroraMode: 'import',
  auroraSecretArn: IMPORTED_SECRET,
  auroraSecretKmsKeyArn: IMPORTED_KEY,
  schemaRegistry: 'glue',
  glueRegistryName: GLUE_REGISTRY,
};
const { auroraSecretArn: _omitted, glueRegistryName: _alsoOmitted, ...withoutSecret } = IMPORT;

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
      expect(esms.length, stage).toBe(18);
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

  it('batches for throughput where it is cheap and keeps the incident path small', () => {
    const template = prod.template!;
    for (const [id, esm] of esmsOf(template, 'audit-append')) {
      expect(esm.Properties.BatchSize, id).toBe(500);
    }
    for (const [id, esm] of esmsOf(template, 'incident-explanation')) {
      expect(esm.Properties.BatchSize, id).toBe(10);
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
      ).toEqual(FUNCTION_KEYS.map((fn) => FUNCTIONS[fn].role).sort());
      for (const fn of FUNCTION_KEYS) {
        const lambda = template.Resources[`${FUNCTIONS[fn].id}LambdaFunction`]!;
        expect(lambda.Properties.Role, `${stage} ${fn}`).toEqual({
          'Fn::GetAtt': [FUNCTIONS[fn].role, 'Arn'],
        });
        for (const [id, esm] of esmsOf(template, fn)) {
          expect(asArray(esm.DependsOn ?? []), `${stage} ${id}`).toContain(FUNCTIONS[fn].role);
        }
      }
    }
  });

  it('allows wildcard resources only for actions without resource-level permissions, and no wildcard actions', () => {
    for (const [stage, result] of packaged()) {
      for (const fn of FUNCTION_KEYS) {
        for (const statement of roleStatements(result.template!, FUNCTIONS[fn].role)) {
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
        const statements = roleStatements(template, FUNCTIONS[fn].role);
        const tables = [...referencedLogicalIds(statements)].filter((id) => tableIds.includes(id)).sort();
        expect(tables, `${stage} ${fn}`).toEqual([...TABLES[fn]].sort());
        const dynamoActions = statements
          .flatMap((s) => asArray(s.Action))
          .filter((a) => a.startsWith('dynamodb:'));
        for (const forbidden of ['dynamodb:Scan', 'dynamodb:DeleteTable', 'dynamodb:BatchWriteItem']) {
          expect(dynamoActions, `${stage} ${fn}`).not.toContain(forbidden);
        }
        for (const statement of statements.filter((s) => s.Sid?.endsWith('IdempotencyTable'))) {
          expect([...asArray(statement.Action)].sort()).toEqual(
            ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'].sort(),
          );
        }
      }
    }
  });

  it('lets the ESM of each function read only its topics and use only its consumer groups', () => {
    for (const [stage, result] of packaged()) {
      const template = result.template!;
      for (const fn of FUNCTION_KEYS) {
        const esms = esmsOf(template, fn).map(([, esm]) => esm.Properties as Record<string, Loose>);
        const cluster = esms[0]!.EventSourceArn as string;
        const topicPrefix = cluster.replace(':cluster/', ':topic/');
        const groupPrefix = cluster.replace(':cluster/', ':group/');
        const statements = roleStatements(template, FUNCTIONS[fn].role);
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
        const statements = roleStatements(result.template!, FUNCTIONS[fn].role);
        const s3 = statements.filter((s) => asArray(s.Action).some((a) => a.startsWith('s3:')));
        expect(s3.flatMap((s) => asArray(s.Action)).sort(), `${stage} ${fn}`).toEqual([
          's3:ListBucket',
          's3:PutObject',
        ]);
        for (const statement of s3) {
          expect(statement.Condition, `${stage} ${fn}`).toEqual({
            StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } },
          });
          expect([...referencedLogicalIds(statement.Resource)]).toEqual(['FailedRecordsBucket']);
        }
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
        'notifications incident.detected',
        'notifications genai.hitl.requested',
      ];
      const ages = alarms.filter((a) => a.MetricName === 'OldestRecordAgeMs');
      const esms = resourcesOfType(template, 'AWS::Lambda::EventSourceMapping');
      expect(ages).toHaveLength(esms.length);
      for (const [esmId, esm] of esms) {
        const functionKey = FUNCTION_KEYS.find(
          (fn) =>
            `${FUNCTIONS[fn].id}LambdaFunction` === (esm.Properties.FunctionName as Loose)['Fn::GetAtt'][0],
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
            : ['incident-explanation', 'notifications'].includes(functionKey)
              ? 60_000
              : 300_000,
        );
        expect(age[0].EvaluationPeriods).toBe(urgent ? 2 : 5);
      }
      for (const fn of FUNCTION_KEYS) {
        for (const metric of ['Errors', 'DestinationDeliveryFailures']) {
          const matching = alarms.filter(
            (a) =>
              a.MetricName === metric &&
              JSON.stringify(a.Dimensions) ===
                JSON.stringify([
                  { Name: 'FunctionName', Value: { Ref: `${FUNCTIONS[fn].id}LambdaFunction` } },
                ]),
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
        const lambda = result.template!.Resources[`${FUNCTIONS[fn].id}LambdaFunction`]!;
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
        billing: { BILLING_TABLE: 'BillingTable', IDEMPOTENCY_TABLE: 'BillingIdempotencyTable' },
        notifications: {
          NOTIFICATIONS_TABLE: 'NotificationsTable',
          IDEMPOTENCY_TABLE: 'NotificationsIdempotencyTable',
        },
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
      expect(
        template.Resources[`${FUNCTIONS[fn].id}LambdaFunction`]!.Properties.VpcConfig,
        fn,
      ).toBeUndefined();
    }
    expect(environmentOf(template, 'incident-explanation')).toMatchObject({
      BEDROCK_MODEL_ID: '',
      KAFKA_AUTH: 'none',
    });
    expect(environmentOf(template, 'audit-append')).toMatchObject({ DATABASE_SECRET_ARN: '' });
    expect(environmentOf(template, 'audit-append').DATABASE_URL).toMatch(/^postgres:\/\//);
    expect(environmentOf(template, 'notifications')).toMatchObject({ ONCALL_TOPIC_ARN: '' });
    expect(template.Conditions?.AuroraCreate).toEqual({ 'Fn::Equals': ['none', 'create'] });
    const names = roleStatements(template, FUNCTIONS['audit-append'].role).map((s) => s.Sid);
    expect(names).not.toContain('DatabaseSecret');
    expect(roleStatements(template, FUNCTIONS['incident-explanation'].role).map((s) => s.Sid)).not.toContain(
      'BedrockInvoke',
    );
  });
});

describe('an AWS stage', () => {
  it('puts the MSK producer and the Aurora client in the VPC, and nothing else', () => {
    const template = prod.template!;
    const vpcOf = (fn: FunctionKey) =>
      template.Resources[`${FUNCTIONS[fn].id}LambdaFunction`]!.Properties.VpcConfig;
    expect(vpcOf('incident-explanation')).toEqual({
      SubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
      SecurityGroupIds: ['sg-0123456789abcdef0'],
    });
    expect(vpcOf('audit-append')).toEqual({
      SubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
      SecurityGroupIds: ['sg-0123456789abcdef0', { 'Fn::GetAtt': ['AuroraClientSecurityGroup', 'GroupId'] }],
    });
    for (const fn of ['demand-prediction-update', 'billing', 'notifications'] as const) {
      expect(vpcOf(fn), fn).toBeUndefined();
    }
    expect(environmentOf(template, 'incident-explanation')).toMatchObject({
      BEDROCK_MODEL_ID: AWS_STAGE_PARAMS.bedrockModelId,
      KAFKA_AUTH: 'iam',
      KAFKA_BROKERS: AWS_STAGE_PARAMS.kafkaBrokers,
    });
    expect(environmentOf(template, 'notifications')).toMatchObject({
      ONCALL_TOPIC_ARN: AWS_STAGE_PARAMS.notificationsPagerTopicArn,
      CUSTOMER_TOPIC_ARN: AWS_STAGE_PARAMS.notificationsPushTopicArn,
      EMAIL_FROM: AWS_STAGE_PARAMS.notificationsEmailFrom,
      REVIEWERS_EMAIL: AWS_STAGE_PARAMS.notificationsReviewersEmail,
    });
  });

  it('gives Bedrock to incident-explanation only, through the inference profile and its models', () => {
    const template = prod.template!;
    for (const fn of FUNCTION_KEYS) {
      const bedrock = roleStatements(template, FUNCTIONS[fn].role).filter((s) =>
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

  it('gives SNS and SES to notifications only, on its two topics and its sender', () => {
    const template = prod.template!;
    for (const fn of FUNCTION_KEYS) {
      const statements = roleStatements(template, FUNCTIONS[fn].role);
      const sns = statements.filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('sns:') || a.startsWith('ses:')),
      );
      if (fn !== 'notifications') {
        expect(sns, fn).toEqual([]);
        continue;
      }
      expect(sns.find((s) => s.Sid === 'NotificationTopics')!.Resource).toEqual([
        AWS_STAGE_PARAMS.notificationsPagerTopicArn,
        AWS_STAGE_PARAMS.notificationsPushTopicArn,
      ]);
      expect(sns.find((s) => s.Sid === 'NotificationEmail')!.Condition).toEqual({
        StringEquals: { 'ses:FromAddress': AWS_STAGE_PARAMS.notificationsEmailFrom },
      });
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
      DATABASE_SECRET_ARN: { Ref: 'AuroraSecret' },
      // Node 20+ runtimes do not trust the RDS CAs unless told to.
      NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
    });
    for (const fn of FUNCTION_KEYS) {
      const secretReaders = roleStatements(template, FUNCTIONS[fn].role).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('secretsmanager:')),
      );
      expect(
        secretReaders.map((s) => s.Resource),
        fn,
      ).toEqual(fn === 'audit-append' ? [{ Ref: 'AuroraSecret' }] : []);
    }
  });

  it('creates no database when auroraMode=import and reads the given secret (and its key) instead', () => {
    const template = imported.template!;
    expect(template.Conditions?.AuroraCreate).toEqual({ 'Fn::Equals': ['import', 'create'] });
    for (const id of ['AuroraCluster', 'AuroraWriterInstance', 'AuroraSecret', 'AuroraSecurityGroup']) {
      expect(template.Resources[id]!.Condition, id).toBe('AuroraCreate');
    }
    expect(environmentOf(template, 'audit-append')).toMatchObject({ DATABASE_SECRET_ARN: IMPORTED_SECRET });
    expect(template.Resources.AuditDashappendLambdaFunction!.Properties.VpcConfig).toEqual({
      SubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
      SecurityGroupIds: ['sg-0123456789abcdef0'],
    });
    const statements = roleStatements(template, FUNCTIONS['audit-append'].role);
    expect(statements.find((s) => s.Sid === 'DatabaseSecret')!.Resource).toBe(IMPORTED_SECRET);
    expect(statements.find((s) => s.Sid === 'DatabaseSecretKey')).toMatchObject({
      Action: ['kms:Decrypt'],
      Resource: [IMPORTED_KEY],
    });
  });

  it('grants every function (each decodes through SCHEMA_REGISTRY) glue:GetSchemaVersion on its registry only, and only with schemaRegistry=glue', () => {
    const glueStatements = (template: CloudFormationTemplate, fn: FunctionKey) =>
      roleStatements(template, FUNCTIONS[fn].role).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('glue:')),
      );
    for (const fn of FUNCTION_KEYS) {
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
    SendEmailCommand: 'ses:SendEmail',
    GetSecretValueCommand: 'secretsmanager:GetSecretValue',
  };
  // In the code but never sent by the Lambda: read-model rebuild helpers (clear before a replay from earliest),
  // run by an operator with their own credentials.
  const OPERATOR_ONLY: Partial<Record<FunctionKey, string[]>> = {
    'demand-prediction-update': ['dynamodb:Scan', 'dynamodb:BatchWriteItem'],
    billing: ['dynamodb:Scan', 'dynamodb:BatchWriteItem'],
  };

  async function actionsUsedBy(fn: FunctionKey): Promise<Set<string>> {
    const dir = path.join(projectRoot, 'functions', fn);
    const used = new Set<string>();
    for (const entry of await readdir(dir, { recursive: true })) {
      if (!entry.endsWith('.ts')) continue;
      const source = await readFile(path.join(dir, entry), 'utf8');
      for (const [command, action] of Object.entries(COMMAND_ACTIONS)) {
        if (new RegExp(`new ${command}\\(`).test(source)) used.add(action);
      }
    }
    for (const action of OPERATOR_ONLY[fn] ?? []) used.delete(action);
    return used;
  }

  it('allows every action the function code sends, and no read-model action it never sends', async () => {
    for (const fn of FUNCTION_KEYS) {
      const used = await actionsUsedBy(fn);
      const statements = roleStatements(prod.template!, FUNCTIONS[fn].role);
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
  const functionDir = (fn: FunctionKey) => path.join(dir, fn, 'functions', fn);

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
    expect(await commandsIn('notifications', 'client-sns')).toEqual(['Publish']);
    expect(await commandsIn('notifications', 'client-sesv2')).toEqual(['SendEmail']);
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
