/**
 * The savings replay: every VM of a trace under every policy of the comparison, the
 * figures per policy, and the goals of the "savings replay" issue.
 *
 * `runReplay` reads the trace (default ../shared/traces/bitbrains-rnd-2013-08 from the
 * repository root; the synthetic traces of the tests when it is absent), replays the
 * VMs — on worker threads when there are many — and aggregates; `formatReplay` prints.
 */
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DISRUPTION, WASTE } from './definitions';
import { REPLAY_POLICIES, type ReplayPolicy } from './policies';
import { PRICE_SOURCE } from './pricing';
import { prepareVm } from './simulate';
import { syntheticFleet, TRACE_MONTH_START } from './synthetic';
import { defaultTraceDir, hasTrace, listTraceVms, type ParseStats, type VmTrace } from './trace';
import { policiesFor, replayFile, replayPrepared, type VmReplay } from './vm';

const HOUR = 3_600_000;
/** A VM-month: 30 days of one VM's observed life (the trace's month is 30 days). */
export const VM_MONTH_MS = 30 * 24 * HOUR;

export interface ReplayOptions {
  /** Trace directory. @default ../shared/traces/bitbrains-rnd-2013-08 from the repository root */
  readonly traceDir?: string;
  /** Replay these traces instead of reading a directory (tests). */
  readonly traces?: readonly VmTrace[];
  /** Only these VM ids (from the directory). */
  readonly vmIds?: readonly string[];
  /** Policy keys to compare (the baseline `none` is always included). @default all */
  readonly policies?: readonly string[];
  /** Worker threads; 0 = in this thread. @default up to 2 when the trace has more than 16 VMs */
  readonly workers?: number;
  /** Evaluate at every sample (as the agent would) instead of only where a decision can change. */
  readonly everySample?: boolean;
  /** Keep each VM's events (in-thread only; tests). */
  readonly recordEvents?: boolean;
}

/** The figures of one policy over the fleet. */
export interface ReplayRow {
  readonly key: string;
  readonly label: string;
  readonly recipe: string;
  readonly spendUsd: number;
  readonly savedUsd: number;
  /** Percent of the baseline spend. */
  readonly savedPct: number;
  readonly stops: number;
  readonly disruptions: number;
  readonly disruptionsPerVmMonth: number;
  /** Median length of a stop, hours (stops still open at the end of the trace end there). */
  readonly medianHoursStopped: number | null;
  /** Stops ended by the schedule's start. */
  readonly scheduledStarts: number;
  /** Disruptions by the rule whose stop they ended. */
  readonly disruptionsByRule: Readonly<Record<string, number>>;
  /** Waste recovered: USD of waste time the VM spent stopped, and its share of all waste. */
  readonly wasteRecoveredUsd: number;
  readonly wasteRecoveredPct: number;
  readonly evaluations: number;
}

export interface ReplayMeta {
  readonly source: 'trace' | 'synthetic';
  readonly traceDir: string;
  /** Why the synthetic traces were used, in words. */
  readonly note?: string;
  readonly vms: number;
  /** VM files in the trace directory (the replay may have been asked for fewer). */
  readonly vmsInTrace: number;
  /** VMs replayed (those that ever ran). */
  readonly replayed: number;
  /** VMs without any CPU all month: excluded from spend, savings and waste. */
  readonly neverRun: readonly string[];
  readonly vmMonths: number;
  readonly baselineUsd: number;
  readonly wasteUsd: number;
  readonly wasteHours: number;
  /** Share of the replayed VMs' running time that is waste. */
  readonly wastePctOfTime: number;
  readonly caveats: {
    readonly rows: number;
    readonly samples: number;
    readonly coresZeroRows: number;
    readonly coresZeroVms: readonly string[];
    readonly duplicateRows: number;
    readonly unsortedFiles: readonly string[];
    readonly clippedCpuRows: number;
    readonly gaps: number;
    readonly gapHours: number;
    readonly oversizeVms: readonly string[];
  };
  readonly instanceTypes: Readonly<Record<string, number>>;
  readonly priceSource: string;
  readonly definitions: { readonly disruption: typeof DISRUPTION; readonly waste: typeof WASTE };
  readonly mode: 'event' | 'every-sample';
  readonly workers: number;
  /** How the worker threads ran the code. */
  readonly workerRuntime?: WorkerRuntime;
  readonly wallMs: number;
  /** CPU time of the process (all threads) during the replay. */
  readonly cpuMs: number;
  /** Time spent in threads, summed: reading + parsing, replaying. */
  readonly loadMs: number;
  readonly replayMs: number;
  readonly vmMonthsPerSec: number;
  readonly evaluations: number;
}

