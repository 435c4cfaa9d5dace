import { afterEach, describe, expect, it } from 'vitest';
import { createObservability } from '../../../shared/observability';

// The alarms watch each function's metrics by their `service` dimension, the function's key
// (serverless/alarms.cjs). oncall-paging runs notifications' code, whose handler names 'notifications'.
const saved = process.env.POWERTOOLS_SERVICE_NAME;
afterEach(() => {
  if (saved === undefined) delete process.env.POWERTOOLS_SERVICE_NAME;
  else process.env.POWERTOOLS_SERVICE_NAME = saved;
});

function serviceOfMetrics(fallback: string): unknown {
  const { metrics } = createObservability(fallback);
  metrics.addMetric('RecordsProcessed', 'Count', 1);
  const emf = metrics.serializeMetrics() as unknown as Record<string, unknown>;
  return emf.service;
}

describe("a function's service name", () => {
  it('is the one serverless.yml sets (POWERTOOLS_SERVICE_NAME), not the name its code was written with', () => {
    process.env.POWERTOOLS_SERVICE_NAME = 'oncall-paging';
    expect(serviceOfMetrics('notifications')).toBe('oncall-paging');
  });

  it("is the code's own name where nothing sets one (tests, scripts)", () => {
    delete process.env.POWERTOOLS_SERVICE_NAME;
    expect(serviceOfMetrics('notifications')).toBe('notifications');
  });
});
