import { evaluate } from '../../../lambda-agent';
import { checkpoint, HOUR, MIN, NOW, observation, policyOf, verdictOf } from '../../fixtures/policies';

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'] as const;
const EVERY_DAY = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
// Amsterdam office hours. NOW is Wednesday 2025-06-04 14:00 CEST (12:00Z): the window is 06:00Z–17:00Z.
const office = policyOf([
  { rule: 'schedule', timezone: 'Europe/Amsterdam', windows: [{ days: [...WEEKDAYS], start: '08:00', end: '19:00' }] },
]);
const noStart = policyOf([
  { rule: 'schedule', timezone: 'Europe/Amsterdam', windows: [{ days: [...WEEKDAYS], start: '08:00', end: '19:00' }], startAtOpen: false },
]);
const OPEN = Date.parse('2025-06-04T06:00:00Z');
const CLOSE = Date.parse('2025-06-04T17:00:00Z');
const NEXT_OPEN = Date.parse('2025-06-05T06:00:00Z');

const running = (since: number) => observation({ checkpoint: checkpoint({ since }) });
const stopped = (since: number) =>
  observation({ state: 'stopped', checkpoint: checkpoint({ state: 'stopped', since, firstSeen: since - 10 * HOUR }) });

describe('schedule', () => {
  describe('stop at the close', () => {
    it.each([
      ['pending inside the window, due at the close', NOW, { status: 'pending', dueAt: CLOSE }],
      ['pending just before the close', CLOSE - 1, { status: 'pending', dueAt: CLOSE }],
      ['due exactly at the close', CLOSE, { status: 'due', dueAt: CLOSE }],
      ['due just after the close', CLOSE + 1, { status: 'due', dueAt: CLOSE }],
      ['still due the next morning before the open', NEXT_OPEN - 1, { status: 'due', dueAt: CLOSE }],
    ])('a running instance started in the morning is %s', (_label, now, expected) => {
      expect(verdictOf(office, running(OPEN + 30 * MIN), now)).toEqual(expected);
    });

    it.each([
      ['started by hand after the close is left alone', CLOSE + 30 * MIN, { status: 'ok' }],
      ['started by hand exactly at the close is left alone', CLOSE, { status: 'ok' }],
      ['started just before the close is stopped', CLOSE - 1, { status: 'due', dueAt: CLOSE }],
    ])('at 22:00 local, an instance %s', (_label, since, expected) => {
      expect(verdictOf(office, running(since), CLOSE + 3 * HOUR)).toEqual(expected);
    });

    it('says so when it leaves a hand-started instance alone', () => {
      expect(evaluate(office, running(CLOSE + HOUR), CLOSE + 3 * HOUR).rules[0].reason).toBe(
        'started by hand outside the schedule; left running',
      );
    });

    it('hibernates at the close when configured to', () => {
      const policy = policyOf([
        {
          rule: 'schedule',
          timezone: 'Europe/Amsterdam',
          windows: [{ days: [...WEEKDAYS], start: '08:00', end: '19:00' }],
          action: 'hibernate',
        },
      ]);
      expect(evaluate(policy, running(OPEN), CLOSE).action).toMatchObject({
        name: 'hibernate',
        rule: 'schedule',
        episode: `c${CLOSE / 1000}`,
      });
    });
  });

  describe('start at the open', () => {
    it.each([
      ['pending just before the open', NEXT_OPEN - 1, { status: 'pending', dueAt: NEXT_OPEN }],
      ['due exactly at the open', NEXT_OPEN, { status: 'due', dueAt: NEXT_OPEN }],
      ['due just after the open', NEXT_OPEN + 1, { status: 'due', dueAt: NEXT_OPEN }],
    ])('an instance stopped at the close is %s', (_label, now, expected) => {
      const d = evaluate(office, stopped(CLOSE), now);
      expect({ status: d.rules[0].status, dueAt: d.rules[0].dueAt }).toEqual(expected);
      expect(d.rules[0].action).toBe('start');
    });

    it('starts the instance at the open', () => {
      expect(evaluate(office, stopped(CLOSE), NEXT_OPEN).action).toMatchObject({
        name: 'start',
        rule: 'schedule',
        episode: `o${NEXT_OPEN / 1000}`,
        hard: false,
      });
    });

    it('leaves an instance stopped by hand inside the window alone', () => {
      expect(verdictOf(office, stopped(NEXT_OPEN + HOUR), NEXT_OPEN + 2 * HOUR)).toEqual({ status: 'ok' });
    });

    it('does not start anything when startAtOpen is false', () => {
      expect(verdictOf(noStart, stopped(CLOSE), NEXT_OPEN)).toEqual({ status: 'ok' });
      expect(verdictOf(noStart, stopped(CLOSE), NEXT_OPEN - HOUR)).toEqual({ status: 'ok' });
    });

    it('waits over the weekend: Friday close to Monday open', () => {
      const fridayClose = Date.parse('2025-06-06T17:00:00Z');
      const mondayOpen = Date.parse('2025-06-09T06:00:00Z');
      expect(verdictOf(office, stopped(fridayClose), Date.parse('2025-06-07T12:00:00Z'))).toEqual({ status: 'pending', dueAt: mondayOpen });
    });

    it('is blocked when a hard limit is reached', () => {
      // GIVEN a schedule and a lifetime (stop) that is over its limit while the instance is stopped
      const policy = policyOf([
        { rule: 'schedule', timezone: 'Europe/Amsterdam', windows: [{ days: [...WEEKDAYS], start: '08:00', end: '19:00' }] },
        { rule: 'lifetime', max: '8h' },
      ]);
      // WHEN the window opens
      const d = evaluate(policy, stopped(CLOSE), NEXT_OPEN);
      // THEN nothing is started
      expect(d.action).toBeUndefined();
      expect(d.rules[0]).toMatchObject({ status: 'blocked', reason: expect.stringContaining('not started: lifetime limit reached') });
    });
  });

  describe('across daylight-saving changes the window opens at local 08:00', () => {
    const daily = (timezone: string) =>
      policyOf([{ rule: 'schedule', timezone, windows: [{ days: [...EVERY_DAY], start: '08:00', end: '19:00' }] }]);
    it.each([
      // Europe/Amsterdam: CET (+1) → CEST (+2) on the last Sunday of March, back on the last Sunday of October.
      ['Europe/Amsterdam', 'Saturday before spring forward (CET)', '2025-03-29T07:00:00Z'],
      ['Europe/Amsterdam', 'Sunday of spring forward (CEST)', '2025-03-30T06:00:00Z'],
      ['Europe/Amsterdam', 'Saturday before fall back (CEST)', '2025-10-25T06:00:00Z'],
      ['Europe/Amsterdam', 'Sunday of fall back (CET)', '2025-10-26T07:00:00Z'],
      // Australia/Sydney: AEDT (+11) → AEST (+10) on the first Sunday of April, back on the first Sunday of October.
      ['Australia/Sydney', 'Saturday before DST ends (AEDT)', '2025-04-04T21:00:00Z'],
      ['Australia/Sydney', 'Sunday DST ended (AEST)', '2025-04-05T22:00:00Z'],
      ['Australia/Sydney', 'Saturday before DST starts (AEST)', '2025-10-03T22:00:00Z'],
      ['Australia/Sydney', 'Sunday DST started (AEDT)', '2025-10-04T21:00:00Z'],
    ])('%s, %s: pending 1ms before %s, due at it', (timezone, _label, openIso) => {
      const open = Date.parse(openIso);
      const policy = daily(timezone);
      const obs = stopped(open - 5 * HOUR);
      expect(verdictOf(policy, obs, open - 1)).toEqual({ status: 'pending', dueAt: open });
      expect(verdictOf(policy, obs, open)).toEqual({ status: 'due', dueAt: open });
    });

    it.each([
      ['Europe/Amsterdam', '2025-03-30T12:00:00Z', '2025-03-30T17:00:00Z'],
      ['Europe/Amsterdam', '2025-10-26T12:00:00Z', '2025-10-26T18:00:00Z'],
      ['Australia/Sydney', '2025-04-06T02:00:00Z', '2025-04-06T09:00:00Z'],
      ['Australia/Sydney', '2025-10-05T02:00:00Z', '2025-10-05T08:00:00Z'],
    ])('%s on the day of the change (%s) closes at local 19:00 (%s)', (timezone, nowIso, closeIso) => {
      expect(verdictOf(daily(timezone), running(Date.parse(nowIso) - HOUR), Date.parse(nowIso))).toEqual({
        status: 'pending',
        dueAt: Date.parse(closeIso),
      });
    });
  });

  it('a night window across midnight stops the instance the next morning', () => {
    const night = policyOf([{ rule: 'schedule', timezone: 'UTC', windows: [{ days: ['tue'], start: '22:00', end: '06:00' }] }]);
    const start = Date.parse('2025-06-03T22:00:00Z');
    const end = Date.parse('2025-06-04T06:00:00Z');
    expect(verdictOf(night, running(start), end - 1)).toEqual({ status: 'pending', dueAt: end });
    expect(verdictOf(night, running(start), end)).toEqual({ status: 'due', dueAt: end });
  });
});
