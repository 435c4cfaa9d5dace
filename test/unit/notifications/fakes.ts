import type {
  HeldLease,
  LeaseResult,
  LogEntry,
  LogRecord,
  NotificationChannel,
  NotificationLog,
  NotificationMessage,
  OffsetRange,
  SendOutcome,
} from '../../../functions/notifications/ports';

/** The log in memory, with the DynamoDB adapter's semantics; counts its calls. */
export class InMemoryNotificationLog implements NotificationLog {
  readonly store = new Map<string, LogEntry & { lastError?: string }>();
  readonly leases = new Map<
    string,
    { holder?: string; leaseUntil: number; first?: number; through?: number }
  >();
  calls = 0;
  releases = 0;

  async acquireLease(
    partition: string,
    holder: string,
    offsets: OffsetRange,
    now: number,
    leaseMs: number,
  ): Promise<LeaseResult> {
    this.calls++;
    const lease = this.leases.get(partition);
    const before = lease?.through !== undefined && lease.through < offsets.first;
    if (lease && lease.leaseUntil >= now && lease.holder !== holder && !before) {
      return {
        acquired: false,
        leaseUntil: lease.leaseUntil,
        ...(lease.holder !== undefined ? { holder: lease.holder } : {}),
        ...(lease.first !== undefined ? { first: lease.first } : {}),
        ...(lease.through !== undefined ? { through: lease.through } : {}),
      };
    }
    this.leases.set(partition, {
      holder,
      leaseUntil: now + leaseMs,
      first: offsets.first,
      through: offsets.last,
    });
    const previous = lease && {
      ...(lease.holder !== undefined ? { holder: lease.holder } : {}),
      ...(lease.through !== undefined ? { through: lease.through } : {}),
    };
    return { acquired: true, leaseUntil: now + leaseMs, ...(previous ? { previous } : {}) };
  }
  takeovers = 0;
  async takeOverLease(
    partition: string,
    from: HeldLease,
    holder: string,
    offsets: OffsetRange,
    now: number,
    leaseMs: number,
  ): Promise<boolean> {
    this.calls++;
    const lease = this.leases.get(partition);
    if (lease?.holder !== from.holder || lease.through !== from.through) return false;
    this.takeovers++;
    this.leases.set(partition, {
      holder,
      leaseUntil: now + leaseMs,
      first: offsets.first,
      through: offsets.last,
    });
    return true;
  }
  async releaseLease(partition: string, holder: string): Promise<void> {
    this.calls++;
    this.releases++;
    const lease = this.leases.get(partition);
    if (lease?.holder === holder)
      this.leases.set(partition, { leaseUntil: 0, first: lease.first, through: lease.through });
  }
  /** Reads of the log (entries calls), as the lease takeover's tests count them. */
  reads = 0;
  async entries(messages: NotificationMessage[]): Promise<Map<string, LogEntry>> {
    this.calls++;
    this.reads++;
    const found = new Map<string, LogEntry>();
    for (const message of messages) {
      const entry = this.store.get(message.notificationId);
      if (entry) found.set(message.notificationId, entry);
    }
    return found;
  }
  async record(records: LogRecord[]): Promise<void> {
    this.calls++;
    for (const record of records) {
      this.store.set(
        record.message.notificationId,
        record.status === 'SENT'
          ? { status: 'SENT', attempts: record.attempts, messageId: record.messageId }
          : { status: 'FAILED', attempts: record.attempts, lastError: record.error },
      );
    }
  }
  /** The entries, in the order they were first written. */
  get logged() {
    return [...this.store.values()];
  }
}

/** Records what it sends, per call; fails the first `failures` messages (or those `failWhen` selects). */
export class RecordingChannel implements NotificationChannel {
  readonly sent: NotificationMessage[] = [];
  /** Messages attempted. */
  calls = 0;
  /** send() calls (one per delivery round). */
  rounds = 0;
  constructor(
    private failures = 0,
    private readonly failWhen: (message: NotificationMessage) => boolean = () => false,
  ) {}
  async send(messages: NotificationMessage[]): Promise<SendOutcome[]> {
    this.rounds += 1;
    return messages.map((message) => {
      this.calls += 1;
      if (this.failures > 0 || this.failWhen(message)) {
        this.failures -= 1;
        return { ok: false, error: new Error('channel unavailable'), permanent: false };
      }
      this.sent.push(message);
      return { ok: true, receipt: { messageId: `msg-${this.sent.length}` } };
    });
  }
}

export const sampleEvents = {
  criticalIncident: {
    topic: 'incident.detected',
    source: 'test/notifications',
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
    source: 'test/notifications',
    id: 'ce-incident-2',
    time: '2026-11-23T10:00:00.000Z',
    data: { incidentId: 'inc-2', vehicleId: 'veh-9', severity: 'MEDIUM', anomalyType: 'HARSH_BRAKING' },
  },
  hitlRequested: {
    topic: 'genai.hitl.requested',
    source: 'test/notifications',
    id: 'ce-hitl-1',
    time: '2026-11-23T10:00:02.000Z',
    data: { reviewId: 'rev-1', incidentId: 'inc-1', reason: 'SEVERITY_CRITICAL' },
  },
  paymentFailed: {
    topic: 'payment.failed',
    source: 'test/notifications',
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
    source: 'test/notifications',
    id: 'ce-booking-1',
    time: '2026-11-23T10:20:00.000Z',
    data: { bookingId: 'bk-2', customerId: 'cust-7', vehicleId: 'veh-3' },
  },
};
