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
  if (arn && arn['Fn::ImportValue']) return arn['Fn::ImportValue'];
  if (arn && arn.Ref) return arn.Ref;
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

module.exports = async ({ resolveConfigurationProperty }) => {
  const functions = (await resolveConfigurationProperty(['functions'])) || {};
  const esm = (await resolveConfigurationProperty(['custom', 'esm'])) || {};
  const extensions = {};
  for (const [functionKey, fn] of Object.entries(functions)) {
    const settings = { ...esm.defaults, ...(esm.functions || {})[functionKey] };
    for (const event of fn.events || []) {
      if (!event.msk) continue;
      const logicalId = mskEventLogicalId(functionKey, event.msk.arn, event.msk.topic);
      extensions[logicalId] = {
        Properties: esmProperties(settings, `custom.esm (function ${functionKey})`),
      };
    }
  }
  return extensions;
};

module.exports.mskEventLogicalId = mskEventLogicalId;
