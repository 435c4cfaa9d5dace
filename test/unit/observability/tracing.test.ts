import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';

// aws-xray-sdk-core names its SDK v3 middleware so; a traced client has it on its middleware stack.
const XRAY_MIDDLEWARE = 'XRaySDKInstrumentation';

const traceVariables = ['AWS_XRAY_DAEMON_ADDRESS', 'AWS_EXECUTION_ENV', 'AWS_XRAY_MANUAL_MODE'] as const;
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

describe("the X-Ray SDK's async context", () => {
  const XRAY_ENV = ['AWS_XRAY_DAEMON_ADDRESS', 'AWS_XRAY_MANUAL_MODE', 'LAMBDA_TASK_ROOT'];

  /** In a process of its own: the SDK decides at its first import, which a test worker has long done. */
  function startedWith(env: Record<string, string>) {
    // cls-hooked keeps a namespace's hook on even after destroyNamespace (which nulls the entry): ask for the key.
    const script = [
      "await import('./shared/observability.ts');",
      "console.log(JSON.stringify({ hook: 'AWSXRay' in (process.namespaces ?? {}), manual: process.env.AWS_XRAY_MANUAL_MODE ?? null }));",
    ].join(' ');
    const child = { ...process.env, ...env };
    for (const name of XRAY_ENV) if (!(name in env)) delete child[name];
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: child,
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    // The SDK reports what it refuses (a segment set in manual mode) on stderr, with no failure.
    expect(run.stderr).not.toMatch(/Error/);
    return JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as {
      hook: boolean;
      manual: string | null;
    };
  }

  it('is not kept outside Lambda with tracing off: no async hook on every promise (manual mode)', () => {
    expect(startedWith({})).toEqual({ hook: false, manual: 'no-x-ray-daemon' });
  });

  it('is kept with tracing on, the mode the Tracer relies on in Lambda', () => {
    expect(startedWith({ AWS_XRAY_DAEMON_ADDRESS: '169.254.79.129:2000' })).toEqual({
      hook: true,
      manual: null,
    });
  });

  it('is kept in Lambda with tracing off (and `serverless invoke local`): the SDK sets up a segment there', () => {
    expect(startedWith({ LAMBDA_TASK_ROOT: '/var/task' })).toEqual({ hook: true, manual: null });
  });

  it('is kept where a daemon is, though the process that started this one had no daemon', () => {
    const inherited = { AWS_XRAY_MANUAL_MODE: 'no-x-ray-daemon', AWS_XRAY_DAEMON_ADDRESS: '127.0.0.1:2000' };
    expect(startedWith(inherited)).toEqual({ hook: true, manual: null });
  });

  it("leaves an operator's own choice of manual mode alone", () => {
    expect(startedWith({ AWS_XRAY_MANUAL_MODE: 'true' })).toEqual({ hook: false, manual: 'true' });
  });
});
