/**
 * Turns an event (CloudEvents attributes + data) into the Kafka message the project publishes: key = the
 * aggregate id, CloudEvents binary-mode headers, value = Avro data with Confluent framing, written with the
 * newest catalog schema of the event type.
 */
import { encodeConfluent } from '../contracts/avro-codec';
import { AVRO_CONTENT_TYPE, CLOUDEVENTS_SPEC_VERSION, cloudEventHeaders } from '../contracts/cloudevents';
import {
  type FileCatalogSchemaRegistry,
  fileCatalogSchemaRegistry,
} from '../contracts/file-catalog-registry';

/** An event to publish. `type` is the topic unless `topic` says otherwise. */
export interface OutgoingEvent {
  topic: string;
  /** Record key: the aggregate id (bookingId, vehicleId, incidentId). */
  key: string;
  /** ce_id; make it deterministic so a re-produced event keeps its id. */
  id: string;
  type: string;
  source: string;
  subject: string;
  /** RFC 3339 time of the occurrence. */
  time: string;
  data: Record<string, unknown>;
  correlationId?: string;
  traceparent?: string;
}

export interface KafkaMessage {
  topic: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

export function toKafkaMessage(
  event: OutgoingEvent,
  registry: FileCatalogSchemaRegistry = fileCatalogSchemaRegistry,
): KafkaMessage {
  const schema = registry.latest(event.type);
  return {
    topic: event.topic,
    key: event.key,
    value: encodeConfluent(schema, event.data),
    headers: cloudEventHeaders({
      id: event.id,
      type: event.type,
      source: event.source,
      specversion: CLOUDEVENTS_SPEC_VERSION,
      time: event.time,
      subject: event.subject,
      datacontenttype: AVRO_CONTENT_TYPE,
      ...(event.correlationId === undefined ? {} : { correlationId: event.correlationId }),
      ...(event.traceparent === undefined ? {} : { traceparent: event.traceparent }),
    }),
  };
}
