import { createHash } from 'node:crypto';

/** Namespace for every id this function derives (a fixed random UUID; changing it changes every id). */
export const INCIDENT_EXPLANATION_NAMESPACE = '0b6e4a8e-5f1c-4c53-9a3e-8d1f2c7b9e40';

/**
 * RFC 9562 UUIDv5 (SHA-1, name-based): the same name always yields the same id. Events re-produced for a
 * redelivered incident therefore carry the ids of the first production, and consumers dedupe on ce_id.
 */
export function uuidV5(name: string, namespace: string = INCIDENT_EXPLANATION_NAMESPACE): string {
  const namespaceBytes = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (namespaceBytes.length !== 16) throw new Error(`Namespace is not a UUID: ${namespace}`);
  const hash = createHash('sha1').update(namespaceBytes).update(name, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The id of the `kind` artefact (genai.request, genai.response, review, ...) of one incident. */
export function incidentArtefactId(incidentId: string, kind: string): string {
  return uuidV5(`incident/${incidentId}/${kind}`);
}
