// First: it decides the X-Ray SDK's mode, which the SDK reads when the Tracer loads it.
import './xray-mode';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { tracingEnabled } from './xray-mode';

export interface Observability {
  logger: Logger;
  tracer: Tracer;
  metrics: Metrics;
}

let tracer: Tracer | undefined;

/**
 * The process's one Tracer, shared by the handler and the AWS clients. The first caller names the service;
 * without a name Powertools reads POWERTOOLS_SERVICE_NAME, which serverless.yml sets per function.
 */
export function processTracer(serviceName?: string): Tracer {
  tracer ??= new Tracer({ ...(serviceName === undefined ? {} : { serviceName }), enabled: tracingEnabled() });
  return tracer;
}

/**
 * Records the client's calls as X-Ray subsegments when tracing is on. Off, the client is returned untouched
 * and no Tracer is created, so local runs and tests pay nothing.
 */
export function traced<Client>(client: Client): Client {
  if (!tracingEnabled()) return client;
  return processTracer().captureAWSv3Client(client);
}

/**
 * Logger, tracer and metrics for one function, created once at module scope. The service is the function:
 * POWERTOOLS_SERVICE_NAME, which serverless.yml sets to its key (the alarms' `service` dimension; two functions
 * can run one code, as oncall-paging runs notifications'), else `fallbackName` (tests, scripts).
 */
export function createObservability(fallbackName: string): Observability {
  const serviceName = process.env.POWERTOOLS_SERVICE_NAME || fallbackName;
  return {
    logger: new Logger({ serviceName }),
    tracer: processTracer(serviceName),
    metrics: new Metrics({
      serviceName,
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'mobility-events',
    }),
  };
}
