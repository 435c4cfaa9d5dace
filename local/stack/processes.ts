import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pidFile } from './paths';
import { writePrivateFile } from './private-file';

/** A failure of the local stack with a message meant for the person at the terminal. */
export class StackError extends Error {
  override name = 'StackError';
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the pid exists but belongs to someone else, so it is alive (and not ours).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process started, in clock ticks after boot: field 22 of /proc/<pid>/stat. A pid is reused by the
 * kernel, but never with the same start time, so (pid, start time) names one process. Undefined when the
 * process is gone or there is no /proc.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 is the command name in parentheses and may itself hold spaces and ')': fields 3.. follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[22 - 3];
}

/** The process's command line, or '' when it is gone (Linux /proc; elsewhere we trust the pid). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return existsSync('/proc') ? '' : '(unknown)';
  }
}

export interface PidRecord {
  pid: number;
  /** A string the process's command line must contain (a second check; the start time is the one that counts). */
  marker: string;
  /** The child's start time from /proc (processStartTime), recorded at spawn: a recycled pid has another one. */
  startTime?: string;
  startedAt: string;
  /** Who wants it running: `stack up` (cli) or a test run (test); test runs only stop test-owned children. */
  owner: 'cli' | 'test';
}

export function readPid(service: string): PidRecord | undefined {
  try {
    return JSON.parse(readFileSync(pidFile(service), 'utf8')) as PidRecord;
  } catch {
    return undefined;
  }
}

export function writePid(service: string, record: PidRecord): void {
  writePrivateFile(pidFile(service), `${JSON.stringify(record)}\n`);
}

export function removePid(service: string): void {
  rmSync(pidFile(service), { force: true });
}

/**
 * Whether the record's pid is still the process that was recorded: same start time (where /proc has one), and a
 * command line holding the marker. A command line alone is no proof: a recycled pid can belong to another
 * `dynalite` or `kafka.Kafka` (somebody else's stack), which `down` would then kill.
 */
export function isRecordedProcess(record: Pick<PidRecord, 'pid' | 'marker' | 'startTime'>): boolean {
  if (!isAlive(record.pid)) return false;
  const startTime = processStartTime(record.pid);
  if (startTime !== undefined && startTime !== record.startTime) return false;
  const cmd = commandLine(record.pid);
  return cmd === '(unknown)' || cmd.includes(record.marker);
}

/** The pid of the service's child if its pid file names a live process that is really that child. */
export function livePid(service: string): number | undefined {
  const record = readPid(service);
  return record && isRecordedProcess(record) ? record.pid : undefined;
}

/**
 * A socket connected to itself: a connect to a port nobody listens on yet, given that very port as its ephemeral
 * local port (TCP simultaneous open). It "answers", and holds the port the server is about to listen on.
 */
function isSelfConnection(socket: Socket): boolean {
  return socket.localPort === socket.remotePort && socket.localAddress === socket.remoteAddress;
}

/** Whether a server answers on the port; `connect` is the socket factory (tests choose the local port). */
export function portAnswers(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 1000,
  connect: (options: { host: string; port: number }) => Socket = createConnection,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(!isSelfConnection(socket)));
    socket.once('error', () => done(false));
  });
}

/** Fails early with a clear message instead of letting a child die on EADDRINUSE with the reason buried. */
export async function assertPortFree(port: number, service: string, variable: string): Promise<void> {
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!free) {
    throw new StackError(
      `${service}: port 127.0.0.1:${port} is already in use by another process. ` +
        `Stop that process or choose another port with ${variable}=<port>.`,
    );
  }
}

export function logTail(file: string, lines = 40): string {
  if (!existsSync(file)) return `(no log at ${file})`;
  const text = readFileSync(file, 'utf8').trimEnd().split('\n');
  return text.slice(-lines).join('\n');
}

let spawnOwner: PidRecord['owner'] = 'cli';
/** Set by `up` before it starts children; their pid files carry it. */
export function setSpawnOwner(owner: PidRecord['owner']): void {
  spawnOwner = owner;
}

export interface DetachedChild {
  pid: number;
  child: ChildProcess;
}

/**
 * Starts a child that outlives this process: its own process group, stdio to a log file (no pipes back to
 * us, which would keep our event loop alive and kill the child with SIGPIPE when we exit).
 */
export function spawnDetached(
  command: string,
  args: string[],
  options: { service: string; marker: string; logFile: string; cwd: string; env?: NodeJS.ProcessEnv },
): DetachedChild {
  // A fresh log per start (the previous one kept as .1), so a failure's log tail is this start's only.
  if (existsSync(options.logFile)) renameSync(options.logFile, `${options.logFile}.1`);
  const out = openSync(options.logFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    if (child.pid === undefined) {
      throw new StackError(`could not start ${command}: ${options.logFile}`);
    }
    child.unref();
    // Recorded at once (before readiness), so a child that never becomes ready is still stopped by its pid.
    writePid(options.service, {
      pid: child.pid,
      marker: options.marker,
      startTime: processStartTime(child.pid),
      startedAt: new Date().toISOString(),
      owner: spawnOwner,
    });
    return { pid: child.pid, child };
  } finally {
    closeSync(out);
  }
}

/**
 * SIGTERM, then SIGKILL once the grace period is over, to the recorded process only: its identity is checked
 * before each signal, so a pid recycled during the grace period is left alone. Resolves when it is gone.
 */
export async function stopProcess(
  record: Pick<PidRecord, 'pid' | 'marker' | 'startTime'>,
  graceMs = 10_000,
): Promise<'stopped' | 'killed' | 'not-running'> {
  const { pid } = record;
  if (!isRecordedProcess(record)) return 'not-running';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'not-running';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isRecordedProcess(record)) return 'stopped';
    await sleep(100);
  }
  try {
    if (!isRecordedProcess(record)) return 'stopped';
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'stopped';
  }
  while (isRecordedProcess(record)) await sleep(50);
  return 'killed';
}

/**
 * Polls `ready` until it resolves true; fails with the log tail if the child exits or the timeout passes.
 * `ready` is asked again after every failure, so transient errors while the service boots are fine.
 */
export async function waitUntilReady(options: {
  service: string;
  pid: number;
  logFile: string;
  timeoutMs: number;
  ready: () => Promise<boolean>;
}): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!isAlive(options.pid)) {
      throw new StackError(
        `${options.service} exited during start-up (pid ${options.pid}). Last lines of ${options.logFile}:\n` +
          logTail(options.logFile),
      );
    }
    try {
      if (await options.ready()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(150);
  }
  const reason = lastError instanceof Error ? ` Last readiness error: ${lastError.message}.` : '';
  throw new StackError(
    `${options.service} did not become ready within ${Math.round(options.timeoutMs / 1000)} s (pid ` +
      `${options.pid}).${reason} Last lines of ${options.logFile}:\n${logTail(options.logFile)}`,
  );
}
