'use strict';
// One IAM execution role per function, least privilege. Every function names its role
// (`role: <Function>ExecutionRole`, set by serverless/consumers.cjs), so osls creates no shared default role and
// adds none of its own `msk` statements (it only appends them to IamRoleLambdaExecution, which then does not exist).
//
// What each function may touch is the `grants` of its consumers entry. Kafka topics and consumer groups are NOT
// declared: they are read from the function's `msk` events, so a role always matches exactly the ESMs it serves.
//
// Wildcard resources, only where AWS offers nothing narrower:
// - ec2 ENI actions (Describe*, Create/DeleteNetworkInterface): the MSK event source mapping creates ENIs in the
//   cluster's subnets with the function's role, and VPC functions need the same for their own ENIs. The Describe*
//   actions support no resource-level permissions; the ENI ids do not exist before Lambda creates them.
// - xray:PutTraceSegments / PutTelemetryRecords: X-Ray supports no resource-level permissions.
// - bedrock foundation-model ARNs in `*` region: only for a cross-region inference profile (eu./us./apac./global.),
//   which may route to any region of its geography (see params.cjs).

const { CONSUMERS, roleLogicalId } = require('./consumers.cjs');
const { mskEventLogicalId } = require('./esm-extensions.cjs');

const GRANTS = Object.fromEntries(Object.entries(CONSUMERS).map(([key, entry]) => [key, entry.grants]));

const ENI_ACTIONS = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DeleteNetworkInterface',
  'ec2:DescribeVpcs',
  'ec2:DescribeSubnets',
  'ec2:DescribeSecurityGroups',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
];

const sub = (text) => ({ 'Fn::Sub': text });

