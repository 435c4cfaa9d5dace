import { describe, expect, it, vi } from 'vitest';

// The SDK client module, replaced: what is under test is how often the reader builds a client.
const constructed: unknown[] = [];
const sent: string[] = [];
vi.mock('@aws-sdk/client-secrets-manager', () => ({
  SecretsManagerClient: class {
    constructor(config: unknown) {
      constructed.push(config);
    }
    async send(command: { input: { SecretId: string } }) {
      sent.push(command.input.SecretId);
      return { SecretString: `secret of ${command.input.SecretId}` };
    }
  },
  GetSecretValueCommand: class {
    constructor(readonly input: { SecretId: string }) {}
  },
}));

describe('secretsManagerReader', () => {
  it('builds its client on the first read and reuses it; every read asks Secrets Manager (a rotated password)', async () => {
    const { secretsManagerReader } = await import('../../../functions/audit-append/database-secret');
    const read = secretsManagerReader();
    expect(constructed).toHaveLength(0);
    expect(await read('arn:1')).toBe('secret of arn:1');
    expect(await read('arn:1')).toBe('secret of arn:1');
    expect(constructed).toEqual([{ maxAttempts: 5 }]);
    expect(sent).toEqual(['arn:1', 'arn:1']);
  });
});
