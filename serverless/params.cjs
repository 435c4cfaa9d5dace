'use strict';
// Validates the deployment parameters of the stage being packaged and returns them, normalised, as
// `custom.deploy` (serverless.yml refers to `${self:custom.deploy.<name>}`, never to `${param:...}` directly).
// A missing or malformed parameter fails `serverless package|deploy` with ONE message that names every
// problem and says how to pass the value, instead of one "Value not found at param source" per reference.
//
// Parameters come from osls's own sources, in this order: `--param="name=value"` on the command line,
// `params.<stage>` in serverless.yml, then `params.default`.
// `platform: local` (set in params.local) is the local platform and LocalStack: none of the AWS values apply.

const PLATFORMS = ['aws', 'local'];
// Node.js 20+ Lambda runtimes no longer trust the Amazon CAs (RDS) by default; the runtime ships them here and
// NODE_EXTRA_CA_CERTS adds them, so audit-append can verify Aurora's certificate (database.ts: rejectUnauthorized).
const LAMBDA_CA_BUNDLE = '/var/runtime/ca-cert.pem';
const AURORA_MODES = ['create', 'import'];
const SCHEMA_REGISTRIES = ['file', 'glue'];

const patterns = {
  mskClusterArn: /^arn:aws[a-z-]*:kafka:[a-z0-9-]+:\d{12}:cluster\/[A-Za-z0-9-]+\/[A-Za-z0-9-]+$/,
  subnetId: /^subnet-[0-9a-f]{8,17}$/,
  securityGroupId: /^sg-[0-9a-f]{8,17}$/,
  vpcId: /^vpc-[0-9a-f]{8,17}$/,
  snsTopicArn: /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+(\.fifo)?$/,
  secretArn: /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/,
  kmsKeyArn: /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/.+$/,
  email: /^[^@\s,]+@[^@\s,]+\.[^@\s,]+$/,
  brokers: /^[A-Za-z0-9.-]+:\d+(,[A-Za-z0-9.-]+:\d+)*$/,
  bedrockModelId: /^[a-z0-9-]+(\.[a-z0-9-]+)+[A-Za-z0-9.:-]*$/,
  glueRegistryName: /^[A-Za-z0-9_$#.-]{1,255}$/,
};

// What each parameter is and an example value, for the error message.
const HELP = {
  mskClusterArn: 'the MSK cluster ARN (arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>)',
  kafkaBrokers:
    'the IAM bootstrap brokers, host:9098 comma-separated (aws kafka get-bootstrap-brokers --cluster-arn <arn> --query BootstrapBrokerStringSaslIam)',
  subnetIds: 'private subnet ids that reach MSK and Aurora, comma-separated (subnet-0abc...,subnet-0def...)',
  securityGroupIds:
    'security group ids for the VPC functions, comma-separated; they must be allowed into MSK on 9098 (sg-0abc...)',
  vpcId: 'the VPC of those subnets (vpc-0abc...), needed to create the Aurora security groups',
  bedrockModelId:
    'the Bedrock model or inference profile id (e.g. eu.anthropic.claude-3-haiku-20240307-v1:0)',
  alarmEmail: 'the e-mail address that receives the CloudWatch alarms (ops@example.com)',
  auroraMode: `"create" (a new Aurora Serverless v2 cluster) or "import" (an existing one)`,
  auroraSecretArn:
    "with auroraMode=import: audit-append's own secret (login audit_append_login, never the master user), JSON with host, port, username, password, dbname",
  auroraDigestSecretArn:
    "with auroraMode=import: audit-digest's own secret (login audit_digest_login), JSON with host, port, username, password, dbname",
  auroraSecretKmsKeyArn: 'with auroraMode=import, optional: the customer managed KMS key of those secrets',
  notificationsPagerTopicArn: 'the SNS topic that pages the on-call team (arn:aws:sns:...)',
  notificationsPushTopicArn: 'the SNS topic whose subscriber pushes to customer apps (arn:aws:sns:...)',
  notificationsEmailFrom: 'the SES-verified sender address of notification e-mails',
  notificationsReviewersEmail: 'the address of the human-review (HITL) reviewers',
  databaseUrl: 'the PostgreSQL URL of the local platform (postgres://user@host:port/db)',
  schemaRegistry:
    '"file" (the committed schema catalog) or "glue" (AWS Glue Schema Registry for schema versions the catalog does not know)',
  glueRegistryName:
    'with schemaRegistry=glue: the name of the Glue schema registry the producers register in',
};

function fail(stage, problems) {
  const lines = problems.map(
    ({ name, problem }) => `  - ${name}: ${problem}. Expected ${HELP[name] || name}`,
  );
  const example = problems.find((p) => p.problem === 'missing');
  const error = new Error(
    `Deployment parameters for stage "${stage}" are missing or invalid:\n${lines.join('\n')}\n` +
      `Pass each as --param="<name>=<value>" (e.g. --param="${example ? example.name : problems[0].name}=...") ` +
      `or set it under params.${stage} in serverless.yml. See README "Deploying".`,
  );
  // osls prints error.stack: keep it to the message, the trace says nothing to the person deploying.
  error.stack = error.message;
  throw error;
}

const sub = (text) => ({ 'Fn::Sub': text });

const list = (value) =>
  String(value)
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/** The ARN prefix of the cluster's topics or groups: arn:...:cluster/<name>/<uuid> -> arn:...:<kind>/<name>/<uuid> */
function kafkaResourcePrefix(clusterArn, kind) {
  return clusterArn.replace(':cluster/', `:${kind}/`);
}

/**
 * Resources bedrock:InvokeModel needs. A foundation model id is one ARN in this region. A cross-region inference
 * profile (id prefixed with a geography: eu., us., apac., global.) needs the profile ARN in this account AND the
 * foundation model in every region the profile may route to, which AWS only expresses with a region wildcard.
 */
function bedrockResources(modelId, region) {
  const geography = /^(us|eu|apac|us-gov|global)\.(.+)$/.exec(modelId);
  if (!geography) {
    return [{ 'Fn::Sub': `arn:\${AWS::Partition}:bedrock:${region}::foundation-model/${modelId}` }];
  }
  return [
    { 'Fn::Sub': `arn:\${AWS::Partition}:bedrock:${region}:\${AWS::AccountId}:inference-profile/${modelId}` },
    { 'Fn::Sub': `arn:\${AWS::Partition}:bedrock:*::foundation-model/${geography[2]}` },
  ];
}

module.exports = async ({ options, resolveVariable, resolveConfigurationProperty }) => {
  const stage = options.stage || (await resolveConfigurationProperty(['provider', 'stage'])) || 'dev';
  const region =
    options.region || (await resolveConfigurationProperty(['provider', 'region'])) || 'eu-west-1';
  const param = async (name) => {
    const value = await resolveVariable(`param:${name}, null`);
    return value === null || value === undefined || value === '' ? undefined : String(value).trim();
  };
  const problems = [];
  const required = async (name, pattern, each) => {
    const value = await param(name);
    if (value === undefined) {
      problems.push({ name, problem: 'missing' });
      return undefined;
    }
    const items = each ? list(value) : [value];
    const bad = pattern ? items.filter((item) => !pattern.test(item)) : [];
    if (bad.length > 0 || items.length === 0) {
      problems.push({ name, problem: `"${value}" is not valid` });
      return undefined;
    }
    return each ? items : value;
  };
  const oneOf = async (name, allowed, fallback) => {
    const value = (await param(name)) ?? fallback;
    if (!allowed.includes(value))
      problems.push({ name, problem: `"${value}" is not one of ${allowed.join(', ')}` });
    return value;
  };

  const platform = await oneOf('platform', PLATFORMS, 'aws');
  const logLevel = (await param('logLevel')) ?? 'INFO';
  const mskClusterArn = await required('mskClusterArn', patterns.mskClusterArn);
  const kafkaBrokers = await required('kafkaBrokers', patterns.brokers);
  const schemaRegistry = await oneOf('schemaRegistry', SCHEMA_REGISTRIES, 'file');
  const glueRegistryName =
    schemaRegistry === 'glue' ? await required('glueRegistryName', patterns.glueRegistryName) : undefined;

  let deploy;
  if (platform === 'local') {
    const databaseUrl = await required('databaseUrl', /^postgres(ql)?:\/\/.+/);
    if (problems.length > 0) fail(stage, problems);
    deploy = {
      platform,
      vpc: null,
      auditVpc: null,
      auroraMode: 'none',
      database: { url: databaseUrl, secretArn: '', digestSecretArn: '', caCertificates: '' },
      kafka: { brokers: kafkaBrokers, auth: 'none' },
      bedrockModelId: '',
      bedrockResources: [],
      notifications: {
        pagerTopicArn: '',
        pushTopicArn: '',
        emailFrom: '',
        reviewersEmail: '',
        sesIdentity: '',
      },
      secretKmsKeyArns: [],
      alarmEmail: '',
    };
  } else {
    const subnetIds = await required('subnetIds', patterns.subnetId, true);
    const securityGroupIds = await required('securityGroupIds', patterns.securityGroupId, true);
    const bedrockModelId = await required('bedrockModelId', patterns.bedrockModelId);
    const alarmEmail = await required('alarmEmail', patterns.email);
    const auroraMode = await oneOf('auroraMode', AURORA_MODES, 'create');
    const databaseName = (await param('auroraDatabaseName')) ?? 'audit';
    let database;
    // Without auroraMode=create the Aurora resources are skipped (condition AuroraCreate), but CloudFormation
    // still validates their properties: leave VpcId out rather than pass an invalid id.
    let vpcId = { Ref: 'AWS::NoValue' };
    let secretKmsKeyArns = [];
    const notifications = {
      pagerTopicArn: await required('notificationsPagerTopicArn', patterns.snsTopicArn),
      pushTopicArn: await required('notificationsPushTopicArn', patterns.snsTopicArn),
      emailFrom: await required('notificationsEmailFrom', patterns.email),
      reviewersEmail: await required('notificationsReviewersEmail', patterns.email),
    };
    // The SES identity that sends: the sender's domain unless sesIdentity names the address or another domain.
    notifications.sesIdentity =
      (await param('sesIdentity')) ?? (notifications.emailFrom ? notifications.emailFrom.split('@')[1] : '');
    if (auroraMode === 'import') {
      const secretArn = await required('auroraSecretArn', patterns.secretArn);
      const digestSecretArn = await required('auroraDigestSecretArn', patterns.secretArn);
      const kmsKey = await param('auroraSecretKmsKeyArn');
      if (kmsKey !== undefined && !patterns.kmsKeyArn.test(kmsKey)) {
        problems.push({ name: 'auroraSecretKmsKeyArn', problem: `"${kmsKey}" is not valid` });
      }
      secretKmsKeyArns = kmsKey ? [kmsKey] : [];
      // database.ts reads host, port, username, password and dbname from the secret.
      database = { url: '', secretArn, digestSecretArn, caCertificates: LAMBDA_CA_BUNDLE };
    } else {
      vpcId = await required('vpcId', patterns.vpcId);
      // Stack-owned secrets of the functions' own logins (migration 008), attached to the cluster:
      // SecretTargetAttachment adds host, port and engine to {username, password, dbname}, the shape
      // database.ts reads. The master secret (AuroraSecret) is the operator's, no function's.
      database = {
        url: '',
        secretArn: { Ref: 'AuditAppendDatabaseSecret' },
        digestSecretArn: { Ref: 'AuditDigestDatabaseSecret' },
        caCertificates: LAMBDA_CA_BUNDLE,
      };
    }
    // Lambda takes at most 5 security groups; with auroraMode=create audit-append also gets the Aurora client group.
    const maxGroups = auroraMode === 'create' ? 4 : 5;
    if (securityGroupIds && securityGroupIds.length > maxGroups) {
      problems.push({
        name: 'securityGroupIds',
        problem: `at most ${maxGroups} groups with auroraMode=${auroraMode}`,
      });
    }
    if (mskClusterArn && !mskClusterArn.includes(`:kafka:${region}:`)) {
      problems.push({
        name: 'mskClusterArn',
        problem: `the cluster is not in the deployment region ${region} (pass --region)`,
      });
    }
    if (problems.length > 0) fail(stage, problems);
    const vpc = { subnetIds, securityGroupIds };
    deploy = {
      platform,
      vpc,
      // audit-append also carries the stack's Aurora client group, which the created cluster admits on 5432.
      auditVpc:
        auroraMode === 'create'
          ? {
              subnetIds,
              securityGroupIds: [
                ...securityGroupIds,
                { 'Fn::GetAtt': ['AuroraClientSecurityGroup', 'GroupId'] },
              ],
            }
          : vpc,
      vpcId,
      auroraMode,
      auroraDatabaseName: databaseName,
      database,
      kafka: { brokers: kafkaBrokers, auth: 'iam' },
      bedrockModelId,
      bedrockResources: bedrockResources(bedrockModelId, region),
      notifications,
      secretKmsKeyArns,
      alarmEmail,
    };
  }
  const engineVersion = (await param('auroraEngineVersion')) ?? '16.6';
  return {
    // Aurora settings are read by serverless/aurora.yml in every stage (its resources carry Condition:
    // AuroraCreate), so they always have a value.
    subnetIds: deploy.vpc ? deploy.vpc.subnetIds : [],
    vpcId: { Ref: 'AWS::NoValue' },
    auroraDatabaseName: 'audit',
    auroraEngineVersion: engineVersion,
    auroraParameterGroupFamily: `aurora-postgresql${engineVersion.split('.')[0]}`,
    auroraMinCapacity: Number((await param('auroraMinCapacity')) ?? 0.5),
    auroraMaxCapacity: Number((await param('auroraMaxCapacity')) ?? 4),
    ...deploy,
    stage,
    region,
    logLevel,
    mskClusterArn,
    // Deployed tables cannot be deleted by a stack update or removal until this is turned off; the local
    // platform and LocalStack recreate theirs freely.
    deletionProtection: deploy.platform !== 'local',
    schemaRegistry,
    // The registry and its schemas: what glue:GetSchemaVersion is granted on (serverless/iam.cjs).
    glueSchemaResources: glueRegistryName
      ? [
          sub(`arn:\${AWS::Partition}:glue:${region}:\${AWS::AccountId}:registry/${glueRegistryName}`),
          sub(`arn:\${AWS::Partition}:glue:${region}:\${AWS::AccountId}:schema/${glueRegistryName}/*`),
        ]
      : [],
    mskTopicArnPrefix: kafkaResourcePrefix(mskClusterArn, 'topic'),
    mskGroupArnPrefix: kafkaResourcePrefix(mskClusterArn, 'group'),
  };
};

module.exports.kafkaResourcePrefix = kafkaResourcePrefix;
module.exports.bedrockResources = bedrockResources;
