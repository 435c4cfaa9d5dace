import {
  createServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type BedrockExplainerOptions,
  BedrockIncidentExplainer,
  bedrockRuntimeClient,
} from '../../../functions/incident-explanation/bedrock-explainer';
import type { CircuitStateChange } from '../../../functions/incident-explanation/circuit-breaker';
import {
  DynamoDbExplanationRecords,
  DynamoDbReviewTasks,
} from '../../../functions/incident-explanation/dynamodb-stores';
import {
  createExplainer,
  explainerSettingsFromEnv,
} from '../../../functions/incident-explanation/explainer-config';
import { FallbackIncidentExplainer } from '../../../functions/incident-explanation/fallback-explainer';
import {
  type ConsumedEvent,
  createIncidentBatchProcessor,
  DEFAULT_EXPLAIN_CONCURRENCY,
} from '../../../functions/incident-explanation/incident-batch';
import { buildPrompt } from '../../../functions/incident-explanation/prompt';
import { RulesIncidentExplainer } from '../../../functions/incident-explanation/rules-explainer';
import { createTable, incidentView, localDynamoDb } from '../../support/dynamodb';
import { InMemoryGenAiEventPublisher, sampleIncident } from '../../unit/incident/fakes';

/** A local stand-in for Bedrock Runtime's Converse API (HTTP/2 cleartext, as the SDK's default handler speaks): each request takes the next scripted answer. */
type Answer =
  | { kind: 'ok'; text: string; delayMs?: number }
  | { kind: 'error'; status: number; type: string; message: string };

interface SeenRequest {
  path: string;
  body: Record<string, unknown>;
}

let server: Http2Server;
const sessions = new Set<import('node:http2').ServerHttp2Session>();
let endpoint: string;
let script: Answer[] = [];
let seen: SeenRequest[] = [];
/** Bedrock down: every request hangs until the client gives up on it. */
let down = false;

const modelAnswer = JSON.stringify({
  summary: 'The scooter braked hard, most likely to avoid a pedestrian.',
  likelyCauses: ['Pedestrian crossing', 'Brake fault'],
  recommendedAction: 'Check the brakes before the next ride.',
  confidence: 0.82,
});

