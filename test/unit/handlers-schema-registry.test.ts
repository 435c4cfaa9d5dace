import { afterEach, describe, expect, it, vi } from 'vitest';

// Every handler decodes through SCHEMA_REGISTRY (serverless.yml sets it on every function): each reads it at
// load, so an unknown value stops the function at start-up, naming the variable, instead of being ignored.
const HANDLERS: Record<string, { load: () => Promise<unknown>; env: Record<string, string> }> = {
  'audit-append': {
    load: () => import('../../functions/audit-append/handler'),
    env: { DATABASE_URL: 'postgres://audit@127.0.0.1:1/audit' },
  },
  billing: {
    load: () => import('../../functions/billing/handler'),
    env: { BILLING_TABLE: 'billing' },
  },
  'demand-prediction-update': {
    load: () => import('../../functions/demand-prediction-update/handler'),
    env: { DEMAND_TABLE: 'demand' },
  },
  'incident-explanation': {
    load: () => import('../../functions/incident-explanation/handler'),
    env: {
      INCIDENTS_TABLE: 'incidents',
      IDEMPOTENCY_TABLE: 'incident-idempotency',
      KAFKA_BROKERS: '127.0.0.1:1',
    },
  },
  notifications: {
    load: () => import('../../functions/notifications/handler'),
    env: { NOTIFICATIONS_TABLE: 'notifications' },
  },
};

describe('SCHEMA_REGISTRY at handler start-up', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  for (const [name, { load, env }] of Object.entries(HANDLERS)) {
    it(`${name} refuses an unknown registry`, async () => {
      vi.stubEnv('AWS_REGION', 'eu-west-1');
      for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
      vi.stubEnv('SCHEMA_REGISTRY', 'confluent');
      await expect(load()).rejects.toThrow('SCHEMA_REGISTRY must be "file" or "glue", got "confluent"');
    });
  }
});
