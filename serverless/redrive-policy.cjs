'use strict';
// What an operator needs to run `npm run redrive` against this stage, as managed policies the stack creates and
// an operator's role or group attaches (nothing is attached here: who may redrive is the account's decision).
// Least privilege, derived from the functions' `msk` events like serverless/iam.cjs:
// - RedriveOperatorPolicy: find the function's ESMs, read and tag the failed-records objects (only the tags
//   redrive writes; no PutObject, no DeleteObject: the objects stay as Lambda wrote them), invoke the consumers.
// - RedriveToTopicPolicy, only for --to-topic: produce (idempotently) to the consumed topics.
// lambda:ListEventSourceMappings supports no resource-level permissions: Resource "*".

const REDRIVE_TAGS = ['redrive-status', 'redrive-at', 'redrive-via'];
const PREFIX = 'aws/lambda/';

const sub = (text) => ({ 'Fn::Sub': text });
const bucketArn = { 'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'] };
const thisAccount = { StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } } };

module.exports = async ({ resolveConfigurationProperty }) => {
  const functions = (await resolveConfigurationProperty(['functions'])) || {};
  const deploy = await resolveConfigurationProperty(['custom', 'deploy']);
  const service = await resolveConfigurationProperty(['service']);
  const stage = deploy.stage;
  const consumers = Object.entries(functions).filter(([, fn]) =>
    (fn.events || []).some((event) => event.msk),
  );
  const functionArns = consumers.map(([key, fn]) =>
    sub(
      `arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:${fn.name || `${service}-${stage}-${key}`}`,
    ),
  );
  const topics = [
    ...new Set(consumers.flatMap(([, fn]) => fn.events.filter((e) => e.msk).map((e) => e.msk.topic))),
  ].sort();
  const policy = (name, description, statements) => ({
    Type: 'AWS::IAM::ManagedPolicy',
    Properties: {
      ManagedPolicyName: `${service}-${stage}-${name}`,
      Description: description,
      PolicyDocument: { Version: '2012-10-17', Statement: statements },
    },
  });
  return {
    Resources: {
      RedriveOperatorPolicy: policy(
        'redrive',
        'npm run redrive: read and tag failed-record objects, invoke the consumers (serverless/redrive-policy.cjs)',
        [
          {
            Sid: 'FindEventSourceMappingsNoResourceLevelPermissions',
            Effect: 'Allow',
            Action: ['lambda:ListEventSourceMappings'],
            Resource: '*',
          },
          {
            Sid: 'InvokeConsumers',
            Effect: 'Allow',
            Action: ['lambda:InvokeFunction'],
            Resource: functionArns,
          },
          {
            Sid: 'ListFailedRecords',
            Effect: 'Allow',
            Action: ['s3:ListBucket'],
            Resource: bucketArn,
            Condition: { ...thisAccount, StringLike: { 's3:prefix': [`${PREFIX}*`] } },
          },
          {
            Sid: 'ReadFailedRecords',
            Effect: 'Allow',
            Action: ['s3:GetObject', 's3:GetObjectTagging'],
            Resource: { 'Fn::Join': ['', [bucketArn, `/${PREFIX}*`]] },
            Condition: thisAccount,
          },
          {
            Sid: 'MarkFailedRecordsRedriven',
            Effect: 'Allow',
            Action: ['s3:PutObjectTagging'],
            Resource: { 'Fn::Join': ['', [bucketArn, `/${PREFIX}*`]] },
            Condition: {
              ...thisAccount,
              'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': REDRIVE_TAGS },
            },
          },
        ],
      ),
      RedriveToTopicPolicy: policy(
        'redrive-to-topic',
        'npm run redrive --to-topic: produce to the consumed topics (serverless/redrive-policy.cjs)',
        [
          {
            Sid: 'ProduceCluster',
            Effect: 'Allow',
            Action: ['kafka-cluster:Connect', 'kafka-cluster:WriteDataIdempotently'],
            Resource: deploy.mskClusterArn,
          },
          {
            Sid: 'ProduceConsumedTopics',
            Effect: 'Allow',
            Action: ['kafka-cluster:DescribeTopic', 'kafka-cluster:WriteData'],
            Resource: topics.map((topic) => `${deploy.mskTopicArnPrefix}/${topic}`),
          },
        ],
      ),
    },
    Outputs: {
      RedriveOperatorPolicyArn: {
        Description: 'Attach to whoever runs npm run redrive',
        Value: { Ref: 'RedriveOperatorPolicy' },
      },
      RedriveToTopicPolicyArn: {
        Description: 'Attach as well for npm run redrive --to-topic',
        Value: { Ref: 'RedriveToTopicPolicy' },
      },
    },
  };
};

module.exports.REDRIVE_TAGS = REDRIVE_TAGS;
