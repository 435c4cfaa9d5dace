// The consumers map (serverless/consumers.cjs) is the one source of the event source mappings: the packaged
// template's ESMs and the local emulator's mappings must both be exactly what it declares, setting for setting.
// A hand-written `msk` event in serverless.yml, or an emulator default that differs from Lambda's, shows here.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchSizeOf, consumerGroupId, consumers, ESM_DEFAULTS } from '../../local/consumers';
import { esmDefinitionsFrom } from '../../local/esm/config';
import { resolvedServerlessConfig } from '../../local/serverless-config';
import { topicEventTypes } from '../../schemas';
import {
  type CloudFormationResource,
  type CloudFormationTemplate,
  type PackageResult,
  packageStage,
  removePackage,
} from './package-stage';

const { mskEventLogicalId } = createRequire(import.meta.url)('../../serverless/esm-extensions.cjs') as {
  mskEventLogicalId(functionKey: string, arn: string, topic: string): string;
};

const STAGE = 'local';

/** What one ESM reads and how, in one shape for the map, the template and the emulator. */
interface Mapping {
  logicalId: string;
  topic: string;
  consumerGroupId: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  startingPosition: string;
  startingPositionTimestamp?: number;
  enabled: boolean;
  filterPatterns: unknown[];
  pollers: { minimum: number; maximum: number };
}

const byId = (mappings: Mapping[]) => [...mappings].sort((a, b) => a.logicalId.localeCompare(b.logicalId));

/** What the consumers map declares for a stage whose cluster is `arn`. */
function fromConsumers(arn: string): Mapping[] {
  return Object.entries(consumers).flatMap(([fn, consumer]) =>
    (consumer.topics ?? []).map((topic) => {
      const esm = { ...ESM_DEFAULTS, ...consumer.esm } as Record<string, unknown> & {
        maximumBatchingWindow: number;
        provisionedPollerConfig: { minimumPollers: number; maximumPollers: number };
      };
      const pollers = esm.provisionedPollerConfig;
      return {
        logicalId: mskEventLogicalId(fn, arn, topic),
        topic,
        consumerGroupId: consumerGroupId('mobility-events', STAGE, fn, topic),
        batchSize: batchSizeOf(consumer, topic),
        maximumBatchingWindowSeconds: esm.maximumBatchingWindow,
        // Lambda's default for a Kafka ESM without one, and the emulator's.
        startingPosition: (esm.startingPosition as string | undefined) ?? 'TRIM_HORIZON',
        ...(esm.startingPositionTimestamp === undefined
          ? {}
          : { startingPositionTimestamp: esm.startingPositionTimestamp as number }),
        enabled: (esm.enabled as boolean | undefined) ?? true,
        filterPatterns: (esm.filterPatterns as unknown[] | undefined) ?? [],
        pollers: { minimum: pollers.minimumPollers, maximum: pollers.maximumPollers },
      };
    }),
  );
}

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are free-form JSON
type Loose = any;

function fromTemplate(template: CloudFormationTemplate): Mapping[] {
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::Lambda::EventSourceMapping')
    .map(([logicalId, resource]) => {
      const p = resource.Properties as Loose;
      expect(p.Topics, logicalId).toHaveLength(1);
      return {
        logicalId,
        topic: p.Topics[0],
        consumerGroupId: p.AmazonManagedKafkaEventSourceConfig?.ConsumerGroupId,
        batchSize: p.BatchSize,
        maximumBatchingWindowSeconds: p.MaximumBatchingWindowInSeconds,
        startingPosition: p.StartingPosition,
        ...(p.StartingPositionTimestamp === undefined
          ? {}
          : { startingPositionTimestamp: p.StartingPositionTimestamp }),
        enabled: p.Enabled ?? true,
        filterPatterns: (p.FilterCriteria?.Filters ?? []).map((filter: { Pattern: string }) =>
          JSON.parse(filter.Pattern),
        ),
        pollers: {
          minimum: p.ProvisionedPollerConfig?.MinimumPollers,
          maximum: p.ProvisionedPollerConfig?.MaximumPollers,
        },
      };
    });
}

let packaged: PackageResult;
let template: CloudFormationTemplate;
let clusterArn: string;

