// The benchmarks that need the local stack bring it up the way a test run does: they reuse a stack that is
// already running and, when they end, stop only what they started (unless a test run still holds a lease on
// it), so a benchmark never leaves a broker behind on the machine.
import { acquireLease, releaseLeaseAndStopIfUnused, type StackState, up } from '../local/stack/index';

export async function withStack<T>(
  run: (stack: StackState) => Promise<T>,
  log: (line: string) => void,
): Promise<T> {
  const lease = acquireLease();
  try {
    return await run(await up({ owner: 'test', log }));
  } finally {
    const stopped = await releaseLeaseAndStopIfUnused(lease);
    const names = stopped.filter((s) => s.result !== 'kept').map((s) => s.name);
    if (names.length > 0) log(`stopped ${names.join(', ')}, started for this benchmark`);
  }
}
