// A function's environment as Lambda would set it: provider.environment merged with the function's own,
// with Refs to the stage's tables and bucket resolved to their local names.
import { memorySizeOf, type ResolvedServerlessConfig } from './config';

type EnvValue = string | number | boolean | { Ref?: string } | Record<string, unknown>;

export function functionEnvironment(
  config: ResolvedServerlessConfig,
  functionKey: string,
  resourceNames: Record<string, string>,
): Record<string, string> {
  const fn = config.functions[functionKey] as
    | { environment?: Record<string, EnvValue>; name?: string }
    | undefined;
  if (!fn) throw new Error(`No function ${functionKey} in serverless.yml`);
  const provider = (config.provider as { environment?: Record<string, EnvValue> }).environment ?? {};
  const env: Record<string, string> = {
    AWS_LAMBDA_FUNCTION_NAME: fn.name ?? functionKey,
    // The function's own size first (audit-digest has 256 MB), as Lambda sets it.
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memorySizeOf(config, functionKey)),
  };
  for (const [name, value] of Object.entries({ ...provider, ...(fn.environment ?? {}) })) {
    // NODE_OPTIONS would be read by nothing in a worker thread; keep the parent's.
    if (name === 'NODE_OPTIONS') continue;
    env[name] = resolveValue(name, value, resourceNames);
  }
  return env;
}

function resolveValue(name: string, value: EnvValue, resourceNames: Record<string, string>): string {
  if (typeof value !== 'object' || value === null) return String(value);
  const ref = (value as { Ref?: string }).Ref;
  const resolved = ref ? resourceNames[ref] : undefined;
  if (resolved === undefined) {
    throw new Error(
      `Cannot resolve ${name}=${JSON.stringify(value)} locally (only Refs to provisioned resources)`,
    );
  }
  return resolved;
}
