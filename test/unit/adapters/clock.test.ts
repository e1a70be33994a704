import { isFirstCycleOfSlot, slotStart, systemClock } from '../../../lambda-agent/adapters/clock';

const MIN = 60_000;
const HOUR = 60 * MIN;

describe('clock', () => {
  it.each([
    [0, true],
    [59_999, true],
    [MIN, false],
    [HOUR - 1, false],
    [HOUR, true],
    [5 * HOUR + 30_000, true],
  ])('a cycle at %s ms is the first of its hour: %s', (t, first) => {
    expect(isFirstCycleOfSlot(t, HOUR, MIN)).toBe(first);
  });

  it('answers true exactly once per slot for cycles one interval apart, whatever their phase', () => {
    for (const phase of [0, 1, 17_000, 59_999]) {
      let count = 0;
      for (let t = phase; t < 10 * HOUR + phase; t += MIN) if (isFirstCycleOfSlot(t, 10 * MIN, MIN)) count++;
      expect(count).toBe(60);
    }
  });

  it('treats a slot no longer than the interval as every cycle', () => {
    expect(isFirstCycleOfSlot(123_456, MIN, 5 * MIN)).toBe(true);
  });

  it('aligns slots to the epoch', () => {
    expect(slotStart(HOUR + 5 * MIN, HOUR)).toBe(HOUR);
    expect(systemClock.now()).toBeGreaterThan(Date.parse('2025-01-01'));
  });
});
