// The MSK IAM token must be what MSK's reference signer (aws-msk-iam-sasl-signer-js, a dev dependency kept for
// this comparison) produces for the same credentials, region and clock: otherwise the broker refuses the login.
import { generateAuthTokenFromCredentialsProvider } from 'aws-msk-iam-sasl-signer-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mskIamToken } from '../../../shared/kafka/msk-iam-token';

const REFERENCE_USER_AGENT = 'aws-msk-iam-sasl-signer-js/1.0.3';
const NOW = new Date('2026-12-04T20:15:30.000Z');
const credentials = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE/+token=',
};

const decode = (token: string) => new URL(Buffer.from(token, 'base64url').toString('utf8'));

describe('MSK IAM token', () => {
  afterEach(() => vi.useRealTimers());

  it('is byte for byte the reference signer token, with and without a session token or expiry', async () => {
    vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
    const cases = [
      credentials,
      { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
      // Expiring in 5 minutes: both sign for 300 s instead of 900.
      { ...credentials, expiration: new Date(NOW.getTime() + 300_000) },
    ];
    for (const identity of cases) {
      for (const region of ['eu-west-1', 'us-east-1']) {
        const reference = await generateAuthTokenFromCredentialsProvider({
          region,
          awsCredentialsProvider: async () => identity,
        });
        const ours = await mskIamToken({
          region,
          credentials: async () => identity,
          userAgent: REFERENCE_USER_AGENT,
        });
        expect(ours).toBe(reference.token);
      }
    }
  });

  it('presigns kafka-cluster:Connect on the regional host for 15 minutes, unpadded base64url', async () => {
    const token = await mskIamToken({ region: 'eu-west-1', credentials: async () => credentials, now: NOW });
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    const url = decode(token);
    expect(url.origin).toBe('https://kafka.eu-west-1.amazonaws.com');
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      Action: 'kafka-cluster:Connect',
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': `${credentials.accessKeyId}/20261204/eu-west-1/kafka-cluster/aws4_request`,
      'X-Amz-Date': '20261204T201530Z',
      'X-Amz-Expires': '900',
      'X-Amz-Security-Token': credentials.sessionToken,
      'X-Amz-SignedHeaders': 'host',
      'User-Agent': 'mobility-events',
    });
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('signs for whole seconds, never past the credentials expiry', async () => {
    const expiring = { ...credentials, expiration: new Date(NOW.getTime() + 299_750) };
    const token = await mskIamToken({ region: 'eu-west-1', credentials: async () => expiring, now: NOW });
    expect(decode(token).searchParams.get('X-Amz-Expires')).toBe('299');
  });

  it('refuses to sign with empty credentials, saying so', async () => {
    await expect(
      mskIamToken({
        region: 'eu-west-1',
        credentials: async () => ({ accessKeyId: '', secretAccessKey: '' }),
      }),
    ).rejects.toThrow(/MSK IAM: the AWS credentials are empty/);
  });
});