export interface ReplayResult {
  readonly rows: readonly ReplayRow[];
  readonly meta: ReplayMeta;
  /** Per VM (without events unless asked for). */
  readonly vms: readonly VmReplay[];
}

/** How worker threads run the replay code. */
export type WorkerRuntime = 'js' | 'esbuild-bundle' | 'tsx';

let workerCode: { code: string; runtime: WorkerRuntime } | undefined;

/**
 * Start a replay worker. From compiled JavaScript it runs worker.js; from the TypeScript
 * sources it runs worker.ts bundled once by esbuild (a dependency of the project) — the
 * same sources, without the name-keeping wrappers tsx adds, which cost the engine about
 * half its speed — or, failing that, worker.ts through tsx's loader.
 */
function spawnWorker(data: unknown): { worker: Worker; runtime: WorkerRuntime } {
  const ext = extname(__filename);
  if (ext !== '.ts') return { worker: new Worker(join(__dirname, `worker${ext}`), { workerData: data }), runtime: 'js' };
  const entry = join(__dirname, 'worker.ts');
  if (workerCode === undefined) {
    try {
      const esbuild = require('esbuild') as typeof import('esbuild');
      const out = esbuild.buildSync({
        entryPoints: [entry],
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        write: false,
        logLevel: 'silent',
      });
      workerCode = { code: out.outputFiles[0].text, runtime: 'esbuild-bundle' };
    } catch {
      const tsx = require.resolve('tsx/cjs/api');
      workerCode = { code: `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(entry)});`, runtime: 'tsx' };
    }
  }
  return { worker: new Worker(workerCode.code, { eval: true, workerData: data }), runtime: workerCode.runtime };
}

/** Messages between the replay and its workers. */
export type ToWorker = { readonly ids: readonly string[] } | { readonly exit: true };
export type FromWorker = { readonly ready: true } | { readonly replays: readonly VmReplay[] } | { readonly error: string };

async function replayInWorkers(
  dir: string,
  ids: readonly string[],
  keys: readonly string[] | undefined,
  everySample: boolean,
  workers: number,
): Promise<{ replays: VmReplay[]; runtime: WorkerRuntime }> {
  const queue = [...ids];
  const out: VmReplay[] = [];
  const batch = Math.max(1, Math.min(8, Math.ceil(ids.length / (workers * 6))));
  let runtime: WorkerRuntime = 'js';
  const started: Worker[] = [];
  const runOne = () =>
    new Promise<void>((resolve, reject) => {
      const spawned = spawnWorker({ dir, keys, everySample });
      const w = spawned.worker;
      started.push(w);
      runtime = spawned.runtime;
      const next = () => {
        if (queue.length === 0) {
          w.postMessage({ exit: true } satisfies ToWorker);
          return;
        }
        w.postMessage({ ids: queue.splice(0, batch) } satisfies ToWorker);
      };
      w.on('message', (m: FromWorker) => {
        if ('error' in m) {
          reject(new Error(m.error));
          void w.terminate();
          return;
        }
        if ('replays' in m) out.push(...m.replays);
        next();
      });
      w.on('error', reject);
      w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`replay worker exited with code ${code}`))));
    });
  try {
    await Promise.all(Array.from({ length: workers }, runOne));
  } catch (e) {
    queue.length = 0;
    await Promise.all(started.map((w) => w.terminate()));
    throw e;
  }
  return { replays: out, runtime };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Run the replay. */
