// Reads the event source mappings from the resolved serverless config, so stage params and the
// resources.extensions built by serverless/esm-extensions.cjs are exactly what `serverless package` sees.
import { resolvedServerlessConfig } from '../serverless-config';
import { esmUuid } from './uuid';

export type StartingPosition = 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP';

export type FailureDestination =
  | { type: 's3'; arn: string; bucket: string }
  | { type: 'sqs'; arn: string }
  | { type: 'sns'; arn: string }
  | { type: 'kafka'; arn: string; topic: string };

export interface EsmDefinition {
  uuid: string;
  logicalId: string;
  functionKey: string;
  functionName: string;
  /** `functions/<name>/handler.handler` as in serverless.yml. */
  handler: string;
  timeoutSeconds: number;
  memorySize: number;
  topic: string;
  consumerGroupId: string;
  eventSourceArn: string;
  batchSize: number;
  maximumBatchingWindowMs: number;
  enabled: boolean;
  startingPosition: StartingPosition;
  /** Unix seconds, AT_TIMESTAMP only. */
  startingPositionTimestamp?: number;
  filterPatterns: unknown[];
  maximumRetryAttempts: number;
  maximumRecordAgeInSeconds: number;
  bisectBatchOnFunctionError: boolean;
  reportBatchItemFailures: boolean;
  destination?: FailureDestination;
  /** Upper bound of batches in flight at once (AWS: pollers x 5 invocations, capped by partitions). */
  maximumConcurrency: number;
}

export interface ResolvedServerlessConfig {
  service: string | { name: string };
  provider: { region?: string; stage?: string; timeout?: number; memorySize?: number };
  functions: Record<string, ServerlessFunction>;
  resources?: {
    Resources?: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
    extensions?: Record<string, { Properties?: Record<string, unknown> }>;
  };
}

interface ServerlessFunction {
  handler: string;
  name?: string;
  timeout?: number;
  memorySize?: number;
  events?: Array<{ msk?: MskEvent }>;
}

interface MskEvent {
  arn: string;
  topic: string;
  consumerGroupId?: string;
  batchSize?: number;
  maximumBatchingWindow?: number;
  enabled?: boolean;
  startingPosition?: StartingPosition;
  startingPositionTimestamp?: number;
  filterPatterns?: unknown[];
  provisionedPollerConfig?: { minimumPollers?: number; maximumPollers?: number };
}

const DEFAULT_BATCH_SIZE = 100;
const DEFAULT_WINDOW_MS = 500;
/** AWS caps infinite retries at 10 when an on-failure destination is configured. */
const RETRIES_CAP_WITH_DESTINATION = 10;

const alphaNumeric = (name: string) => name.replace(/[^0-9A-Za-z]/g, '');
const upperFirst = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

/** Same naming as serverless/esm-extensions.cjs and the framework's naming.js. */
export function mskEventLogicalId(functionKey: string, arn: string, topic: string): string {
  const fn = upperFirst(functionKey.replace(/-/g, 'Dash').replace(/_/g, 'Underscore'));
  const cluster = upperFirst(alphaNumeric(arn.split('/')[1] ?? '')).slice(0, 79);
  return `${fn}EventSourceMappingMSK${cluster}${upperFirst(alphaNumeric(topic)).slice(0, 79)}`;
}

export interface ToDefinitionsOptions {
  /** Bucket name for a destination pointing at a bucket resource (FAILED_RECORDS_BUCKET locally). */
  failedRecordsBucket?: string;
  accountId?: string;
  maximumConcurrency?: number;
  /**
   * Execution environments each function has locally (ESM_FUNCTION_INSTANCES). Lambda gives an ESM up to
   * maximumPollers x 5 environments; with fewer, batches beyond them only wait with their partitions held, and
   * the records behind them cannot join a batch: so by default no more batches are in flight than there are.
   */
  instances?: number;
}

