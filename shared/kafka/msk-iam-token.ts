/**
 * The MSK IAM authentication token (SASL OAUTHBEARER): a SigV4-presigned
 * `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect`, base64url-encoded, as
 * aws-msk-iam-sasl-signer-js builds it (test/unit/contracts/msk-iam-token.test.ts compares the two byte for
 * byte; the one difference is whole seconds of expiry, below). Built here on the SDK's own signer and
 * credential chain, which every function bundles anyway: the library is CommonJS, so it brought the whole STS
 * client, every credential provider and a second copy of @smithy/signature-v4 into incident-explanation's
 * bundle (~300 KiB) for these few lines.
 */
import { formatUrl } from '@aws-sdk/util-format-url';
// The SHA-256/HMAC the SDK's own clients sign with (node:crypto underneath).
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';

/** The longest life MSK accepts for a token, and what the reference signer asks for. */
const EXPIRY_SECONDS = 900;
const USER_AGENT = 'mobility-events';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export async function mskIamToken(options: {
  region: string;
  credentials: () => Promise<AwsCredentials>;
  userAgent?: string;
  now?: Date;
}): Promise<string> {
  const credentials = await options.credentials();
  if (!credentials.accessKeyId || !credentials.secretAccessKey) {
    throw new Error('MSK IAM: the AWS credentials are empty, so no auth token can be signed');
  }
  const signingDate = options.now ?? new Date();
  // Never outlive the credentials that signed it. Whole seconds: X-Amz-Expires is an integer (the reference
  // signer passes a fraction through when the credentials expire within the 15 minutes).
  const expiresIn = credentials.expiration
    ? Math.min(Math.floor((credentials.expiration.getTime() - signingDate.getTime()) / 1000), EXPIRY_SECONDS)
    : EXPIRY_SECONDS;
  const hostname = `kafka.${options.region}.amazonaws.com`;
  const signer = new SignatureV4({
    service: 'kafka-cluster',
    region: options.region,
    credentials,
    sha256: Sha256,
    applyChecksum: false,
  });
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: 'https',
      hostname,
      path: '/',
      headers: { host: hostname },
      query: { Action: 'kafka-cluster:Connect' },
    },
    { expiresIn, signingDate },
  );
  // Added after signing, as the reference signer does.
  const query = { ...signed.query, 'User-Agent': options.userAgent ?? USER_AGENT };
  return Buffer.from(formatUrl({ ...signed, query }), 'utf8').toString('base64url');
}