function statementsFor(functionKey, fn, deploy, service, stage) {
  const grants = GRANTS[functionKey];
  if (!grants) {
    throw new Error(
      `serverless/consumers.cjs has no grants for function "${functionKey}": declare what it may access`,
    );
  }
  const functionName = fn.name || `${service}-${stage}-${functionKey}`;
  const msk = (fn.events || []).filter((event) => event.msk).map((event) => event.msk);
  const statements = [
    {
      Sid: 'OwnLogGroup',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: sub(
        `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${functionName}:*`,
      ),
    },
    {
      Sid: 'XRayNoResourceLevelPermissions',
      Effect: 'Allow',
      Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
      Resource: '*',
    },
  ];
  if (msk.length > 0 || fn.vpc) {
    statements.push({
      Sid: 'VpcNetworkInterfacesNoResourceLevelPermissions',
      Effect: 'Allow',
      Action: ENI_ACTIONS,
      Resource: '*',
    });
  }
  if (msk.length > 0) {
    const clusters = [...new Set(msk.map((event) => event.arn))];
    const topics = [...new Set(msk.map((event) => event.topic))];
    const groups = msk.map((event) => event.consumerGroupId);
    statements.push(
      {
        Sid: 'EventSourceMappingCluster',
        Effect: 'Allow',
        Action: [
          'kafka:DescribeCluster',
          'kafka:DescribeClusterV2',
          'kafka:GetBootstrapBrokers',
          'kafka-cluster:Connect',
          'kafka-cluster:DescribeClusterDynamicConfiguration',
        ],
        Resource: clusters,
      },
      {
        Sid: 'EventSourceMappingReadTopics',
        Effect: 'Allow',
        Action: ['kafka-cluster:DescribeTopic', 'kafka-cluster:ReadData'],
        Resource: topics.map((topic) => `${deploy.mskTopicArnPrefix}/${topic}`),
      },
      {
        Sid: 'EventSourceMappingConsumerGroups',
        Effect: 'Allow',
        Action: ['kafka-cluster:DescribeGroup', 'kafka-cluster:AlterGroup'],
        Resource: groups.map((group) => `${deploy.mskGroupArnPrefix}/${group}`),
      },
      // The on-failure destination. Lambda picks the object key (aws/lambda/<ESM UUID>/..., undocumented for
      // Kafka), so the prefix cannot be narrowed per function; s3:ResourceAccount guards against a re-created
      // bucket of the same name in another account (AWS advice for S3 destinations).
      {
        Sid: 'OnFailureDestinationWrite',
        Effect: 'Allow',
        Action: ['s3:PutObject'],
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'] }, '/*']] },
        Condition: { StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } } },
      },
      {
        Sid: 'OnFailureDestinationList',
        Effect: 'Allow',
        Action: ['s3:ListBucket'],
        Resource: { 'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'] },
        Condition: { StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } } },
      },
    );
  }
  if (grants.produces) {
    statements.push(
      {
        Sid: 'ProduceCluster',
        Effect: 'Allow',
        Action: [
          'kafka-cluster:Connect',
          'kafka-cluster:DescribeCluster',
          'kafka-cluster:WriteDataIdempotently',
        ],
        Resource: deploy.mskClusterArn,
      },
      {
        Sid: 'ProduceTopics',
        Effect: 'Allow',
        Action: ['kafka-cluster:DescribeTopic', 'kafka-cluster:WriteData'],
        Resource: grants.produces.map((topic) => `${deploy.mskTopicArnPrefix}/${topic}`),
      },
    );
  }
  for (const [table, actions] of Object.entries(grants.tables || {})) {
    statements.push({
      Sid: `Table${table}`,
      Effect: 'Allow',
      Action: actions,
      Resource: { 'Fn::GetAtt': [table, 'Arn'] },
    });
  }
  const databaseSecret = grants.databaseSecret && deploy.database[grants.databaseSecret];
  if (databaseSecret) {
    statements.push({
      Sid: 'DatabaseSecret',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue'],
      Resource: databaseSecret,
    });
    if (deploy.secretKmsKeyArns.length > 0) {
      statements.push({
        Sid: 'DatabaseSecretKey',
        Effect: 'Allow',
        Action: ['kms:Decrypt'],
        Resource: deploy.secretKmsKeyArns,
        Condition: {
          StringEquals: { 'kms:ViaService': sub(`secretsmanager.\${AWS::Region}.amazonaws.com`) },
        },
      });
    }
  }
  if (grants.digestBucket) {
    const bucketArn = { 'Fn::GetAtt': ['AuditDigestBucket', 'Arn'] };
    const account = { StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } } };
    statements.push(
      {
        Sid: 'AuditDigestsWriteRead',
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:GetObject'],
        Resource: { 'Fn::Join': ['', [bucketArn, '/audit-digests/*']] },
        Condition: account,
      },
      {
        Sid: 'AuditDigestsList',
        Effect: 'Allow',
        Action: ['s3:ListBucket'],
        Resource: bucketArn,
        Condition: { ...account, StringLike: { 's3:prefix': 'audit-digests/*' } },
      },
    );
  }
  // notificationChannels: the channel kinds it sends on (PAGER and PUSH are two SNS topics, EMAIL is SES from
  // one sender); a function is granted those and no other, each where the stage has it (the local stage none).
  const channels = grants.notificationChannels ?? [];
  const kinds = ['PAGER', 'PUSH', 'EMAIL'];
  if (!Array.isArray(channels) || channels.some((kind) => !kinds.includes(kind)))
    throw new Error(
      `serverless/consumers.cjs, function "${functionKey}": notificationChannels must list channel kinds (${kinds.join(', ')}), got ${JSON.stringify(channels)}`,
    );
  const { pagerTopicArn, pushTopicArn, emailFrom, sesIdentity } = deploy.notifications;
  const topics = [
    ...(channels.includes('PAGER') && pagerTopicArn ? [pagerTopicArn] : []),
    ...(channels.includes('PUSH') && pushTopicArn ? [pushTopicArn] : []),
  ];
  if (topics.length > 0)
    statements.push({
      Sid: 'NotificationTopics',
      Effect: 'Allow',
      // PublishBatch is authorised by sns:Publish (there is no sns:PublishBatch action).
      Action: ['sns:Publish'],
      Resource: topics,
    });
  if (channels.includes('EMAIL') && emailFrom && sesIdentity)
    statements.push({
      Sid: 'NotificationEmail',
      Effect: 'Allow',
      // SES v2 SendBulkEmail requires both an identity and a template resource (Service Authorization Reference;
      // the function sends an inline template, so no stored one is named: the account's templates of the region)
      // and has no ses:FromAddress condition key, which would deny every call. The sender is bounded by the
      // identity: set sesIdentity to the sender's address identity to allow that one address only.
      Action: ['ses:SendBulkEmail'],
      Resource: [
        sub(`arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:identity/${sesIdentity}`),
        sub(`arn:\${AWS::Partition}:ses:\${AWS::Region}:\${AWS::AccountId}:template/*`),
      ],
    });
  // schemaRegistry: the handler decodes with schemaRegistryFromEnv (SCHEMA_REGISTRY). GetSchemaVersion by
  // version id is authorised on the registry and schema.
  if (grants.schemaRegistry && deploy.schemaRegistry === 'glue') {
    statements.push({
      Sid: 'SchemaRegistryRead',
      Effect: 'Allow',
      Action: ['glue:GetSchemaVersion'],
      Resource: deploy.glueSchemaResources,
    });
  }
  if (grants.bedrock && deploy.bedrockResources.length > 0) {
    statements.push({
      Sid: 'BedrockInvoke',
      Effect: 'Allow',
      Action: ['bedrock:InvokeModel'],
      Resource: deploy.bedrockResources,
    });
  }
  return statements;
}

module.exports = async ({ resolveConfigurationProperty }) => {
  const functions = (await resolveConfigurationProperty(['functions'])) || {};
  const deploy = await resolveConfigurationProperty(['custom', 'deploy']);
  const service = await resolveConfigurationProperty(['service']);
  const stage = deploy.stage;
  const Resources = {};
  for (const [functionKey, fn] of Object.entries(functions)) {
    const logicalId = roleLogicalId(functionKey);
    if (fn.role !== logicalId) {
      throw new Error(
        `function "${functionKey}" must use its own role: set \`role: ${logicalId}\` (serverless/consumers.cjs does) ` +
          '(without it osls creates a shared default role for all functions)',
      );
    }
    for (const event of fn.events || []) {
      if (event.msk) mskEventLogicalId(functionKey, event.msk.arn, event.msk.topic); // validates the arn form
    }
    Resources[logicalId] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        Description: `Execution role of ${service}-${stage}-${functionKey} (serverless/iam.cjs)`,
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'lambda.amazonaws.com' },
              Action: 'sts:AssumeRole',
            },
          ],
        },
        Policies: [
          {
            PolicyName: `${functionKey}-least-privilege`,
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: statementsFor(functionKey, fn, deploy, service, stage),
            },
          },
        ],
      },
    };
  }
  return { Resources };
};

module.exports.GRANTS = GRANTS;
module.exports.roleLogicalId = roleLogicalId;
