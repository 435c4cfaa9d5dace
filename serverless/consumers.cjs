'use strict';
// The functions of this service, one entry each: what a function consumes, how its event source mappings read it,
// and what else its deployment needs (environment, IAM grants). The one place a function is declared. serverless.yml
// takes `functions:` from `functions` below (handler, role and `msk` events derived: one ESM per topic), so the
// packaged ESMs, the IAM roles (serverless/iam.cjs), alarms and redrive policies built from them, and the local
// emulator (which reads the resolved config) all follow it; local/generate-events.ts writes sample events per
// consumer from it. Which event type a topic carries is schemas/catalog.json's business, not this file's.
//
// Per function (the folder functions/<key>/ has its code, unless `code` names another; handler
// functions/<code>/handler.handler, role <Key>ExecutionRole and POWERTOOLS_SERVICE_NAME <key> are derived):
//   code           another function's folder whose handler it runs (one code, two deployments that differ in
//                  topics, environment and grants: oncall-paging runs notifications' code)
//   description, timeout, memorySize, vpc   as in a serverless.yml function (provider defaults otherwise)
//   environment    its own variables, as serverless.yml variables (variable('self:custom.tables.billing'))
//   grants         what its role may touch besides its ESMs' topics and groups (serverless/iam.cjs reads them)
//   topics         the topics it consumes, one ESM each (consumer group mobility-events-<stage>-<function>-<topic>)
//   batchSize      records per invocation at most: one number for all its ESMs, or one per topic
//                  ({ [topic]: size }, every topic named) where its topics cost a batch differently
//   esm            any other `msk` event setting for all its ESMs (maximumBatchingWindow, startingPosition,
//                  startingPositionTimestamp, filterPatterns, enabled, provisionedPollerConfig), over ESM_DEFAULTS
//   errorHandling  its ESMs' retries and record age over custom.esm.defaults in serverless.yml
//                  (serverless/esm-extensions.cjs turns them into the resources' properties)
//   schedule       instead of topics: a schedule expression (audit-digest)

// maximumBatchingWindow 0: for Kafka an absent window means 500 ms, and a partition that gets fewer than batchSize
// records waits that long, a latency floor above the 100 ms p95 target. With 0 the poller invokes with what it has;
// under load batches still fill up to batchSize. Raise it (whole seconds) for a function that prefers fewer, larger
// batches to latency. Provisioned pollers: Kafka ESMs take retries, bisect, partial batch responses and on-failure
// destinations only in provisioned mode.
const ESM_DEFAULTS = {
  maximumBatchingWindow: 0,
  provisionedPollerConfig: { minimumPollers: 1, maximumPollers: 6 },
};

// The notification log's leases: UpdateItem (+ GetItem where the condition failure returns no item); its entries:
// batched reads and writes; the local outbox channel: PutItem. notifications and oncall-paging share the table
// (one log: a notification is sent once whichever function sends it).
const NOTIFICATION_LOG_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:UpdateItem',
  'dynamodb:BatchGetItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:PutItem',
];

