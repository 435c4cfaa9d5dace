/**
 * CloudEvents 1.0, Kafka protocol binding, binary content mode: the event's attributes travel as `ce_*`
 * headers, the data as the record value. W3C `traceparent` (and `tracestate`) keep their own header names
 * so tracing libraries find them; the correlation id is a CloudEvents extension (`ce_correlationid`).
 */

import { parseRfc3339 } from '../time';

export const CLOUDEVENTS_SPEC_VERSION = '1.0';

export const ceHeader = {
  id: 'ce_id',
  type: 'ce_type',
  source: 'ce_source',
  specversion: 'ce_specversion',
  time: 'ce_time',
  subject: 'ce_subject',
  datacontenttype: 'content-type',
  dataschema: 'ce_dataschema',
  correlationId: 'ce_correlationid',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

/** Attributes every project event must carry (the project requires time and subject too). */
export const requiredCeHeaders = [
  ceHeader.id,
  ceHeader.type,
  ceHeader.source,
  ceHeader.specversion,
  ceHeader.time,
  ceHeader.subject,
] as const;

/** How the problem of absent required attributes starts (the decode tells it from an invalid attribute). */
export const MISSING_CE_PREFIX = 'missing CloudEvents header(s)';

export const AVRO_CONTENT_TYPE = 'application/avro';
export const JSON_CONTENT_TYPE = 'application/json';

export interface CloudEventAttributes {
  id: string;
  /** Event type; equals the topic name, e.g. booking.created. */
  type: string;
  source: string;
  specversion: string;
  /** RFC 3339 timestamp of the occurrence. */
  time: string;
  /** The aggregate id (also the record key). */
  subject: string;
  datacontenttype: string;
  dataschema?: string;
  traceparent?: string;
  tracestate?: string;
  correlationId?: string;
}

/** Binary-mode headers for an event (producer side). */
export function cloudEventHeaders(attributes: CloudEventAttributes): Record<string, string> {
  const headers: Record<string, string> = {
    [ceHeader.id]: attributes.id,
    [ceHeader.type]: attributes.type,
    [ceHeader.source]: attributes.source,
    [ceHeader.specversion]: attributes.specversion,
    [ceHeader.time]: attributes.time,
    [ceHeader.subject]: attributes.subject,
    [ceHeader.datacontenttype]: attributes.datacontenttype,
  };
  if (attributes.dataschema !== undefined) headers[ceHeader.dataschema] = attributes.dataschema;
  if (attributes.correlationId !== undefined) headers[ceHeader.correlationId] = attributes.correlationId;
  if (attributes.traceparent !== undefined) headers[ceHeader.traceparent] = attributes.traceparent;
  if (attributes.tracestate !== undefined) headers[ceHeader.tracestate] = attributes.tracestate;
  return headers;
}

export type CloudEventReadResult =
  | { ok: true; attributes: CloudEventAttributes }
  | { ok: false; problem: string };

/**
 * Reads the attributes from decoded headers. `defaultContentType` fills `datacontenttype` when the
 * `content-type` header is absent (the value's framing already says what it is).
 */
export function readCloudEvent(
  headers: Readonly<Record<string, string>>,
  defaultContentType: string,
): CloudEventReadResult {
  const attributes = cloudEventFromHeaders(headers, defaultContentType);
  return typeof attributes === 'string' ? { ok: false, problem: attributes } : { ok: true, attributes };
}

/**
 * Upper bounds, in UTF-8 bytes, of each attribute's value. They keep every attribute the audit store indexes
 * (id, type, subject, correlation id, with topic and time) well under PostgreSQL's B-tree row limit of 2704 bytes
 * (SQLSTATE 54000), and a DynamoDB key built from source + id under its 2048-byte partition key limit.
 */
export const ceAttributeMaxBytes: Readonly<Record<string, number>> = {
  ce_id: 256,
  ce_type: 128,
  ce_source: 1024,
  ce_specversion: 8,
  ce_time: 40,
  ce_subject: 256,
  'content-type': 256,
  ce_dataschema: 1024,
  ce_correlationid: 256,
  'correlation-id': 256,
  traceparent: 55,
  ce_traceparent: 55,
  tracestate: 512,
  ce_tracestate: 512,
};

/** C0 and C1 control characters, which CloudEvents forbids in String attributes (U+0000 among them). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** The attribute's problem (length, control characters), or undefined. */
function attributeProblem(name: string, value: string): string | undefined {
  const limit = ceAttributeMaxBytes[name] ?? 1024;
  // Only a long string can be over the limit in bytes: at most 3 UTF-8 bytes per UTF-16 unit.
  if (value.length * 3 > limit) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > limit) return `${name} is ${bytes} bytes, limit is ${limit}`;
  }
  if (CONTROL_CHARACTER.test(value)) {
    const at = value.search(CONTROL_CHARACTER);
    return `${name} holds control character U+${value.charCodeAt(at).toString(16).padStart(4, '0')} at ${at}`;
  }
  return undefined;
}

/** Headers checked by the contract: the attributes read from them. */
const checkedHeaders = Object.keys(ceAttributeMaxBytes);

/**
 * The hot-path form of readCloudEvent: the attributes, or a string describing the problem. This is the one place
 * the contract is checked, the same way for every function: required attributes present, specversion 1.0,
 * ce_time an RFC 3339 date-time within years 0001-9999, and every attribute within its length and free of
 * control characters.
 */
export function cloudEventFromHeaders(
  headers: Readonly<Record<string, string>>,
  defaultContentType: string,
): CloudEventAttributes | string {
  const id = headers.ce_id;
  const type = headers.ce_type;
  const source = headers.ce_source;
  const specversion = headers.ce_specversion;
  const time = headers.ce_time;
  const subject = headers.ce_subject;
  if (!id || !type || !source || !specversion || !time || !subject) {
    const missing = requiredCeHeaders.filter((name) => !headers[name]);
    return `${MISSING_CE_PREFIX} ${missing.join(', ')}`;
  }
  if (specversion !== CLOUDEVENTS_SPEC_VERSION) {
    return `unsupported ce_specversion "${specversion.slice(0, 16)}" (expected 1.0)`;
  }
  for (let i = 0; i < checkedHeaders.length; i++) {
    const name = checkedHeaders[i] as string;
    const value = headers[name];
    if (value === undefined) continue;
    const problem = attributeProblem(name, value);
    if (problem !== undefined) return problem;
  }
  if (parseRfc3339(time) === undefined) {
    return `ce_time "${time}" is not an RFC 3339 date-time between years 0001 and 9999`;
  }
  const attributes: CloudEventAttributes = {
    id,
    type,
    source,
    specversion,
    time,
    subject,
    datacontenttype: headers['content-type'] || defaultContentType,
  };
  const dataschema = headers.ce_dataschema;
  if (dataschema) attributes.dataschema = dataschema;
  // Producers outside the project may use the CloudEvents extension form or a plain header.
  const traceparent = headers.traceparent || headers.ce_traceparent;
  if (traceparent) attributes.traceparent = traceparent;
  const tracestate = headers.tracestate || headers.ce_tracestate;
  if (tracestate) attributes.tracestate = tracestate;
  const correlationId = headers.ce_correlationid || headers['correlation-id'];
  if (correlationId) attributes.correlationId = correlationId;
  return attributes;
}

/**
 * The identity of an event for deduplication. CloudEvents defines an event as unique by source + id: two
 * producers may use the same id. JSON of the pair, so no source or id can make two pairs collide.
 */
export function eventKey(ce: Pick<CloudEventAttributes, 'source' | 'id'>): string {
  return JSON.stringify([ce.source, ce.id]);
}
