import { describe, expect, it } from 'vitest';
import { type CpuProfile, profileWithin } from '../../../bench/cpu-profile';

// One profile per thread, cut to the measured window afterwards: samples are stamped by the monotonic clock.
describe('profileWithin', () => {
  const profile: CpuProfile = {
    nodes: [{ id: 1, callFrame: { functionName: '(root)', url: '' } }],
    startTime: 5_000_000, // monotonic microseconds
    endTime: 5_004_000,
    samples: [1, 1, 1, 1],
    timeDeltas: [500, 1_000, 1_000, 1_000], // at 5.0005 s, 5.0015, 5.0025, 5.0035 (monotonic)
  };
  // The monotonic clock read 5,000,000 us when the wall clock read 1,000,000 ms.
  const wallAt = { wallMs: 1_000_000, monotonicUs: 5_000_000 };

  it('keeps the samples taken within the window, with their deltas', () => {
    const within = profileWithin(profile, wallAt, { from: 1_000_001, to: 1_000_003 });
    expect(within.samples).toHaveLength(2);
    expect(within.timeDeltas).toEqual([1_000, 1_000]);
    expect(within.nodes).toBe(profile.nodes);
    // Its own span, so a profiler shows the window's samples where they were taken.
    expect(within.startTime).toBe(5_000_500); // the first kept sample's interval starts there
    expect(within.endTime).toBe(5_002_500);
  });

  it('keeps nothing of a window before the profile or after it', () => {
    expect(profileWithin(profile, wallAt, { from: 999_000, to: 1_000_000 }).samples).toEqual([]);
    expect(profileWithin(profile, wallAt, { from: 1_000_004, to: 1_000_010 }).samples).toEqual([]);
  });
});
