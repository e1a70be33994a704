import { loadPolicy } from '../../../lambda-agent/policy/parse';
import { buildSamples, isMetricsCycle, planMetrics } from '../../../lambda-agent/watchdog/metrics';

const MIN = 60_000;
const policy = (rules: Array<Record<string, unknown>>) => loadPolicy({ id: 'p', rules });

describe('planMetrics', () => {
  it('reads nothing for policies without usage rules', () => {
    expect(planMetrics(policy([{ rule: 'lifetime', max: '1d' }]))).toBeUndefined();
  });

  it.each([
    [[{ rule: 'idle', window: '30m' }], { cpu: true, net: true, status: false, slotMs: 10 * MIN }],
    [[{ rule: 'idle', window: '6h' }], { cpu: true, net: true, status: false, slotMs: 120 * MIN }],
    [[{ rule: 'over-use', window: '15m', cpuPercentAbove: 90 }], { cpu: true, net: false, status: false, slotMs: 5 * MIN }],
    [[{ rule: 'over-use', window: '1h', networkBytesPerSecAbove: 1e6 }], { cpu: false, net: true, status: false, slotMs: 20 * MIN }],
    [[{ rule: 'health' }], { cpu: false, net: false, status: true, slotMs: 5 * MIN }],
    [
      [
        { rule: 'idle', window: '2h' },
        { rule: 'health', window: '30m' },
      ],
      { cpu: true, net: true, status: true, slotMs: 10 * MIN },
    ],
  ])('%j → %j (a third of the shortest window, at least the 5-minute period)', (rules, expected) => {
    expect(planMetrics(policy(rules))).toMatchObject(expected);
  });

  it('reads on the first cycle of each slot only', () => {
    const plan = planMetrics(policy([{ rule: 'idle', window: '30m' }]))!;
    const cycles = Array.from({ length: 60 }, (_, i) => 1_000_000_000_000 + 7_000 + i * MIN).filter((t) => isMetricsCycle(plan, t, MIN));
    expect(cycles).toHaveLength(6);
  });
});

describe('buildSamples', () => {
  const plan = planMetrics(
    policy([
      { rule: 'idle', window: '30m' },
      { rule: 'health', window: '10m' },
    ]),
  )!;
  const now = 1_800_000_000_000 + 42_000;

  it('marks samples unhealthy from the time EC2 says a check began failing', () => {
    const usage = [0, 1, 2, 3].map((k) => ({ at: now - (now % 300_000) - k * 300_000, cpuPercent: 1, netBytesPerSec: 5 })).reverse();
    const s = buildSamples(now, plan, usage, { ok: false, impairedSince: usage[2].at })!;
    expect(s.map((x) => x.statusOk)).toEqual([true, true, false, false]);
    expect(s[0].cpuPercent).toBe(1);
  });

  it('without readings, lays status samples on the period grid across the lookback', () => {
    const s = buildSamples(now, plan, undefined, { ok: true })!;
    expect(s.every((x) => x.statusOk === true && x.at % 300_000 === 0 && x.at <= now)).toBe(true);
    expect(s.at(-1)!.at).toBe(now - (now % 300_000));
    expect(now - s[0].at).toBeGreaterThanOrEqual(plan.lookbackMs);
  });

  it('has nothing to say without readings and without a known status', () => {
    expect(buildSamples(now, plan, undefined, {})).toBeUndefined();
    expect(buildSamples(now, plan, [], undefined)).toBeUndefined();
  });
});
