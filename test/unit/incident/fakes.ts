import type {
  ExplainerResult,
  IncidentExplainer,
  Prompt,
} from '../../../functions/incident-explanation/explanation';
import type { Incident } from '../../../functions/incident-explanation/incident';
import type {
  CompletedExplanation,
  ExplanationRecords,
  GenAiEventPublisher,
  IncidentView,
  OutgoingEvent,
  ReviewResolution,
  ReviewTask,
  ReviewTasks,
  StoredExplanation,
} from '../../../functions/incident-explanation/ports';
import { reviewOf } from '../../../functions/incident-explanation/resolve-review';

/** Review tasks and kept decisions, with DynamoDbReviewTasks' conditions (first decision kept; a task put if absent). */
export class InMemoryReviewTasks implements ReviewTasks {
  readonly tasks = new Map<string, ReviewTask>();
  readonly kept = new Map<string, ReviewResolution>();
  /** Calls of findAll, with the incident ids asked for. */
  readonly finds: string[][] = [];
  async findAll(incidentIds: readonly string[]): Promise<Map<string, ReviewTask>> {
    this.finds.push([...incidentIds]);
    return pick(this.tasks, incidentIds);
  }
  async findKept(incidentIds: readonly string[]): Promise<Map<string, ReviewResolution>> {
    return pick(this.kept, incidentIds);
  }
  /** Calls of saveAll, with the tasks written. */
  readonly saves: ReviewTask[][] = [];
  async saveAll(tasks: readonly ReviewTask[]): Promise<void> {
    this.saves.push(structuredClone([...tasks]));
    if (new Set(tasks.map((task) => task.incidentId)).size !== tasks.length)
      throw new Error('the same review twice in one write (DynamoDB refuses duplicate keys in a batch)');
    for (const task of tasks) this.tasks.set(task.incidentId, structuredClone(task));
  }
  /** Conditional writes, in call order. */
  readonly conditional: Array<{ kind: 'keep' | 'create'; incidentId: string; written: boolean }> = [];
  /** Calls of the batched conditional writes, with how many items each. */
  readonly conditionalCalls: Array<{ kind: 'keep' | 'create'; items: number }> = [];
  /** All at once, each through keepDecision (a test may replace that one to stage a race). */
  keepDecisions(decisions: readonly ReviewResolution[]): Promise<PromiseSettledResult<boolean>[]> {
    this.conditionalCalls.push({ kind: 'keep', items: decisions.length });
    return Promise.allSettled(decisions.map((decision) => this.keepDecision(decision)));
  }
  /** All at once, each through saveIfAbsent (likewise). */
  saveAllIfAbsent(tasks: readonly ReviewTask[]): Promise<PromiseSettledResult<boolean>[]> {
    this.conditionalCalls.push({ kind: 'create', items: tasks.length });
    return Promise.allSettled(tasks.map((task) => this.saveIfAbsent(task)));
  }
  async keepDecision(decision: ReviewResolution): Promise<boolean> {
    const written = !this.kept.has(decision.incidentId);
    if (written) this.kept.set(decision.incidentId, structuredClone(decision));
    this.conditional.push({ kind: 'keep', incidentId: decision.incidentId, written });
    return written;
  }
  async saveIfAbsent(task: ReviewTask): Promise<boolean> {
    const written = !this.tasks.has(task.incidentId);
    if (written) this.tasks.set(task.incidentId, structuredClone(task));
    this.conditional.push({ kind: 'create', incidentId: task.incidentId, written });
    return written;
  }
  async get(incidentId: string): Promise<ReviewTask | undefined> {
    return reviewOf({ task: this.tasks.get(incidentId), kept: this.kept.get(incidentId) });
  }
}

/** Copies of the entries of these keys that exist. */
function pick<T>(entries: Map<string, T>, keys: readonly string[]): Map<string, T> {
  const found = new Map<string, T>();
  for (const key of keys) {
    const value = entries.get(key);
    if (value !== undefined) found.set(key, structuredClone(value));
  }
  return found;
}

/** Outcomes with their views, as the IncidentsTable adapter stores them: one entry per incident. */
export class InMemoryExplanationRecords implements ExplanationRecords {
  readonly records = new Map<string, StoredExplanation>();
  /** Calls of find, with the incident ids asked for. */
  readonly finds: string[][] = [];
  async find(incidentIds: readonly string[]): Promise<Map<string, StoredExplanation>> {
    this.finds.push([...incidentIds]);
    const found = new Map<string, StoredExplanation>();
    for (const id of incidentIds) {
      const record = this.records.get(id);
      if (record) found.set(id, structuredClone(record));
    }
    return found;
  }
  async complete(explanations: readonly CompletedExplanation[]): Promise<void> {
    for (const { outcome, payloadHash } of explanations) {
      this.records.set(outcome.incidentId, structuredClone({ status: 'COMPLETED', outcome, payloadHash }));
    }
  }
  /** The view stored with an incident's outcome. */
  view(incidentId: string): IncidentView | undefined {
    const record = this.records.get(incidentId);
    return record?.status === 'COMPLETED' ? record.outcome.view : undefined;
  }
}

export class InMemoryGenAiEventPublisher implements GenAiEventPublisher {
  readonly published: OutgoingEvent[] = [];
  /** Calls of publish (produce requests). */
  calls = 0;
  async publish(events: OutgoingEvent[], after?: Promise<unknown>): Promise<void> {
    const copies = structuredClone(events);
    await after;
    this.calls += 1;
    this.published.push(...copies);
  }
}

/** Wraps an explainer and counts the calls that reach it. */
export class CountingExplainer implements IncidentExplainer {
  calls = 0;
  constructor(private readonly inner: IncidentExplainer) {}
  get modelId() {
    return this.inner.modelId;
  }
  get parameters() {
    return this.inner.parameters;
  }
  async explain(incident: Incident, prompt: Prompt): Promise<ExplainerResult> {
    this.calls += 1;
    return this.inner.explain(incident, prompt);
  }
}

/** An explainer answering like a model with fixed text, or failing with the given error. */
export class ScriptedModelExplainer implements IncidentExplainer {
  readonly modelId = 'test.scripted-model-v1';
  readonly parameters = { maxTokens: 512, temperature: 0.2 };
  constructor(private readonly answer: { confidence: number } | Error) {}
  async explain(): Promise<ExplainerResult> {
    if (this.answer instanceof Error) throw this.answer;
    const explanation = {
      summary: 'The scooter braked hard to avoid a pedestrian.',
      likelyCauses: ['Pedestrian crossing'],
      recommendedAction: 'Check the brakes.',
      confidence: this.answer.confidence,
    };
    return {
      explainer: 'MODEL',
      modelId: this.modelId,
      explanation,
      output: JSON.stringify(explanation),
      usage: { inputTokens: 120, outputTokens: 60, totalTokens: 180 },
      latencyMs: 42,
      stopReason: 'end_turn',
    };
  }
}

export function sampleIncident(overrides: Partial<Incident> = {}): Incident {
  return {
    incidentId: 'inc-0001',
    vehicleId: 'veh-42',
    severity: 'MEDIUM',
    anomalyType: 'HARSH_BRAKING',
    location: { lat: 52.52, lon: 13.405 },
    telemetry: { speedKmh: 31, accelerationG: -0.9 },
    detectedAt: '2026-11-23T10:00:00.000Z',
    ...overrides,
  };
}
