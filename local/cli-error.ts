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
