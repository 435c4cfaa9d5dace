/**
 * CloudEvents 1.0, Kafka protocol binding, binary content mode: the event's attributes travel as `ce_*`
 * headers, the data as the record value. W3C `traceparent` (and `tracestate`) keep their own header names
 * so tracing libraries find them; the correlation id is a CloudEvents extension (`ce_correlationid`).
 */

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

/** The hot-path form of readCloudEvent: the attributes, or a string describing the problem. */
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
    return `missing CloudEvents header(s) ${missing.join(', ')}`;
  }
  if (specversion !== CLOUDEVENTS_SPEC_VERSION) {
    return `unsupported ce_specversion "${specversion}" (expected 1.0)`;
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
