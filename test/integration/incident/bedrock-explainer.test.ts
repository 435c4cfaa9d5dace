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
import { FallbackIncidentExplainer } from '../../../functions/incident-explanation/fallback-explainer';
import { buildPrompt } from '../../../functions/incident-explanation/prompt';
import { RulesIncidentExplainer } from '../../../functions/incident-explanation/rules-explainer';
import { sampleIncident } from '../../unit/incident/fakes';

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
