import { evaluate } from '../../../lambda-agent/engine/evaluate';
import { loadPolicy } from '../../../lambda-agent/policy/parse';
import { USAGE_LIST_MAX, UsageAccumulator } from '../../../lambda-agent/watchdog/usage';
import { usageEvent } from '../../../lambda-agent/watchdog/cycle';

const H = 3_600_000;
const NOW = Date.parse('2026-03-04T12:00:20Z');
const policy = loadPolicy({
  id: 'dev',
  rules: [
    { rule: 'lifetime', max: '7d' },
    { rule: 'running-time', max: '100h' },
    { rule: 'spend', maxUsd: 50, hourlyUsd: 0.1 },
  ],
});

function decision(i: number, runningHours: number) {
  return evaluate(
    policy,
    {
      instanceId: `i-${String(i).padStart(17, '0')}`,
      host: 'watchdog',
      state: 'running',
      checkpoint: { state: 'running', since: NOW - runningHours * H, firstSeen: NOW - runningHours * H, runningMs: 0, spendUsd: 0 },
      episodes: i % 10 === 0 ? [{ rule: 'lifetime', episode: 'x', actedAt: NOW - H / 2, action: 'notify' }] : [],
    },
    NOW,
  );
}

describe('usage summary', () => {
  it('sums the fleet and lists what is left of each hard limit', () => {
    const acc = new UsageAccumulator(NOW, H);
    acc.add(decision(0, 10), 'smvm-dev-0123456789ab');
    acc.add(decision(1, 30));
    const s = acc.summary();
    expect(s).toMatchObject({
      instances: 2,
      running: 2,
      stopped: 0,
      runningHours: 40,
      spendUsd: 4,
      actionsInPeriod: 1,
      actionsByType: { notify: 1 },
      omitted: 0,
    });
    expect(s.listed[0]).toEqual({
      instanceId: 'i-00000000000000001',
      state: 'running',
      runningHours: 30,
      spendUsd: 3,
      left: { lifetime: 138, 'running-time': 70, spend: 47 },
      minFractionLeft: 0.7,
    });
    expect(s.listed[1].managementId).toBe('smvm-dev-0123456789ab');
  });

  it(`keeps the ${USAGE_LIST_MAX} instances closest to a limit, and the event stays far below SNS's 256 KB`, () => {
    const acc = new UsageAccumulator(NOW, H);
    for (let i = 0; i < 5000; i++) acc.add(decision(i, (i * 37) % 99), `smvm-dev-${String(i).padStart(12, '0')}`);
    const s = acc.summary({ index: 1, count: 4 });
    expect(s.instances).toBe(5000);
    expect(s.listed).toHaveLength(USAGE_LIST_MAX);
    expect(s.omitted).toBe(5000 - USAGE_LIST_MAX);
    const fractions = s.listed.map((l) => l.minFractionLeft);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(Math.max(...fractions)).toBeLessThanOrEqual(0.05); // about 50 instances per hour value: 98, 97, 96 and 95 h of 100
    const bytes = Buffer.byteLength(JSON.stringify(usageEvent(policy, NOW, s, NOW - (NOW % H))));
    expect(bytes).toBeLessThan(64 * 1024);
  });
});
