// The benchmarks that need the local stack bring it up the way a test run does: they reuse a stack that is
// already running and, when they end, stop only what they started (unless a test run still holds a lease on
// it), so a benchmark never leaves a broker behind on the machine. dynalite, when a benchmark starts it, keeps its
// tables in memory: nothing a benchmark writes outlives it, and LevelDB on disk cost dynalite about a third more CPU per
// request on this 2-core machine, all of it a stand-in's cost that AWS does not have (bench/RESULTS.md).
import { acquireLease, releaseLeaseAndStopIfUnused, type StackState, up } from '../local/stack/index';

export async function withStack<T>(
  run: (stack: StackState) => Promise<T>,
  log: (line: string) => void,
): Promise<T> {
  const lease = acquireLease();
  try {
    const stack = await up({ owner: 'test', log, dynamodbInMemory: true });
    const dynamodb = stack.services.find((s) => s.name === 'dynamodb');
    if (dynamodb?.storage === 'disk')
      log('dynamodb: a running dynalite reused, its tables on disk (LevelDB)');
    return await run(stack);
  } finally {
    const stopped = await releaseLeaseAndStopIfUnused(lease);
    const names = stopped.filter((s) => s.result !== 'kept').map((s) => s.name);
    if (names.length > 0) log(`stopped ${names.join(', ')}, started for this benchmark`);
  }
}
