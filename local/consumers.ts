// The consumers map (serverless/consumers.cjs), typed for the TypeScript side: which topics each function
// consumes and how its ESMs read them. serverless.yml builds its `msk` events from the same file.
import { createRequire } from 'node:module';

export interface Consumer {
  topics: string[];
  batchSize: number;
  /** Other `msk` event settings of every ESM of the function, over ESM_DEFAULTS. */
  esm?: Record<string, unknown>;
}

export interface MskEventSettings {
  arn: string;
  topic: string;
  consumerGroupId: string;
  batchSize: number;
  maximumBatchingWindow: number;
  provisionedPollerConfig: { minimumPollers: number; maximumPollers: number };
  [setting: string]: unknown;
}

const map = createRequire(import.meta.url)('../serverless/consumers.cjs') as {
  CONSUMERS: Record<string, Consumer>;
  ESM_DEFAULTS: Record<string, unknown>;
  consumerGroupId(service: string, stage: string, functionKey: string, topic: string): string;
  mskEventsOf(functionKey: string, consumer?: Consumer): { msk: MskEventSettings }[];
};

/** Function -> what it consumes, in serverless.yml's order. */
export const consumers: Readonly<Record<string, Consumer>> = map.CONSUMERS;
/** Settings every ESM gets unless its function's `esm` says otherwise. */
export const ESM_DEFAULTS: Readonly<Record<string, unknown>> = map.ESM_DEFAULTS;
export const consumerGroupId = map.consumerGroupId;
/** The `msk` events serverless.yml gets for a function, variables (cluster, service, stage) unresolved. */
export const mskEventsOf = map.mskEventsOf;
