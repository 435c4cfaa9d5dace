// The files through which bench:e2e and its worker probe (bench/e2e-worker-probe.ts) talk: each worker thread
// announces itself in `<fn>-<threadId>.tid`; bench:e2e names the measured window in `window.json` once it has ended;
// each thread then writes what it saw in it to `<fn>-<threadId>.json` (or why it could not, `.error`).
import type { splitProfile } from './cpu-profile';

export const PROBE_WINDOW_FILE = 'window.json';

/** The measured window, wall clock in ms. */
export interface ProbeWindow {
  from: number;
  to: number;
}

export interface ProbeThread {
  fn: string;
  /** The thread's id in /proc/self/task, where bench:e2e reads its exact CPU time. */
  tid: number;
}

/** What one worker thread saw in the window. */
export interface ProbeReport extends ProbeThread, ProbeWindow {
  /** Sampled milliseconds by part (bench/cpu-profile.ts). */
  split: ReturnType<typeof splitProfile>;
  dynamodbRequests: number;
  /** The same requests by operation (BatchGetItem, Query, ...). */
  dynamodbOperations: Record<string, number>;
  /** Calls to the notification channels' stand-in: SNS (PublishBatch, 10 messages) and SES v2 (an email each). */
  snsRequests: number;
  sesRequests: number;
}
