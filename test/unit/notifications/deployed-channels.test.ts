// The functions that run notifications' code (notifications, oncall-paging) are each configured and granted for
// some channel kinds only: the kinds the rules can ask for on a function's topics must be among them, or a record
// would fail in AWS alone (the local outbox, the tests and the benchmarks serve every kind).
import { describe, expect, it } from 'vitest';
import { CHANNEL_ENV } from '../../../functions/notifications/channel-config';
import { type ChannelKind, decideNotifications } from '../../../functions/notifications/rules';
import { codeOf, consumers } from '../../../local/consumers';
import { type SampleEventType, sampleData, sampleSources } from '../../../schemas/samples';

const notifying = Object.keys(consumers).filter((fn) => codeOf(fn) === 'notifications');

/** The channel kinds the rules ask for on a topic, over enough sample events to meet every branch. */
function kindsOn(topic: string): Set<ChannelKind> {
  const kinds = new Set<ChannelKind>();
  for (let n = 0; n < 200; n++) {
    const data = sampleData[topic as SampleEventType](n);
    const event = { topic, source: sampleSources[topic as SampleEventType], id: `e${n}`, time: '', data };
    for (const intent of decideNotifications(event)) kinds.add(intent.channel);
  }
  return kinds;
}

describe('the channels of each function running notifications code', () => {
  it('are the two functions', () => {
    expect(notifying.sort()).toEqual(['notifications', 'oncall-paging']);
  });

  it.each(notifying)('%s is granted and configured for every kind its topics need', (fn) => {
    const entry = consumers[fn] as (typeof consumers)[string];
    const granted = new Set(entry.grants.notificationChannels as ChannelKind[]);
    const needed = new Set((entry.topics ?? []).flatMap((topic) => [...kindsOn(topic)]));
    expect(needed.size).toBeGreaterThan(0);
    for (const kind of needed) {
      expect(granted.has(kind), `${fn} needs ${kind}`).toBe(true);
      for (const name of CHANNEL_ENV[kind])
        expect(Object.keys(entry.environment ?? {}), `${fn} ${kind}`).toContain(name);
    }
  });

  it('oncall-paging is granted and configured for the pager alone', () => {
    const entry = consumers['oncall-paging'] as (typeof consumers)[string];
    expect(entry.grants.notificationChannels).toEqual(['PAGER']);
    expect(
      Object.keys(entry.environment ?? {}).filter((name) => Object.values(CHANNEL_ENV).flat().includes(name)),
    ).toEqual(['ONCALL_TOPIC_ARN']);
  });
});
