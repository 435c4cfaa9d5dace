// Sets the password of one of the store's login roles (migration 008) from the secret the deploy generated for
// it. The server gets a SCRAM-SHA-256 verifier, never the password: statement logging (log_statement,
// pgaudit, Aurora's postgresql log export) would otherwise write it to the logs.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';

/** The logins migration 008 creates; nothing else may be given a password this way. */
export const STORE_LOGINS = ['audit_append_login', 'audit_digest_login'] as const;

const ITERATIONS = 4096;

/** RFC 5802 / PostgreSQL's stored form: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>. */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export async function setLoginPassword(
  database: { query(text: string): Promise<unknown> },
  login: string,
  password: string,
): Promise<void> {
  if (!(STORE_LOGINS as readonly string[]).includes(login)) {
    throw new Error(`refusing to set a password for "${login}": only ${STORE_LOGINS.join(', ')}`);
  }
  if (password.length < 16) throw new Error(`the password for ${login} is shorter than 16 characters`);
  await database.query(
    `ALTER ROLE ${pg.escapeIdentifier(login)} PASSWORD ${pg.escapeLiteral(scramVerifier(password))}`,
  );
}
