import { evaluate, type Sample } from '../../../lambda-agent';
import type { EpisodeRecord } from '../../../lambda-agent/contract';
import { checkpoint, HOUR, IDLE, MIN, NOW, observation, policyOf, series, verdictOf } from '../../fixtures/policies';

// Window 5m, reboot; escalate to stop when unhealthy again within 1h of a reboot.
const health = policyOf([{ rule: 'health', window: '5m', action: 'reboot', escalate: { action: 'stop', within: '1h' } }]);
const plain = policyOf([{ rule: 'health', window: '5m' }]);
const FAILING: Omit<Sample, 'at'> = { ...IDLE, statusOk: false };

function tail(badCount: number, bad: Omit<Sample, 'at'> = FAILING): Sample[] {
  return series({ count: 30, sample: (i) => (i >= 30 - badCount ? bad : IDLE) });
}

describe('health', () => {
  it.each([
    ['pending after 4 failing minutes, due 1m from now', 4, { status: 'pending', dueAt: NOW + MIN }],
    ['due after exactly 5 failing minutes', 5, { status: 'due', dueAt: NOW }],
    ['due after 6 failing minutes, since 1m ago', 6, { status: 'due', dueAt: NOW - MIN }],
    ['ok when healthy now', 0, { status: 'ok' }],
  ])('is %s', (_label, badCount, expected) => {
    expect(verdictOf(plain, observation({ samples: tail(badCount), samplePeriodMs: MIN }))).toEqual(expected);
  });

  it.each([
    ['failed status checks', { statusOk: false }, { status: 'due', dueAt: NOW - 5 * MIN }],
    ['errors the agent counted', { agentErrors: 3 }, { status: 'due', dueAt: NOW - 5 * MIN }],
    ['passing checks and no errors', { statusOk: true, agentErrors: 0 }, { status: 'ok' }],
    ['no health figures at all', { cpuPercent: 1 }, { status: 'unknown' }],
  ])('judges %s for 10 minutes', (_label, figures, expected) => {
    expect(verdictOf(plain, observation({ samples: tail(10, figures), samplePeriodMs: MIN }))).toEqual(expected);
  });

  it('reboots by default when unhealthy for the window', () => {
    const d = evaluate(plain, observation({ samples: tail(5), samplePeriodMs: MIN }), NOW);
    expect(d.action).toMatchObject({ name: 'reboot', rule: 'health', episode: String((NOW - 5 * MIN) / 1000) });
  });

  describe('escalation', () => {
    const rebootedAt = (at: number): EpisodeRecord => ({
      rule: 'health',
      episode: String(Math.floor((at - 10 * MIN) / 1000)),
      actedAt: at,
      action: 'reboot',
    });

    it.each([
      ['escalates to stop when unhealthy again 30m after a reboot', NOW - 35 * MIN, 'stop'],
      ['escalates when the reboot was exactly `within` before the condition began', NOW - 5 * MIN - HOUR, 'stop'],
      ['reboots again when the reboot was longer ago than `within`', NOW - 5 * MIN - HOUR - 1, 'reboot'],
    ])('%s', (_label, acted, expected) => {
      // GIVEN a reboot at `acted`, then failing checks for the last 5 minutes (healthy before)
      const obs = observation({
        checkpoint: checkpoint({ since: NOW - 3 * HOUR }),
        samples: tail(5),
        samplePeriodMs: MIN,
        episodes: [rebootedAt(acted)],
      });
      // WHEN
      const d = evaluate(health, obs, NOW);
      // THEN
      expect(d.rules[0]).toMatchObject({ status: 'due', dueAt: NOW, action: expected });
      expect(d.action?.name).toBe(expected);
      if (expected === 'stop') expect(d.action?.reason).toContain('still unhealthy after the reboot');
    });

    it('does not escalate on the episode that was rebooted (it is already acted)', () => {
      const episode = String((NOW - 20 * MIN) / 1000);
      const obs = observation({
        samples: tail(20),
        samplePeriodMs: MIN,
        episodes: [{ rule: 'health', episode, actedAt: NOW - 10 * MIN, action: 'reboot' }],
      });
      const d = evaluate(plain, obs, NOW);
      expect(d.rules[0]).toMatchObject({ status: 'acted', episode });
      expect(d.action).toBeUndefined();
    });
  });

  it('is ok when the instance is stopped', () => {
    const obs = observation({ state: 'stopped', checkpoint: checkpoint({ state: 'stopped' }), samples: tail(10), samplePeriodMs: MIN });
    expect(verdictOf(plain, obs)).toEqual({ status: 'ok' });
  });
});
