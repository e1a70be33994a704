import { evaluate, type Sample } from '../../../lambda-agent';
import { checkpoint, IDLE, MIN, NOW, observation, policyOf, series, verdictOf } from '../../fixtures/policies';

// Window 15m, CPU above 95% or network above 50 MB/s; one sample a minute.
const overUse = policyOf([{ rule: 'over-use', window: '15m', cpuPercentAbove: 95, networkBytesPerSecAbove: 50_000_000 }]);
const HOT: Omit<Sample, 'at'> = { cpuPercent: 99, netBytesPerSec: 1000 };

function tail(hotCount: number, hot: Omit<Sample, 'at'> = HOT): Sample[] {
  return series({ count: 60, sample: (i) => (i >= 60 - hotCount ? hot : IDLE) });
}

describe('over-use', () => {
  it.each([
    ['pending for 14 over-used minutes, due 1m from now', 14, { status: 'pending', dueAt: NOW + MIN }],
    ['due for exactly 15 over-used minutes', 15, { status: 'due', dueAt: NOW }],
    ['due for 16 over-used minutes, since 1m ago', 16, { status: 'due', dueAt: NOW - MIN }],
    ['ok when not over-used now', 0, { status: 'ok' }],
  ])('is %s', (_label, hotCount, expected) => {
    expect(verdictOf(overUse, observation({ samples: tail(hotCount), samplePeriodMs: MIN }))).toEqual(expected);
  });

  it.each([
    ['CPU just above the threshold', { cpuPercent: 95.01, netBytesPerSec: 0 }, { status: 'due', dueAt: NOW - 5 * MIN }],
    ['CPU exactly at the threshold', { cpuPercent: 95, netBytesPerSec: 0 }, { status: 'ok' }],
    ['CPU just below the threshold', { cpuPercent: 94.99, netBytesPerSec: 0 }, { status: 'ok' }],
    ['network just above the threshold', { cpuPercent: 1, netBytesPerSec: 50_000_001 }, { status: 'due', dueAt: NOW - 5 * MIN }],
    ['network exactly at the threshold', { cpuPercent: 1, netBytesPerSec: 50_000_000 }, { status: 'ok' }],
    ['network just below the threshold', { cpuPercent: 1, netBytesPerSec: 49_999_999 }, { status: 'ok' }],
    ['CPU unknown but network over', { netBytesPerSec: 60_000_000 }, { status: 'due', dueAt: NOW - 5 * MIN }],
  ])('with %s for 20 minutes', (_label, figures, expected) => {
    expect(verdictOf(overUse, observation({ samples: tail(20, figures), samplePeriodMs: MIN }))).toEqual(expected);
  });

  it('only counts samples of the current run (a start resets it)', () => {
    const obs = observation({ checkpoint: checkpoint({ since: NOW - 10 * MIN }), samples: tail(60), samplePeriodMs: MIN });
    expect(verdictOf(overUse, obs)).toEqual({ status: 'pending', dueAt: NOW - 10 * MIN + 15 * MIN });
  });

  it('is unknown when the latest sample has neither figure', () => {
    const samples = [...tail(30).slice(0, -1), { at: NOW }];
    expect(verdictOf(overUse, observation({ samples, samplePeriodMs: MIN }))).toEqual({ status: 'unknown' });
  });

  it("uses the agent's over-use report when there are no samples", () => {
    const obs = observation({ heartbeat: { at: NOW - MIN, conditions: { 'over-use': NOW - 20 * MIN } } });
    expect(verdictOf(overUse, obs)).toEqual({ status: 'due', dueAt: NOW - 5 * MIN });
  });

  it('says by how much the thresholds were exceeded', () => {
    const d = evaluate(overUse, observation({ samples: tail(20), samplePeriodMs: MIN }), NOW);
    expect(d.rules[0].reason).toBe('over-used for 20m (window 15m): CPU ≥ 99.0% (limit 95%), network ≥ 1.0 KB/s (limit 47.7 MB/s)');
    expect(d.action).toMatchObject({ name: 'notify', rule: 'over-use', hard: false });
  });
});
