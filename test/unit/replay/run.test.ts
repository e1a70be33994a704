import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { formatReplay, replayGoals, runReplay, type ReplayResult } from '../../../lambda-agent/replay';
import { syntheticFleet, syntheticVm, SYNTHETIC_MONDAY } from '../../../lambda-agent/replay/synthetic';
import type { VmTrace } from '../../../lambda-agent/replay/trace';
import { parseArgs } from '../../../scripts/replay';

describe('runReplay on the synthetic week', () => {
  let result: ReplayResult;
  beforeAll(async () => {
    result = await runReplay({ traces: syntheticFleet() });
  });

  it('compares the five policies, baseline first, and excludes the VM that never ran', () => {
    expect(result.rows.map((r) => r.key)).toEqual(['none', 'office-hours', 'cpu-idle', 'idle', 'dev-box']);
    expect(result.meta).toMatchObject({ source: 'synthetic', vms: 5, replayed: 4, neverRun: ['off'], mode: 'event', workers: 0 });
    expect(result.meta.vmMonths).toBeCloseTo((4 * 7) / 30, 10);
    expect(result.meta.baselineUsd).toBeCloseTo(4 * 168 * 0.096, 10);
  });

  it('pins stops, disruptions and spend per policy', () => {
    const pinned = result.rows.map((r) => [r.key, r.stops, r.disruptions, r.scheduledStarts, Math.round(r.spendUsd * 1000) / 1000]);
    expect(pinned).toEqual([
      ['none', 0, 0, 0, 64.512],
      // Running hours × $0.096 — idle 63, office 63, nightly 19 + 4 × 17 + 46 (left running after
      // each night's job until the next close), net-busy 168 (each stop ends in the next sample): 427 h
      ['office-hours', 20, 10, 8, 40.992],
      // idle 0.5, office 0.5 + 5 × 8.5, nightly 0.5 + 7 × 1, net-busy 168: 219 h
      ['cpu-idle', 351, 347, 0, 21.024],
      // idle 0.75, office 0.75 + 5 × 8.5, nightly 0.75 + 7 × 1, net-busy 168 (never stopped): 219.75 h
      ['idle', 15, 12, 0, 21.096],
      // idle 0.75 + 5 × 0.75, office 0.75 + 5 × (0.75 + 8.5), nightly 0.75 + 7 × 1 + 5 × 0.75, net-busy 168: 231 h
      ['dev-box', 35, 17, 15, 22.176],
    ]);
    const none = result.rows[0];
    for (const r of result.rows) {
      expect(r.savedUsd).toBeCloseTo(none.spendUsd - r.spendUsd, 10);
      expect(r.savedPct).toBeCloseTo((100 * r.savedUsd) / none.spendUsd, 10);
      expect(r.disruptionsPerVmMonth).toBeCloseTo(r.disruptions / result.meta.vmMonths, 10);
    }
  });

  it('reports the waste recovered and the median stop', () => {
    const dev = result.rows.find((r) => r.key === 'dev-box')!;
    expect(dev.wasteRecoveredPct).toBeGreaterThan(90);
    expect(result.rows[0].wasteRecoveredPct).toBe(0);
    expect(result.rows[0].medianHoursStopped).toBeNull();
    // Our idle rule: 0.75 h + 8.25 h + 4 × 15.5 h + 54.5 h (office), 167.25 h (idle), 1.25 h + 6 × 23 h + 21 h (nightly)
    expect(result.rows.find((r) => r.key === 'idle')!.medianHoursStopped).toBe(23);
  });

  it('checks the goals and formats the table', () => {
    const goals = replayGoals(result);
    expect(goals.map((g) => g.unit)).toEqual(['×', '×', '%', '/VM-month', 's', 'VM-months/s']);
    expect(goals.find((g) => g.name.startsWith('our idle disruptions'))).toMatchObject({
      ok: true,
      value: Math.round((12 / 347) * 1000) / 1000,
    });
    // Judged only on the real trace.
    expect(goals.find((g) => g.unit === 's')!.ok).toBe(false);
    const text = formatReplay(result);
    expect(text).toContain('office hours only');
    expect(text).toMatch(/developer box\s+\$22\s+\$42\s+65\.6 %\s+35\s+17\s+/);
    expect(text).toContain('1 never ran');
    expect(text).toContain('NOT MET');
  });
});

