// Events for the reliability suite: valid ones built from schemas/samples.ts with run-unique ids (so the
// idempotency keys and the audit store's ce_id guard never meet another run's events), encoded exactly as the
// project's producer does (CloudEvents binary headers, Confluent-framed Avro), and the malformed kinds of the
// contracts issue.
import { randomUUID } from 'node:crypto';
import type { MSKEvent } from 'aws-lambda';
import {
  explainIncident,
  type IncidentOutcome,
} from '../../../functions/incident-explanation/explain-incident';
import { toIncident } from '../../../functions/incident-explanation/incident';
import { RulesIncidentExplainer } from '../../../functions/incident-explanation/rules-explainer';
import { eventTimeField, type SampleEventType, sampleData, sampleSources } from '../../../schemas/samples';
import { type OutgoingEvent, toKafkaMessage } from '../../../shared/kafka/event-message';
import { toProducerRecord } from '../../../shared/kafka/producer';
import type { OutMessage } from '../../support/kafka';

export interface BuiltEvent {
  type: SampleEventType;
  /** CloudEvents source; with the id, the event's identity (the notification log's key). */
  source: string;
  id: string;
  bookingId: string;
  data: Record<string, unknown>;
  message: OutMessage;
}

/** Ids of one business flow (a booking and its payment, an incident and its GenAI request). */
export interface FlowIds {
  bookingId: string;
  paymentId: string;
  incidentId: string;
  requestId: string;
  reviewId: string;
}

export const newFlowIds = (): FlowIds => ({
  bookingId: randomUUID(),
  paymentId: randomUUID(),
  incidentId: randomUUID(),
  requestId: randomUUID(),
  reviewId: randomUUID(),
});

export function buildEvent(
  type: SampleEventType,
  n: number,
  ids: FlowIds,
  topic: string,
  partition?: number,
): BuiltEvent {
  const data: Record<string, unknown> = { ...sampleData[type](n) };
  for (const field of ['bookingId', 'paymentId', 'incidentId', 'requestId', 'reviewId'] as const) {
    if (field in data && data[field] !== null) data[field] = ids[field];
  }
  const key = type.startsWith('booking.') || type.startsWith('payment.') ? ids.bookingId : ids.incidentId;
  const event: OutgoingEvent = {
    topic,
    key,
    id: randomUUID(),
    type,
    source: sampleSources[type],
    subject: key,
    time: new Date(Number(data[eventTimeField[type]])).toISOString(),
    data,
  };
  const record = toProducerRecord(toKafkaMessage(event));
  return {
    type,
    source: event.source,
    id: event.id,
    bookingId: ids.bookingId,
    data,
    message: { ...record, ...(partition === undefined ? {} : { partition }) },
  };
}

/** Every topic mixedEvents produces to. */
export const MIXED_EVENT_TOPICS = [
  'booking.created',
  'booking.completed',
  'booking.cancelled',
  'payment.succeeded',
  'payment.failed',
  'incident.detected',
  'genai.request',
  'genai.response',
  'genai.hitl.requested',
  'genai.hitl.resolved',
];

/**
 * Business flows, `count` events in all: a booking completed and paid, cancelled, or with a failed payment
 * (in turn), each followed by an incident and its GenAI request/response, every other one with a human review.
 * `topics` maps canonical topics to the run's. `from` numbers the flows, so batches made one after the other
 * continue the sample sequence.
 */
export function mixedEvents(topics: Record<string, string>, count: number, from = 0): BuiltEvent[] {
  const events: BuiltEvent[] = [];
  const add = (type: SampleEventType, n: number, ids: FlowIds) =>
    events.push(buildEvent(type, n, ids, topics[type] as string));
  for (let n = from; events.length < count; n++) {
    const ids = newFlowIds();
    add('booking.created', n, ids);
    if (n % 3 === 0) {
      add('booking.completed', n, ids);
      add('payment.succeeded', n, ids);
    } else if (n % 3 === 1) add('booking.cancelled', n, ids);
    else add('payment.failed', n, ids);
    add('incident.detected', n, ids);
    add('genai.request', n, ids);
    add('genai.response', n, ids);
    if (n % 2 === 0) {
      add('genai.hitl.requested', n, ids);
      add('genai.hitl.resolved', n, ids);
    }
  }
  return events.slice(0, count);
}

