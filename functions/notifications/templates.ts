import bookingConfirmedCustomer from './templates/booking-confirmed-customer.json';
import hitlReviewRequested from './templates/hitl-review-requested.json';
import incidentCriticalOncall from './templates/incident-critical-oncall.json';
import paymentFailedCustomer from './templates/payment-failed-customer.json';

/** A message template: `{{name}}` placeholders in subject and body. Files in ./templates, bundled as JSON. */
export interface Template {
  subject: string;
  body: string;
}

export const templates = {
  'incident-critical-oncall': incidentCriticalOncall,
  'hitl-review-requested': hitlReviewRequested,
  'payment-failed-customer': paymentFailedCustomer,
  'booking-confirmed-customer': bookingConfirmedCustomer,
} satisfies Record<string, Template>;

export type TemplateName = keyof typeof templates;

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const placeholder = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

/** Every placeholder a template uses. */
export function placeholders(template: Template): string[] {
  return [
    ...new Set([...`${template.subject}\n${template.body}`.matchAll(placeholder)].map((m) => m[1] as string)),
  ];
}

/** Fills a template; a placeholder without a value is an error, never an empty gap in a message to a person. */
export function render(name: TemplateName, values: Record<string, string>): Template {
  const template: Template = templates[name];
  const missing = placeholders(template).filter((key) => values[key] === undefined);
  if (missing.length > 0)
    throw new TemplateError(`Template ${name} is missing values for ${missing.join(', ')}`);
  const fill = (text: string) => text.replace(placeholder, (_match, key: string) => values[key] as string);
  return { subject: fill(template.subject), body: fill(template.body) };
}
