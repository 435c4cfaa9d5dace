import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { SNSClient } from '@aws-sdk/client-sns';
import { describe, expect, it } from 'vitest';
import { SesChannel, SnsChannel } from '../../../functions/notifications/aws-channels';
import { PermanentChannelError } from '../../../functions/notifications/ports';
import { sendNotifications } from '../../../functions/notifications/send-notifications';
import { InMemoryNotificationLog, sampleEvents } from './fakes';

function clientThrowing(name: string) {
  const calls: unknown[] = [];
  const client = {
    send: async (command: { input: unknown }) => {
      calls.push(command.input);
      throw Object.assign(new Error(`${name} happened`), { name });
    },
  };
  return { client, calls };
}

const message = {
  notificationId: 'n1',
  eventId: 'e1',
  eventType: 'incident.detected',
  recipient: { kind: 'OPERATIONS_ONCALL' as const, id: 'operations-oncall' },
  channel: 'PAGER' as const,
  template: 'incident-critical-oncall',
  subject: 'S',
  body: 'B',
};

describe('SNS and SES channels', () => {
  it('turn errors no retry can fix into PermanentChannelError, which is not retried', async () => {
    const { client, calls } = clientThrowing('InvalidParameterException');
    const channel = new SnsChannel(client as unknown as SNSClient, 'arn:aws:sns:eu-west-1:000000000000:t');
    await expect(channel.send(message)).rejects.toBeInstanceOf(PermanentChannelError);
    await expect(
      sendNotifications(sampleEvents.criticalIncident, {
        channel,
        log: new InMemoryNotificationLog(),
        sleep: async () => {},
      }),
    ).rejects.toThrow(/InvalidParameterException/);
    expect(calls).toHaveLength(2); // one direct call above, one by sendNotifications: no retries
  });

  it('pass transient errors through for the retry policy', async () => {
    const { client } = clientThrowing('ThrottlingException');
    const channel = new SesChannel(client as unknown as SESv2Client, 'from@x', 'to@x');
    await expect(channel.send(message)).rejects.toMatchObject({ name: 'ThrottlingException' });
  });

  it('use the notification id as deduplication id on a FIFO topic', async () => {
    const inputs: Record<string, unknown>[] = [];
    const client = {
      send: async (command: { input: Record<string, unknown> }) => {
        inputs.push(command.input);
        return { MessageId: 'm1' };
      },
    };
    const fifo = new SnsChannel(
      client as unknown as SNSClient,
      'arn:aws:sns:eu-west-1:000000000000:oncall.fifo',
    );
    expect(await fifo.send(message)).toEqual({ messageId: 'm1' });
    expect(inputs[0]).toMatchObject({ MessageDeduplicationId: 'n1', MessageGroupId: 'operations-oncall' });
  });
});
