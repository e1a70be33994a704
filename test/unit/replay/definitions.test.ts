import { DISRUPTION, WASTE, isNeeded, isQuiet, neededMask, sampleIntervals, wasteMask } from '../../../lambda-agent/replay/definitions';
import { M5_PRICES, priceFor } from '../../../lambda-agent/replay/pricing';
import type { VmTrace } from '../../../lambda-agent/replay/trace';

const P = 300_000;
const KB = 1024;

function trace(points: Array<[number, number, number]>): VmTrace {
  return {
    id: 't',
    cores: 1,
    memoryKb: 1,
    at: Float64Array.from(points.map((p) => p[0])),
    cpu: Float64Array.from(points.map((p) => p[1])),
    net: Float64Array.from(points.map((p) => p[2])),
    stats: { rows: 0, kept: 0, coresZero: 0, duplicates: 0, invalid: 0, clippedCpu: 0, unsorted: false, gaps: 0, gapMs: 0 },
  };
}

/** `n` samples every period from `from` (first at from + P). */
function run(from: number, n: number, cpu: number, net: number): Array<[number, number, number]> {
  return Array.from({ length: n }, (_, i) => [from + (i + 1) * P, cpu, net] as [number, number, number]);
}

describe('disruption and waste definitions', () => {
  it('are the documented thresholds', () => {
    expect(DISRUPTION).toEqual({ cpuPercentAbove: 10, networkBytesPerSecAbove: 100 * KB });
    expect(WASTE).toEqual({ cpuPercentBelow: 5, networkBytesPerSecBelow: 100 * KB, minRunMs: 3_600_000 });
  });

  it('needed: CPU above 10 % or network above 100 KB/s; unknown figures are no evidence', () => {
    expect(isNeeded(10, 100 * KB)).toBe(false);
    expect(isNeeded(10.01, 0)).toBe(true);
    expect(isNeeded(0, 100 * KB + 1)).toBe(true);
    expect(isNeeded(NaN, NaN)).toBe(false);
  });

  it('quiet: CPU below 5 % and network below 100 KB/s, both known', () => {
    expect(isQuiet(4.99, 99 * KB)).toBe(true);
    expect(isQuiet(5, 0)).toBe(false);
    expect(isQuiet(0, 100 * KB)).toBe(false);
    expect(isQuiet(NaN, 0)).toBe(false);
    expect(isQuiet(1, NaN)).toBe(false);
  });

  it('waste is quiet runs of at least one hour; 55 minutes is not, a gap or a busy sample breaks a run', () => {
    // 12 quiet samples = 60 min (waste), busy, 11 quiet = 55 min (not), busy,
    // 8 quiet, a 20-minute gap, 8 quiet (two runs of 40 min: not), then 13 quiet (waste).
    const pts: Array<[number, number, number]> = [];
    pts.push(...run(0, 12, 1, 1 * KB));
    pts.push(...run(12 * P, 1, 50, 0));
    pts.push(...run(13 * P, 11, 1, 1 * KB));
    pts.push(...run(24 * P, 1, 1, 500 * KB));
    pts.push(...run(25 * P, 8, 1, 0));
    pts.push(...run(37 * P, 8, 1, 0)); // first at 38P: 5 periods after the last one at 33P
    pts.push(...run(45 * P, 1, 7, 0)); // neither quiet nor needed: still breaks the run
    pts.push(...run(46 * P, 13, 0, 0));
    const t = trace(pts);
    const w = Array.from(wasteMask(t));
    expect(w.slice(0, 12)).toEqual(Array(12).fill(1));
    expect(w.slice(12, 42).every((x) => x === 0)).toBe(true);
    expect(w.slice(42)).toEqual(Array(13).fill(1));
    expect(Array.from(neededMask(t)).reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('each sample stands for the time since the previous one, at most a period', () => {
    expect(Array.from(sampleIntervals(Float64Array.from([P, 2 * P, 2 * P + 200_000, 10 * P])))).toEqual([P, P, 200_000, P]);
  });
});

describe('price map (smallest m5 that covers vCPUs and memory)', () => {
  const GiB = 1024 * 1024;
  it.each([
    [1, 2 * GiB, 'm5.large', 0.096],
    [2, 8 * GiB, 'm5.large', 0.096],
    [2, 8 * GiB + 1, 'm5.xlarge', 0.192],
    [4, 16 * GiB, 'm5.xlarge', 0.192],
    [8, 20 * GiB, 'm5.2xlarge', 0.384],
    [16, 95 * GiB, 'm5.8xlarge', 1.536],
    [32, 10 * GiB, 'm5.8xlarge', 1.536],
    [48, 100 * GiB, 'm5.12xlarge', 2.304],
    [64, 200 * GiB, 'm5.16xlarge', 3.072],
    [96, 384 * GiB, 'm5.24xlarge', 4.608],
  ])('%i vCPU, %i KB → %s at $%d/h', (cpus, kb, type, usd) => {
    expect(priceFor(cpus, kb)).toMatchObject({ type, hourlyUsd: usd, oversize: false });
  });
  it('flags VMs bigger than the largest m5', () => {
    expect(priceFor(128, GiB)).toMatchObject({ type: 'm5.24xlarge', oversize: true });
  });
  it('lists the m5 family at a constant $0.048 per vCPU-hour', () => {
    for (const p of M5_PRICES) expect(p.hourlyUsd / p.vcpus).toBeCloseTo(0.048, 10);
  });
});
