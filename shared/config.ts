/** Raised at start-up (module scope) so a misconfigured function fails its cold start, not mid-batch. */
export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
}

/**
 * Reads required environment variables, failing with one message that names every missing one.
 * Call at module scope: `const config = requireEnv('DEMAND_TABLE')`.
 */
export function requireEnv<const Name extends string>(...names: Name[]): Record<Name, string> {
  const missing = names.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new ConfigurationError(
      `Missing required environment variable${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}` +
        ' (set in serverless.yml for the function, or in the shell for local runs)',
    );
  }
  return Object.fromEntries(names.map((name) => [name, process.env[name] as string])) as Record<Name, string>;
}

/** An optional integer setting with a default; a value that is not an integer is a configuration error. */
export function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) {
    throw new ConfigurationError(`Environment variable ${name} must be an integer, got "${raw}"`);
  }
  return value;
}
