import { describe, expect, it } from 'vitest';
import { InvalidBillingEvent } from '../../../functions/billing/billing-events';
import { InvalidFieldError } from '../../../shared/msk/invalid-field';

describe('InvalidFieldError', () => {
  it('names the record, the field and the problem', () => {
    const error = new InvalidFieldError('zoneId', 'is missing', {
      topic: 'booking.created',
      partition: 2,
      offset: 17,
    });
    expect(String(error)).toBe('InvalidFieldError: booking.created-2@17: field "zoneId" is missing');
    expect(error).toMatchObject({
      field: 'zoneId',
      problem: 'is missing',
      record: { partition: 2, offset: 17 },
    });
  });

  it('keeps a function subclass named after its events', () => {
    const error = new InvalidBillingEvent('currency', 'is missing', {
      topic: 'payment.events',
      partition: 0,
      offset: 3,
    });
    expect(error).toBeInstanceOf(InvalidFieldError);
    expect(String(error)).toBe('InvalidBillingEvent: payment.events-0@3: field "currency" is missing');
  });
});
