import { evaluate, type Sample } from '../../../lambda-agent';
import { BUSY, checkpoint, HOUR, IDLE, MIN, NOW, observation, policyOf, series, verdictOf, titled } from '../../fixtures/policies';

// Window 30m, thresholds 5% CPU and 10 KB/s, grace 15m; one sample a minute; running for 2h.
const idle = policyOf([{ rule: 'idle', window: '30m', cpuPercentBelow: 5, networkBytesPerSecBelow: 10_240 }]);

/** `idleCount` idle samples ending now, preceded by busy ones (60 samples in all). */
function tail(idleCount: number, idleFigures: Omit<Sample, 'at'> = IDLE): Sample[] {
  return series({ count: 60, sample: (i) => (i >= 60 - idleCount ? idleFigures : BUSY) });
}

describe('idle', () => {
  it.each(
    titled([
      ['just below the window (29 idle minutes)', 29, { status: 'pending', dueAt: NOW + MIN }],
      ['exactly the window (30 idle minutes)', 30, { status: 'due', dueAt: NOW }],
      ['just above the window (31 idle minutes)', 31, { status: 'due', dueAt: NOW - MIN }],
      ['busy now', 0, { status: 'ok' }],
    ]),
  )('is %s', (_label, idleCount, expected) => {
    expect(verdictOf(idle, observation({ samples: tail(idleCount), samplePeriodMs: MIN }))).toEqual(expected);
  });

  it.each(
    titled([
      ['CPU just below the threshold', { ...IDLE, cpuPercent: 4.99 }, { status: 'due', dueAt: NOW - 10 * MIN }],
      ['CPU exactly at the threshold', { ...IDLE, cpuPercent: 5 }, { status: 'ok' }],
      ['CPU just above the threshold', { ...IDLE, cpuPercent: 5.01 }, { status: 'ok' }],
      ['network just below the threshold', { ...IDLE, netBytesPerSec: 10_239 }, { status: 'due', dueAt: NOW - 10 * MIN }],
      ['network exactly at the threshold', { ...IDLE, netBytesPerSec: 10_240 }, { status: 'ok' }],
      ['network just above the threshold', { ...IDLE, netBytesPerSec: 10_241 }, { status: 'ok' }],
      ['someone logged in', { ...IDLE, loginSessions: 1 }, { status: 'ok' }],
      ['login count unknown', { cpuPercent: 1, netBytesPerSec: 100 }, { status: 'due', dueAt: NOW - 10 * MIN }],
    ]),
  )('40 minutes with %s', (_label, figures, expected) => {
    expect(verdictOf(idle, observation({ samples: tail(40, figures), samplePeriodMs: MIN }))).toEqual(expected);
  });

  it('ignores login sessions when loginsKeepBusy is false', () => {
    const policy = policyOf([{ rule: 'idle', window: '30m', loginsKeepBusy: false }]);
    expect(verdictOf(policy, observation({ samples: tail(40, { ...IDLE, loginSessions: 2 }), samplePeriodMs: MIN }))).toEqual({
      status: 'due',
      dueAt: NOW - 10 * MIN,
    });
  });

  describe('start grace', () => {
    it.each(
      titled([
        ['inside the grace', NOW - 10 * MIN, { status: 'ok' }],
        ['grace over 5 minutes ago (idle counted from its end)', NOW - 20 * MIN, { status: 'pending', dueAt: NOW + 25 * MIN }],
        ['grace over long ago', NOW - 2 * HOUR, { status: 'due', dueAt: NOW - 30 * MIN }],
      ]),
    )('after a start, %s', (_label, since, expected) => {
      // GIVEN an hour of idle samples, the instance started at `since`
      const obs = observation({ checkpoint: checkpoint({ since }), samples: tail(60), samplePeriodMs: MIN });
      expect(verdictOf(idle, obs)).toEqual(expected);
    });

    it('says the grace is running', () => {
      const obs = observation({ checkpoint: checkpoint({ since: NOW - 10 * MIN }), samples: tail(60), samplePeriodMs: MIN });
      expect(evaluate(idle, obs, NOW).rules[0].reason).toBe('start grace until 5m from now');
    });
  });

  describe('missing or unknown data is never idle', () => {
    it('a gap longer than 1.5 periods breaks the idle run', () => {
      // GIVEN 60 idle minutes, but the samples between 25 and 20 minutes ago are missing
      const samples = tail(60).filter((s) => s.at <= NOW - 25 * MIN || s.at >= NOW - 20 * MIN);
      expect(verdictOf(idle, observation({ samples, samplePeriodMs: MIN }))).toEqual({
        status: 'pending',
        dueAt: NOW - 21 * MIN + 30 * MIN,
      });
    });

    it('a gap of up to 1.5 periods does not break it', () => {
      const samples = tail(60).map((s) => (s.at === NOW - 20 * MIN ? { ...s, at: s.at - 0.5 * MIN } : s));
      expect(verdictOf(idle, observation({ samples, samplePeriodMs: MIN }))).toEqual({ status: 'due', dueAt: NOW - 30 * MIN });
    });

    it.each([
      ['CPU', { netBytesPerSec: 100 }],
      ['network', { cpuPercent: 1 }],
    ])('a sample with unknown %s breaks the idle run', (_what, figures) => {
      const samples = tail(60).map((s) => (s.at === NOW - 10 * MIN ? { at: s.at, ...figures } : s));
      expect(verdictOf(idle, observation({ samples, samplePeriodMs: MIN }))).toEqual({
        status: 'pending',
        dueAt: NOW - 10 * MIN + 30 * MIN,
      });
    });

    it('the latest sample lacking figures makes idleness unknown', () => {
      const samples = tail(60).map((s) => (s.at === NOW ? { at: s.at } : s));
      const d = evaluate(idle, observation({ samples, samplePeriodMs: MIN }), NOW);
      expect(d.rules[0]).toMatchObject({
        status: 'unknown',
        reason: 'idleness unknown: the latest sample lacks the figures this rule needs',
      });
      expect(d.action).toBeUndefined();
    });

    it.each([
      ['2 periods + 1s old: still fresh', 2 * MIN + 1000, { status: 'due', dueAt: NOW - 30 * MIN - 2 * MIN - 1000 }],
      ['2 periods + 1s + 1ms old: stale', 2 * MIN + 1001, { status: 'unknown' }],
    ])('the latest sample %s', (_label, age, expected) => {
      const samples = series({ end: NOW - age, count: 60, sample: IDLE });
      expect(verdictOf(idle, observation({ samples, samplePeriodMs: MIN }))).toEqual(expected);
    });

    it('no samples and no agent report is unknown', () => {
      expect(verdictOf(idle, observation({ samples: [], samplePeriodMs: MIN }))).toEqual({ status: 'unknown' });
    });
  });

  describe("the agent's report (no samples)", () => {
    const beat = (at: number, conditions: Record<string, number>) => ({ heartbeat: { at, conditions } });
    it.each(
      titled([
        ['idle for 40 minutes', beat(NOW - 5 * MIN, { idle: NOW - 40 * MIN }), { status: 'due', dueAt: NOW - 10 * MIN }],
        ['idle for 20 minutes', beat(NOW - 5 * MIN, { idle: NOW - 20 * MIN }), { status: 'pending', dueAt: NOW + 10 * MIN }],
        [
          'idle since before the start grace ended',
          beat(NOW - 5 * MIN, { idle: NOW - 3 * HOUR }),
          { status: 'due', dueAt: NOW - 2 * HOUR + 15 * MIN + 30 * MIN },
        ],
        ['not idle', beat(NOW - 5 * MIN, { 'other-rule': NOW - 40 * MIN }), { status: 'ok' }],
        [
          'idle, but the report is stale (older than 2 heartbeat intervals)',
          beat(NOW - 2 * HOUR - 1, { idle: NOW - 3 * HOUR }),
          { status: 'unknown' },
        ],
        [
          'idle, the report exactly 2 heartbeat intervals old',
          beat(NOW - 2 * HOUR, { idle: NOW - 2 * HOUR - 40 * MIN }),
          { status: 'pending', dueAt: NOW - 2 * HOUR + 45 * MIN },
        ],
        [
          'idle, the window over by now but not when the report was taken (busy since, for all it says)',
          beat(NOW - 15 * MIN, { idle: NOW - 40 * MIN }),
          { status: 'pending', dueAt: NOW - 10 * MIN },
        ],
        [
          'idle, the window over exactly when the report was taken',
          beat(NOW - 10 * MIN, { idle: NOW - 40 * MIN }),
          { status: 'due', dueAt: NOW - 10 * MIN },
        ],
      ]),
    )('uses the heartbeat condition when %s', (_label, extra, expected) => {
      expect(verdictOf(idle, observation(extra))).toEqual(expected);
    });
  });

  it('is ok when the instance is stopped', () => {
    const obs = observation({ state: 'stopped', checkpoint: checkpoint({ state: 'stopped' }), samples: tail(60), samplePeriodMs: MIN });
    expect(verdictOf(idle, obs)).toEqual({ status: 'ok' });
  });

  it('gives the figures of the idle run in its reason', () => {
    const d = evaluate(idle, observation({ samples: tail(40), samplePeriodMs: MIN }), NOW);
    expect(d.rules[0].reason).toBe('idle for 40m (window 30m): CPU ≤ 1.0% < 5%, network ≤ 0.1 KB/s < 10.0 KB/s');
  });
});