export async function runReplay(opts: ReplayOptions = {}): Promise<ReplayResult> {
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const policies = policiesFor(opts.policies);
  const everySample = opts.everySample === true;
  const traceDir = opts.traceDir ?? defaultTraceDir();
  let source: ReplayMeta['source'] = 'trace';
  let note: string | undefined;
  let replays: VmReplay[];
  let workers = 0;
  let workerRuntime: WorkerRuntime | undefined;
  let vmsInTrace = 0;
  const replayLocal = (traces: readonly VmTrace[]) =>
    traces.map((t) => {
      const l0 = performance.now();
      const vm = prepareVm(t);
      return replayPrepared(vm, policies, { everySample, recordEvents: opts.recordEvents === true }, performance.now() - l0);
    });
  if (opts.traces) {
    source = 'synthetic';
    replays = replayLocal(opts.traces);
  } else if (!hasTrace(traceDir)) {
    source = 'synthetic';
    note = `trace not found at ${traceDir}: replaying the synthetic traces of the tests instead (5 VMs, 30 days); these figures say nothing about real savings`;
    replays = replayLocal(syntheticFleet(TRACE_MONTH_START, 30));
  } else {
    const all = listTraceVms(traceDir);
    vmsInTrace = all.length;
    const unknown = (opts.vmIds ?? []).filter((id) => !all.includes(id));
    if (unknown.length > 0) throw new Error(`no such VM in ${traceDir}: ${unknown.join(', ')}`);
    const ids = opts.vmIds ? [...opts.vmIds] : all;
    const inJest = process.env.JEST_WORKER_ID !== undefined;
    workers = opts.workers ?? (ids.length > 16 && !inJest ? Math.min(2, availableParallelism()) : 0);
    if (opts.recordEvents) workers = 0;
    const keys = opts.policies ? policies.map((p) => p.key) : undefined;
    if (workers > 0) {
      try {
        const r = await replayInWorkers(traceDir, ids, keys, everySample, Math.min(workers, ids.length));
        replays = r.replays;
        workerRuntime = r.runtime;
      } catch (e) {
        // A replay error is the same in any thread; a worker that cannot start is not.
        if (/^replay of VM/.test((e as Error).message)) throw e;
        note = `worker threads failed (${(e as Error).message.split('\n')[0]}); replayed in one thread`;
        workers = 0;
        replays = ids.map((id) => replayFile(traceDir, id, keys, { everySample }));
      }
    } else {
      replays = ids.map((id) => replayFile(traceDir, id, keys, { everySample, recordEvents: opts.recordEvents === true }));
    }
  }
  replays.sort((a, b) => Number(a.id) - Number(b.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  return aggregate(replays, policies, {
    source,
    traceDir,
    ...(note ? { note } : {}),
    mode: everySample ? 'every-sample' : 'event',
    workers,
    ...(workerRuntime ? { workerRuntime } : {}),
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    vmsInTrace,
  });
}

function aggregate(
  replays: readonly VmReplay[],
  policies: readonly ReplayPolicy[],
  base: Pick<ReplayMeta, 'source' | 'traceDir' | 'note' | 'mode' | 'workers' | 'workerRuntime' | 'wallMs' | 'cpuMs' | 'vmsInTrace'>,
): ReplayResult {
  const live = replays.filter((r) => !r.neverRuns);
  let vmMonths = 0;
  let baselineUsd = 0;
  let wasteUsd = 0;
  let wasteMs = 0;
  let spanMs = 0;
  for (const r of live) {
    vmMonths += r.spanMs / VM_MONTH_MS;
    spanMs += r.spanMs;
    baselineUsd += (r.spanMs / HOUR) * r.hourlyUsd;
    wasteUsd += (r.wasteMs / HOUR) * r.hourlyUsd;
    wasteMs += r.wasteMs;
  }
  const rows: ReplayRow[] = policies.map((p, i) => {
    let spendUsd = 0;
    let stops = 0;
    let disruptions = 0;
    let scheduledStarts = 0;
    let recoveredUsd = 0;
    let evaluations = 0;
    const durations: number[] = [];
    const byRule: Record<string, number> = {};
    for (const r of live) {
      const res = r.results[i];
      for (const [k, v] of Object.entries(res.disruptionsByRule)) byRule[k] = (byRule[k] ?? 0) + v;
      spendUsd += res.spendUsd;
      stops += res.stops;
      disruptions += res.disruptions;
      scheduledStarts += res.scheduledStarts;
      recoveredUsd += (res.wasteRecoveredMs / HOUR) * r.hourlyUsd;
      evaluations += res.evaluations;
      durations.push(...res.stopDurationsMs);
    }
    const med = median(durations);
    return {
      key: p.key,
      label: p.label,
      recipe: p.recipe,
      spendUsd,
      savedUsd: baselineUsd - spendUsd,
      savedPct: baselineUsd > 0 ? (100 * (baselineUsd - spendUsd)) / baselineUsd : 0,
      stops,
      disruptions,
      disruptionsPerVmMonth: vmMonths > 0 ? disruptions / vmMonths : 0,
      medianHoursStopped: med === null ? null : med / HOUR,
      scheduledStarts,
      disruptionsByRule: byRule,
      wasteRecoveredUsd: recoveredUsd,
      wasteRecoveredPct: wasteUsd > 0 ? (100 * recoveredUsd) / wasteUsd : 0,
      evaluations,
    };
  });
  const types: Record<string, number> = {};
  for (const r of live) types[r.instanceType] = (types[r.instanceType] ?? 0) + 1;
  const sum = (f: (s: ParseStats) => number) => replays.reduce((a, r) => a + f(r.stats), 0);
  const meta: ReplayMeta = {
    ...base,
    vms: replays.length,
    replayed: live.length,
    neverRun: replays.filter((r) => r.neverRuns).map((r) => r.id),
    vmMonths,
    baselineUsd,
    wasteUsd,
    wasteHours: wasteMs / HOUR,
    wastePctOfTime: spanMs > 0 ? (100 * wasteMs) / spanMs : 0,
    caveats: {
      rows: sum((s) => s.rows),
      samples: sum((s) => s.kept),
      coresZeroRows: sum((s) => s.coresZero),
      coresZeroVms: replays.filter((r) => r.stats.coresZero > 0).map((r) => r.id),
      duplicateRows: sum((s) => s.duplicates),
      unsortedFiles: replays.filter((r) => r.stats.unsorted).map((r) => r.id),
      clippedCpuRows: sum((s) => s.clippedCpu),
      gaps: sum((s) => s.gaps),
      gapHours: sum((s) => s.gapMs) / HOUR,
      oversizeVms: live.filter((r) => r.oversize).map((r) => r.id),
    },
    instanceTypes: types,
    priceSource: PRICE_SOURCE,
    definitions: { disruption: DISRUPTION, waste: WASTE },
    loadMs: replays.reduce((a, r) => a + r.loadMs, 0),
    replayMs: replays.reduce((a, r) => a + r.replayMs, 0),
    vmMonthsPerSec: base.wallMs > 0 ? vmMonths / (base.wallMs / 1000) : 0,
    evaluations: rows.reduce((a, r) => a + r.evaluations, 0),
  };
  return { rows, meta, vms: replays };
}

/** A goal of the issue, checked on a result. */
export interface GoalCheck {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly goal: string;
  readonly ok: boolean;
}

/** Wall-time budget for the whole replay of the real trace (all policies). */
export const WALL_BUDGET_MS = 10_000;

export function replayGoals(result: ReplayResult): GoalCheck[] {
  const row = (k: string) => result.rows.find((r) => r.key === k);
  const out: GoalCheck[] = [];
  const idle = row('idle');
  const cpu = row('cpu-idle');
  const dev = row('dev-box');
  const synthetic = result.meta.source === 'synthetic' ? ' (synthetic traces)' : '';
  if (idle && cpu) {
    const ratio = cpu.savedUsd > 0 ? idle.savedUsd / cpu.savedUsd : idle.savedUsd >= cpu.savedUsd ? 1 : 0;
    out.push({
      name: `our idle saving ÷ CPU-only idle saving${synthetic}`,
      value: round(ratio, 4),
      unit: '×',
      goal: '≥ 1',
      ok: idle.savedUsd >= cpu.savedUsd,
    });
    const dr = cpu.disruptions > 0 ? idle.disruptions / cpu.disruptions : idle.disruptions === 0 ? 0 : Infinity;
    out.push({
      name: `our idle disruptions ÷ CPU-only idle disruptions${synthetic}`,
      value: round(dr, 3),
      unit: '×',
      goal: '≤ 0.5',
      ok: idle.disruptions <= 0.5 * cpu.disruptions,
    });
  }
  if (dev) {
    out.push({
      name: `developer box, waste recovered${synthetic}`,
      value: round(dev.wasteRecoveredPct, 1),
      unit: '%',
      goal: '≥ 90',
      ok: dev.wasteRecoveredPct >= 90,
    });
    out.push({
      name: `developer box, disruptions per VM-month${synthetic}`,
      value: round(dev.disruptionsPerVmMonth, 2),
      unit: '/VM-month',
      goal: '≤ 1',
      ok: dev.disruptionsPerVmMonth <= 1,
    });
  }
  // The budget is for the whole trace under all policies; a partial run is not judged.
  const full =
    result.meta.source === 'trace' && result.meta.vms === result.meta.vmsInTrace && result.rows.length === REPLAY_POLICIES.length;
  out.push({
    name: full
      ? `wall time, ${result.meta.vms} VMs × 30 days, ${result.rows.length} policies`
      : `wall time (${result.meta.source === 'trace' ? 'part of the trace' : 'real trace absent'}: not judged)`,
    value: round(result.meta.wallMs / 1000, 2),
    unit: 's',
    goal: '≤ 10 on the real trace',
    ok: full && result.meta.wallMs <= WALL_BUDGET_MS,
  });
  out.push({
    name: 'speed',
    value: round(result.meta.vmMonthsPerSec, 1),
    unit: 'VM-months/s',
    goal: full ? `≥ ${round(result.meta.vmMonths / (WALL_BUDGET_MS / 1000), 1)} (the trace in ≤ 10 s)` : 'the trace in ≤ 10 s',
    ok: full && result.meta.wallMs <= WALL_BUDGET_MS,
  });
  return out;
}

function round(v: number, digits: number): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function pad(s: string, w: number, right = true): string {
  return right ? s.padStart(w) : s.padEnd(w);
}

function money(v: number): string {
  return `$${Math.round(v).toLocaleString('en-US')}`;
}

/** The policy table, the caveats handled and the goals, as text. */
export function formatReplay(result: ReplayResult): string {
  const { rows, meta } = result;
  const lines: string[] = [];
  if (meta.note) lines.push(`NOTE: ${meta.note}`, '');
  lines.push(
    `Savings replay — ${meta.source === 'trace' ? meta.traceDir : 'synthetic traces'}: ${meta.replayed} VMs replayed (${round(meta.vmMonths, 1)} VM-months); ${meta.neverRun.length} never ran (no CPU all month: excluded${meta.neverRun.length ? `: ${meta.neverRun.join(', ')}` : ''})`,
  );
  lines.push(
    `Baseline (always on) ${money(meta.baselineUsd)}; waste ${money(meta.wasteUsd)} (${round(meta.wasteHours, 0).toLocaleString('en-US')} VM-hours, ${round(meta.wastePctOfTime, 1)} % of running time). Prices: ${meta.priceSource}, compute only.`,
  );
  lines.push('');
  const head = ['policy', 'spend', 'saved', 'saved %', 'stops', 'disruptions', 'per VM-month', 'median h stopped', 'waste recovered'];
  const body = rows.map((r) => [
    r.label,
    money(r.spendUsd),
    money(r.savedUsd),
    `${r.savedPct.toFixed(1)} %`,
    String(r.stops),
    String(r.disruptions),
    r.disruptionsPerVmMonth.toFixed(2),
    r.medianHoursStopped === null ? '–' : r.medianHoursStopped.toFixed(1),
    `${r.wasteRecoveredPct.toFixed(1)} %`,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => pad(c, widths[i], i > 0)).join('  ');
  lines.push(fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt));
  lines.push('');
  for (const r of rows) lines.push(`  ${r.label}: ${r.recipe}`);
  lines.push('');
  lines.push(
    `Disruption: while stopped, a sample with CPU > ${DISRUPTION.cpuPercentAbove} % or network > ${DISRUPTION.networkBytesPerSecAbove / 1024} KB/s (the VM is started again). Waste: samples with CPU < ${WASTE.cpuPercentBelow} % and network < ${WASTE.networkBytesPerSecBelow / 1024} KB/s in unbroken runs of ≥ ${WASTE.minRunMs / HOUR} h.`,
  );
  const c = meta.caveats;
  lines.push(
    `Trace caveats handled: ${c.coresZeroRows.toLocaleString('en-US')} rows with cores=0 dropped (VMs ${c.coresZeroVms.join(', ') || 'none'}), ${c.duplicateRows} duplicate timestamps dropped, ${c.unsortedFiles.length} unsorted files sorted, ${c.clippedCpuRows.toLocaleString('en-US')} CPU values > 100 % clipped, ${c.gaps.toLocaleString('en-US')} gaps (${round(c.gapHours, 1)} h) kept as gaps.`,
  );
  lines.push(
    `Speed: ${(meta.wallMs / 1000).toFixed(2)} s wall for ${rows.length} policies (${round(meta.vmMonthsPerSec, 1)} VM-months/s; ${meta.workers > 0 ? `${meta.workers} worker threads (${meta.workerRuntime ?? '?'})` : 'one thread'}; ${meta.mode === 'event' ? 'evaluations where a decision can change' : 'evaluation at every sample'}: ${meta.evaluations.toLocaleString('en-US')} evaluate calls; CPU ${(meta.cpuMs / 1000).toFixed(2)} s over all threads, of which reading and parsing ≈ ${((meta.cpuMs * (meta.loadMs / Math.max(1, meta.loadMs + meta.replayMs))) / 1000).toFixed(2)} s).`,
  );
  lines.push('');
  lines.push('Goals:');
  for (const g of replayGoals(result)) lines.push(`  ${g.ok ? 'MET    ' : 'NOT MET'}  ${g.name}: ${g.value} ${g.unit} (goal ${g.goal})`);
  return lines.join('\n');
}
