import { afterEach, describe, expect, it, vi } from 'vitest';

// aws-xray-sdk-core names its SDK v3 middleware so; a traced client has it on its middleware stack.
const XRAY_MIDDLEWARE = 'XRaySDKInstrumentation';

const traceVariables = ['AWS_XRAY_DAEMON_ADDRESS', 'AWS_EXECUTION_ENV'] as const;
const saved = Object.fromEntries(traceVariables.map((name) => [name, process.env[name]]));

/** Fresh module instances: the tracer and the clients are per process, created on first use. */
async function loadWith(env: Partial<Record<(typeof traceVariables)[number], string>>) {
  for (const name of traceVariables) {
    if (env[name] === undefined) delete process.env[name];
    else process.env[name] = env[name];
  }
  vi.resetModules();
  const [clients, observability] = await Promise.all([
    import('../../../shared/aws-clients'),
    import('../../../shared/observability'),
  ]);
  return { ...clients, ...observability };
}

const middleware = (client: { middlewareStack: { identify(): string[] } }) =>
  client.middlewareStack.identify().join(' ');

afterEach(() => {
  for (const name of traceVariables) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
  vi.resetModules();
});

describe('X-Ray tracing of the AWS clients', () => {
  it('leaves the clients untouched where there is no X-Ray daemon (tests, invoke local)', async () => {
    const { dynamoClient, dynamoDocumentClient, s3, processTracer } = await loadWith({});
    expect(middleware(dynamoClient())).not.toContain(XRAY_MIDDLEWARE);
    expect(middleware(dynamoDocumentClient())).not.toContain(XRAY_MIDDLEWARE);
    expect(middleware(s3())).not.toContain(XRAY_MIDDLEWARE);
    expect(processTracer().isTracingEnabled()).toBe(false);
  });

  it('traces the DynamoDB (also through the document client) and S3 clients in Lambda with active tracing', async () => {
    const { dynamoClient, dynamoDocumentClient, s3, processTracer, createObservability } = await loadWith({
      AWS_XRAY_DAEMON_ADDRESS: '169.254.79.129:2000',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    });
    const { tracer } = createObservability('tracing-test');
    expect(middleware(dynamoClient())).toContain(XRAY_MIDDLEWARE);
    expect(middleware(dynamoDocumentClient())).toContain(XRAY_MIDDLEWARE);
    expect(middleware(s3())).toContain(XRAY_MIDDLEWARE);
    // One tracer per process: the handler's is the one the clients report to.
    expect(tracer).toBe(processTracer());
    expect(tracer.isTracingEnabled()).toBe(true);
  });
});
