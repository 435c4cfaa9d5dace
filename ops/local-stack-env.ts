// --stage local: the broker and the stores are wherever `npm run stack -- up` / `npm run dev` put them.
/** Adds the local stack's endpoints to the environment, under what it sets already. Loaded lazily: only locally. */
export async function useLocalStackEnv(): Promise<void> {
  const { readStackState } = await import('../local/stack/index');
  for (const [name, value] of Object.entries(readStackState()?.env ?? {})) process.env[name] ??= value;
}
