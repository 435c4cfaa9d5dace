/**
 * A failure whose message is written for the person at the terminal (bad flags, a missing prerequisite, a
 * state that needs their decision): the CLI prints the message alone, no stack trace, and exits with exitCode
 * (2 for wrong usage, as parseArgs errors).
 */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A numeric flag's value, or undefined when absent; refused (exit 2) with `what` it must be when not valid. */
export function numberFlag(
  flag: string,
  value: string | undefined,
  valid: (n: number) => boolean,
  what: string,
): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === '' || !valid(parsed))
    throw new CliError(`--${flag} must be ${what}, got "${value}"`, 2);
  return parsed;
}
