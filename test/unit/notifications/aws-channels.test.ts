import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { RoutingChannel, SesChannel, SnsChannel } from '../../../functions/notifications/aws-channels';
import {
  channelAdapterName,
  channelsConfigured,
  createChannel,
} from '../../../functions/notifications/channel-config';
import {
  type NotificationMessage,
  PermanentChannelError,
  type SendOutcome,
} from '../../../functions/notifications/ports';
import { notifyPartition } from '../../../functions/notifications/send-notifications';
import { ConfigurationError } from '../../../shared/config';
import { isBatchLevelError, isStoreOutage, ServiceUnavailableError } from '../../../shared/msk/errors';
import { InMemoryNotificationLog, RecordingChannel, sampleEvents } from './fakes';

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

const message = (n = 1, channel: NotificationMessage['channel'] = 'PAGER'): NotificationMessage => ({
  notificationId: `n${n}`,
  eventSource: 'test',
  eventId: `e${n}`,
  eventType: 'incident.detected',
  recipient: { kind: 'OPERATIONS_ONCALL' as const, id: 'operations-oncall' },
  channel,
  template: 'incident-critical-oncall',
  subject: `S${n}`,
  body: 'B',
});

type BatchInput = { PublishBatchRequestEntries: { Id: string; MessageDeduplicationId?: string }[] };

/** A client whose calls take 1 ms and are answered by `answer`; keeps their inputs and the most in flight. */
function trackingClient<Input, Output>(answer: (input: Input) => Output) {
  const inputs: Input[] = [];
  const track = { inFlight: 0, maxInFlight: 0 };
  const client = {
    send: async (command: { input: Input }) => {
      inputs.push(command.input);
      track.inFlight++;
      track.maxInFlight = Math.max(track.maxInFlight, track.inFlight);
      await new Promise((resolve) => setTimeout(resolve, 1));
      track.inFlight--;
      return answer(command.input);
    },
  };
  return { client, inputs, track };
}