/**
 * What incident-explanation does for an incident.detected event of the mix, by its own logic with the rules
 * explainer the local stage runs: the genai.* events it produces (deterministic ids; their times differ from the
 * run's) and the review it opens, if any. Nothing is stored.
 */
export function expectedExplanation(event: BuiltEvent): Promise<IncidentOutcome> {
  return explainIncident(toIncident(event.data), {}, { explainer: new RulesIncidentExplainer() });
}

/** How many genai.* events incident-explanation produces for the incident.detected events among `events`. */
export async function explanationEventCount(events: BuiltEvent[]): Promise<number> {
  const incidents = events.filter((e) => e.type === 'incident.detected');
  const outcomes = await Promise.all(incidents.map(expectedExplanation));
  return outcomes.reduce((sum, outcome) => sum + outcome.events.length, 0);
}

export type PoisonKind =
  | 'wrong-magic-byte'
  | 'unknown-schema-id'
  | 'truncated-avro'
  | 'invalid-json'
  | 'missing-ce-headers'
  | 'value-too-large'
  | 'invalid-header'
  | 'tombstone';

/**
 * Kafka headers are bytes and the ESM hands them over as byte arrays, so a header that is not a byte array
 * cannot travel through the broker: an 'invalid-header' record carries this marker header, and
 * `withInvalidHeaders` (between the emulator and the handlers) turns its value into a string, as a hand-made
 * or foreign event would.
 */
export const INVALID_HEADER_MARKER = 'x-reliability-invalid-header';

export function withInvalidHeaders(event: MSKEvent): MSKEvent {
  const records: MSKEvent['records'] = {};
  for (const [key, list] of Object.entries(event.records)) {
    records[key] = list.map((record) =>
      record.headers.some((h) => INVALID_HEADER_MARKER in h)
        ? {
            ...record,
            headers: record.headers.map((h) =>
              INVALID_HEADER_MARKER in h ? ({ [INVALID_HEADER_MARKER]: 'not-bytes' } as never) : h,
            ),
          }
        : record,
    );
  }
  return { ...event, records };
}

/** A malformed record derived from a valid event of the same topic (same key and headers unless the kind says otherwise). */
export function poison(kind: PoisonKind, valid: BuiltEvent): OutMessage {
  const value = valid.message.value as Buffer;
  const message = { ...valid.message };
  switch (kind) {
    case 'wrong-magic-byte':
      return { ...message, value: Buffer.concat([Buffer.from([0x07]), value.subarray(1)]) };
    case 'unknown-schema-id': {
      const copy = Buffer.from(value);
      copy.writeUInt32BE(0x7ffffff0, 1);
      return { ...message, value: copy };
    }
    case 'truncated-avro':
      return { ...message, value: value.subarray(0, 5 + 12) };
    case 'invalid-json': {
      const headers = new Map(message.headers);
      for (const name of headers.keys()) {
        if (name.toString() === 'content-type') headers.set(name, Buffer.from('application/json'));
      }
      return { ...message, headers, value: Buffer.from('{"bookingId": "x", "zoneId": ') };
    }
    case 'missing-ce-headers':
      return { ...message, headers: new Map() };
    case 'value-too-large':
      // Over Kafka's default 1 MiB max.message.bytes (the run's topics allow 2 MiB), valid JSON otherwise.
      return {
        ...message,
        value: Buffer.from(JSON.stringify({ ...valid.data, pad: 'x'.repeat(1_100_000) })),
      };
    case 'invalid-header': {
      const headers = new Map(message.headers);
      headers.set(Buffer.from(INVALID_HEADER_MARKER), Buffer.from('1'));
      return { ...message, headers };
    }
    case 'tombstone':
      // A deletion marker without CloudEvents headers: nothing the audit store could record.
      return { ...message, value: null, headers: new Map() };
  }
}
