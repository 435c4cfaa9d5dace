// Imported by shared/observability.ts before the Powertools Tracer. The X-Ray SDK that comes with the Tracer starts,
// unless told it runs in manual mode, an async hook that tracks the destruction of every promise, whether tracing is
// on or not: 18% of the instructions of a DynamoDB request (callgrind, 2026-12-07: 6.46M vs 5.29M per GetItem).
// Outside Lambda with no X-Ray daemon (dev, the emulator, tests) nothing reads the context that hook keeps, so the SDK
// starts in manual mode there. In Lambda (LAMBDA_TASK_ROOT, also set by `serverless invoke local`) the SDK sets up a
// facade segment that needs its automatic mode, tracing on or off, so it is left alone, as it is wherever a daemon is.

/** Lambda with active tracing sets the daemon address; everywhere else (tests, invoke local) tracing is off. */
export const tracingEnabled = (): boolean => process.env.AWS_XRAY_DAEMON_ADDRESS !== undefined;

/** What this module sets, so that a process started from this one (a worker, a child) can tell it from a choice. */
const SET_HERE = 'no-x-ray-daemon';

if (!tracingEnabled() && process.env.LAMBDA_TASK_ROOT === undefined)
  process.env.AWS_XRAY_MANUAL_MODE ??= SET_HERE;
else if (process.env.AWS_XRAY_MANUAL_MODE === SET_HERE) delete process.env.AWS_XRAY_MANUAL_MODE;