/** A trace file in the Bitbrains format (`;` + tab separated, Unix seconds). */
function csv(t: VmTrace, extraRows: string[] = []): Buffer {
  const head =
    'Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\tDisk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]';
  const rows = Array.from(t.at, (at, i) =>
    [at / 1000, t.cores, 2600 * t.cores, 0, t.cpu[i], t.memoryKb, 0, 0, 0, t.net[i] / 1024 / 2, t.net[i] / 1024 / 2].join(';\t'),
  );
  return gzipSync(Buffer.from([head, ...rows, ...extraRows].join('\n') + '\n'));
}

describe('runReplay on a trace directory', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'replay-trace-'));
    const [office, idle] = syntheticFleet(SYNTHETIC_MONDAY, 2);
    writeFileSync(join(dir, '1.csv.gz'), csv({ ...office, id: '1' }));
    // Duplicate rows with cores=0, as in VM 20.
    const dup = (s: number) => [s, 0, 0, 0, 0, 0, 0, 0, 0, 0.3, 1.7].join(';\t');
    writeFileSync(join(dir, '20.csv.gz'), csv({ ...idle, id: '20' }, [dup(idle.at[3] / 1000), dup(idle.at[7] / 1000)]));
    writeFileSync(join(dir, '425.csv.gz'), csv(syntheticVm('425', SYNTHETIC_MONDAY, 2, () => ({ cpu: 0, netKBps: 0 }))));
    writeFileSync(join(dir, 'vm_index.csv'), 'vm_id\n1\n20\n425\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads every VM file, handles the caveats, excludes VMs that never ran', async () => {
    const r = await runReplay({ traceDir: dir, workers: 0 });
    expect(r.meta).toMatchObject({ source: 'trace', traceDir: dir, vms: 3, vmsInTrace: 3, replayed: 2, neverRun: ['425'] });
    expect(replayGoals(r).find((g) => g.unit === 's')!.name).toBe('wall time, 3 VMs × 30 days, 5 policies');
    expect(r.meta.caveats).toMatchObject({ coresZeroRows: 2, coresZeroVms: ['20'], duplicateRows: 0, samples: 3 * 576 });
    expect(r.meta.vmMonths).toBeCloseTo((2 * 2) / 30, 10);
    expect(r.vms.map((v) => v.id)).toEqual(['1', '20', '425']);
    // Office (Mon–Tue): stopped 00:45, needed 09:00, stopped 17:30, twice; idle: stopped 00:45.
    expect(r.rows.find((x) => x.key === 'idle')).toMatchObject({ stops: 4, disruptions: 2 });
  });

  it('replays only the VMs and policies asked for', async () => {
    const r = await runReplay({ traceDir: dir, workers: 0, vmIds: ['20'], policies: ['idle'] });
    expect(r.rows.map((x) => x.key)).toEqual(['none', 'idle']);
    expect(r.meta).toMatchObject({ vms: 1, vmsInTrace: 3 });
    // The time budget is for the whole trace under every policy: a part is not judged.
    expect(replayGoals(r).find((g) => g.unit === 's')).toMatchObject({ name: 'wall time (part of the trace: not judged)', ok: false });
    await expect(runReplay({ traceDir: dir, workers: 0, vmIds: ['20', '21'] })).rejects.toThrow(`no such VM in ${dir}: 21`);
    await expect(runReplay({ traceDir: dir, workers: 0, policies: ['nope'] })).rejects.toThrow("unknown replay policy 'nope'");
  });

  it('says plainly when the trace is absent and replays the synthetic traces instead', async () => {
    const missing = join(dir, 'absent');
    const r = await runReplay({ traceDir: missing, policies: ['idle'] });
    expect(r.meta.source).toBe('synthetic');
    expect(r.meta.note).toBe(
      `trace not found at ${missing}: replaying the synthetic traces of the tests instead (5 VMs, 30 days); these figures say nothing about real savings`,
    );
    expect(formatReplay(r).split('\n')[0]).toBe(`NOTE: ${r.meta.note}`);
    expect(r.meta.vmMonths).toBeCloseTo(4, 10);
  });
});

describe('scripts/replay.ts arguments', () => {
  it('reads the options', () => {
    expect(parseArgs(['--trace-dir', '/x', '--json', '--every-sample', '--workers', '0', '--vms', '1,2', '--policies', 'idle'])).toEqual({
      opts: { traceDir: '/x', everySample: true, workers: 0, vmIds: ['1', '2'], policies: ['idle'] },
      json: true,
    });
    expect(parseArgs([])).toEqual({ opts: {}, json: false });
  });
  it('refuses what it does not know', () => {
    expect(() => parseArgs(['--trace-dir'])).toThrow('--trace-dir needs a value');
    expect(() => parseArgs(['--workers', '-1'])).toThrow('--workers must be a whole number');
    expect(() => parseArgs(['--fast'])).toThrow("unknown argument '--fast'");
  });
});
