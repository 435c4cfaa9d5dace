import { describe, expect, it } from 'vitest';
import { InvalidBillingEvent, toBillingCommand } from '../../../functions/billing/billing-events';
import type { TariffTable } from '../../../functions/billing/pricing';
import tariffsFile from '../../../functions/billing/tariffs.json';
import { sampleData } from '../../../schemas/samples';

const where = { topic: 'booking.completed', partition: 2, offset: 41 };

describe('toBillingCommand', () => {
  it('names a time field outside what a Date holds, with the record coordinates', () => {
    const data = { ...sampleData['booking.completed'](7), completedAt: 1e20 };
    const build = () =>
      toBillingCommand(
        { ...where, eventSource: 'urn:test', eventId: 'e-1', eventType: 'booking.completed', data },
        tariffsFile as TariffTable,
      );
    expect(build).toThrow(InvalidBillingEvent);
    expect(build).toThrow('booking.completed-2@41: field "completedAt" is missing or not a timestamp');
  });

  it('refuses an id longer than a store key may be (512 UTF-8 bytes), naming the field, alone', () => {
    const build = (bookingId: string) =>
      toBillingCommand(
        {
          ...where,
          eventSource: 'urn:test',
          eventId: 'e-1',
          eventType: 'booking.completed',
          data: { ...sampleData['booking.completed'](7), bookingId },
        },
        tariffsFile as TariffTable,
      );
    expect(build('b'.repeat(512))).toMatchObject({ kind: 'RIDE_COMPLETED' });
    expect(() => build('€'.repeat(171))).toThrow(
      'booking.completed-2@41: field "bookingId" is 513 bytes, the limit is 512',
    );
  });
});
