import { describe, expect, it } from 'vitest';
import {
  type CloudEventAttributes,
  cloudEventHeaders,
  readCloudEvent,
} from '../../../shared/contracts/cloudevents';

const attributes: CloudEventAttributes = {
  id: 'evt-1',
  type: 'booking.created',
  source: 'urn:mobility:booking-service',
  specversion: '1.0',
  time: '2026-03-02T08:00:00.000Z',
  subject: 'b-1',
  datacontenttype: 'application/avro',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  correlationId: 'corr-1',
};

describe('CloudEvents binary mode', () => {
  it('writes ce_* headers, content-type, traceparent and the correlation id', () => {
    expect(cloudEventHeaders(attributes)).toEqual({
      ce_id: 'evt-1',
      ce_type: 'booking.created',
      ce_source: 'urn:mobility:booking-service',
      ce_specversion: '1.0',
      ce_time: '2026-03-02T08:00:00.000Z',
      ce_subject: 'b-1',
      'content-type': 'application/avro',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      ce_correlationid: 'corr-1',
    });
  });

  it('reads back what it writes', () => {
    expect(readCloudEvent(cloudEventHeaders(attributes), 'application/json')).toEqual({
      ok: true,
      attributes,
    });
  });

  it('names every missing required header', () => {
    const { ce_id: _id, ce_subject: _subject, ...headers } = cloudEventHeaders(attributes);
    expect(readCloudEvent(headers, 'application/avro')).toEqual({
      ok: false,
      problem: 'missing CloudEvents header(s) ce_id, ce_subject',
    });
  });

  it('rejects another spec version', () => {
    const headers = { ...cloudEventHeaders(attributes), ce_specversion: '0.3' };
    expect(readCloudEvent(headers, 'application/avro')).toMatchObject({ ok: false });
  });

  it('defaults content-type from the value framing', () => {
    const { 'content-type': _ct, ...headers } = cloudEventHeaders(attributes);
    const result = readCloudEvent(headers, 'application/json');
    expect(result.ok && result.attributes.datacontenttype).toBe('application/json');
  });
});
