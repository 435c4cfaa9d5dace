import { createHash } from 'node:crypto';

/** A stable UUID per ESM (function, topic, group), so the Lambda API and S3 keys survive restarts. */
export function esmUuid(functionKey: string, topic: string, consumerGroupId: string): string {
  const hex = createHash('sha1').update(`${functionKey}\0${topic}\0${consumerGroupId}`).digest('hex');
  // UUID v5 layout: version nibble 5, RFC 4122 variant.
  const variant = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
