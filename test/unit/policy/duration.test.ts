import { formatDuration, parseDuration } from '../../../lambda-agent';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['90m', 5_400_000],
    ['8h', 28_800_000],
    ['3d', 259_200_000],
    ['1w', 604_800_000],
    ['1.5h', 5_400_000],
    ['10 minutes', 600_000],
    [' 8h ', 28_800_000],
    ['PT8H', 28_800_000],
    ['pt8h', 28_800_000],
    ['P3DT4H', 273_600_000],
    ['PT1M30S', 90_000],
    ['P1W', 604_800_000],
    ['0s', 0],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });

  it.each([
    ['8', 'needs a unit'],
    ['', 'must be a duration'],
    ['   ', 'must be a duration'],
    ['soon', 'must be a duration'],
    ['-1h', 'must be positive'],
    ['1y', 'may not use years or months'],
    ['2 months', 'may not use years or months'],
    ['P1Y', 'may not use years or months'],
    ['P1M', 'may not use years or months'],
    ['PT', 'is not a valid ISO 8601 duration'],
    ['P-1D', 'must be positive'],
    ['PT-5M', 'must be positive'],
  ])('refuses %j: %s', (text, problem) => {
    const r = parseDuration(text);
    expect(r.ok).toBe(false);
    expect((r as { problem: string }).problem).toContain(problem);
  });

  it.each([undefined, null, 90, {}])('refuses the non-string %p', (value) => {
    expect(parseDuration(value)).toMatchObject({ ok: false });
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [45_000, '45s'],
    [34 * 60_000, '34m'],
    [90 * 60_000, '1h 30m'],
    [28 * 3_600_000, '1d 4h'],
    [28 * 3_600_000 + 5 * 60_000, '1d 4h'],
    [-90 * 60_000, '-1h 30m'],
  ])('formats %d ms as %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
