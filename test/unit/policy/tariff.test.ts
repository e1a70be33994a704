import { accrue, HOURS_PER_MONTH, tariffOf, timeToAccrue, type Tariff } from '../../../lambda-agent/policy/tariff';
import { HOUR, NOW, policyOf } from '../../fixtures/policies';

const EVERY_DAY = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
/** Off-peak $1/h, peak $3/h from 08:00 to 19:00 local every day, no storage. */
function peakTariff(timezone: string): Tariff {
  const policy = policyOf([
    {
      rule: 'spend',
      maxUsd: 100,
      hourlyUsd: 1,
      storageUsdPerGbMonth: 0,
      peak: { hourlyUsd: 3, timezone, windows: [{ days: [...EVERY_DAY], start: '08:00', end: '19:00' }] },
    },
  ]);
  return tariffOf(policy, undefined);
}
const at = (iso: string) => Date.parse(iso);

describe('tariff', () => {
  it('takes the rates from the spend rule, falling back to the observed price', () => {
    const policy = policyOf([{ rule: 'spend', maxUsd: 10, storageGb: 100, networkOutUsdPerGb: 0.09 }]);
    expect(tariffOf(policy, 0.5)).toEqual({ hourlyUsd: 0.5, storageHourlyUsd: (100 * 0.08) / HOURS_PER_MONTH, netOutUsdPerGb: 0.09 });
    expect(tariffOf(policyOf([{ rule: 'lifetime', max: '1d' }]), undefined)).toEqual({ storageHourlyUsd: 0, netOutUsdPerGb: 0 });
  });

  it('accrues nothing over an empty or reversed interval', () => {
    const t = peakTariff('UTC');
    expect(accrue(t, 'running', NOW, NOW)).toBe(0);
    expect(accrue(t, 'running', NOW, NOW - HOUR)).toBe(0);
  });

  it.each([
    ['inside the window', '2025-06-04T08:00:00Z', '2025-06-04T10:00:00Z', 6],
    ['outside the window', '2025-06-04T19:00:00Z', '2025-06-04T21:00:00Z', 2],
    ['across the opening', '2025-06-04T07:00:00Z', '2025-06-04T09:00:00Z', 1 + 3],
    ['across the closing', '2025-06-04T18:30:00Z', '2025-06-04T19:30:00Z', 1.5 + 0.5],
    ['over a whole day (11 peak hours, 13 off-peak)', '2025-06-04T00:00:00Z', '2025-06-05T00:00:00Z', 33 + 13],
    ['over two days across midnight', '2025-06-04T12:00:00Z', '2025-06-06T12:00:00Z', 2 * (33 + 13)],
  ])('accrues peak and off-peak rates %s (UTC)', (_label, from, to, usd) => {
    expect(accrue(peakTariff('UTC'), 'running', at(from), at(to))).toBeCloseTo(usd, 9);
  });

  it('accrues only storage while stopped', () => {
    const t: Tariff = { ...peakTariff('UTC'), storageHourlyUsd: 0.1 };
    expect(accrue(t, 'stopped', at('2025-06-04T08:00:00Z'), at('2025-06-04T18:00:00Z'))).toBeCloseTo(1, 9);
  });

  describe('across daylight-saving changes, peak follows local 08:00–19:00', () => {
    it.each([
      // Europe/Amsterdam: the hour 06:00–07:00Z is 07:00 local in CET (off-peak) and 08:00 local in CEST (peak).
      ['Europe/Amsterdam', 'Saturday before spring forward, 06–07Z is 07:00 CET', '2025-03-29T06:00:00Z', 1],
      ['Europe/Amsterdam', 'Sunday of spring forward, 06–07Z is 08:00 CEST', '2025-03-30T06:00:00Z', 3],
      ['Europe/Amsterdam', 'Saturday before fall back, 06–07Z is 08:00 CEST', '2025-10-25T06:00:00Z', 3],
      ['Europe/Amsterdam', 'Sunday of fall back, 06–07Z is 07:00 CET', '2025-10-26T06:00:00Z', 1],
      // Australia/Sydney: 21:00–22:00Z is 08:00 local in AEDT (+11) and 07:00 local in AEST (+10).
      ['Australia/Sydney', 'Saturday before DST ends, 21–22Z is 08:00 AEDT', '2025-04-04T21:00:00Z', 3],
      ['Australia/Sydney', 'Sunday DST ended, 21–22Z is 07:00 AEST', '2025-04-05T21:00:00Z', 1],
      ['Australia/Sydney', 'Saturday before DST starts, 21–22Z is 07:00 AEST', '2025-10-03T21:00:00Z', 1],
      ['Australia/Sydney', 'Sunday DST started, 21–22Z is 08:00 AEDT', '2025-10-04T21:00:00Z', 3],
    ])('%s, %s: $%d for the hour', (tz, _label, from, usd) => {
      expect(accrue(peakTariff(tz), 'running', at(from), at(from) + HOUR)).toBeCloseTo(usd, 9);
    });

    it.each([
      // Three local days (midnight to midnight) around the change: 72 hours, or 71/73 with the change.
      ['Europe/Amsterdam', '2025-03-28T23:00:00Z', '2025-03-31T22:00:00Z', 71],
      ['Europe/Amsterdam', '2025-10-24T22:00:00Z', '2025-10-27T23:00:00Z', 73],
      ['Australia/Sydney', '2025-04-03T13:00:00Z', '2025-04-06T14:00:00Z', 73],
      ['Australia/Sydney', '2025-10-02T14:00:00Z', '2025-10-05T13:00:00Z', 71],
    ])('%s: three local days around the change (%s → %s, %d hours) hold exactly 33 peak hours', (tz, from, to, hours) => {
      expect((at(to) - at(from)) / HOUR).toBe(hours);
      // every hour at $1, plus $2 extra for each of the 3 × 11 peak hours
      expect(accrue(peakTariff(tz), 'running', at(from), at(to))).toBeCloseTo(hours + 2 * 33, 9);
    });

    it('a full-day peak on the spring-forward Sunday lasts 23 hours, on the fall-back Sunday 25', () => {
      const fullSunday = (timezone: string) =>
        tariffOf(
          policyOf([
            {
              rule: 'spend',
              maxUsd: 100,
              hourlyUsd: 0,
              storageUsdPerGbMonth: 0,
              peak: { hourlyUsd: 1, timezone, windows: [{ days: ['sun'], start: '00:00', end: '24:00' }] },
            },
          ]),
          undefined,
        );
      expect(accrue(fullSunday('Europe/Amsterdam'), 'running', at('2025-03-29T00:00:00Z'), at('2025-04-01T00:00:00Z'))).toBeCloseTo(23, 9);
      expect(accrue(fullSunday('Europe/Amsterdam'), 'running', at('2025-10-25T00:00:00Z'), at('2025-10-28T00:00:00Z'))).toBeCloseTo(25, 9);
      expect(accrue(fullSunday('Australia/Sydney'), 'running', at('2025-04-04T00:00:00Z'), at('2025-04-07T00:00:00Z'))).toBeCloseTo(25, 9);
      expect(accrue(fullSunday('Australia/Sydney'), 'running', at('2025-10-03T00:00:00Z'), at('2025-10-06T00:00:00Z'))).toBeCloseTo(23, 9);
    });
  });

  describe('timeToAccrue', () => {
    it.each([
      ['off-peak only', '2025-06-04T19:00:00Z', 2, '2025-06-04T21:00:00Z'],
      ['into the next peak window', '2025-06-04T19:00:00Z', 13 + 6, '2025-06-05T10:00:00Z'],
      ['inside the peak window', '2025-06-04T08:00:00Z', 3, '2025-06-04T09:00:00Z'],
      ['nothing more to accrue', '2025-06-04T08:00:00Z', 0, '2025-06-04T08:00:00Z'],
    ])('finds when %s reaches the amount', (_label, from, usd, expected) => {
      expect(timeToAccrue(peakTariff('UTC'), at(from), usd)).toBeCloseTo(at(expected), 0);
    });

    it('finds the crossing across the Amsterdam spring-forward change', () => {
      // From Saturday 19:00 CET (18:00Z) to Sunday 08:00 CEST (06:00Z) is 12 off-peak hours, then peak at $3/h.
      expect(timeToAccrue(peakTariff('Europe/Amsterdam'), at('2025-03-29T18:00:00Z'), 12 + 3)).toBeCloseTo(at('2025-03-30T07:00:00Z'), 0);
    });

    it('is undefined when nothing accrues within the horizon', () => {
      expect(timeToAccrue({ hourlyUsd: 0, storageHourlyUsd: 0, netOutUsdPerGb: 0 }, NOW, 1)).toBeUndefined();
    });
  });
});
