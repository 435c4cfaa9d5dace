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
});
