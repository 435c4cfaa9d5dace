// The outbox section of the `dev` live display: what the notifications function "sent" locally
// (CHANNEL=outbox writes each message to the notifications table instead of SNS/SES).
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { channelAdapterName } from '../functions/notifications/channel-config';
import { listOutbox, type OutboxEntry } from '../functions/notifications/outbox-channel';
import { formatTable } from './esm/dashboard';

export const OUTBOX_PANEL_ROWS = 8;

/** The latest `limit` messages, newest first, under a line with the total. */
export function renderOutboxPanel(entries: OutboxEntry[], limit = OUTBOX_PANEL_ROWS): string {
  const latest = [...entries].sort((a, b) => b.deliveredAt.localeCompare(a.deliveredAt)).slice(0, limit);
  const title =
    entries.length > latest.length
      ? `outbox: ${entries.length} messages, latest ${latest.length}`
      : `outbox: ${entries.length} message${entries.length === 1 ? '' : 's'}`;
  if (latest.length === 0) return title;
  const rows = [
    ['delivered', 'channel', 'recipient', 'event', 'subject'],
    ...latest.map((entry) => [
      entry.deliveredAt,
      entry.channel,
      `${entry.recipient.kind} ${entry.recipient.id}`,
      entry.eventType,
      entry.subject.length > 60 ? `${entry.subject.slice(0, 59)}…` : entry.subject,
    ]),
  ];
  return `${title}\n${formatTable(rows)}`;
}

export interface OutboxPanel {
  refresh(): Promise<void>;
  render(): string;
}

/**
 * The panel for the notifications function's environment, or undefined when that function sends through
 * SNS/SES (CHANNEL=aws): then there is no local outbox to show. Refreshes read the whole outbox partition,
 * which stays small in a dev session; a refresh still running is not started twice.
 */
export function outboxPanel(
  documents: DynamoDBDocumentClient,
  notificationsEnv: Record<string, string>,
  onError: (message: string) => void,
): OutboxPanel | undefined {
  const table = notificationsEnv.NOTIFICATIONS_TABLE;
  if (!table || channelAdapterName(notificationsEnv) !== 'outbox') return undefined;
  let entries: OutboxEntry[] | undefined;
  let refreshing = false;
  return {
    async refresh() {
      if (refreshing) return;
      refreshing = true;
      try {
        entries = await listOutbox(documents, table);
      } catch (error) {
        onError(`outbox (${table}): ${(error as Error).message}`);
      } finally {
        refreshing = false;
      }
    },
    render: () => (entries ? renderOutboxPanel(entries) : `outbox: reading ${table}...`),
  };
}
