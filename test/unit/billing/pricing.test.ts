import { describe, expect, it } from 'vitest';
import { InvalidBillingEvent, toBillingCommand } from '../../../functions/billing/billing-events';
import { formatMinor, priceRide, type TariffTable } from '../../../functions/billing/pricing';
import tariffsFile from '../../../functions/billing/tariffs.json';

const tariffs = tariffsFile as TariffTable;

describe('ride pricing in integer minor units (worked examples, tariffs.json 2026-11-01, EUR)', () => {
  it('scooter, 12 min 30 s: unlock 1.00 + 13 started minutes x 0.25 = 4.25 EUR', () => {
    const price = priceRide({ vehicleType: 'SCOOTER', durationSeconds: 750, distanceMeters: 2_400 }, tariffs);
    expect(price).toEqual({
      currency: 'EUR',
      tariffVersion: '2026-11-01',
      lines: [
        { code: 'UNLOCK', quantity: 1, amountMinor: 100 },
        { code: 'TIME', quantity: 13, amountMinor: 325 },
      ],
      totalMinor: 425,
    });
    expect(formatMinor(price.totalMinor, price.currency)).toBe('4.25 EUR');
  });

  it('car, 25 min, 12.345 km: 25 x 0.39 + 12.345 x 0.29 = 9.75 + 3.58 (3.58005 rounded half up) = 13.33 EUR', () => {
    const price = priceRide({ vehicleType: 'CAR', durationSeconds: 1_500, distanceMeters: 12_345 }, tariffs);
    // 12345 m x 29 cents/km = 358005 / 1000 = 358.005 -> 358 cents; no unlock fee for cars.
    expect(price.lines).toEqual([
      { code: 'UNLOCK', quantity: 1, amountMinor: 0 },
      { code: 'TIME', quantity: 25, amountMinor: 975 },
      { code: 'DISTANCE', quantity: 12_345, amountMinor: 358 },
    ]);
    expect(price.totalMinor).toBe(1_333);
  });

  it('rounds half a cent up: moped 50 m x 10 cents/km = 0.5 cent -> 1 cent', () => {
    const price = priceRide({ vehicleType: 'MOPED', durationSeconds: 3_600, distanceMeters: 50 }, tariffs);
    // unlock 150 + 60 x 35 = 2100 + distance 1 = 2251.
    expect(price.lines.find((l) => l.code === 'DISTANCE')?.amountMinor).toBe(1);
    expect(price.totalMinor).toBe(2_251);
  });

  it('tops a short ride up to the minimum fare: e-bike, 20 s: 1.00 + 1 x 0.30 = 1.30 -> minimum 2.00 EUR', () => {
    const price = priceRide({ vehicleType: 'EBIKE', durationSeconds: 20, distanceMeters: 30 }, tariffs);
    expect(price.lines.at(-1)).toEqual({ code: 'MINIMUM_FARE', quantity: 1, amountMinor: 70 });
    expect(price.totalMinor).toBe(200);
    expect(price.lines.reduce((sum, line) => sum + line.amountMinor, 0)).toBe(price.totalMinor);
  });

  it('a zero-second ride still pays unlock and the minimum fare', () => {
    expect(
      priceRide({ vehicleType: 'SCOOTER', durationSeconds: 0, distanceMeters: 0 }, tariffs).totalMinor,
    ).toBe(150);
  });

  it('produces only safe integers, even for a very long car ride', () => {
    const price = priceRide(
      { vehicleType: 'CAR', durationSeconds: 30 * 24 * 3600, distanceMeters: 5_000_000 },
      tariffs,
    );
    for (const line of price.lines) expect(Number.isSafeInteger(line.amountMinor)).toBe(true);
    expect(price.totalMinor).toBe(43_200 * 39 + 145_000);
  });

  it('rejects what it cannot price, naming the field', () => {
    expect(() =>
      priceRide({ vehicleType: 'HOVERBOARD', durationSeconds: 60, distanceMeters: 0 }, tariffs),
    ).toThrow('field "vehicleType" "HOVERBOARD" has no tariff');
    expect(() => priceRide({ vehicleType: 'CAR', durationSeconds: -1, distanceMeters: 0 }, tariffs)).toThrow(
      'field "durationSeconds" must be an integer >= 0, got -1',
    );
    expect(() => priceRide({ vehicleType: 'CAR', durationSeconds: 1.5, distanceMeters: 0 }, tariffs)).toThrow(
      'durationSeconds',
    );
  });
});

describe('billing events to commands', () => {
  const where = {
    topic: 'payment.succeeded',
    partition: 2,
    offset: 41,
    eventSource: 'urn:test',
    eventId: 'evt-1',
  };
  const payment = (currency: string) => ({
    ...where,
    eventType: 'payment.succeeded',
    data: {
      paymentId: 'pay-1',
      bookingId: 'b-1',
      customerId: 'c-1',
      amount: { amountMinor: 425, currency },
      succeededAt: new Date('2026-11-23T10:00:00Z'),
    },
  });

  it('rejects a payment in another currency, naming the field and the record', () => {
    const convert = () => toBillingCommand(payment('USD'), tariffs);
    expect(convert).toThrow(InvalidBillingEvent);
    expect(convert).toThrow(
      'payment.succeeded-2@41: field "amount.currency" "USD" differs from the billing currency EUR',
    );
  });

  it('turns a payment into a command with integer minor units', () => {
    expect(toBillingCommand(payment('EUR'), tariffs)).toEqual({
      kind: 'PAYMENT',
      eventSource: 'urn:test',
      eventId: 'evt-1',
      outcome: 'SUCCEEDED',
      paymentId: 'pay-1',
      bookingId: 'b-1',
      customerId: 'c-1',
      amountMinor: 425,
      currency: 'EUR',
      at: '2026-11-23T10:00:00.000Z',
    });
  });

  it('rejects a completed ride with a negative duration as bad input of that record', () => {
    expect(() =>
      toBillingCommand(
        {
          topic: 'booking.completed',
          partition: 0,
          offset: 7,
          eventSource: 'urn:test',
          eventId: 'evt-2',
          eventType: 'booking.completed',
          data: {
            bookingId: 'b-2',
            customerId: 'c-1',
            zoneId: 'zone-berlin-mitte',
            vehicleType: 'SCOOTER',
            durationSeconds: -30,
            distanceMeters: 100,
            currency: 'EUR',
            completedAt: 1_763_892_000_000,
          },
        },
        tariffs,
      ),
    ).toThrow('booking.completed-0@7: field "durationSeconds" must be an integer >= 0, got -30');
  });
});
