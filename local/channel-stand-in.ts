// A local stand-in for the notification channels: SNS Publish and PublishBatch (query protocol) and SES v2
// SendBulkEmail with an inline template (REST JSON), reached through the SDK's AWS_ENDPOINT_URL_SNS /
// AWS_ENDPOINT_URL_SESV2. It records every message it is given, as a recipient would read it, and can be told to
// fail some, for tests and bench:latency. 127.0.0.1 only.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChannelCall {
  service: 'sns' | 'ses';
  /** The HTTP request that carried it (one PublishBatch carries up to 10). */
  request: number;
  notificationId: string;
  subject: string;
  body: string;
  ok: boolean;
}

export interface ChannelStandIn {
  url: string;
  /** Every message received, in order, failed ones included. */
  calls: ChannelCall[];
  /** HTTP requests answered. */
  requests(): number;
  /**
   * Which messages (by subject) fail, and how: `unavailable` (default) as the service's side failing (SNS entry
   * InternalError without SenderFault, SES ACCOUNT_THROTTLED, a 500 for Publish), `rejected` as the message's own
   * fault (SNS SenderFault, SES MESSAGE_REJECTED, a 400 for Publish). None by default.
   */
  failWhen(predicate: (subject: string) => boolean, how?: FailureKind): void;
  close(): Promise<void>;
}

export type FailureKind = 'unavailable' | 'rejected';

const xml = (body: string) => `<?xml version="1.0"?>${body}`;
const escapeXml = (text: string) => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * An SES inline template with the data of one entry, as SES documents it: simple substitution of `{{name}}`, the
 * values as they are (SES does not HTML-escape), and the result not scanned again. Stricter than SES can be
 * seen to be: any other brace in the template (`{{{x}}}`, helpers, an unclosed tag) and a variable the data
 * lacks are refused with a 400 (SES would accept the call and drop the email when rendering it, which no test
 * could see).
 */
function render(template: string, data: Record<string, unknown>): string {
  const parts = template.split(/\{\{(\w+)\}\}/);
  return parts
    .map((part, index) => {
      if (index % 2 === 0) {
        if (part.includes('{') || part.includes('}'))
          throw new Error(
            `the template has a tag an inline template does not support: ${JSON.stringify(part)}`,
          );
        return part;
      }
      const value = data[part];
      if (typeof value !== 'string' && typeof value !== 'number')
        throw new Error(`the template's variable "${part}" has no value in the entry's data`);
      return String(value);
    })
    .join('');
}

/** SES takes at most 50 entries per SendBulkEmail. */
const SES_BULK_ENTRIES = 50;

/** One SendBulkEmail call: each entry rendered from the inline template with its data over the default. */
function bulkEmails(request: {
  DefaultContent?: {
    Template?: { TemplateContent?: { Subject?: string; Text?: string }; TemplateData?: string };
  };
  BulkEmailEntries?: {
    ReplacementEmailContent?: { ReplacementTemplate?: { ReplacementTemplateData?: string } };
    ReplacementHeaders?: { Name?: string; Value?: string }[];
  }[];
}): { subject: string; body: string; notificationId: string }[] {
  const template = request.DefaultContent?.Template;
  if (!template?.TemplateContent)
    throw new Error('the stand-in sends inline templates only: DefaultContent.Template.TemplateContent');
  const entries = request.BulkEmailEntries ?? [];
  if (entries.length === 0 || entries.length > SES_BULK_ENTRIES)
    throw new Error(`SendBulkEmail takes 1 to ${SES_BULK_ENTRIES} entries, got ${entries.length}`);
  const defaults = JSON.parse(template.TemplateData ?? '{}');
  return entries.map((entry) => {
    const data = {
      ...defaults,
      ...JSON.parse(entry.ReplacementEmailContent?.ReplacementTemplate?.ReplacementTemplateData ?? '{}'),
    };
    return {
      subject: render(template.TemplateContent?.Subject ?? '', data),
      body: render(template.TemplateContent?.Text ?? '', data),
      notificationId:
        entry.ReplacementHeaders?.find((header) => header.Name === 'X-Notification-Id')?.Value ?? '',
    };
  });
}

/**
 * The value of the message attribute `name` of the entry under `prefix` (SNS query form encoding: entries are
 * numbered from 1). No RegExp per key: bench:latency runs this stand-in in the handler's process.
 */
