import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type DigestStore, digestKey, type StoredDigest } from './digest';

/**
 * Digests as S3 objects under one prefix. Writes are conditional (If-None-Match: *): an existing digest is
 * never replaced, and the bucket policy refuses any PutObject without that header. The bucket's Object Lock
 * (compliance mode) keeps every version for the retention period, whoever asks.
 */
export class S3DigestStore implements DigestStore {
  constructor(
    private readonly s3: Pick<S3Client, 'send'>,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  async latest(): Promise<StoredDigest | undefined> {
    // Digests are written every few minutes: today's or yesterday's key prefix has the newest one; only a
    // store idle for longer is listed whole.
    const now = Date.now();
    for (const day of [new Date(now), new Date(now - 24 * 3600 * 1000)]) {
      const dayPrefix = digestKey(this.prefix, day).replace(/[^/]*$/, '');
      const key = await this.lastKey(dayPrefix);
      if (key) return this.get(key);
    }
    const key = await this.lastKey(this.prefix);
    return key ? this.get(key) : undefined;
  }

  async put(digest: StoredDigest): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: digest.key,
        Body: digest.body,
        ContentType: 'application/json',
        IfNoneMatch: '*',
      }),
    );
  }

  async *all(): AsyncIterable<StoredDigest> {
    for await (const key of this.keys(this.prefix)) yield this.get(key);
  }

  private async lastKey(prefix: string): Promise<string | undefined> {
    let last: string | undefined;
    for await (const key of this.keys(prefix)) last = key;
    return last;
  }

  /** Keys in lexicographic (= time) order, the order S3 lists them in. */
  private async *keys(prefix: string): AsyncIterable<string> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key?.endsWith('.json')) yield object.Key;
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  private async get(key: string): Promise<StoredDigest> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    const bytes = await object.Body?.transformToByteArray();
    if (!bytes) throw new Error(`digest s3://${this.bucket}/${key} has no body`);
    return { key, body: Buffer.from(bytes) };
  }
}
