'use strict';
// The consumers map: which topics each function consumes, and how its event source mappings read them. The one
// place this is written: serverless.yml takes every function's `msk` events from `mskEvents` below (one per topic),
// so the packaged ESMs, the IAM roles and alarms built from those events, and the local emulator (which reads the
// resolved config) all follow it; local/generate-events.ts writes sample events per function from it. Which
// event type a topic carries is schemas/catalog.json's business, not this file's.
//
// Per function:
//   topics     the topics it consumes, one ESM each (consumer group mobility-events-<stage>-<function>-<topic>)
//   batchSize  records per invocation at most
//   esm        any other `msk` event setting for all its ESMs (maximumBatchingWindow, startingPosition,
//              startingPositionTimestamp, filterPatterns, enabled, provisionedPollerConfig), over ESM_DEFAULTS
// Retries, record age and the on-failure destination are custom.esm in serverless.yml (serverless/esm-extensions.cjs).

// maximumBatchingWindow 0: for Kafka an absent window means 500 ms, and a partition that gets fewer than batchSize
// records waits that long, a latency floor above the 100 ms p95 target. With 0 the poller invokes with what it has;
// under load batches still fill up to batchSize. Raise it (whole seconds) for a function that prefers fewer, larger
// batches to latency. Provisioned pollers: Kafka ESMs take retries, bisect, partial batch responses and on-failure
// destinations only in provisioned mode.
const ESM_DEFAULTS = {
  maximumBatchingWindow: 0,
  provisionedPollerConfig: { minimumPollers: 1, maximumPollers: 6 },
};

const CONSUMERS = {
  // Small batches: incidents are the latency-critical path (< 1 s).
  'incident-explanation': {
    topics: ['incident.detected', 'genai.hitl.resolved'],
    batchSize: 10,
  },
  // Up to 500 records per call: one multi-row insert per batch is what makes the append cheap. Under load the
  // batches fill by themselves; the window stays 0 so a quiet partition is not held back (p95 target 100 ms).
  'audit-append': {
    topics: [
      'genai.request',
      'genai.response',
      'genai.hitl.requested',
      'genai.hitl.resolved',
      'payment.succeeded',
      'payment.failed',
    ],
    batchSize: 500,
  },
  // Large batches: the handler aggregates per zone-hour, so bigger batches mean fewer writes per record.
  'demand-prediction-update': {
    topics: ['booking.created', 'booking.completed', 'booking.cancelled', 'vehicle.status.changed'],
    batchSize: 500,
  },
  // Invoices should appear promptly; batches of 100 keep retries cheap.
  billing: {
    topics: ['booking.completed', 'payment.succeeded', 'payment.failed'],
    batchSize: 100,
  },
  notifications: {
    topics: ['incident.detected', 'genai.hitl.requested', 'payment.failed', 'booking.created'],
    batchSize: 50,
  },
};

/** The consumer group of one ESM: immutable once created, and unique among the account's Kafka ESMs. */
function consumerGroupId(service, stage, functionKey, topic) {
  return `${service}-${stage}-${functionKey}-${topic.replaceAll('.', '-')}`;
}

/** A serverless.yml variable, e.g. variable('sls:stage'); spelt so that no JS string looks like a template. */
const variable = (source) => ['$', '{', source, '}'].join('');

/**
 * The `msk` events of one function, as serverless.yml would spell them. The cluster, service and stage stay
 * variables: osls resolves variables inside a resolved value, so every stage gets its own.
 */
function mskEventsOf(functionKey, consumer = CONSUMERS[functionKey]) {
  if (!consumer) throw new Error(`serverless/consumers.cjs has no entry for function "${functionKey}"`);
  return consumer.topics.map((topic) => ({
    msk: {
      arn: variable('self:custom.deploy.mskClusterArn'),
      topic,
      consumerGroupId: consumerGroupId(variable('self:service'), variable('sls:stage'), functionKey, topic),
      batchSize: consumer.batchSize,
      ...ESM_DEFAULTS,
      ...consumer.esm,
    },
  }));
}

module.exports = {
  CONSUMERS,
  ESM_DEFAULTS,
  consumerGroupId,
  mskEventsOf,
  // `${file(./serverless/consumers.cjs):mskEvents.<function>}` in serverless.yml.
  mskEvents: Object.fromEntries(Object.keys(CONSUMERS).map((key) => [key, mskEventsOf(key)])),
};
