// Imported by shared/observability.ts before the Powertools Tracer. The X-Ray SDK that comes with the Tracer starts,
// unless told it runs in manual mode, an async hook that tracks the destruction of every promise, whether tracing is
// on or not: 18% of the instructions of a DynamoDB request (callgrind, 2026-12-07: 6.46M vs 5.29M per GetItem).
// Without an X-Ray daemon (tracing off: local runs, tests, a stage without active tracing) nothing reads the context
// that hook keeps, so the SDK starts in manual mode there. With tracing on it keeps its default, automatic mode.
if (process.env.AWS_XRAY_DAEMON_ADDRESS === undefined) process.env.AWS_XRAY_MANUAL_MODE ??= '1';
