/**
 * The one way tests load a sample event from events/: parsed once, handed out as a structuredClone so a
 * test that mutates its copy cannot leak into another test.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KafkaEvent } from '../../shared/msk/event';

const eventsDir = join(import.meta.dirname, '..', '..', 'events');
const cache = new Map<string, unknown>();

/** `loadEvent('billing/booking-completed.json')` */
export function loadEvent<Event = KafkaEvent>(relativePath: string): Event {
  let parsed = cache.get(relativePath);
  if (parsed === undefined) {
    parsed = JSON.parse(readFileSync(join(eventsDir, relativePath), 'utf8'));
    cache.set(relativePath, parsed);
  }
  return structuredClone(parsed) as Event;
}
