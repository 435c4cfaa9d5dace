// Starts bench/channel-stand-in-process.ts (the SNS/SES stand-in in a process of its own): its CPU is then
// measured apart from the measured process's, and it runs on the other core instead of the handler's event loop.
import { spawn } from 'node:child_process';

export async function startChannelProcess(): Promise<{
  url: string;
  pid: number | undefined;
  stop: () => void;
}> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/channel-stand-in-process.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`channel stand-in exited (${code}): ${out}`)));
    child.once('error', (error) => reject(new Error(`channel stand-in did not start: ${error.message}`)));
  });
  return { url, pid: child.pid, stop: () => child.kill() };
}
