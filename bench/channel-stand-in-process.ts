// The SNS/SES stand-in (local/channel-stand-in.ts) in a process of its own, for bench:e2e: notifications send
// through it as they would through SNS PublishBatch and SES in AWS, and its CPU is measured apart from the
// functions'. Prints `{"url": ...}` once listening; runs until killed. Keeps no messages (a run sends tens of
// thousands).
import { startChannelStandIn } from '../local/channel-stand-in';

const standIn = await startChannelStandIn();
setInterval(() => {
  standIn.calls.length = 0;
}, 1_000);
process.stdout.write(`${JSON.stringify({ url: standIn.url })}\n`);