/** A serverless.yml variable, e.g. variable('sls:stage'); spelt so that no JS string looks like a template. */
const variable = (source) => ['$', '{', source, '}'].join('');
const CONSUMERS = {
  'incident-explanation': {
    description: 'Explains safety incidents with GenAI and opens human reviews',
    timeout: 120,
    // In the VPC: it produces to MSK (IAM auth, port 9098). Bedrock and DynamoDB need a NAT or VPC endpoints.
    vpc: variable('self:custom.deploy.vpc, null'),
    environment: {
      BEDROCK_MODEL_ID: variable('self:custom.deploy.bedrockModelId'),
      KAFKA_AUTH: variable('self:custom.deploy.kafka.auth'),
      INCIDENTS_TABLE: variable('self:custom.tables.incidents'),
      IDEMPOTENCY_TABLE: variable('self:custom.tables.incidentIdempotency'),
      KAFKA_BROKERS: variable('self:custom.deploy.kafka.brokers'),
    },
    grants: {
      tables: {
        // Views (each with its outcome), reviews and decisions read and written in batches; a decision is kept,
        // and a review a resolution finds missing created, by PartiQL INSERTs (BatchExecuteStatement: an INSERT is
        // refused when the key is taken, so the first decision wins). Query is `review`'s, run with the operator's
        // own credentials.
        IncidentsTable: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:PartiQLInsert'],
        // Read only: the outcomes earlier releases stored here, looked up for views stored without one
        // (functions/incident-explanation/explanation-records.ts). Nothing is written here any more.
        IncidentIdempotencyTable: ['dynamodb:BatchGetItem'],
      },
      // Produces the GenAI trail; these topics only, no wildcard over genai.*.
      produces: ['genai.request', 'genai.response', 'genai.hitl.requested'],
      bedrock: true,
      schemaRegistry: true,
    },
    // Not the latency-critical path: the page is (oncall-paging, < 1 s). A batch's reads and writes are a round
    // each whatever its size, so 50 records share them where 10 did (bench:e2e at 1,000 mixed events/s: 0.98 DynamoDB
    // requests per record, 1.13 with 10; short runs 10 / 50 / 10 on one boot: the page's p95 5.5 / 3.0 / 3.8 s).
    // The model bounds a batch, not its size: explainConcurrency (10) calls per partition, so a full batch of one
    // partition is 5 waves, at worst 5 x BEDROCK_TIMEOUT_MS (8 s) = 40 s of the 120 s timeout (a deploy test keeps it
    // within half). A partition has one batch in flight, so the calls to Bedrock stay at most 10 per partition.
    // Resolutions never ask the model: a batch of them is a read and a write round whatever its size, so they take
    // 200 (as notifications, whose full batches of 50 were what held them back under a backlog).
    topics: ['incident.detected', 'genai.hitl.resolved'],
    batchSize: { 'incident.detected': 50, 'genai.hitl.resolved': 200 },
  },
  'audit-append': {
    description: 'Appends compliance-critical events to the immutable audit event store',
    // In the VPC: it reaches Aurora (Secrets Manager needs a NAT or a VPC endpoint).
    vpc: variable('self:custom.deploy.auditVpc, null'),
    environment: {
      DATABASE_URL: variable('self:custom.deploy.database.url'),
      DATABASE_SECRET_ARN: variable('self:custom.deploy.database.secretArn'),
      NODE_EXTRA_CA_CERTS: variable('self:custom.deploy.database.caCertificates'),
    },
    // Its own login's secret (migration 008), never the master secret.
    grants: { databaseSecret: 'secretArn', schemaRegistry: true },
    // Up to 500 records per call: one multi-row insert per batch is what makes the append cheap. Under load the
    // batches fill by themselves; the window stays 0 so a quiet partition is not held back (p95 target 100 ms).
    topics: [
      'genai.request',
      'genai.response',
      'genai.hitl.requested',
      'genai.hitl.resolved',
      'payment.succeeded',
      'payment.failed',
    ],
    batchSize: 500,
    // The audit log must never skip a record: retry long before giving up to the destination.
    errorHandling: { maximumRetryAttempts: 10, maximumRecordAgeInSeconds: 604800 },
  },
  // External digests of the audit store: every chain head, chained to the previous digest, into the Object Lock
  // bucket (functions/audit-digest, serverless/audit-digests.yml). Reads as audit_digest_login / audit_reader.
  'audit-digest': {
    description: 'Writes a digest of every audit chain head to the Object Lock bucket',
    timeout: 30,
    memorySize: 256,
    vpc: variable('self:custom.deploy.auditVpc, null'),
    environment: {
      DATABASE_URL: variable('self:custom.deploy.database.url'),
      DATABASE_SECRET_ARN: variable('self:custom.deploy.database.digestSecretArn'),
      DATABASE_ROLE: 'audit_reader',
      NODE_EXTRA_CA_CERTS: variable('self:custom.deploy.database.caCertificates'),
      DIGEST_BUCKET: { Ref: 'AuditDigestBucket' },
    },
    // Reads the chain heads, writes digests: put and read under audit-digests/ only, no delete (the bucket
    // policy refuses deletes and any put that could replace a digest).
    grants: { databaseSecret: 'digestSecretArn', digestBucket: true },
    schedule: 'rate(5 minutes)',
  },
  'demand-prediction-update': {
    description: 'Keeps per-zone demand counts and the short-horizon forecast current',
    environment: { DEMAND_TABLE: variable('self:custom.tables.demand') },
    grants: {
      // No Scan/BatchWriteItem: clearing the read model for a rebuild is an operator step, not the function's.
      tables: { DemandTable: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'] },
      schemaRegistry: true,
    },
    // Large batches: the handler aggregates per zone-hour, so bigger batches mean fewer writes per record.
    topics: ['booking.created', 'booking.completed', 'booking.cancelled', 'vehicle.status.changed'],
    batchSize: 500,
  },
  billing: {
    description: 'Prices completed rides and keeps invoices and customer statements',
    environment: { BILLING_TABLE: variable('self:custom.tables.billing') },
    grants: {
      // Batched reads and unconditional batched writes of immutable facts (and removal of PARKED marks).
      tables: { BillingTable: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query'] },
      schemaRegistry: true,
    },
    // Invoices should appear promptly; batches of 100 keep retries cheap.
    topics: ['booking.completed', 'payment.succeeded', 'payment.failed'],
    batchSize: 100,
  },
  notifications: {
    description: 'Tells reviewers and customers what they must know, each notification once',
    environment: {
      // PAGER kept for the upgrade from a release where notifications paged: a stack update deletes its
      // incident.detected ESM only in its cleanup phase, after this function's new code and environment are live,
      // and until then it must still page (README "Per function"). Drop it once every stage runs oncall-paging.
      ONCALL_TOPIC_ARN: variable('self:custom.deploy.notifications.pagerTopicArn'),
      CUSTOMER_TOPIC_ARN: variable('self:custom.deploy.notifications.pushTopicArn'),
      EMAIL_FROM: variable('self:custom.deploy.notifications.emailFrom'),
      REVIEWERS_EMAIL: variable('self:custom.deploy.notifications.reviewersEmail'),
      NOTIFICATIONS_TABLE: variable('self:custom.tables.notifications'),
    },
    grants: {
      tables: { NotificationsTable: NOTIFICATION_LOG_ACTIONS },
      // PUSH to the customer SNS topic, EMAIL through SES from one sender (params notifications*); PAGER for
      // the upgrade, as above.
      notificationChannels: ['PAGER', 'PUSH', 'EMAIL'],
      schemaRegistry: true,
    },
    topics: ['genai.hitl.requested', 'payment.failed', 'booking.created'],
    // A batch costs the same round trips whatever its size (lease and log read, sends, log write), so when a backlog
    // builds the batch size is the function's throughput per execution environment; with the window at 0 a quiet
    // partition still gets batches of a record or two. At 50 a busy run's batches were full (bench:e2e at 1,000
    // mixed events/s: 42-44 records each, p95 14-16 s, the backlog growing); at 200 they held ~70 and it kept up
    // (p95 3.0 s on the same boot). A partition's 200 go out in one round of CHANNEL_CONCURRENCY (20) PublishBatch
    // calls, what a send attempt's bound within the lease assumes (a deploy test keeps the size within it).
    batchSize: 200,
  },
  // The on-call page: notifications' code on incident.detected alone, as a function of its own, so that a page
  // never queues behind customer or reviewer messages (their volume is the bookings') for an execution
  // environment of theirs, and so that its errors, alarms and grants are its own (it can page, nothing else).
  'oncall-paging': {
    code: 'notifications',
    description: 'Pages operations on-call for critical incidents, each page once',
    environment: {
      ONCALL_TOPIC_ARN: variable('self:custom.deploy.notifications.pagerTopicArn'),
      NOTIFICATIONS_TABLE: variable('self:custom.tables.notifications'),
    },
    grants: {
      tables: { NotificationsTable: NOTIFICATION_LOG_ACTIONS },
      notificationChannels: ['PAGER'],
      schemaRegistry: true,
    },
    topics: ['incident.detected'],
    // As notifications: a page waiting behind a full batch waits for the next invocation.
    batchSize: 200,
  },
};

/** The consumer group of one ESM: immutable once created, and unique among the account's Kafka ESMs. */
function consumerGroupId(service, stage, functionKey, topic) {
  return `${service}-${stage}-${functionKey}-${topic.replaceAll('.', '-')}`;
}

function entryOf(functionKey) {
  const entry = CONSUMERS[functionKey];
  if (!entry) throw new Error(`serverless/consumers.cjs has no entry for function "${functionKey}"`);
  return entry;
}

/** The batch size of the function's ESM on `topic`: its one size, or the one it names for the topic. */
function batchSizeOf(entry, topic) {
  const size = typeof entry.batchSize === 'number' ? entry.batchSize : entry.batchSize?.[topic];
  if (size === undefined) throw new Error(`serverless/consumers.cjs: no batch size for topic ${topic}`);
  return size;
}

/**
 * The `msk` events of one function, as serverless.yml would spell them. The cluster, service and stage stay
 * variables: osls resolves variables inside a resolved value, so every stage gets its own.
 */
function mskEventsOf(functionKey, entry = entryOf(functionKey)) {
  return (entry.topics ?? []).map((topic) => ({
    msk: {
      arn: variable('self:custom.deploy.mskClusterArn'),
      topic,
      consumerGroupId: consumerGroupId(variable('self:service'), variable('sls:stage'), functionKey, topic),
      batchSize: batchSizeOf(entry, topic),
      ...ESM_DEFAULTS,
      ...entry.esm,
    },
  }));
}

const upperFirst = (name) => name.charAt(0).toUpperCase() + name.slice(1);
/** incident-explanation -> IncidentExplanationExecutionRole (its own role, serverless/iam.cjs). */
const roleLogicalId = (functionKey) => `${functionKey.split(/[-_]/).map(upperFirst).join('')}ExecutionRole`;

const ENTRY_KEYS = [
  'code',
  'description',
  'timeout',
  'memorySize',
  'vpc',
  'environment',
  'grants',
  'topics',
  'batchSize',
  'esm',
  'errorHandling',
  'schedule',
];

/** A misspelt key would be dropped without a word; a function with neither topics nor a schedule never runs. */
function validate(functionKey, entry) {
  const where = `serverless/consumers.cjs, function "${functionKey}"`;
  const unknown = Object.keys(entry).filter((key) => !ENTRY_KEYS.includes(key));
  if (unknown.length > 0)
    throw new Error(`${where}: unknown ${unknown.join(', ')} (known: ${ENTRY_KEYS.join(', ')})`);
  if (!entry.topics?.length === !entry.schedule)
    throw new Error(`${where}: needs topics or a schedule, one of them`);
  if (entry.esm && 'batchSize' in entry.esm)
    throw new Error(`${where}: batchSize belongs in the entry (one number, or one per topic), not in esm`);
  if (entry.topics?.length) {
    const { batchSize } = entry;
    const perTopic = typeof batchSize === 'object' && batchSize !== null;
    const sizes = perTopic ? Object.values(batchSize) : [batchSize];
    if (!sizes.every((size) => Number.isInteger(size) && size >= 1))
      throw new Error(`${where}: batchSize is required: a whole number, or one per topic`);
    const named = perTopic ? Object.keys(batchSize) : entry.topics;
    const missing = entry.topics.filter((topic) => !named.includes(topic));
    const extra = named.filter((topic) => !entry.topics.includes(topic));
    if (missing.length > 0 || extra.length > 0)
      throw new Error(
        `${where}: batchSize per topic must name its topics exactly (${[
          ...missing.map((topic) => `missing ${topic}`),
          ...extra.map((topic) => `not consumed: ${topic}`),
        ].join(', ')})`,
      );
  }
  const code = entry.code === undefined ? undefined : CONSUMERS[entry.code];
  if (entry.code !== undefined && (entry.code === functionKey || !code?.topics || code.code !== undefined))
    throw new Error(
      `${where}: code must name another function of this map that consumes topics with its own code`,
    );
}

/** The folder of functions/ whose handler a function runs: its own, or the one `code` names. */
const codeOf = (functionKey, entry = entryOf(functionKey)) => entry.code ?? functionKey;

/** One serverless.yml function: the entry's settings with its handler, role, service name and events. */
function functionOf(functionKey, entry = entryOf(functionKey)) {
  validate(functionKey, entry);
  const { description, timeout, memorySize, vpc, environment, schedule } = entry;
  const settings = { description, timeout, memorySize, vpc };
  return {
    handler: `functions/${codeOf(functionKey, entry)}/handler.handler`,
    ...Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)),
    role: roleLogicalId(functionKey),
    environment: { POWERTOOLS_SERVICE_NAME: functionKey, ...environment },
    events: [...mskEventsOf(functionKey, entry), ...(schedule ? [{ schedule }] : [])],
  };
}

const keys = Object.keys(CONSUMERS);

module.exports = {
  CONSUMERS,
  ESM_DEFAULTS,
  consumerGroupId,
  batchSizeOf,
  codeOf,
  mskEventsOf,
  roleLogicalId,
  functionOf,
  // `functions: ${file(./serverless/consumers.cjs):functions}` in serverless.yml.
  functions: Object.fromEntries(keys.map((key) => [key, functionOf(key)])),
  // custom.esm.functions: the error handling a function sets over custom.esm.defaults.
  errorHandling: Object.fromEntries(
    keys.filter((key) => CONSUMERS[key].errorHandling).map((key) => [key, CONSUMERS[key].errorHandling]),
  ),
};
