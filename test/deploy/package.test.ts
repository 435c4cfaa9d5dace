// `serverless package --stage local` (offline, into a temp --package dir) yields the deployment contract the
// issue asks for: one AWS::Lambda::EventSourceMapping per function-topic pair of serverless.yml, each with
// its own consumer group, an on-failure destination and partial batch responses. And a typo fails the build.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvedServerlessConfig } from '../../local/serverless-config';
import { copyService, runServerlessPackage } from './package-stage';

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation resources are free-form JSON
type Resource = { Type: string; Properties: Record<string, any> };

const copies: string[] = [];
// serverless.yml's variable syntax, spelt without a literal template placeholder.
const fileRef = (path: string) => ['$', '{file(', path, ')}'].join('');

/** A private copy of the service (own .serverless/.esbuild), so nothing in the shared working tree changes. */
async function serviceCopy(): Promise<string> {
  const dir = await copyService('package-test');
  copies.push(dir);
  return dir;
}

async function slsPackage(dir: string): Promise<{ ok: boolean; output: string; artifacts: string }> {
  const artifacts = join(dir, 'artifacts');
  return { ...(await runServerlessPackage(dir, ['--stage', 'local', '--package', artifacts])), artifacts };
}

/** Starts at once; runServerlessPackage still lets at most one packaging per core run at a time. */
function started<T>(work: () => Promise<T>): Promise<T> {
  const promise = work();
  promise.catch(() => {}); // awaited by its test; this only keeps an early failure from being "unhandled"
  return promise;
}

const packagedAsIs = started(async () => slsPackage(await serviceCopy()));

const packagedWithMisspeltExtension = started(async () => {
  const dir = await serviceCopy();
  // Wrap the real extensions and add one misspelt id, as a hand edit of the naming would produce.
  await writeFile(
    join(dir, 'serverless', 'typo-extensions.cjs'),
    `const real = require('./esm-extensions.cjs');
module.exports = async (context) => ({
  ...(await real(context)),
  BillingEventSourceMappingMSKMobilityeventslocalBookingcompleteed: { Properties: { MaximumRetryAttempts: 1 } },
});
`,
  );
  const yml = await readFile(join(dir, 'serverless.yml'), 'utf8');
  if (!yml.includes(fileRef('./serverless/esm-extensions.cjs'))) {
    throw new Error('serverless.yml no longer includes serverless/esm-extensions.cjs; update this test');
  }
  await writeFile(
    join(dir, 'serverless.yml'),
    yml.replace(fileRef('./serverless/esm-extensions.cjs'), fileRef('./serverless/typo-extensions.cjs')),
  );
  return slsPackage(dir);
});

const packagedWithUnknownMskKey = started(async () => {
  const dir = await serviceCopy();
  const file = join(dir, 'serverless', 'consumers.cjs');
  const consumers = await readFile(file, 'utf8');
  // maximumRetryAttempts belongs in custom.esm (resources.extensions); the msk event does not know it.
  const typo = consumers.replace(/batchSize: 100,/, 'batchSize: 100, esm: { maximumRetryAttempts: 3 },');
  if (typo === consumers)
    throw new Error('no consumer with batchSize: 100 in consumers.cjs; update this test');
  await writeFile(file, typo);
  return slsPackage(dir);
});

afterAll(async () => {
  await Promise.allSettled([packagedAsIs, packagedWithMisspeltExtension, packagedWithUnknownMskKey]);
  await Promise.all(copies.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('serverless package --stage local', () => {
  let mappings: Resource[];
  let expectedPairs: string[];

  beforeAll(async () => {
    const result = await packagedAsIs;
    expect(result.ok, result.output).toBe(true);
    const template = JSON.parse(
      await readFile(join(result.artifacts, 'cloudformation-template-update-stack.json'), 'utf8'),
    );
    mappings = Object.values<Resource>(template.Resources).filter(
      (r) => r.Type === 'AWS::Lambda::EventSourceMapping',
    );
    // What serverless.yml declares, from the resolved config (not a hard-coded number).
    const config = resolvedServerlessConfig('local');
    expectedPairs = Object.entries<{ events?: { msk?: { topic: string } }[] }>(config.functions).flatMap(
      ([name, fn]) => (fn.events ?? []).flatMap((event) => (event.msk ? [`${name} ${event.msk.topic}`] : [])),
    );
  });

  it('has one event source mapping per function-topic pair', () => {
    expect(expectedPairs.length).toBeGreaterThan(0);
    expect(new Set(expectedPairs).size).toBe(expectedPairs.length);
    expect(mappings).toHaveLength(expectedPairs.length);
    const topics = mappings.flatMap((m) => m.Properties.Topics).sort();
    expect(topics).toEqual(expectedPairs.map((pair) => pair.split(' ')[1]).sort());
  });

  it('gives every mapping its own consumer group id', () => {
    const ids = mappings.map((m) => m.Properties.AmazonManagedKafkaEventSourceConfig?.ConsumerGroupId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(mappings.length);
  });

  it('sends exhausted records to an on-failure destination and reports partial batch failures', () => {
    for (const mapping of mappings) {
      const where = String(mapping.Properties.AmazonManagedKafkaEventSourceConfig?.ConsumerGroupId);
      expect(mapping.Properties.DestinationConfig?.OnFailure?.Destination, where).toEqual({
        'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'],
      });
      expect(mapping.Properties.FunctionResponseTypes, where).toContain('ReportBatchItemFailures');
    }
  });
});

describe('packaging fails on a typo', () => {
  it('rejects an extension whose logical id matches no resource', async () => {
    const result = await packagedWithMisspeltExtension;
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/BillingEventSourceMappingMSKMobilityeventslocalBookingcompleteed/);
  });

  it('rejects an unknown key in an msk event', async () => {
    const result = await packagedWithUnknownMskKey;
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/maximumRetryAttempts/);
  });
});
