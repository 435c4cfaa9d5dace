import {
  type ExplainerResult,
  type IncidentExplainer,
  type InferenceParameters,
  ModelOutputError,
  type Prompt,
} from './explanation';
import type { Incident } from './incident';

export type CircuitState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

export interface CircuitStateChange {
  from: CircuitState;
  to: CircuitState;
  /** Consecutive failures counted when the change happened. */
  consecutiveFailures: number;
  /** The failure that opened (or re-opened) the circuit. */
  reason?: string;
}

export interface CircuitBreakerOptions {
  /** Consecutive failures (timeouts included) that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before one probe is let through. */
  coolDownMs: number;
  now?: () => number;
  onStateChange?: (change: CircuitStateChange) => void;
}

/**
 * Per execution environment (module state): CLOSED lets every call through and counts consecutive failures;
 * at the threshold it is OPEN and lets none through; after the cool-down the next call is the one probe
 * (HALF_OPEN: the others are still refused), whose success closes it and whose failure opens it again.
 */
export class CircuitBreaker {
  #state: CircuitState = 'CLOSED';
  #failures = 0;
  #openedAt = 0;
  #probing = false;
  readonly #now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    if (!Number.isInteger(options.failureThreshold) || options.failureThreshold < 1)
      throw new RangeError(`failureThreshold must be a positive integer, got ${options.failureThreshold}`);
    this.#now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** Milliseconds until the next probe may go (0 when calls go through now). */
  get retryInMs(): number {
    if (this.#state !== 'OPEN') return 0;
    return Math.max(0, this.#openedAt + this.options.coolDownMs - this.#now());
  }

  /** Whether a call may go now; a true in HALF_OPEN makes the caller the probe, which must report back. */
  tryAcquire(): boolean {
    if (this.#state === 'CLOSED') return true;
    if (this.#state === 'OPEN') {
      if (this.retryInMs > 0) return false;
      this.#change('HALF_OPEN');
    }
    if (this.#probing) return false;
    this.#probing = true;
    return true;
  }

  onSuccess(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.#state !== 'CLOSED') this.#change('CLOSED');
  }

  onFailure(reason: string): void {
    this.#failures += 1;
    const probeFailed = this.#state === 'HALF_OPEN' && this.#probing;
    this.#probing = false;
    if (probeFailed || (this.#state === 'CLOSED' && this.#failures >= this.options.failureThreshold)) {
      this.#openedAt = this.#now();
      this.#change('OPEN', reason);
    }
  }

  #change(to: CircuitState, reason?: string): void {
    const from = this.#state;
    this.#state = to;
    this.options.onStateChange?.({
      from,
      to,
      consecutiveFailures: this.#failures,
      ...(reason ? { reason } : {}),
    });
  }
}

/** Thrown at once, without calling the model, while the circuit is open. */
export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError';
}

/**
 * Guards the model explainer with a circuit breaker: while it is open, explain() throws CircuitOpenError at once,
 * so the fallback (the rules) answers without waiting out the model's timeout. Unreadable model output is not
 * counted as a failure: the service answered.
 */
export class CircuitBreakingExplainer implements IncidentExplainer {
  constructor(
    private readonly model: IncidentExplainer,
    private readonly breaker: CircuitBreaker,
    private readonly describe: (error: unknown) => string,
  ) {}

  get modelId(): string {
    return this.model.modelId;
  }

  get parameters(): InferenceParameters {
    return this.model.parameters;
  }

  async explain(incident: Incident, prompt: Prompt): Promise<ExplainerResult> {
    if (!this.breaker.tryAcquire()) {
      throw new CircuitOpenError(
        this.breaker.state === 'OPEN'
          ? `circuit open after consecutive model failures; next probe in ${Math.ceil(this.breaker.retryInMs / 1000)} s`
          : 'circuit half-open; another call is probing the model',
      );
    }
    try {
      const result = await this.model.explain(incident, prompt);
      this.breaker.onSuccess();
      return result;
    } catch (error) {
      if (error instanceof ModelOutputError) this.breaker.onSuccess();
      else this.breaker.onFailure(this.describe(error));
      throw error;
    }
  }
}

const METRIC_OF_STATE: Record<CircuitState, string> = {
  OPEN: 'BedrockCircuitOpened',
  HALF_OPEN: 'BedrockCircuitHalfOpened',
  CLOSED: 'BedrockCircuitClosed',
};

/** The metric counting changes into the new state. */
export function circuitMetricName(change: CircuitStateChange): string {
  return METRIC_OF_STATE[change.to];
}
