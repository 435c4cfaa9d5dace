// Adding a function is copying one folder and adding one consumers entry (README, Layout): in a private copy of
// the service, functions/billing is copied to functions/billing-copy and given an entry in serverless/consumers.cjs,
// nothing else. The packaged template then has the function with its own role, ESM, alarms and zip, and the
// resolved config the emulator reads maps its topic to it.
import { execFile } from 'node:child_process';
import { cp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { esmDefinitionsFrom, type ResolvedServerlessConfig } from '../../local/esm/config';
import { type CloudFormationTemplate, copyService, projectRoot, runServerlessPackage } from './package-stage';

const ENTRY = `
  'billing-copy': {
    description: 'A copy of billing, added as README Layout says',
    environment: { BILLING_TABLE: variable('self:custom.tables.billing') },
    grants: { tables: { BillingTable: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query'] } },
    topics: ['booking.completed'],
    batchSize: 100,
  },`;

let dir: string;
let template: CloudFormationTemplate;
let printed: ResolvedServerlessConfig;

function serverlessPrint(cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(projectRoot, 'node_modules/osls/bin/serverless.js'), 'print', '--format', 'json'],
      {
        cwd,
        maxBuffer: 32 * 1024 * 1024,
        env: { ...process.env, AWS_PROFILE: '', SLS_TELEMETRY_DISABLED: '1' },
      },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

beforeAll(async () => {
  dir = await copyService('new-function');
  await cp(path.join(dir, 'functions', 'billing'), path.join(dir, 'functions', 'billing-copy'), {
    recursive: true,
  });
  const file = path.join(dir, 'serverless', 'consumers.cjs');
  const source = await readFile(file, 'utf8');
  const added = source.replace('const CONSUMERS = {', `const CONSUMERS = {${ENTRY}`);
  if (added === source)
    throw new Error('no `const CONSUMERS = {` in serverless/consumers.cjs; update this test');
  await writeFile(file, added);

  const artifacts = path.join(dir, 'artifacts');
  const [packaged, print] = await Promise.all([
    runServerlessPackage(dir, ['--stage', 'local', '--package', artifacts]),
    serverlessPrint(dir),
  ]);
  if (!packaged.ok) throw new Error(`serverless package failed:\n${packaged.output}`);
  template = JSON.parse(
    await readFile(path.join(artifacts, 'cloudformation-template-update-stack.json'), 'utf8'),
  ) as CloudFormationTemplate;
  printed = JSON.parse(print) as ResolvedServerlessConfig;
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a function added by copying a folder and adding a consumers entry', () => {
  it('is packaged: its Lambda function, own role, zip and error alarm', async () => {
    const lambda = template.Resources.BillingDashcopyLambdaFunction!;
    expect(lambda.Properties.Handler).toBe('functions/billing-copy/handler.handler');
    expect(lambda.Properties.Role).toEqual({ 'Fn::GetAtt': ['BillingCopyExecutionRole', 'Arn'] });
    expect((lambda.Properties.Environment as { Variables: Record<string, string> }).Variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: 'billing-copy',
      BILLING_TABLE: 'mobility-events-local-billing',
    });
    expect((await stat(path.join(dir, 'artifacts', 'billing-copy.zip'))).size).toBeGreaterThan(0);
    expect(template.Resources.BillingDashcopyErrorsAlarm?.Type).toBe('AWS::CloudWatch::Alarm');
  });

  it('gets its ESM with the error handling of every ESM, and a role that reads exactly its topic', () => {
    const esms = Object.entries(template.Resources).filter(
      ([id, r]) => r.Type === 'AWS::Lambda::EventSourceMapping' && id.startsWith('BillingDashcopy'),
    );
    expect(esms).toHaveLength(1);
    const p = esms[0]![1].Properties as Record<string, unknown>;
    expect(p).toMatchObject({
      Topics: ['booking.completed'],
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 0,
      AmazonManagedKafkaEventSourceConfig: {
        ConsumerGroupId: 'mobility-events-local-billing-copy-booking-completed',
      },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'] } } },
    });
    const role = template.Resources.BillingCopyExecutionRole!.Properties as {
      Policies: { PolicyDocument: { Statement: { Sid: string; Resource: unknown }[] } }[];
    };
    const statements = role.Policies[0]!.PolicyDocument.Statement;
    expect(statements.find((s) => s.Sid === 'EventSourceMappingReadTopics')?.Resource).toEqual([
      expect.stringMatching(/\/booking\.completed$/),
    ]);
    expect(statements.find((s) => s.Sid === 'TableBillingTable')).toBeDefined();
  });

  it('is run by the local emulator from the resolved config', () => {
    const mine = esmDefinitionsFrom(printed).filter((d) => d.functionKey === 'billing-copy');
    expect(mine.map((d) => [d.topic, d.handler, d.consumerGroupId, d.batchSize])).toEqual([
      [
        'booking.completed',
        'functions/billing-copy/handler.handler',
        'mobility-events-local-billing-copy-booking-completed',
        100,
      ],
    ]);
  });
});
