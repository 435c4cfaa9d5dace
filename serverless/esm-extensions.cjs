'use strict';
// Builds resources.extensions for every `msk` event in serverless.yml. The `msk` event cannot express
// retries, bisect, partial batch responses or on-failure destinations, so they are merged into the
// generated AWS::Lambda::EventSourceMapping resources here, from custom.esm. Logical ids follow the
// framework's naming (lib/plugins/aws/lib/naming.js); osls rejects an extension whose id matches nothing,
// so a drift here fails `serverless package`.

const alphaNumeric = (name) => name.replace(/[^0-9A-Za-z]/g, '');
const upperFirst = (name) => name.charAt(0).toUpperCase() + name.slice(1);

function normalizedFunctionName(functionKey) {
  return upperFirst(functionKey.replace(/-/g, 'Dash').replace(/_/g, 'Underscore'));
}

function clusterToken(arn) {
  if (typeof arn === 'string') return arn.split('/')[1];
  if (arn?.['Fn::ImportValue']) return arn['Fn::ImportValue'];
  if (arn?.Ref) return arn.Ref;
  throw new Error(`msk event arn must be an ARN string, Ref or Fn::ImportValue, got ${JSON.stringify(arn)}`);
}

function mskEventLogicalId(functionKey, arn, topic) {
  const cluster = upperFirst(alphaNumeric(clusterToken(arn))).slice(0, 79);
  const topicToken = upperFirst(alphaNumeric(topic)).slice(0, 79);
  return `${normalizedFunctionName(functionKey)}EventSourceMappingMSK${cluster}${topicToken}`;
}

const DESTINATIONS = {
  s3: { 'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'] },
};

function esmProperties(settings, where) {
  const destination = DESTINATIONS[settings.onFailure];
  if (!destination) {
    throw new Error(`${where}.onFailure must be one of ${Object.keys(DESTINATIONS).join(', ')}`);
  }
  return {
    MaximumRetryAttempts: settings.maximumRetryAttempts,
    MaximumRecordAgeInSeconds: settings.maximumRecordAgeInSeconds,
    BisectBatchOnFunctionError: settings.bisectBatchOnFunctionError,
    ...(settings.reportBatchItemFailures ? { FunctionResponseTypes: ['ReportBatchItemFailures'] } : {}),
    DestinationConfig: { OnFailure: { Destination: destination } },
  };
}

// Rules every `msk` event must follow; a violation fails `serverless package` with the event named.
// - consumerGroupId: set and unique (a group id is immutable and must be unique among the account's Kafka ESMs;
//   two ESMs in one group would split the partitions between them).
// - batchSize and maximumBatchingWindow: set explicitly (for Kafka an absent window means 500 ms). The window is
//   written into the resource here too: osls drops a window of 0 (falsy), which would silently leave 500 ms.
// - provisionedPollerConfig: Kafka ESMs accept retries, bisect, partial batch responses and on-failure
//   destinations only in provisioned mode.
function validateEvent(functionKey, index, msk, settings, groups) {
  const where = `functions.${functionKey}.events.${index}.msk (topic ${msk.topic})`;
  if (!msk.consumerGroupId) throw new Error(`${where}: consumerGroupId is required`);
  const other = groups.get(msk.consumerGroupId);
  if (other)
    throw new Error(`${where}: consumerGroupId "${msk.consumerGroupId}" is already used by ${other}`);
  groups.set(msk.consumerGroupId, where);
  if (!msk.batchSize) throw new Error(`${where}: batchSize is required`);
  const window = msk.maximumBatchingWindow;
  if (!Number.isInteger(window) || window < 0 || window > 300) {
    throw new Error(
      `${where}: maximumBatchingWindow is required, whole seconds from 0 to 300 (got ${window})`,
    );
  }
  const needsProvisioned =
    settings.maximumRetryAttempts !== undefined ||
    settings.bisectBatchOnFunctionError ||
    settings.reportBatchItemFailures ||
    settings.onFailure;
  if (needsProvisioned && !msk.provisionedPollerConfig) {
    throw new Error(
      `${where}: provisionedPollerConfig is required, retries/bisect/partial failures/destinations need provisioned mode`,
    );
  }
}

// A poller group shares Event Poller Units between the ESMs of one VPC (cheaper than a dedicated set per ESM):
// at most 100 ESMs and 2,000 maximum pollers in all per group (Lambda API, ProvisionedPollerConfig).
const MAX_GROUP_ESMS = 100;
const MAX_GROUP_POLLERS = 2000;

function pollerConfig(msk, settings, groupUse) {
  const { minimumPollers, maximumPollers } = msk.provisionedPollerConfig;
  const config = { MinimumPollers: minimumPollers, MaximumPollers: maximumPollers };
  const group = settings.pollerGroupName;
  if (!group) return config;
  const use = groupUse.get(group) ?? { esms: 0, pollers: 0 };
  use.esms += 1;
  use.pollers += maximumPollers ?? 200;
  groupUse.set(group, use);
  if (use.esms > MAX_GROUP_ESMS || use.pollers > MAX_GROUP_POLLERS) {
    throw new Error(
      `custom.esm pollerGroupName "${group}": at most ${MAX_GROUP_ESMS} ESMs and ${MAX_GROUP_POLLERS} maximum pollers per group (now ${use.esms} ESMs, ${use.pollers} pollers)`,
    );
  }
  return { ...config, PollerGroupName: group };
}

module.exports = async ({ resolveConfigurationProperty }) => {
  const functions = (await resolveConfigurationProperty(['functions'])) || {};
  const esm = (await resolveConfigurationProperty(['custom', 'esm'])) || {};
  const extensions = {};
  const groups = new Map();
  const groupUse = new Map();
  for (const [functionKey, fn] of Object.entries(functions)) {
    const settings = { ...esm.defaults, ...esm.functions?.[functionKey] };
    for (const [index, event] of (fn.events || []).entries()) {
      if (!event.msk) continue;
      validateEvent(functionKey, index, event.msk, settings, groups);
      const logicalId = mskEventLogicalId(functionKey, event.msk.arn, event.msk.topic);
      extensions[logicalId] = {
        Properties: {
          MaximumBatchingWindowInSeconds: event.msk.maximumBatchingWindow,
          // The whole object: osls merges extension properties shallowly.
          ...(event.msk.provisionedPollerConfig
            ? { ProvisionedPollerConfig: pollerConfig(event.msk, settings, groupUse) }
            : {}),
          ...esmProperties(settings, `custom.esm (function ${functionKey})`),
        },
      };
    }
  }
  return extensions;
};

module.exports.mskEventLogicalId = mskEventLogicalId;
