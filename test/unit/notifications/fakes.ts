import type {
  ClaimResult,
  DeliveryReceipt,
  NotificationChannel,
  NotificationLog,
  NotificationMessage,
} from '../../../functions/notifications/ports';

interface LogEntry {
  status: 'SENDING' | 'SENT' | 'FAILED';
  leaseUntil?: number;
  attempts: number;
  messageId?: string;
  lastError?: string;
}

export class InMemoryNotificationLog implements NotificationLog {
  readonly entries = new Map<string, LogEntry>();
  private key = (message: NotificationMessage) => `${message.eventId}|${message.recipient.id}`;
  async claim(message: NotificationMessage, now: number, leaseMs: number): Promise<ClaimResult> {
    const entry = this.entries.get(this.key(message));
    if (entry?.status === 'SENT') return { outcome: 'ALREADY_SENT', messageId: entry.messageId as string };
    if (entry?.status === 'SENDING' && (entry.leaseUntil ?? 0) >= now) {
      return { outcome: 'IN_PROGRESS', leaseUntil: entry.leaseUntil as number };
    }
    const attempts = (entry?.attempts ?? 0) + 1;
    this.entries.set(this.key(message), { status: 'SENDING', leaseUntil: now + leaseMs, attempts });
    return { outcome: 'CLAIMED', attempt: attempts };
  }
  async markSent(message: NotificationMessage, receipt: DeliveryReceipt): Promise<void> {
    const entry = this.entries.get(this.key(message)) as LogEntry;
    this.entries.set(this.key(message), {
      attempts: entry.attempts,
      status: 'SENT',
      messageId: receipt.messageId,
    });
  }
  async markFailed(message: NotificationMessage, error: string): Promise<void> {
    const entry = this.entries.get(this.key(message)) as LogEntry;
    this.entries.set(this.key(message), { attempts: entry.attempts, status: 'FAILED', lastError: error });
  }
}

/** Records what it sends; fails the first `failures` calls (or those `failWhen` selects). */
export class RecordingChannel implements NotificationChannel {
  readonly sent: NotificationMessage[] = [];
  calls = 0;
  constructor(
    private failures = 0,
    private readonly failWhen: (message: NotificationMessage) => boolean = () => false,
  ) {}
  async send(message: NotificationMessage): Promise<DeliveryReceipt> {
    this.calls += 1;
    if (this.failures > 0 || this.failWhen(message)) {
      this.failures -= 1;
      throw new Error('channel unavailable');
    }
    this.sent.push(message);
    return { messageId: `msg-${this.sent.length}` };
  }
}

export const sampleEvents = {
  criticalIncident: {
    topic: 'incident.detected',
    id: 'ce-incident-1',
    time: '2026-11-23T10:00:00.000Z',
    data: {
      incidentId: 'inc-1',
      vehicleId: 'veh-9',
      severity: 'CRITICAL',
      anomalyType: 'CRASH_DETECTED',
      location: { lat: 52.52, lon: 13.4 },
      detectedAt: Date.parse('2026-11-23T09:59:58.000Z'),
    },
  },
  mediumIncident: {
    topic: 'incident.detected',
    id: 'ce-incident-2',
    time: '2026-11-23T10:00:00.000Z',
    data: { incidentId: 'inc-2', vehicleId: 'veh-9', severity: 'MEDIUM', anomalyType: 'HARSH_BRAKING' },
  },
  hitlRequested: {
    topic: 'genai.hitl.requested',
    id: 'ce-hitl-1',
    time: '2026-11-23T10:00:02.000Z',
    data: { reviewId: 'rev-1', incidentId: 'inc-1', reason: 'SEVERITY_CRITICAL' },
  },
  paymentFailed: {
    topic: 'payment.failed',
    id: 'ce-payment-1',
    time: '2026-11-23T10:10:00.000Z',
    data: {
      paymentId: 'pay-1',
      bookingId: 'bk-1',
      customerId: 'cust-7',
      amount: { amountMinor: 1250, currency: 'EUR' },
      method: 'CARD',
      failureCode: 'card_expired',
      failureMessage: 'card expired',
      retryable: false,
      attempt: 1,
      failedAt: 1_795_428_600_000,
    },
  },
  bookingCreated: {
    topic: 'booking.created',
    id: 'ce-booking-1',
    time: '2026-11-23T10:20:00.000Z',
    data: { bookingId: 'bk-2', customerId: 'cust-7', vehicleId: 'veh-3' },
  },
};
