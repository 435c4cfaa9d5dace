/**
 * Clears a function's read model before its topic is replayed into it. The functions that keep a read model
 * provide one (functions/<name>/rebuild.ts); the replay tool (ops/replay.ts) registers and runs them, so the
 * port lives below both.
 */
export interface ReadModelRebuilder {
  /** The function key in serverless.yml, e.g. "demand-prediction-update". */
  functionKey: string;
  describe: string;
  clear(): Promise<void>;
}
