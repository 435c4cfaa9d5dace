import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { traced } from './observability';

// One client per process, created on first use and reused across invocations. Endpoints come from the
// SDK's own AWS_ENDPOINT_URL_<SERVICE> variables, so the same code reaches dynalite, LocalStack or AWS.
let dynamoDbClient: DynamoDBClient | undefined;
let documentClient: DynamoDBDocumentClient | undefined;
let s3Client: S3Client | undefined;

/** The low-level client, for libraries that take one (Powertools idempotency); traced when X-Ray is on. */
export function dynamoClient(): DynamoDBClient {
  dynamoDbClient ??= traced(new DynamoDBClient({ maxAttempts: 5 }));
  return dynamoDbClient;
}

export function dynamoDocumentClient(): DynamoDBDocumentClient {
  // The document client shares the traced client's middleware stack, so its calls are traced too.
  documentClient ??= DynamoDBDocumentClient.from(dynamoClient(), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return documentClient;
}

export function s3(): S3Client {
  // Path-style addressing is what s3rver and LocalStack understand; AWS accepts it as well.
  s3Client ??= traced(new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3) }));
  return s3Client;
}
