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
  /** Which messages (by subject) fail with a server error (retryable); none by default. */
  failWhen(predicate: (subject: string) => boolean): void;
  close(): Promise<void>;
}

const xml = (body: string) => `<?xml version="1.0"?>${body}`;
const escapeXml = (text: string) => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

const escapeHtml = (text: string) =>
  text.replace(/[&<>"'`=]/g, (c) => `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`);

/**
 * An SES template with the data of one entry, as SES renders an inline template (simple substitution, no
 * helpers): `{{{name}}}` as it is, `{{name}}` HTML-escaped, as Handlebars does. A variable the data lacks is
 * refused with a 400 here; SES would accept the call and drop the email later (a rendering failure event), which
 * a test could not see.
 */
function render(template: string, data: Record<string, unknown>): string {
  return template.replace(/\{\{(\{?)\s*([\w.-]+)\s*\}?\}\}/g, (_, raw: string, name: string) => {
    const value = data[name];
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new Error(`the template's variable "${name}" has no value in the entry's data`);
    return raw ? String(value) : escapeHtml(String(value));
  });
}

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
  const defaults = JSON.parse(template.TemplateData ?? '{}');
  return (request.BulkEmailEntries ?? []).map((entry) => {
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
          return ok
            ? { Status: 'SUCCESS', MessageId: `ses-${calls.length}` }
            : { Status: 'TRANSIENT_FAILURE', Error: 'down' };
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
              `<member><Id>${escapeXml(entryId)}</Id><Code>InternalError</Code><Message>down</Message><SenderFault>false</SenderFault></member>`,
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
        response.writeHead(ok ? 200 : 500, { 'content-type': 'text/xml' });
        response.end(
          ok
            ? xml(
                '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>' +
                  `<MessageId>sns-${calls.length}</MessageId></PublishResult>` +
                  '<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>',
              )
            : xml(
                '<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>down</Message></Error><RequestId>r</RequestId></ErrorResponse>',
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
    failWhen: (predicate) => {
      fails = predicate;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
