import { evaluate } from '../../../lambda-agent';
import { checkpoint, MIN, NOW, observation, policyOf, verdictOf } from '../../fixtures/policies';

// Terminate 2 minutes after batch.service finished.
const task = policyOf([{ rule: 'task-completion', unit: 'batch.service', after: '2m', action: 'terminate' }]);
const named = policyOf([{ rule: 'task-completion', name: 'job', process: 'render', action: 'stop' }]);

describe('task-completion', () => {
  describe('from the tasks the agent watches', () => {
    it.each([
      [
        'pending when the task exited just under `after` ago',
        { state: 'exited', exitedAt: NOW - 2 * MIN + 1 },
        { status: 'pending', dueAt: NOW + 1 },
      ],
      ['due when the task exited exactly `after` ago', { state: 'exited', exitedAt: NOW - 2 * MIN }, { status: 'due', dueAt: NOW }],
      [
        'due when the task exited just over `after` ago',
        { state: 'exited', exitedAt: NOW - 2 * MIN - 1 },
        { status: 'due', dueAt: NOW - 1 },
      ],
      ['ok while the task runs', { state: 'running' }, { status: 'ok' }],
      ['unknown when the task state is unknown', { state: 'unknown' }, { status: 'unknown' }],
    ] as const)('is %s', (_label, status, expected) => {
      expect(verdictOf(task, observation({ host: 'agent', tasks: { 'task-completion': status } }))).toEqual(expected);
    });

    it('looks the task up by the rule name', () => {
      const obs = observation({ host: 'agent', tasks: { job: { state: 'exited', exitedAt: NOW - MIN } } });
      const d = evaluate(named, obs, NOW);
      expect(d.rules[0]).toMatchObject({ rule: 'job', status: 'due', dueAt: NOW - MIN, episode: `t${(NOW - MIN) / 1000}` });
      expect(d.action).toMatchObject({ name: 'stop', rule: 'job' });
      expect(d.conditions).toEqual({ job: NOW - MIN });
    });
  });

  describe("from the agent's heartbeat report (the watchdog's view)", () => {
    it.each([
      [
        'due when the report says it finished 3 minutes ago',
        { 'task-completion': NOW - 3 * MIN },
        NOW - 5 * MIN,
        { status: 'due', dueAt: NOW - MIN },
      ],
      [
        'pending when the report says it finished 1 minute ago',
        { 'task-completion': NOW - MIN },
        NOW - 5 * MIN,
        { status: 'pending', dueAt: NOW + MIN },
      ],
      ['ok when the report does not name the task', {}, NOW - 5 * MIN, { status: 'ok' }],
      ['unknown when the report is stale', { 'task-completion': NOW - 3 * 60 * MIN }, NOW - 2 * 60 * MIN - 1, { status: 'unknown' }],
    ])('is %s', (_label, conditions, at, expected) => {
      expect(verdictOf(task, observation({ heartbeat: { at, conditions } }))).toEqual(expected);
    });

    it('is unknown without tasks or a report', () => {
      expect(verdictOf(task, observation())).toEqual({ status: 'unknown' });
    });
  });

  it('is ok when the instance is stopped', () => {
    const obs = observation({
      state: 'stopped',
      checkpoint: checkpoint({ state: 'stopped' }),
      tasks: { 'task-completion': { state: 'exited', exitedAt: NOW - 5 * MIN } },
    });
    expect(verdictOf(task, obs)).toEqual({ status: 'ok' });
  });
});
