/**
 * Fixed: at the window's open the schedule proposed `start` for an instance that was
 * still `stopping` (billed as stopped). EC2 refuses StartInstances in that state
 * (IncorrectInstanceState), and the episode would have been recorded as acted, so the
 * instance was never started that day. It now waits until the instance is stopped.
 */
import { evaluate } from '../../../lambda-agent';
import { checkpoint, HOUR, observation, policyOf } from '../../fixtures/policies';

const office = policyOf([{ rule: 'schedule', timezone: 'UTC', windows: [{ days: ['thu'], start: '08:00', end: '19:00' }] }]);
const OPEN = Date.parse('2025-06-05T08:00:00Z');

describe('fixed: schedule start while the instance is still stopping', () => {
  it('does not start an instance that is still stopping at the open', () => {
    const obs = observation({ state: 'stopping', checkpoint: checkpoint({ state: 'stopped', since: OPEN - 2 * HOUR }) });
    const d = evaluate(office, obs, OPEN + 60_000);
    expect(d.action).toBeUndefined();
    expect(d.rules[0]).toMatchObject({ status: 'ok', reason: 'the window is open but the instance is still stopping' });
  });

  it('starts it on the next evaluation, once it is stopped', () => {
    const obs = observation({ state: 'stopped', checkpoint: checkpoint({ state: 'stopped', since: OPEN - 2 * HOUR }) });
    expect(evaluate(office, obs, OPEN + 120_000).action).toMatchObject({ name: 'start', rule: 'schedule' });
  });
});