function attribute(form: URLSearchParams, prefix: string, name: string): string {
  const entry = `${prefix}MessageAttributes.entry.`;
  for (let n = 1; form.has(`${entry}${n}.Name`); n++) {
    if (form.get(`${entry}${n}.Name`) === name) return form.get(`${entry}${n}.Value.StringValue`) ?? '';
  }
  return '';
}

export async function startChannelStandIn(): Promise<ChannelStandIn> {
  const calls: ChannelCall[] = [];
  let requests = 0;
  let fails: (subject: string) => boolean = () => false;
  let failure: FailureKind = 'unavailable';
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const id = ++requests;
      const body = Buffer.concat(chunks).toString('utf8');
      if (request.url?.startsWith('/v2/email/outbound-bulk-emails')) {
        let emails: ReturnType<typeof bulkEmails>;
        try {
          emails = bulkEmails(JSON.parse(body));
        } catch (error) {
          response.writeHead(400, {
            'content-type': 'application/json',
            'x-amzn-errortype': 'BadRequestException',
          });
          response.end(JSON.stringify({ message: (error as Error).message }));
          return;
        }
        const results = emails.map((email) => {
          const ok = !fails(email.subject);
          calls.push({ service: 'ses', request: id, ...email, ok });
          if (ok) return { Status: 'SUCCESS', MessageId: `ses-${calls.length}` };
          return failure === 'rejected'
            ? { Status: 'MESSAGE_REJECTED', Error: 'rejected' }
            : { Status: 'ACCOUNT_THROTTLED', Error: 'down' };
        });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ BulkEmailEntryResults: results }));
        return;
      }
      const form = new URLSearchParams(body);
      if (form.get('Action') === 'PublishBatch') {
        const successful: string[] = [];
        const failed: string[] = [];
        for (let n = 1; form.has(`PublishBatchRequestEntries.member.${n}.Id`); n++) {
          const prefix = `PublishBatchRequestEntries.member.${n}.`;
          const entryId = form.get(`${prefix}Id`) ?? '';
          const subject = form.get(`${prefix}Subject`) ?? '';
          const ok = !fails(subject);
          const notificationId = attribute(form, prefix, 'notificationId');
          const message = form.get(`${prefix}Message`) ?? '';
          calls.push({ service: 'sns', request: id, notificationId, subject, body: message, ok });
          if (ok) {
            successful.push(
              `<member><Id>${escapeXml(entryId)}</Id><MessageId>sns-${calls.length}</MessageId></member>`,
            );
          } else {
            failed.push(
              failure === 'rejected'
                ? `<member><Id>${escapeXml(entryId)}</Id><Code>InvalidParameter</Code><Message>rejected</Message><SenderFault>true</SenderFault></member>`
                : `<member><Id>${escapeXml(entryId)}</Id><Code>InternalError</Code><Message>down</Message><SenderFault>false</SenderFault></member>`,
            );
          }
        }
        response.writeHead(200, { 'content-type': 'text/xml' });
        response.end(
          xml(
            '<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult>' +
              `<Successful>${successful.join('')}</Successful><Failed>${failed.join('')}</Failed>` +
              '</PublishBatchResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishBatchResponse>',
          ),
        );
        return;
      }
      if (form.get('Action') === 'Publish') {
        const subject = form.get('Subject') ?? '';
        const ok = !fails(subject);
        calls.push({
          service: 'sns',
          request: id,
          notificationId: attribute(form, '', 'notificationId'),
          subject,
          body: form.get('Message') ?? '',
          ok,
        });
        const rejected = !ok && failure === 'rejected';
        response.writeHead(ok ? 200 : rejected ? 400 : 500, { 'content-type': 'text/xml' });
        response.end(
          ok
            ? xml(
                '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>' +
                  `<MessageId>sns-${calls.length}</MessageId></PublishResult>` +
                  '<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>',
              )
            : xml(
                rejected
                  ? '<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>rejected</Message></Error><RequestId>r</RequestId></ErrorResponse>'
                  : '<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>down</Message></Error><RequestId>r</RequestId></ErrorResponse>',
              ),
        );
        return;
      }
      response.writeHead(400, { 'content-type': 'text/xml' });
      response.end(
        xml(
          '<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>' +
            `<Message>the channel stand-in answers Publish and PublishBatch, not ${escapeXml(form.get('Action') ?? 'nothing')}</Message>` +
            '</Error><RequestId>r</RequestId></ErrorResponse>',
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    requests: () => requests,
    failWhen: (predicate, how = 'unavailable') => {
      fails = predicate;
      failure = how;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
