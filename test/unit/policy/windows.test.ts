import { intervals, isTimeZone, overlapMs, position, windowProblems, type WindowSet } from '../../../lambda-agent/policy/windows';
import { HOUR } from '../../fixtures/policies';

const at = (iso: string) => Date.parse(iso);
const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
const office: WindowSet = {
  timezone: 'Europe/Amsterdam',
  windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
};

describe('windows', () => {
  it.each([
    ['UTC', true],
    ['Europe/Amsterdam', true],
    ['Australia/Sydney', true],
    ['Mars/Olympus', false],
    ['', false],
  ])('isTimeZone(%j) is %s', (tz, ok) => {
    expect(isTimeZone(tz)).toBe(ok);
  });

  it('finds no problems in a valid window set', () => {
    expect(windowProblems(office)).toEqual([]);
  });

  describe('position', () => {
    it.each([
      [
        'inside, Wednesday 14:00',
        '2025-06-04T12:00:00Z',
        {
          inside: true,
          lastOpen: '2025-06-04T06:00:00.000Z',
          nextClose: '2025-06-04T17:00:00.000Z',
          lastClose: '2025-06-03T17:00:00.000Z',
        },
      ],
      [
        'at the opening instant',
        '2025-06-04T06:00:00Z',
        {
          inside: true,
          lastOpen: '2025-06-04T06:00:00.000Z',
          nextClose: '2025-06-04T17:00:00.000Z',
          lastClose: '2025-06-03T17:00:00.000Z',
        },
      ],
      [
        'at the closing instant (outside)',
        '2025-06-04T17:00:00Z',
        {
          inside: false,
          lastOpen: '2025-06-04T06:00:00.000Z',
          lastClose: '2025-06-04T17:00:00.000Z',
          nextOpen: '2025-06-05T06:00:00.000Z',
          nextClose: '2025-06-05T17:00:00.000Z',
        },
      ],
      [
        'Saturday noon',
        '2025-06-07T10:00:00Z',
        {
          inside: false,
          lastOpen: '2025-06-06T06:00:00.000Z',
          lastClose: '2025-06-06T17:00:00.000Z',
          nextOpen: '2025-06-09T06:00:00.000Z',
          nextClose: '2025-06-09T17:00:00.000Z',
        },
      ],
    ])('%s', (_label, nowIso, expected) => {
      const p = position(office, at(nowIso));
      expect({
        inside: p.inside,
        lastOpen: iso(p.lastOpen),
        lastClose: iso(p.lastClose),
        nextOpen: iso(p.nextOpen),
        nextClose: iso(p.nextClose),
      }).toEqual({
        nextOpen: undefined,
        ...expected,
      });
    });

    it('finds nothing when the windows are more than eight days away', () => {
      const rare: WindowSet = { timezone: 'UTC', windows: [{ days: ['mon'], start: '08:00', end: '09:00' }] };
      // 16 days between two Mondays is never more than 8 days from some Monday: the search always sees one.
      expect(position(rare, at('2025-06-05T12:00:00Z'))).toMatchObject({
        inside: false,
        nextOpen: at('2025-06-09T08:00:00Z'),
        lastClose: at('2025-06-02T09:00:00Z'),
      });
    });
  });

  it('merges adjacent windows into one interval', () => {
    const split: WindowSet = {
      timezone: 'UTC',
      windows: [
        { days: ['wed'], start: '08:00', end: '12:00' },
        { days: ['wed'], start: '12:00', end: '17:00' },
      ],
    };
    expect(intervals(split, at('2025-06-04T00:00:00Z'), at('2025-06-05T00:00:00Z'))).toEqual([
      [at('2025-06-04T08:00:00Z'), at('2025-06-04T17:00:00Z')],
    ]);
  });

  it('lets a night window run past midnight into the next day', () => {
    const night: WindowSet = { timezone: 'UTC', windows: [{ days: ['sat'], start: '22:00', end: '06:00' }] };
    expect(intervals(night, at('2025-06-01T00:00:00Z'), at('2025-06-01T12:00:00Z'))).toEqual([
      [at('2025-05-31T22:00:00Z'), at('2025-06-01T06:00:00Z')],
    ]);
    expect(overlapMs(night, at('2025-06-01T00:00:00Z'), at('2025-06-01T12:00:00Z'))).toBe(6 * HOUR);
  });

  it('a night window across the Amsterdam spring-forward night is an hour shorter', () => {
    const night: WindowSet = { timezone: 'Europe/Amsterdam', windows: [{ days: ['sat'], start: '22:00', end: '06:00' }] };
    expect(overlapMs(night, at('2025-03-29T00:00:00Z'), at('2025-03-31T00:00:00Z'))).toBe(7 * HOUR);
    expect(overlapMs(night, at('2025-10-25T00:00:00Z'), at('2025-10-27T00:00:00Z'))).toBe(9 * HOUR);
  });

  it('gives the same result from a warm cache as from a cold one', () => {
    const set: WindowSet = { timezone: 'Australia/Sydney', windows: [{ days: ['sun'], start: '08:00', end: '19:00' }] };
    const cold = intervals(set, at('2025-04-01T00:00:00Z'), at('2025-04-15T00:00:00Z'));
    const warm = intervals(set, at('2025-04-01T00:00:00Z'), at('2025-04-15T00:00:00Z'));
    expect(warm).toEqual(cold);
    expect(cold.map(([s]) => iso(s))).toEqual(['2025-04-05T22:00:00.000Z', '2025-04-12T22:00:00.000Z']);
  });
});