beforeAll(async () => {
  packaged = await packageStage({ stage: STAGE });
  if (!packaged.ok) throw new Error(`serverless package failed:\n${packaged.output}`);
  template = packaged.template!;
  const first = Object.values(template.Resources).find((r) => r.Type === 'AWS::Lambda::EventSourceMapping');
  clusterArn = first!.Properties.EventSourceArn as string;
}, 300_000);

afterAll(async () => {
  if (packaged) await removePackage(packaged);
});

describe('the consumers map', () => {
  it('declares topics that exist: in custom.kafka.topics and bound to event types in schemas/catalog.json', () => {
    const declared = Object.keys(resolvedServerlessConfig(STAGE).custom.kafka.topics);
    const consumed = [...new Set(Object.values(consumers).flatMap((consumer) => consumer.topics ?? []))];
    expect(consumed.filter((topic) => !declared.includes(topic))).toEqual([]);
    expect(consumed.filter((topic) => !topicEventTypes.get(topic)?.length)).toEqual([]);
  });

  it('is what the packaged template deploys: one ESM per function and topic, settings included', () => {
    const declared = byId(fromConsumers(clusterArn));
    expect(declared.length).toBeGreaterThan(0);
    expect(byId(fromTemplate(template))).toEqual(declared);
  });

  const declaredPollers = (logicalId: string) =>
    fromConsumers(clusterArn).find((m) => m.logicalId === logicalId)?.pollers ?? { minimum: -1, maximum: -1 };

  it('is what the local emulator runs, with the error handling the template gives each ESM', () => {
    const definitions = esmDefinitionsFrom(resolvedServerlessConfig(STAGE));
    const emulated: Mapping[] = definitions.map((d) => ({
      logicalId: d.logicalId,
      topic: d.topic,
      consumerGroupId: d.consumerGroupId,
      batchSize: d.batchSize,
      maximumBatchingWindowSeconds: d.maximumBatchingWindowMs / 1000,
      startingPosition: d.startingPosition,
      ...(d.startingPositionTimestamp === undefined
        ? {}
        : { startingPositionTimestamp: d.startingPositionTimestamp }),
      enabled: d.enabled,
      filterPatterns: d.filterPatterns,
      // The emulator provisions no pollers; it lets as many batches be in flight as Lambda would (5 per poller).
      pollers: { minimum: declaredPollers(d.logicalId).minimum, maximum: d.maximumConcurrency / 5 },
    }));
    expect(byId(emulated)).toEqual(byId(fromConsumers(clusterArn)));
    for (const d of definitions) {
      const p = template.Resources[d.logicalId]!.Properties as Loose;
      expect(
        {
          retries: d.maximumRetryAttempts,
          age: d.maximumRecordAgeInSeconds,
          bisect: d.bisectBatchOnFunctionError,
          partial: d.reportBatchItemFailures,
        },
        d.logicalId,
      ).toEqual({
        retries: p.MaximumRetryAttempts,
        age: p.MaximumRecordAgeInSeconds,
        bisect: p.BisectBatchOnFunctionError,
        partial: (p.FunctionResponseTypes ?? []).includes('ReportBatchItemFailures'),
      });
    }
  });

  it('would catch a template edited on its own: an ESM added, dropped or changed by hand', () => {
    const declared = byId(fromConsumers(clusterArn));
    const esms = Object.entries(template.Resources).filter(
      ([, r]) => r.Type === 'AWS::Lambda::EventSourceMapping',
    );
    const [firstId, first] = esms[0]!;
    const edited = (resources: Record<string, CloudFormationResource>) =>
      byId(fromTemplate({ ...template, Resources: resources }));

    const { [firstId]: _dropped, ...withoutOne } = template.Resources;
    expect(edited(withoutOne)).not.toEqual(declared);
    const resized = { ...first, Properties: { ...first.Properties, BatchSize: 7 } };
    expect(edited({ ...template.Resources, [firstId]: resized })).not.toEqual(declared);
    const extra = {
      ...first,
      Properties: { ...first.Properties, Topics: ['booking.extra'] },
    };
    expect(edited({ ...template.Resources, HandWrittenEsm: extra })).not.toEqual(declared);
  });
});
