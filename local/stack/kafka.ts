import '../../shared/kafka/node20-polyfills';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { kafkaDir, kafkaLibDir, logFile, repoRoot, stateDir } from './paths';
import { StackError, spawnDetached, waitUntilReady } from './processes';

const pomFile = join(kafkaDir, 'pom.xml');
/** Written after a successful fetch; holds the pom's hash, so an edited pom (new version) fetches again. */
const fetchedMarker = join(kafkaDir, 'target', 'fetched.json');

function pomHash(): string {
  return createHash('sha256').update(readFileSync(pomFile)).digest('hex');
}

/** Runs a command without blocking the event loop (the other services' readiness polls keep running). */
function run(command: string, args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: repoRoot, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ status, output: `${stdout}${stderr}${error && status === 1 ? `\n${error.message}` : ''}` });
    });
  });
}

function hasCommand(command: string): boolean {
  return spawnSync(command, ['-version'], { stdio: 'ignore' }).error === undefined;
}

/** True when the broker classpath is complete for the current pom: no Maven (and no network) needed. */
export function kafkaJarsPresent(): boolean {
  if (!existsSync(fetchedMarker) || !existsSync(kafkaLibDir)) return false;
  try {
    const marker = JSON.parse(readFileSync(fetchedMarker, 'utf8')) as { pom: string; jars: string[] };
    const present = new Set(readdirSync(kafkaLibDir));
    return marker.pom === pomHash() && marker.jars.every((jar) => present.has(jar));
  } catch {
    return false;
  }
}

/** Fetches the broker jars from Maven Central once (local/kafka/target/lib, git-ignored). */
export async function ensureKafkaJars(log: (line: string) => void = () => {}): Promise<void> {
  if (kafkaJarsPresent()) return;
  if (!hasCommand('mvn')) {
    throw new StackError(
      'Kafka: the broker jars are not fetched yet and `mvn` is not on PATH. Install Maven 3.8+ ' +
        '(Debian: apt-get install maven), or point KAFKA_BROKERS at a running broker.',
    );
  }
  log('kafka: fetching broker jars from Maven Central (once) ...');
  const result = await run('mvn', ['-q', '-B', '-f', pomFile, 'package']);
  if (result.status !== 0) {
    throw new StackError(
      `Kafka: \`mvn -f local/kafka/pom.xml package\` failed (exit ${result.status}):\n` +
        `${result.output.trim().split('\n').slice(-30).join('\n')}`,
    );
  }
  const jars = readdirSync(kafkaLibDir).filter((name) => name.endsWith('.jar'));
  writeFileSync(fetchedMarker, `${JSON.stringify({ pom: pomHash(), jars }, null, 2)}\n`);
}

export interface KafkaPorts {
  broker: number;
  controller: number;
}

export const kafkaDataDir = () => join(stateDir, 'kafka', 'data');

/** A Kafka cluster id: 16 random bytes, base64url without padding (what `StorageTool random-uuid` prints). */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    // Kafka's own generator rejects ids starting with '-' (they read as a CLI flag).
    if (!id.startsWith('-')) return id;
  }
}

function writeServerProperties(ports: KafkaPorts): string {
  const template = readFileSync(join(kafkaDir, 'server.properties'), 'utf8');
  const text = template
    .replaceAll('@BROKER_PORT@', String(ports.broker))
    .replaceAll('@CONTROLLER_PORT@', String(ports.controller))
    .replaceAll('@DATA_DIR@', kafkaDataDir());
  const file = join(stateDir, 'kafka', 'server.properties');
  mkdirSync(join(stateDir, 'kafka'), { recursive: true });
  writeFileSync(file, text);
  return file;
}

function javaArgs(heap: string[]): string[] {
  return [
    ...heap,
    // A small local broker: serial GC and C1 only start faster and use less memory on 2 cores.
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(kafkaDir, 'log4j2.properties')}`,
    '-cp',
    `${kafkaLibDir}/*`,
  ];
}

function assertJava(): void {
  if (!hasCommand('java')) {
    throw new StackError(
      'Kafka: `java` is not on PATH. The local broker needs Java 17+ (Debian: apt-get install ' +
        'openjdk-17-jre-headless), or point KAFKA_BROKERS at a running broker.',
    );
  }
}

/** Formats the KRaft storage on first start only (meta.properties present = formatted). */
async function formatStorage(propertiesFile: string): Promise<void> {
  if (existsSync(join(kafkaDataDir(), 'meta.properties'))) return;
  mkdirSync(kafkaDataDir(), { recursive: true });
  // Static quorum (controller.quorum.voters) => format without --standalone.
  const result = await run('java', [
    ...javaArgs(['-Xmx256m']),
    'kafka.tools.StorageTool',
    'format',
    '-t',
    clusterId(),
    '-c',
    propertiesFile,
    '--ignore-formatted',
  ]);
  writeFileSync(logFile('kafka-format'), result.output);
  if (result.status !== 0) {
    throw new StackError(
      `Kafka: formatting storage in ${kafkaDataDir()} failed (exit ${result.status}):\n` +
        `${result.output.trim().split('\n').slice(-20).join('\n')}`,
    );
  }
}

/** The metadata round trip that proves the broker serves requests, not just that its port is open. */
export async function kafkaAnswersMetadata(brokers: string, timeoutMs = 5000): Promise<boolean> {
  const admin = new Admin({
    clientId: 'stack-readiness',
    bootstrapBrokers: [brokers],
    timeout: timeoutMs,
    retries: 0,
    connectTimeout: timeoutMs,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const metadata = await Promise.race([
      admin.metadata({ topics: [] }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`metadata request timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    return metadata.brokers.size > 0;
  } finally {
    clearTimeout(timer);
    await admin.close().catch(() => {});
  }
}

export async function startKafka(ports: KafkaPorts, timeoutMs: number): Promise<number> {
  assertJava();
  await ensureKafkaJars((line) => console.error(line));
  const propertiesFile = writeServerProperties(ports);
  await formatStorage(propertiesFile);
  const log = logFile('kafka');
  const heap = (process.env.STACK_KAFKA_HEAP ?? '-Xms128m -Xmx512m').split(/\s+/).filter(Boolean);
  const { pid } = spawnDetached('java', [...javaArgs(heap), 'kafka.Kafka', propertiesFile], {
    service: 'kafka',
    marker: 'kafka.Kafka',
    logFile: log,
    cwd: repoRoot,
  });
  await waitUntilReady({
    service: 'Kafka broker',
    pid,
    logFile: log,
    timeoutMs,
    ready: () => kafkaAnswersMetadata(`127.0.0.1:${ports.broker}`),
  });
  return pid;
}
