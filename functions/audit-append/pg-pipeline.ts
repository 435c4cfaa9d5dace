import type pg from 'pg';

/** A statement the connection prepares once under its name and then only binds and executes. */
export interface NamedStatement {
  name: string;
  text: string;
}

/** The rows of one execution, each as its columns' text (null for NULL). */
export type TextRows = Array<Array<string | null>>;

/**
 * Executes the prepared `statement` once per parameter set, pipelined, in one transaction: each set goes out
 * (Bind, Execute) as soon as it is pulled, without waiting for the previous one's result, and one Sync ends the
 * series. The server executes one set while the caller builds the next, the caller waits once, and the series
 * commits at the Sync or not at all (inside a transaction the caller opened, it joins that one). Resolves with
 * each execution's rows, in order. If pulling a set throws, the series is aborted (rolled back) and that error
 * rethrown; if an execution fails, the server skips the rest and the error is rethrown.
 * PostgreSQL's extended query protocol (section 55.2.3): pg has no API for several Executes under one Sync, so
 * this is a custom query object (pg's Submittable), the way pg-cursor is.
 */
export async function executePipelined(
  client: Pick<pg.ClientBase, 'query'>,
  statement: NamedStatement,
  parameterSets: Iterable<unknown[]>,
): Promise<TextRows[]> {
  const series = new PipelinedExecutions(statement);
  const done = new Promise<TextRows[]>((resolve, reject) => {
    series.callback = (error, results) => (error ? reject(error) : resolve(results as TextRows[]));
  });
  client.query(series as unknown as pg.Submittable);
  let sets = 0;
  try {
    for (const values of parameterSets) {
      series.execute(values);
      sets += 1;
    }
  } catch (error) {
    series.end({ abort: true });
    await done.catch(() => {});
    throw error;
  }
  series.end({ abort: false });
  const results = await done;
  if (results.length !== sets)
    throw new Error(`pipelined ${sets} executions, the server completed ${results.length}`);
  return results;
}

/** The part of pg's Connection a custom query object writes to. */
interface ProtocolConnection {
  parsedStatements: Record<string, string | undefined>;
  submittedNamedStatements: Record<string, string | undefined>;
  parse(query: { text: string; name: string }): void;
  bind(config: { statement: string; values: unknown[] }): void;
  execute(config: { portal?: string }): void;
  sync(): void;
}

/** No portal has this name: executing it is refused, which aborts the series' transaction before its Sync. */
const ABORT_PORTAL = 'audit_append_abort';

/** One pipelined series on a pg client (see executePipelined); pg calls submit and the handle* methods. */
class PipelinedExecutions {
  readonly name: string;
  readonly text: string;
  callback?: (error: Error | null, results?: TextRows[]) => void;
  private connection?: ProtocolConnection;
  private readonly waiting: Array<() => void> = [];
  private readonly results: TextRows[] = [];
  private rows: TextRows = [];
  private synced = false;
  private finished = false;

  constructor(statement: NamedStatement) {
    this.name = statement.name;
    this.text = statement.text;
  }

  submit(connection: ProtocolConnection): Error | undefined {
    const known = connection.parsedStatements[this.name] ?? connection.submittedNamedStatements[this.name];
    if (known !== undefined && known !== this.text) {
      return new Error(`prepared statement "${this.name}" is already used for another statement`);
    }
    this.connection = connection;
    if (known === undefined) {
      connection.parse({ text: this.text, name: this.name });
      connection.submittedNamedStatements[this.name] = this.text;
    }
    for (const write of this.waiting.splice(0)) write();
    return undefined;
  }

  execute(values: unknown[]): void {
    this.send(() => {
      this.connection?.bind({ statement: this.name, values });
      this.connection?.execute({});
    });
  }

  end({ abort }: { abort: boolean }): void {
    if (abort) this.send(() => this.connection?.execute({ portal: ABORT_PORTAL }));
    this.send(() => {
      this.synced = true;
      this.connection?.sync();
    });
  }

  /** Writes now, or when pg submits the series (the client was busy); nothing after the Sync. */
  private send(write: () => void): void {
    if (this.synced) return;
    if (this.connection) write();
    else this.waiting.push(write);
  }

  handleDataRow(message: { fields: Array<string | null> }): void {
    this.rows.push(message.fields);
  }

  handleCommandComplete(): void {
    this.results.push(this.rows);
    this.rows = [];
  }

  handleError(error: Error): void {
    // The server skips everything up to the Sync; send it now if the failure came first (pg has already let go
    // of this query; the client waits for the ReadyForQuery the Sync brings). Nothing was written if pg refused
    // to submit the series, and then nothing is owed.
    if (this.connection && !this.synced) {
      this.synced = true;
      this.connection.sync();
    }
    this.finish(error);
  }

  handleReadyForQuery(): void {
    this.finish(null);
  }

  handleRowDescription(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}

  private finish(error: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    this.callback?.(error, error ? undefined : this.results);
  }
}
