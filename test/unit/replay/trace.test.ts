import * as fc from 'fast-check';
import { parseVmCsv, TRACE_PERIOD_MS } from '../../../lambda-agent/replay/trace';

const HEADER =
  'Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\tDisk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]';
const T0 = 1375308176; // 2013-07-31T22:02:56Z, the trace's first timestamp

/** One row in the trace's format: `;` then a tab between fields. */
function row(t: number, cores: number, cpuPct: number | string, rx: number | string, tx: number | string, memKb = 4110336): string {
  return [t, cores, cores * 2600, 0, cpuPct, `${memKb}.0`, 1000, 0, 0, rx, tx].join(';\t');
}

describe('parseVmCsv', () => {
  it('reads the fields of a clean file: seconds → ms, network KB/s → bytes/s, cores and memory', () => {
    const csv =
      [HEADER, row(T0, 2, 12.766666666666667, 11.0, 27.2, 8388608), row(T0 + 300, 2, 11.5, 13.4, 30.6, 8388608)].join('\n') + '\n';
    const v = parseVmCsv('1', csv);
    expect(Array.from(v.at)).toEqual([T0 * 1000, (T0 + 300) * 1000]);
    expect(v.cpu[0]).toBe(12.766666666666667);
    expect(v.cpu[1]).toBe(11.5);
    expect(v.net[0]).toBe((11.0 + 27.2) * 1024);
    expect(v.net[1]).toBe((13.4 + 30.6) * 1024);
    expect(v.cores).toBe(2);
    expect(v.memoryKb).toBe(8388608);
    expect(v.stats).toEqual({
      rows: 2,
      kept: 2,
      coresZero: 0,
      duplicates: 0,
      invalid: 0,
      clippedCpu: 0,
      unsorted: false,
      gaps: 0,
      gapMs: 0,
    });
  });

  it('handles the caveats: cores=0 rows, duplicates, unsorted rows, CPU above 100 %, a gap', () => {
    // Like VMs 20, 82 and 265: duplicate timestamps whose extra rows have cores=0, out of order;
    // CPU over 100 % (the trace reaches 114); the common gap of 2013-08-02 (here 4 samples missing).
    const lines = [
      HEADER,
      row(T0, 1, 2.0, 0.1, 0.2),
      row(T0 + 300, 0, 0.0, 0.3, 1.7), // cores=0: powered off
      row(T0 + 300, 1, 114.0, 0.0, 0.0), // the valid row of that timestamp; clipped to 100
      row(T0 + 900, 1, 3.0, 0.0, 0.0),
      row(T0 + 600, 1, 4.0, 0.5, 0.5), // out of order
      row(T0 + 600, 1, 99.0, 9.0, 9.0), // duplicate of a valid timestamp: the first one is kept
      row(T0 + 600, 0, 0.0, 0.0, 0.0), // cores=0 duplicate
      row(T0 + 900 + 5 * 300, 1, 1.0, 0.0, 0.0), // after a gap: T0+1200 … T0+2100 are missing
      '',
    ];
    const v = parseVmCsv('20', lines.join('\n'));
    expect(Array.from(v.at)).toEqual([T0, T0 + 300, T0 + 600, T0 + 900, T0 + 2400].map((s) => s * 1000));
    expect(Array.from(v.cpu)).toEqual([2, 100, 4, 3, 1]);
    expect(v.net[2]).toBe(1024);
    expect(v.stats).toEqual({
      rows: 8,
      kept: 5,
      coresZero: 2,
      duplicates: 1,
      invalid: 0,
      clippedCpu: 1,
      unsorted: true,
      gaps: 1,
      gapMs: 1500 * 1000 - TRACE_PERIOD_MS,
    });
  });

  it('keeps nothing of a VM that is powered off all along, and counts bad rows as invalid', () => {
    const v = parseVmCsv('9', [HEADER, row(T0, 0, 0, 0, 0), 'garbage', `${T0 + 300};\t1;\t2`, row(T0 + 600, 0, 0, 0, 0)].join('\r\n'));
    expect(v.at.length).toBe(0);
    expect(v.stats).toMatchObject({ rows: 4, kept: 0, coresZero: 2, invalid: 2 });
  });

  it('marks unreadable figures unknown (NaN) instead of zero', () => {
    const v = parseVmCsv('3', [HEADER, row(T0, 1, 'n/a', 1, 1), row(T0 + 300, 1, 5, '', 1)].join('\n'));
    expect(Number.isNaN(v.cpu[0])).toBe(true);
    expect(v.net[0]).toBe(2048);
    expect(v.cpu[1]).toBe(5);
    expect(Number.isNaN(v.net[1])).toBe(true);
  });

  it('reads a file without a header and with exponents (3.3421312E7) as Number() does', () => {
    const v = parseVmCsv('82', [row(T0, 8, '1.5E1', 0, 0, 0).replace('0.0', '3.3421312E7')].join('\n'));
    expect(v.cpu[0]).toBe(15);
    expect(v.stats.rows).toBe(1);
  });

  it('parses every decimal exactly as Number() does (fast path and fallback)', () => {
    const decimal = fc
      .tuple(fc.nat({ max: 1_000_000 }), fc.stringMatching(/^[0-9]{0,18}$/))
      .map(([i, frac]) => (frac === '' ? `${i}` : `${i}.${frac}`));
    fc.assert(
      fc.property(decimal, decimal, (cpu, rx) => {
        const v = parseVmCsv('p', `${row(T0, 1, cpu, rx, '0.0')}\n`);
        expect(v.cpu[0]).toBe(Math.min(100, Number(cpu)));
        expect(v.net[0]).toBe((Number(rx) + 0) * 1024);
      }),
      { numRuns: 300 },
    );
  });
});