export function esmDefinitionsFrom(
  config: ResolvedServerlessConfig,
  options: ToDefinitionsOptions = {},
): EsmDefinition[] {
  const definitions: EsmDefinition[] = [];
  const serviceName = typeof config.service === 'string' ? config.service : config.service.name;
  const stage = config.provider.stage ?? 'local';
  for (const [functionKey, fn] of Object.entries(config.functions ?? {})) {
    for (const event of fn.events ?? []) {
      if (!event.msk) continue;
      const msk = event.msk;
      const logicalId = mskEventLogicalId(functionKey, msk.arn, msk.topic);
      const extension = config.resources?.extensions?.[logicalId]?.Properties ?? {};
      const consumerGroupId = msk.consumerGroupId ?? esmUuid(functionKey, msk.topic, '');
      const destination = destinationFrom(extension, config, options);
      const where = `${functionKey} (topic ${msk.topic})`;
      // What Lambda refuses, refused here too, so a setting that only works locally cannot be deployed.
      if (destination?.type === 'kafka' && destination.topic === msk.topic) {
        throw new Error(`${where}: the on-failure destination is the source topic; Lambda refuses that loop`);
      }
      const maximumRecordAgeInSeconds = numberOr(extension.MaximumRecordAgeInSeconds, -1);
      if (
        maximumRecordAgeInSeconds !== -1 &&
        !(maximumRecordAgeInSeconds >= 60 && maximumRecordAgeInSeconds <= 604_800)
      ) {
        throw new Error(
          `${where}: MaximumRecordAgeInSeconds must be -1 or 60..604800, got ${maximumRecordAgeInSeconds}`,
        );
      }
      const retries = numberOr(extension.MaximumRetryAttempts, -1);
      const pollers = msk.provisionedPollerConfig?.maximumPollers ?? 1;
      definitions.push({
        uuid: esmUuid(functionKey, msk.topic, consumerGroupId),
        logicalId,
        functionKey,
        functionName: fn.name ?? `${serviceName}-${stage}-${functionKey}`,
        handler: fn.handler,
        timeoutSeconds: fn.timeout ?? config.provider.timeout ?? 6,
        memorySize: memorySizeOf(config, functionKey),
        topic: msk.topic,
        consumerGroupId,
        eventSourceArn: msk.arn,
        batchSize: msk.batchSize ?? DEFAULT_BATCH_SIZE,
        maximumBatchingWindowMs:
          msk.maximumBatchingWindow === undefined ? DEFAULT_WINDOW_MS : msk.maximumBatchingWindow * 1000,
        enabled: msk.enabled ?? true,
        startingPosition: msk.startingPosition ?? 'TRIM_HORIZON',
        ...(msk.startingPositionTimestamp === undefined
          ? {}
          : { startingPositionTimestamp: msk.startingPositionTimestamp }),
        filterPatterns: msk.filterPatterns ?? [],
        maximumRetryAttempts: retries === -1 && destination ? RETRIES_CAP_WITH_DESTINATION : retries,
        maximumRecordAgeInSeconds,
        bisectBatchOnFunctionError: extension.BisectBatchOnFunctionError === true,
        reportBatchItemFailures:
          Array.isArray(extension.FunctionResponseTypes) &&
          extension.FunctionResponseTypes.includes('ReportBatchItemFailures'),
        ...(destination ? { destination } : {}),
        maximumConcurrency:
          options.maximumConcurrency ?? Math.max(1, Math.min(pollers * 5, options.instances ?? Infinity)),
      });
    }
  }
  return definitions;
}

/** A function's memory size in MB as Lambda gives it: its own, else the provider's, else Lambda's default. */
export function memorySizeOf(config: ResolvedServerlessConfig, functionKey: string): number {
  return config.functions[functionKey]?.memorySize ?? config.provider.memorySize ?? 1024;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}

function destinationFrom(
  extension: Record<string, unknown>,
  config: ResolvedServerlessConfig,
  options: ToDefinitionsOptions,
): FailureDestination | undefined {
  const onFailure = (extension.DestinationConfig as { OnFailure?: { Destination?: unknown } } | undefined)
    ?.OnFailure?.Destination;
  if (onFailure === undefined) return undefined;
  if (typeof onFailure === 'string') return destinationFromArn(onFailure);
  const getAtt = (onFailure as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
  if (!getAtt) throw new Error(`Unsupported OnFailure destination ${JSON.stringify(onFailure)}`);
  const [resourceId] = getAtt;
  const resource = config.resources?.Resources?.[resourceId];
  if (resource?.Type !== 'AWS::S3::Bucket') {
    throw new Error(
      `OnFailure destination ${resourceId} is ${resource?.Type ?? 'missing'}; only buckets are emulated`,
    );
  }
  const bucket = options.failedRecordsBucket ?? bucketNameOf(resource.Properties?.BucketName, options);
  return { type: 's3', arn: `arn:aws:s3:::${bucket}`, bucket };
}

function bucketNameOf(name: unknown, options: ToDefinitionsOptions): string {
  if (typeof name === 'string') return name;
  const sub = (name as { 'Fn::Sub'?: string } | undefined)?.['Fn::Sub'];
  if (typeof sub === 'string')
    return sub.replace(/\$\{AWS::AccountId\}/g, options.accountId ?? '000000000000');
  throw new Error('Cannot resolve the failed-records bucket name; set FAILED_RECORDS_BUCKET');
}

export function destinationFromArn(arn: string): FailureDestination {
  if (arn.startsWith('kafka://')) return { type: 'kafka', arn, topic: arn.slice('kafka://'.length) };
  if (arn.startsWith('arn:aws:s3:::')) return { type: 's3', arn, bucket: arn.slice('arn:aws:s3:::'.length) };
  if (arn.startsWith('arn:aws:sqs:')) return { type: 'sqs', arn };
  if (arn.startsWith('arn:aws:sns:')) return { type: 'sns', arn };
  throw new Error(`Unsupported OnFailure destination ARN ${arn}`);
}

export async function loadEsmDefinitions(
  options: ToDefinitionsOptions & { stage?: string } = {},
): Promise<EsmDefinition[]> {
  const config: ResolvedServerlessConfig = resolvedServerlessConfig(options.stage);
  return esmDefinitionsFrom(config, {
    ...(process.env.FAILED_RECORDS_BUCKET ? { failedRecordsBucket: process.env.FAILED_RECORDS_BUCKET } : {}),
    ...options,
  });
}
