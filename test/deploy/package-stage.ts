import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in test/deploy). */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// What `serverless package` reads: the config, its includes and the code esbuild bundles.
const PROJECT_ENTRIES = [
  'serverless.yml',
  'serverless',
  'functions',
  'shared',
  'schemas',
  'migrations',
  'package.json',
  'tsconfig.json',
];

export interface CloudFormationResource {
  Type: string;
  Condition?: string;
  DependsOn?: string | string[];
  Properties: Record<string, unknown>;
  [attribute: string]: unknown;
}

export interface CloudFormationTemplate {
  Resources: Record<string, CloudFormationResource>;
  Conditions?: Record<string, unknown>;
  Outputs?: Record<string, unknown>;
}

export interface PackageResult {
  ok: boolean;
  /** stdout and stderr together: osls prints its errors to either. */
  output: string;
  /** The packaged update-stack template, when packaging succeeded. */
  template?: CloudFormationTemplate;
  /** Where the artifacts (.zip per function, templates) were written. */
  artifactDir: string;
}

export interface PackageOptions {
  stage: string;
  /** `--param` values: name -> value. */
  params?: Record<string, string>;
  region?: string;
}

/**
 * Runs `serverless package` for one stage in a private copy of the service (its own .esbuild and output
 * directory), so several stages can be packaged in parallel and nothing in the working tree is touched.
 * Never throws for a failed package: the result says ok=false and carries the CLI output.
 */
export async function packageStage(options: PackageOptions): Promise<PackageResult> {
  const workDir = await copyService(options.stage);
  const artifactDir = path.join(workDir, 'artifacts');
  await mkdir(artifactDir);
  const { ok, output } = await runServerlessPackage(workDir, [
    '--stage',
    options.stage,
    '--region',
    options.region ?? 'eu-west-1',
    '--package',
    artifactDir,
    ...Object.entries(options.params ?? {}).map(([name, value]) => `--param=${name}=${value}`),
  ]);
  const template = ok
    ? (JSON.parse(
        await readFile(path.join(artifactDir, 'cloudformation-template-update-stack.json'), 'utf8'),
      ) as CloudFormationTemplate)
    : undefined;
  return { ok, output, artifactDir, ...(template ? { template } : {}) };
}

/** A private copy of what `serverless package` reads, in a new temporary directory, node_modules linked. */
export async function copyService(label: string): Promise<string> {
  const workDir = await mkdtemp(path.join(tmpdir(), `mobility-events-${label}-`));
  await Promise.all(
    PROJECT_ENTRIES.map((entry) =>
      cp(path.join(projectRoot, entry), path.join(workDir, entry), { recursive: true }).catch(
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        },
      ),
    ),
  );
  await symlink(path.join(projectRoot, 'node_modules'), path.join(workDir, 'node_modules'), 'dir');
  return workDir;
}

/**
 * `serverless package <args>` in `dir`, offline (no AWS profile). Never throws: ok=false with the CLI output.
 * At most one run per core at a time: esbuild bundling the functions is CPU-bound, and more packages at
 * once than cores only made each one slower, until they hit the timeout on a loaded 2-core machine.
 */
export async function runServerlessPackage(
  dir: string,
  args: string[],
): Promise<{ ok: boolean; output: string }> {
  await packagingSlots.acquire();
  try {
    return await new Promise((resolve) => {
      execFile(
        process.execPath,
        [path.join(projectRoot, 'node_modules/osls/bin/serverless.js'), 'package', ...args],
        {
          cwd: dir,
          maxBuffer: 32 * 1024 * 1024,
          timeout: 300_000,
          env: { ...process.env, AWS_PROFILE: '', SLS_TELEMETRY_DISABLED: '1' },
        },
        (error, stdout, stderr) =>
          resolve({
            ok: !error,
            output: `${stdout}\n${stderr}${error?.killed ? '\n(killed: serverless package exceeded 300 s)' : ''}`,
          }),
      );
    });
  } finally {
    packagingSlots.release();
  }
}

class Slots {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

const packagingSlots = new Slots(Math.max(1, availableParallelism()));

/** Removes the private copy made by packageStage. */
export async function removePackage(result: PackageResult): Promise<void> {
  await rm(path.dirname(result.artifactDir), { recursive: true, force: true });
}

/** A complete parameter set for an AWS stage (fictitious account 123456789012, eu-west-1). */
export const AWS_STAGE_PARAMS: Record<string, string> = {
  mskClusterArn:
    'arn:aws:kafka:eu-west-1:123456789012:cluster/mobility-prod/1a2b3c4d-1111-2222-3333-444455556666-3',
  kafkaBrokers:
    'b-1.mobilityprod.abc123.c3.kafka.eu-west-1.amazonaws.com:9098,b-2.mobilityprod.abc123.c3.kafka.eu-west-1.amazonaws.com:9098',
  subnetIds: 'subnet-0aaa1111bbbb2222c,subnet-0ddd3333eeee4444f',
  securityGroupIds: 'sg-0123456789abcdef0',
  vpcId: 'vpc-0123456789abcdef0',
  bedrockModelId: 'eu.anthropic.claude-3-haiku-20240307-v1:0',
  alarmEmail: 'ops@example.com',
  notificationsPagerTopicArn: 'arn:aws:sns:eu-west-1:123456789012:oncall-pager',
  notificationsPushTopicArn: 'arn:aws:sns:eu-west-1:123456789012:customer-push',
  notificationsEmailFrom: 'no-reply@mobility.example.com',
  notificationsReviewersEmail: 'reviewers@mobility.example.com',
};
