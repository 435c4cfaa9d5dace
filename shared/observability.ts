import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

export interface Observability {
  logger: Logger;
  tracer: Tracer;
  metrics: Metrics;
}

/** Logger, tracer and metrics for one function, created once at module scope. */
export function createObservability(serviceName: string): Observability {
  return {
    logger: new Logger({ serviceName }),
    tracer: new Tracer({ serviceName, enabled: process.env.AWS_XRAY_DAEMON_ADDRESS !== undefined }),
    metrics: new Metrics({
      serviceName,
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'mobility-events',
    }),
  };
}
