'use strict';
// CloudWatch alarms, generated from the functions and their `msk` events so that every ESM and every function
// is covered without a hand-kept list. All alarms notify AlarmTopic (e-mail subscription: alarmEmail).
//
// - <Esm>OffsetLagAlarm, one per ESM: AWS/Lambda OffsetLag (records behind the head of the topic), dimensions
//   FunctionName + EventSourceMappingUUID (Ref of the ESM resource), Maximum over 1 min for 5 minutes.
// - <Esm>RecordAgeAlarm, one per ESM: lag as time. mobility-events OldestRecordAgeMs (each batch: now minus the
//   broker's timestamp of its oldest record; the topics are LogAppendTime), dimensions service (the function) +
//   topic (the ESM's), Maximum over 1 min. AWS has no time-based lag metric for Kafka ESMs (IteratorAge is for
//   Kinesis and DynamoDB streams; the ESM's KafkaMetrics count offsets), so the functions emit it themselves
//   (shared/msk/metrics.ts). It is only emitted when a batch is handled: a mapping that invokes nothing is caught
//   by the OffsetLag alarm instead.
// - <Fn>ErrorsAlarm: AWS/Lambda Errors, any failed invocation (a thrown batch; partial failures are reported
//   per record and show as retries, then as failed-record writes).
// - <Fn>DestinationDeliveryFailuresAlarm: AWS/Lambda DestinationDeliveryFailures, the ESM could not write a failed
//   batch to the bucket: those records are lost once Kafka retention passes.
// - FailedRecordsWrittenAlarm: AWS/S3 PutRequests on FailedRecordsBucket (request metrics, FilterId
//   failed-record-writes): an ESM gave up on a batch and wrote it to the bucket. This is the "DLQ write" signal;
//   the object key names the ESM (see README "Replay").

const { mskEventLogicalId } = require('./esm-extensions.cjs');

// Records of lag that mean "behind": incidents must flow within seconds, aggregates tolerate more.
const OFFSET_LAG_THRESHOLD = {
  'incident-explanation': 100,
  'oncall-paging': 100,
  notifications: 1000,
  default: 10000,
};

// Age of the oldest record in a batch that means "behind". The architecture asks for < 10 s on the high-priority
// flows (incident alerts and HITL workflows); 2 minutes in a row, so one slow batch (a cold start, a Bedrock
// timeout) does not page. The others tolerate minutes.
const RECORD_AGE_THRESHOLD_MS = {
  'incident-explanation:incident.detected': 10_000,
  'oncall-paging:incident.detected': 10_000,
  'notifications:genai.hitl.requested': 10_000,
  'incident-explanation': 60_000,
  notifications: 60_000,
  default: 300_000,
};
const HIGH_PRIORITY_EVALUATION_MINUTES = 2;
const EVALUATION_MINUTES = 5;

function recordAgeThreshold(functionKey, topic) {
  const highPriority = RECORD_AGE_THRESHOLD_MS[`${functionKey}:${topic}`];
  if (highPriority !== undefined) return { ms: highPriority, minutes: HIGH_PRIORITY_EVALUATION_MINUTES };
  return {
    ms: RECORD_AGE_THRESHOLD_MS[functionKey] ?? RECORD_AGE_THRESHOLD_MS.default,
    minutes: EVALUATION_MINUTES,
  };
}

const normalizedFunctionName = (functionKey) =>
  functionKey.charAt(0).toUpperCase() +
  functionKey.slice(1).replace(/-/g, 'Dash').replace(/_/g, 'Underscore');

function alarm(name, description, metric, threshold, { period = 60, evaluationPeriods = 1 } = {}) {
  return {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmName: name,
      AlarmDescription: description,
      ...metric,
      Period: period,
      EvaluationPeriods: evaluationPeriods,
      DatapointsToAlarm: evaluationPeriods,
      Threshold: threshold,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: 'AlarmTopic' }],
      OKActions: [{ Ref: 'AlarmTopic' }],
    },
  };
}

