/**
 * Fixed: a health check that kept failing through the reboot never escalated. The
 * condition run began before the reboot, so every later evaluation saw the rebooted
 * episode ("acted") and the escalation to `stop` could only happen if a healthy sample
 * happened to appear in between. With escalation configured, the condition is now
 * judged anew from the time of the action.
 */
import { evaluate } from '../../../lambda-agent';
import { IDLE, MIN, NOW, observation, policyOf, series } from '../../fixtures/policies';

const health = policyOf([{ rule: 'health', window: '5m', action: 'reboot', escalate: { action: 'stop', within: '1h' } }]);

describe('fixed: health escalation after a reboot that did not help', () => {
  it('stops an instance that stayed unhealthy for a window after the reboot', () => {
    // GIVEN checks failing for 20 minutes, and the reboot taken 10 minutes ago for that episode
    const samples = series({ count: 30, sample: (i) => ({ ...IDLE, statusOk: i < 10 }) });
    const rebootEpisode = String((NOW - 20 * MIN) / 1000);
    const obs = observation({
      samples,
      samplePeriodMs: MIN,
      episodes: [{ rule: 'health', episode: rebootEpisode, actedAt: NOW - 10 * MIN, action: 'reboot' }],
    });
    // WHEN
    const d = evaluate(health, obs, NOW);
    // THEN a new episode began at the reboot, due a window later, escalated to stop
    expect(d.rules[0]).toMatchObject({ status: 'due', episode: String((NOW - 10 * MIN) / 1000), dueAt: NOW - 5 * MIN, action: 'stop' });
    expect(d.action).toMatchObject({ name: 'stop', rule: 'health' });
  });

  it('waits a full window after the reboot before escalating', () => {
    const samples = series({ count: 30, sample: { ...IDLE, statusOk: false } });
    const obs = observation({
      samples,
      samplePeriodMs: MIN,
      episodes: [{ rule: 'health', episode: '1', actedAt: NOW - 2 * MIN, action: 'reboot' }],
    });
    const d = evaluate(health, obs, NOW);
    expect(d.rules[0]).toMatchObject({ status: 'pending', dueAt: NOW + 3 * MIN, action: 'stop' });
    expect(d.action).toBeUndefined();
  });
});