async function answer(request: Http2ServerRequest, response: Http2ServerResponse) {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  seen.push({ path: request.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') });
  if (down) {
    await new Promise((resolve) => {
      request.once('close', resolve);
      setTimeout(resolve, 10_000).unref();
    });
    return;
  }
  const next = script.shift() ?? { kind: 'ok', text: modelAnswer };
  if (next.kind === 'error') {
    response.writeHead(next.status, { 'content-type': 'application/json', 'x-amzn-errortype': next.type });
    response.end(JSON.stringify({ message: next.message }));
    return;
  }
  if (next.delayMs) await new Promise((resolve) => setTimeout(resolve, next.delayMs));
  if (response.destroyed) return;
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(
    JSON.stringify({
      output: { message: { role: 'assistant', content: [{ text: next.text }] } },
      usage: { inputTokens: 231, outputTokens: 87, totalTokens: 318 },
      stopReason: 'end_turn',
      metrics: { latencyMs: 640 },
    }),
  );
}

beforeAll(async () => {
  server = createServer((request, response) => {
    answer(request, response).catch((error) => {
      response.writeHead(500);
      response.end(String(error));
    });
  });
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const session of sessions) session.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  script = [];
  seen = [];
  down = false;
});

const modelId = 'anthropic.claude-3-5-haiku-20241022-v1:0';

function explainer(overrides: Partial<BedrockExplainerOptions> = {}) {
  const options: BedrockExplainerOptions = {
    modelId,
    timeoutMs: 2000,
    maxAttempts: 3,
    parameters: { maxTokens: 512, temperature: 0.2 },
    endpoint,
    clientConfig: { region: 'eu-west-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } },
    ...overrides,
  };
  return new BedrockIncidentExplainer(bedrockRuntimeClient(options), options);
}

const incident = sampleIncident();
const prompt = buildPrompt(incident);

describe('BedrockIncidentExplainer against a local Converse endpoint', () => {
  it('sends the prompt through Converse and reads text, token usage and stop reason', async () => {
    const result = await explainer().explain(incident, prompt);
    expect(result).toMatchObject({
      explainer: 'MODEL',
      modelId,
      usage: { inputTokens: 231, outputTokens: 87, totalTokens: 318 },
      stopReason: 'end_turn',
      explanation: { confidence: 0.82, likelyCauses: ['Pedestrian crossing', 'Brake fault'] },
    });
    expect(result.output).toBe(modelAnswer);
    expect(seen).toHaveLength(1);
    expect(decodeURIComponent(seen[0]?.path ?? '')).toBe(`/model/${modelId}/converse`);
    expect(seen[0]?.body).toMatchObject({
      system: [{ text: prompt.system }],
      messages: [{ role: 'user', content: [{ text: prompt.user }] }],
      inferenceConfig: { maxTokens: 512, temperature: 0.2 },
    });
  });

  it('retries a throttled call (429 ThrottlingException) and then succeeds', async () => {
    script = [{ kind: 'error', status: 429, type: 'ThrottlingException', message: 'Too many requests' }];
    const started = performance.now();
    const result = await explainer({ timeoutMs: 10_000 }).explain(incident, prompt);
    const elapsedMs = performance.now() - started;
    expect(result.explainer).toBe('MODEL');
    expect(seen).toHaveLength(2);
    console.log(`throttled once then answered: ${seen.length} requests in ${Math.round(elapsedMs)} ms`);
  });

  it('gives up after maxAttempts of throttling; the fallback answers, labelled RULES_FALLBACK', async () => {
    script = Array.from({ length: 3 }, () => ({
      kind: 'error' as const,
      status: 429,
      type: 'ThrottlingException',
      message: 'Too many requests',
    }));
    const result = await new FallbackIncidentExplainer(
      // A budget well above the SDK's jittered throttling backoff (up to ~3 s for two retries).
      explainer({ timeoutMs: 10_000 }),
      new RulesIncidentExplainer(),
    ).explain(incident, prompt);
    expect(seen).toHaveLength(3);
    expect(result).toMatchObject({
      explainer: 'RULES_FALLBACK',
      modelId: 'rules/incident-explainer-v1',
      fallback: { attemptedModelId: modelId },
      usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 },
    });
    expect(result.fallback?.reason).toMatch(/Throttling/);
  });

  it('aborts a call slower than the timeout; the fallback answers, labelled RULES_FALLBACK', async () => {
    script = [{ kind: 'ok', text: modelAnswer, delayMs: 3000 }];
    const started = performance.now();
    const result = await new FallbackIncidentExplainer(
      explainer({ timeoutMs: 400, maxAttempts: 1 }),
      new RulesIncidentExplainer(),
    ).explain(incident, prompt);
    const elapsedMs = performance.now() - started;
    expect(result.explainer).toBe('RULES_FALLBACK');
    expect(result.fallback?.attemptedModelId).toBe(modelId);
    expect(result.output).not.toBe(modelAnswer);
    // The cause, not a wall-clock bound (this machine may be busy): the call was cut off, not answered late.
    expect(result.fallback?.reason).toMatch(/abort|timeout|timed out/i);
    console.log(`timeout 400 ms -> fallback after ${Math.round(elapsedMs)} ms (${result.fallback?.reason})`);
  });

  it('treats output that is not the requested JSON as a failure, never as model output', async () => {
    script = [{ kind: 'ok', text: 'I am not able to help with that.' }];
    const result = await new FallbackIncidentExplainer(explainer(), new RulesIncidentExplainer()).explain(
      incident,
      prompt,
    );
    expect(result.explainer).toBe('RULES_FALLBACK');
    expect(result.fallback?.reason).toMatch(/ModelOutputError/);
  });
});

describe('Bedrock circuit breaker, the explainer as the handler builds it (createExplainer)', () => {
  let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
  let incidentsTable: string;
  let idempotencyTable: string;
  const saved = { ...process.env };
  beforeAll(async () => {
    dynamo = await localDynamoDb();
    incidentsTable = await createTable(dynamo.client, 'IncidentsTable');
    idempotencyTable = await createTable(dynamo.client, 'IncidentIdempotencyTable');
    // What the function's environment gives the Bedrock client: the stand-in's endpoint, a region, keys.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: endpoint,
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    });
  });
  afterAll(async () => {
    process.env = saved;
    await dynamo?.stop();
  });

  it('Bedrock down for 200 incidents in one partition: the calls in flight time out, then the labelled rules at once; Bedrock back: one probe after the cool-down, explanations resume', async () => {
    const clock = { now: Date.parse('2026-12-06T10:00:00Z') };
    const changes: CircuitStateChange[] = [];
    const fallbacks: string[] = [];
    const settings = explainerSettingsFromEnv({
      BEDROCK_MODEL_ID: modelId,
      BEDROCK_TIMEOUT_MS: '300',
      BEDROCK_MAX_ATTEMPTS: '1',
      BEDROCK_CIRCUIT_FAILURES: '3',
      BEDROCK_CIRCUIT_COOLDOWN_MS: '30000',
    });
    const views = { get: (incidentId: string) => incidentView(dynamo.documents, incidentsTable, incidentId) };
    const processor = createIncidentBatchProcessor({
      explainer: createExplainer(settings, (reason) => fallbacks.push(reason), {
        now: () => clock.now,
        onStateChange: (change) => changes.push(change),
      }),
      reviews: new DynamoDbReviewTasks(dynamo.documents, incidentsTable),
      records: new DynamoDbExplanationRecords(dynamo.documents, incidentsTable, idempotencyTable),
      publisher: new InMemoryGenAiEventPublisher(),
    });
    const run = Date.now().toString(36);
    // One partition of `count` records from `from` on, in offset order: one batch.
    const batch = async (from: number, count: number) => {
      const events: ConsumedEvent[] = Array.from({ length: count }, (_, i) => ({
        topic: 'incident.detected',
        position: { partition: 0, offset: from + i },
        id: `ce-${run}-${from + i}`,
        time: '2026-12-06T10:00:00.000Z',
        data: { ...sampleIncident(), incidentId: `${run}-inc-${from + i}` },
      }));
      const results = await processor.process(events);
      expect(results.filter((result) => !result.ok)).toEqual([]);
    };

    down = true;
    await batch(0, 200);
    // The calls in flight when Bedrock went down (up to the explain concurrency) and, at most, one more from
    // each lane whose call failed before the threshold was reached; then none.
    const maxCalls = DEFAULT_EXPLAIN_CONCURRENCY + 3 - 1;
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.length).toBeLessThanOrEqual(maxCalls);
    expect(fallbacks.filter((reason) => /abort|timeout|timed out/i.test(reason))).toHaveLength(seen.length);
    expect(fallbacks.filter((reason) => reason.startsWith('CircuitOpenError'))).toHaveLength(
      200 - seen.length,
    );
    for (let i = 0; i < 200; i++) {
      const view = await views.get(`${run}-inc-${i}`);
      expect(view?.explainer, `incident ${i}`).toBe('RULES_FALLBACK');
      expect(view?.fallbackReason, `incident ${i}`).toBeTruthy();
    }
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['CLOSED->OPEN']);

    // Bedrock is back; within the cool-down the rules still answer, after it one probe closes the circuit.
    down = false;
    const whileOpen = seen.length;
    clock.now += 29_000;
    await batch(200, 1);
    expect(seen).toHaveLength(whileOpen);
    clock.now += 1_000;
    await batch(201, 1);
    await batch(202, 10);
    expect(seen).toHaveLength(whileOpen + 11);
    for (let i = 201; i < 212; i++) expect((await views.get(`${run}-inc-${i}`))?.explainer).toBe('MODEL');
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual([
      'CLOSED->OPEN',
      'OPEN->HALF_OPEN',
      'HALF_OPEN->CLOSED',
    ]);
  });
});