module.exports = async ({ resolveConfigurationProperty }) => {
  const functions = (await resolveConfigurationProperty(['functions'])) || {};
  const deploy = await resolveConfigurationProperty(['custom', 'deploy']);
  const service = await resolveConfigurationProperty(['service']);
  const prefix = `${service}-${deploy.stage}`;
  const metricsNamespace =
    (await resolveConfigurationProperty(['provider', 'environment', 'POWERTOOLS_METRICS_NAMESPACE'])) ||
    'mobility-events';
  const Resources = {
    // Not KMS-encrypted: CloudWatch cannot publish to a topic under the AWS managed aws/sns key.
    AlarmTopic: {
      Type: 'AWS::SNS::Topic',
      Properties: { TopicName: `${prefix}-alarms`, DisplayName: `${prefix} alarms` },
    },
  };
  if (deploy.alarmEmail) {
    Resources.AlarmEmailSubscription = {
      Type: 'AWS::SNS::Subscription',
      Properties: { TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: deploy.alarmEmail },
    };
  }
  for (const [functionKey, fn] of Object.entries(functions)) {
    const functionRef = { Ref: `${normalizedFunctionName(functionKey)}LambdaFunction` };
    const id = normalizedFunctionName(functionKey);
    Resources[`${id}ErrorsAlarm`] = alarm(
      `${prefix}-${functionKey}-errors`,
      `${functionKey} invocations failed (whole batch retried; see its logs)`,
      {
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: functionRef }],
        Statistic: 'Sum',
      },
      1,
      { period: 300 },
    );
    // Only functions with ESMs have an on-failure destination (audit-digest runs on a schedule).
    const hasEsm = (fn.events || []).some((event) => event.msk);
    if (hasEsm)
      Resources[`${id}DestinationDeliveryFailuresAlarm`] = alarm(
        `${prefix}-${functionKey}-destination-delivery-failures`,
        `${functionKey}: failed records could not be written to the failed-records bucket`,
        {
          Namespace: 'AWS/Lambda',
          MetricName: 'DestinationDeliveryFailures',
          Dimensions: [{ Name: 'FunctionName', Value: functionRef }],
          Statistic: 'Sum',
        },
        1,
      );
    const threshold = OFFSET_LAG_THRESHOLD[functionKey] ?? OFFSET_LAG_THRESHOLD.default;
    for (const event of fn.events || []) {
      if (!event.msk) continue;
      const esm = mskEventLogicalId(functionKey, event.msk.arn, event.msk.topic);
      Resources[`${esm}OffsetLagAlarm`] = alarm(
        `${prefix}-${functionKey}-${event.msk.topic}-offset-lag`,
        `${functionKey} is ${threshold}+ records behind on ${event.msk.topic} for 5 minutes`,
        {
          Namespace: 'AWS/Lambda',
          MetricName: 'OffsetLag',
          Dimensions: [
            { Name: 'FunctionName', Value: functionRef },
            { Name: 'EventSourceMappingUUID', Value: { Ref: esm } },
          ],
          Statistic: 'Maximum',
        },
        threshold,
        { evaluationPeriods: 5 },
      );
      const age = recordAgeThreshold(functionKey, event.msk.topic);
      Resources[`${esm}RecordAgeAlarm`] = alarm(
        `${prefix}-${functionKey}-${event.msk.topic}-record-age`,
        `${functionKey} handles ${event.msk.topic} records ${age.ms / 1000}+ s after they were written, ${age.minutes} minutes in a row`,
        {
          Namespace: metricsNamespace,
          MetricName: 'OldestRecordAgeMs',
          Dimensions: [
            { Name: 'service', Value: functionKey },
            { Name: 'topic', Value: event.msk.topic },
          ],
          Statistic: 'Maximum',
        },
        age.ms,
        { evaluationPeriods: age.minutes },
      );
    }
  }
  Resources.FailedRecordsWrittenAlarm = alarm(
    `${prefix}-failed-records-written`,
    'An event source mapping gave up on a batch and wrote it to the failed-records bucket (replay it)',
    {
      Namespace: 'AWS/S3',
      MetricName: 'PutRequests',
      Dimensions: [
        { Name: 'BucketName', Value: { Ref: 'FailedRecordsBucket' } },
        { Name: 'FilterId', Value: 'failed-record-writes' },
      ],
      Statistic: 'Sum',
    },
    1,
    { period: 300 },
  );
  return { Resources };
};
