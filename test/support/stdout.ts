// What a CLI run in-process printed: the operations' commands write their reports to stdout.
import { vi } from 'vitest';

/** Runs `fn` with process.stdout captured (not printed); its result and everything written meanwhile. */
export async function captureStdout<T>(fn: () => Promise<T>): Promise<{ result: T; out: string }> {
  const chunks: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    chunks.push(String(chunk));
    return true;
  });
  try {
    const result = await fn();
    return { result, out: chunks.join('') };
  } finally {
    spy.mockRestore();
  }
}
