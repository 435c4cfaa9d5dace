// The consumers map (serverless/consumers.cjs), typed for the TypeScript side: one entry per function, with the
// topics it consumes and how its ESMs read them. serverless.yml builds its functions and `msk` events from it.
import { createRequire } from 'node:module';

export interface Consumer {
  /** Another function's folder whose handler it runs (oncall-paging runs notifications'); absent: its own. */
  code?: string;
  description: string;
  /** The topics it consumes, one ESM each; none for a function on a schedule. */
  topics?: string[];
  /** Records per invocation at most: one size for every ESM of the function, or one per topic. */
  batchSize?: number | Record<string, number>;
  /** Other `msk` event settings of every ESM of the function, over ESM_DEFAULTS. */
  esm?: Record<string, unknown>;
  schedule?: string;
  environment?: Record<string, unknown>;
  grants: Record<string, unknown>;
}

const map = createRequire(import.meta.url)('../serverless/consumers.cjs') as {
  CONSUMERS: Record<string, Consumer>;
  ESM_DEFAULTS: Record<string, unknown>;
  consumerGroupId(service: string, stage: string, functionKey: string, topic: string): string;
  batchSizeOf(entry: Consumer, topic: string): number;
  codeOf(functionKey: string): string;
  roleLogicalId(functionKey: string): string;
};

/** Function -> its entry, in serverless.yml's order. */
export const consumers: Readonly<Record<string, Consumer>> = map.CONSUMERS;
/** Settings every ESM gets unless its function's `esm` says otherwise. */
export const ESM_DEFAULTS: Readonly<Record<string, unknown>> = map.ESM_DEFAULTS;
export const consumerGroupId = map.consumerGroupId;
/** The batch size of a function's ESM on a topic. */
export const batchSizeOf = map.batchSizeOf;
/** The folder of functions/ whose handler a function runs: its own key, or the `code` it names. */
export const codeOf = map.codeOf;
/** The IAM role a function runs with: incident-explanation -> IncidentExplanationExecutionRole. */
export const roleLogicalId = map.roleLogicalId;

/** The functions that consume topics, with their topics (a function on a schedule has none). */
export function consumedTopics(): [functionKey: string, topics: string[]][] {
  return Object.entries(consumers).flatMap(([fn, consumer]) =>
    consumer.topics?.length ? [[fn, consumer.topics] as [string, string[]]] : [],
  );
}
