// The S3 client of the operations commands (audit digests, redrive's failed records): AWS, or the local stand-in
// when an endpoint is set (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; path-style, s3rver's fixed keys unless real
// credentials are in the environment).
import { S3Client } from '@aws-sdk/client-s3';

export function operationsS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  return new S3Client({
    region: env.AWS_REGION ?? 'eu-west-1',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(endpoint && !env.AWS_ACCESS_KEY_ID
      ? { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }
      : {}),
  });
}