/** An SNS client that answers PublishBatch, failing the entries `fail` selects, and tracks calls in flight. */
function batchingClient(
  fail: (entry: { Id: string }) => { SenderFault: boolean; Code?: string } | undefined = () => undefined,
) {
  return trackingClient((input: BatchInput) => {
    const entries = input.PublishBatchRequestEntries;
    return {
      Successful: entries.filter((e) => !fail(e)).map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}` })),
      Failed: entries
        .filter((e) => fail(e))
        .map((e) => ({ Id: e.Id, Code: 'InternalError', Message: 'x', ...fail(e) })),
    };
  });
}

describe('SNS and SES channels', () => {
  it('turn errors no retry can fix into PermanentChannelError, which is not retried', async () => {
    const { client, calls } = clientThrowing('InvalidParameterException');
    const channel = new SnsChannel(client as unknown as SNSClient, 'arn:aws:sns:eu-west-1:000000000000:t');
    const [outcome] = await channel.send([message()]);
    expect(outcome).toMatchObject({ ok: false, permanent: true, error: expect.any(PermanentChannelError) });
    const result = await notifyPartition(
      { key: 'incident.detected-0', first: 0, last: 0 },
      [sampleEvents.criticalIncident],
      {
        channel,
        log: new InMemoryNotificationLog(),
        sleep: async () => {},
      },
    );
    expect(result.failure?.error.message).toMatch(/InvalidParameterException/);
    expect(calls).toHaveLength(2); // one direct call above, one by notifyPartition: no retries
  });

  it('pass transient errors through for the retry policy', async () => {
    const { client } = clientThrowing('ThrottlingException');
    const channel = new SesChannel(client as unknown as SESv2Client, 'from@x', 'to@x');
    expect(await channel.send([message()])).toMatchObject([
      { ok: false, permanent: false, error: { name: 'ThrottlingException' } },
    ]);
  });

  it('publish 10 messages per PublishBatch call, a bounded number of calls at once, outcomes in order', async () => {
    const { client, inputs, track } = batchingClient((entry) =>
      entry.Id === '3' ? { SenderFault: false } : entry.Id === '7' ? { SenderFault: true } : undefined,
    );
    const channel = new SnsChannel(client as unknown as SNSClient, 'arn:aws:sns:eu-west-1:000000000000:t', 2);
    const messages = Array.from({ length: 45 }, (_, n) => message(n));
    const outcomes = await channel.send(messages);
    expect(inputs.map((input) => input.PublishBatchRequestEntries.length)).toEqual([10, 10, 10, 10, 5]);
    expect(track.maxInFlight).toBe(2);
    expect(outcomes[0]).toEqual({ ok: true, receipt: { messageId: 'm-0' } });
    // Entry 3 of each batch failed on SNS's side (retried), entry 7 was the sender's fault (not retried).
    expect(outcomes[13]).toMatchObject({
      ok: false,
      permanent: false,
      error: expect.any(ServiceUnavailableError),
    });
    expect(outcomes[17]).toMatchObject({
      ok: false,
      permanent: true,
      error: expect.any(PermanentChannelError),
    });
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(45 - 9);
  });

  it('send 50 emails per SendBulkEmail call, a bounded number of calls at once, a status per email in order', async () => {
    type BulkInput = {
      FromEmailAddress: string;
      DefaultContent: { Template: { TemplateContent: unknown; TemplateData: string } };
      BulkEmailEntries: {
        Destination: { ToAddresses: string[] };
        ReplacementEmailContent: { ReplacementTemplate: { ReplacementTemplateData: string } };
        ReplacementHeaders: { Name: string; Value: string }[];
      }[];
    };
    // Per entry, by its position in the call: 3 throttled, 7 rejected, 9 no status; the rest sent. The third
    // call is answered short (19 results for 20 entries).
    const statusAt = (index: number) =>
      index === 3
        ? { Status: 'ACCOUNT_THROTTLED', Error: 'slow down' }
        : index === 7
          ? { Status: 'MESSAGE_REJECTED', Error: 'virus' }
          : { Status: 'SUCCESS', MessageId: `m-${index}` };
    const { client, inputs, track } = trackingClient((input: BulkInput) => {
      const results = input.BulkEmailEntries.map((_, index) => statusAt(index));
      results[9] = {} as (typeof results)[number];
      return { BulkEmailEntryResults: results.length === 20 ? results.slice(0, 19) : results };
    });
    const channel = new SesChannel(client as unknown as SESv2Client, 'from@x', 'to@x', 2);
    const messages = Array.from({ length: 120 }, (_, n) => ({
      ...message(n, 'EMAIL'),
      subject: `Review "${n}" & <now>`,
      body: `line 1\n{{not a variable}} ${n}`,
    }));
    const outcomes = await channel.send(messages);
    expect(inputs.map((input) => input.BulkEmailEntries.length)).toEqual([50, 50, 20]);
    expect(track.maxInFlight).toBe(2);
    const [first] = inputs;
    expect(first?.FromEmailAddress).toBe('from@x');
    expect(first?.DefaultContent.Template.TemplateContent).toEqual({
      Subject: '{{subject}}',
      Text: '{{body}}',
    });
    // Each entry carries its own rendered message as data, unescaped, and its notification id as a header.
    const entry = inputs[1]?.BulkEmailEntries[4];
    expect(entry?.Destination).toEqual({ ToAddresses: ['to@x'] });
    expect(
      JSON.parse(entry?.ReplacementEmailContent.ReplacementTemplate.ReplacementTemplateData ?? ''),
    ).toEqual({
      subject: 'Review "54" & <now>',
      body: 'line 1\n{{not a variable}} 54',
    });
    expect(entry?.ReplacementHeaders).toEqual([{ Name: 'X-Notification-Id', Value: 'n54' }]);

    expect(outcomes[0]).toEqual({ ok: true, receipt: { messageId: 'm-0' } });
    // Throttled: SES's side, an outage (retried here, then inside the invocation), never the record's failure.
    expect(outcomes[53]).toMatchObject({
      ok: false,
      permanent: false,
      error: expect.any(ServiceUnavailableError),
    });
    expect(outcomes[53]?.ok === false && outcomes[53].error.message).toBe('ACCOUNT_THROTTLED: slow down');
    expect(outcomes[53]?.ok === false && isStoreOutage(outcomes[53].error)).toBe(true);
    expect(outcomes[57]).toMatchObject({
      ok: false,
      permanent: true,
      error: expect.any(PermanentChannelError),
    });
    expect(outcomes[57]?.ok === false && outcomes[57].error.message).toBe('MESSAGE_REJECTED: virus');
    // An answer that does not say whether an email went out: never taken as sent, and not resent in-process or by
    // the engine's outage retries (a duplicate each time if it did go out); it fails the invocation.
    const failsInvocation = (outcome: SendOutcome | undefined) =>
      outcome?.ok === false &&
      outcome.permanent &&
      isBatchLevelError(outcome.error) &&
      !isStoreOutage(outcome.error);
    expect(failsInvocation(outcomes[59])).toBe(true);
    expect(outcomes[59]?.ok === false && outcomes[59].error.message).toMatch(
      /no status for notification n59/,
    );
    // A short answer cannot say which result is whose: the same for the whole call.
    expect(outcomes.slice(100).every(failsInvocation)).toBe(true);
    expect(outcomes[100]?.ok === false && outcomes[100].error.message).toMatch(
      /^SendBulkEmail answered 19 results for 20 emails/,
    );
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(2 * (50 - 3));
  });

  it("tell an email's own fault, the deployment's and SES's side apart by the entry's status", async () => {
    const answering = (Status: string) => ({
      send: async () => ({ BulkEmailEntryResults: [{ Status, Error: 'x' }] }),
    });
    const outcome = async (status: string) => {
      const channel = new SesChannel(answering(status) as unknown as SESv2Client, 'f@x', 't@x');
      const [sent] = await channel.send([message(1, 'EMAIL')]);
      if (!sent || sent.ok) throw new Error(`${status} was taken as sent`);
      return sent;
    };
    // SES's side (and a status this code does not know): retried, an outage for the batch engine.
    for (const status of ['ACCOUNT_THROTTLED', 'TRANSIENT_FAILURE', 'FAILED', 'A_NEW_STATUS']) {
      const failed = await outcome(status);
      expect(failed.permanent, status).toBe(false);
      expect(isStoreOutage(failed.error), status).toBe(true);
    }
    // The deployment or the account: not retried here, and it fails the invocation (no record is at fault).
    for (const status of [
      'ACCOUNT_SENDING_PAUSED',
      'CONFIGURATION_SET_SENDING_PAUSED',
      'ACCOUNT_DAILY_QUOTA_EXCEEDED',
      'ACCOUNT_SUSPENDED',
      'MAIL_FROM_DOMAIN_NOT_VERIFIED',
      'CONFIGURATION_SET_NOT_FOUND',
    ]) {
      const failed = await outcome(status);
      expect(failed.permanent, status).toBe(true);
      expect(isBatchLevelError(failed.error) && !isStoreOutage(failed.error), status).toBe(true);
    }
    // Rejected because an address is not verified (the SES sandbox, a sender identity): the deployment's.
    const unverified = new SesChannel(
      {
        send: async () => ({
          BulkEmailEntryResults: [{ Status: 'MESSAGE_REJECTED', Error: 'Email address is not verified.' }],
        }),
      } as unknown as SESv2Client,
      'f@x',
      't@x',
    );
    const [rejected] = await unverified.send([message(1, 'EMAIL')]);
    expect(rejected?.ok === false && isBatchLevelError(rejected.error)).toBe(true);
    // The email itself: its record fails (and goes to the on-failure destination after its retries).
    for (const status of ['MESSAGE_REJECTED', 'INVALID_PARAMETER']) {
      const failed = await outcome(status);
      expect(failed.permanent, status).toBe(true);
      expect(failed.error, status).toBeInstanceOf(PermanentChannelError);
      expect(isBatchLevelError(failed.error), status).toBe(false);
    }
  });

  it('send again one by one the messages of a call refused as a whole for what it carried', async () => {
    type Entry = { ReplacementEmailContent: { ReplacementTemplate: { ReplacementTemplateData: string } } };
    const calls: number[] = [];
    // The service refuses any call that carries the bad message (its header, say), whatever else it carries.
    const client = {
      send: async (command: { input: { BulkEmailEntries: Entry[] } }) => {
        const entries = command.input.BulkEmailEntries;
        calls.push(entries.length);
        if (
          entries.some((e) =>
            e.ReplacementEmailContent.ReplacementTemplate.ReplacementTemplateData.includes('bad'),
          )
        )
          throw Object.assign(new Error('Invalid header'), { name: 'BadRequestException' });
        return { BulkEmailEntryResults: entries.map((_, n) => ({ Status: 'SUCCESS', MessageId: `m${n}` })) };
      },
    };
    const channel = new SesChannel(client as unknown as SESv2Client, 'f@x', 't@x');
    const messages = [message(1, 'EMAIL'), { ...message(2, 'EMAIL'), body: 'bad' }, message(3, 'EMAIL')];
    const outcomes = await channel.send(messages);
    expect(calls).toEqual([3, 1, 1, 1]);
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, false, true]);
    expect(outcomes[1]).toMatchObject({ permanent: true, error: expect.any(PermanentChannelError) });

    // Every message refused on its own too: none is at fault (a sender or header the deployment set): the
    // invocation fails, no record does.
    calls.length = 0;
    const allBad = await channel.send([
      { ...message(1, 'EMAIL'), body: 'bad' },
      { ...message(2, 'EMAIL'), body: 'bad' },
    ]);
    expect(calls).toEqual([2, 1, 1]);
    for (const outcome of allBad)
      expect(!outcome.ok && isBatchLevelError(outcome.error) && !isStoreOutage(outcome.error)).toBe(true);
    // One message refused alone is its record's failure.
    calls.length = 0;
    const [alone] = await channel.send([{ ...message(1, 'EMAIL'), body: 'bad' }]);
    expect(calls).toEqual([1]);
    expect(alone).toMatchObject({ ok: false, permanent: true, error: expect.any(PermanentChannelError) });
    expect(alone?.ok === false && isBatchLevelError(alone.error)).toBe(false);

    // Entries rejected one by one in an answered call are not a refused call: nothing is sent again.
    calls.length = 0;
    const rejecting = new SesChannel(
      {
        send: async (command: { input: { BulkEmailEntries: Entry[] } }) => {
          calls.push(command.input.BulkEmailEntries.length);
          return {
            BulkEmailEntryResults: command.input.BulkEmailEntries.map(() => ({
              Status: 'MESSAGE_REJECTED',
              Error: 'virus',
            })),
          };
        },
      } as unknown as SESv2Client,
      'f@x',
      't@x',
    );
    await rejecting.send([message(1, 'EMAIL'), message(2, 'EMAIL')]);
    expect(calls).toEqual([2]);

    // A refusal about the deployment (the SNS topic is gone) is not the messages': one call, the invocation fails.
    const { client: gone, calls: goneCalls } = clientThrowing('NotFoundException');
    const sns = new SnsChannel(gone as unknown as SNSClient, 'arn:aws:sns:eu-west-1:000000000000:t');
    const refused = await sns.send([message(1), message(2)]);
    expect(goneCalls).toHaveLength(1);
    for (const outcome of refused) {
      expect(outcome.ok).toBe(false);
      expect(!outcome.ok && isBatchLevelError(outcome.error) && !isStoreOutage(outcome.error)).toBe(true);
    }
  });

  it("tell an SNS entry's own fault, the topic's and SNS's side apart", async () => {
    const { client } = batchingClient((entry) =>
      entry.Id === '0'
        ? { SenderFault: true }
        : entry.Id === '1'
          ? { SenderFault: true, Code: 'KMSAccessDenied' }
          : entry.Id === '2'
            ? { SenderFault: false }
            : entry.Id === '3'
              ? { SenderFault: true, Code: 'KMSThrottling' }
              : undefined,
    );
    const channel = new SnsChannel(client as unknown as SNSClient, 'arn:aws:sns:eu-west-1:000000000000:t');
    const [own, topic, side, kmsThrottled, sent] = await channel.send([
      message(0),
      message(1),
      message(2),
      message(3),
      message(4),
    ]);
    // SNS marks KMS throttling a client fault; it is throttling all the same.
    expect(kmsThrottled?.ok === false && !kmsThrottled.permanent && isStoreOutage(kmsThrottled.error)).toBe(
      true,
    );
    expect(own).toMatchObject({ ok: false, permanent: true, error: expect.any(PermanentChannelError) });
    expect(topic?.ok === false && topic.permanent && isBatchLevelError(topic.error)).toBe(true);
    expect(topic?.ok === false && isStoreOutage(topic.error)).toBe(false);
    expect(side?.ok === false && !side.permanent && isStoreOutage(side.error)).toBe(true);
    expect(sent?.ok).toBe(true);
  });

  it('read a whole-call refusal by its name and reason', async () => {
    const outcomeOf = async (name: string, text: string) => {
      const client = {
        send: async () => {
          throw Object.assign(new Error(text), { name });
        },
      };
      const channel = new SesChannel(client as unknown as SESv2Client, 'f@x', 't@x');
      return (await channel.send([message(1, 'EMAIL')]))[0];
    };
    // MessageRejected names the message's fault, but "not verified" the deployment's (a sender, a sandbox recipient).
    const unverified = await outcomeOf(
      'MessageRejected',
      'Email address is not verified. The following identities failed the check',
    );
    expect(unverified?.ok === false && isBatchLevelError(unverified.error)).toBe(true);
    const rejected = await outcomeOf('MessageRejected', 'Illegal header');
    expect(rejected).toMatchObject({ ok: false, permanent: true, error: expect.any(PermanentChannelError) });
    expect(rejected?.ok === false && isBatchLevelError(rejected.error)).toBe(false);
    // PublishBatch's 256 KiB in all: the call's content, isolated like any refused call.
    const tooLong = await outcomeOf('BatchRequestTooLongException', 'too long');
    expect(tooLong).toMatchObject({ ok: false, permanent: true, error: expect.any(PermanentChannelError) });
    // A throttled KMS key behind the topic: throttling.
    const kms = await outcomeOf('KMSThrottlingException', 'slow down');
    expect(kms?.ok === false && !kms.permanent && isStoreOutage(kms.error)).toBe(true);
  });

  it('use the notification id as deduplication id on a FIFO topic', async () => {
    const { client, inputs } = batchingClient();
    const fifo = new SnsChannel(
      client as unknown as SNSClient,
      'arn:aws:sns:eu-west-1:000000000000:oncall.fifo',
    );
    expect(await fifo.send([message()])).toEqual([{ ok: true, receipt: { messageId: 'm-0' } }]);
    expect(inputs[0]?.PublishBatchRequestEntries[0]).toMatchObject({
      MessageDeduplicationId: 'n1',
      MessageGroupId: 'operations-oncall',
    });
  });

  it('route each message to its kind and give the outcomes back in the order of the messages', async () => {
    const pager = new RecordingChannel();
    const email = new RecordingChannel(0, () => true);
    const push = new RecordingChannel();
    const routing = new RoutingChannel({ PAGER: pager, EMAIL: email, PUSH: push });
    const outcomes = await routing.send([
      message(1, 'EMAIL'),
      message(2, 'PAGER'),
      message(3, 'PUSH'),
      message(4, 'EMAIL'),
    ]);
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([false, true, true, false]);
    expect([pager.rounds, email.rounds, push.rounds]).toEqual([1, 1, 1]);
    expect(email.calls).toBe(2);
  });

  it('fail a message of a kind the function does not serve with a ConfigurationError, the others sent', async () => {
    const pager = new RecordingChannel();
    const routing = new RoutingChannel({ PAGER: pager });
    const outcomes = await routing.send([message(1, 'PUSH'), message(2, 'PAGER')]);
    expect(outcomes[0]).toMatchObject({ ok: false, permanent: true, error: expect.any(ConfigurationError) });
    expect(outcomes[0]?.ok === false && outcomes[0].error.message).toMatch(
      /no PUSH channel in this function \(it sends PAGER\)/,
    );
    expect(outcomes[1]).toMatchObject({ ok: true });
    expect(pager.sent.map((m) => m.notificationId)).toEqual(['n2']);
  });
});

describe('the channels a deployed function is configured for', () => {
  const documents = {} as DynamoDBDocumentClient;
  it('are the kinds whose variables are all set', () => {
    expect(channelsConfigured({ ONCALL_TOPIC_ARN: 'arn:p' })).toEqual(['PAGER']);
    expect(
      channelsConfigured({ CUSTOMER_TOPIC_ARN: 'arn:c', EMAIL_FROM: 'a@b.c', REVIEWERS_EMAIL: 'r@b.c' }),
    ).toEqual(['PUSH', 'EMAIL']);
    expect(channelsConfigured({})).toEqual([]);
  });

  it('name the missing variable of a kind set in part', () => {
    expect(() => channelsConfigured({ EMAIL_FROM: 'a@b.c' })).toThrow(
      new ConfigurationError('EMAIL needs EMAIL_FROM and REVIEWERS_EMAIL: REVIEWERS_EMAIL is not set'),
    );
  });

  it('make a deployed function send through AWS, and refuse CHANNEL=aws with no channel at all', () => {
    expect(channelAdapterName({ ONCALL_TOPIC_ARN: 'arn:p' })).toBe('aws');
    expect(channelAdapterName({ CUSTOMER_TOPIC_ARN: 'arn:c' })).toBe('aws');
    expect(channelAdapterName({ ONCALL_TOPIC_ARN: '' })).toBe('outbox');
    expect(createChannel({ ONCALL_TOPIC_ARN: 'arn:p' }, documents, 't')).toBeInstanceOf(RoutingChannel);
    expect(() => createChannel({ CHANNEL: 'aws' }, documents, 't')).toThrow(
      /CHANNEL=aws needs a channel: ONCALL_TOPIC_ARN, or CUSTOMER_TOPIC_ARN, or EMAIL_FROM with REVIEWERS_EMAIL/,
    );
  });
});
