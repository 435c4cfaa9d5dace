// The reliability harness's emulator as a process of its own, so a test can SIGKILL it mid-batch:
// `node --import tsx test/e2e/reliability/emulator-child.ts <run-spec.json>`. Function and emulator output go
// to stdout; "emulator started" is printed once every mapping has started.
import { readFileSync } from 'node:fs';
import { type RunSpec, startEmulator } from './harness';

const specFile = process.argv[2];
if (!specFile) throw new Error('usage: emulator-child.ts <run-spec.json>');
const spec = JSON.parse(readFileSync(specFile, 'utf8')) as RunSpec;
const running = await startEmulator(spec, { echo: process.stdout, keepLogs: false });
process.stdout.write('emulator started\n');
process.once('SIGTERM', () => {
  void running.stop().then(() => process.exit(0));
});
