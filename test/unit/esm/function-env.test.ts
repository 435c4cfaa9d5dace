import { describe, expect, it } from 'vitest';
import type { ResolvedServerlessConfig } from '../../../local/esm/config';
import { functionEnvironment } from '../../../local/esm/function-env';

const config: ResolvedServerlessConfig = {
  service: 'svc',
  provider: { memorySize: 1024 },
  functions: {
    billing: { handler: 'functions/billing/handler.handler', name: 'svc-local-billing' },
    'audit-digest': { handler: 'functions/audit-digest/handler.handler', memorySize: 256 },
  },
};

describe('functionEnvironment', () => {
  it("sets the function's own memory size, else the provider's, as Lambda does (its heap follows it)", () => {
    expect(functionEnvironment(config, 'audit-digest', {}).AWS_LAMBDA_FUNCTION_MEMORY_SIZE).toBe('256');
    expect(functionEnvironment(config, 'billing', {})).toMatchObject({
      AWS_LAMBDA_FUNCTION_NAME: 'svc-local-billing',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024',
    });
  });
});
