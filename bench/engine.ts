/**
 * Engine benchmark: `evaluate()` on a deterministic, seeded fleet of 10,000 varied
 * policies and observations (every rule type, every instance state, 30-sample usage
 * series, checkpoints, episode records, heartbeats, overrides), on one core, no AWS.
 *
 *   npx tsx bench/engine.ts       prints the table
 *   npm run bench -- engine       the same, inside the project's bench run
 *
 * Goal: at least 200,000 evaluations per second. Per-evaluation times are measured in
 * batches (a single evaluation is too short for the clock) and the median is reported.
 */
import Module from 'node:module';
import * as path from 'node:path';
import { evaluate, loadPolicy, type Observation, type Policy, type RuleDocument, type Sample } from '../lambda-agent';
import type { Checkpoint, EpisodeRecord } from '../lambda-agent/contract';
import type { BenchRow } from './row';

export type { BenchRow };

const GOAL_EVALS_PER_SEC = 200_000;
const FLEET = 10_000;
const BATCH = 250;
const SEED = 0x5eed;

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** Wednesday 2025-06-04 12:00 UTC, as in the unit tests. */
const NOW = Date.parse('2025-06-04T12:00:00Z');

/** mulberry32: a small, fast, seeded PRNG (deterministic fleets across runs). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const chance = (r: Rand, p: number) => r() < p;
const between = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo));

const TIME_ZONES = ['Europe/Amsterdam', 'Australia/Sydney', 'America/New_York', 'UTC', 'Asia/Tokyo'];
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'];

const RULES: Array<(r: Rand) => RuleDocument> = [
  (r) => ({ rule: 'lifetime', max: pick(r, ['8h', '2d', '7d']), action: pick(r, ['stop', 'terminate']), warnBefore: '1h' }),
  (r) => ({ rule: 'running-time', max: pick(r, ['10h', '40h']), action: 'stop', ...(chance(r, 0.5) ? { warnBefore: '30m' } : {}) }),
  (r) => ({
    rule: 'spend',
    maxUsd: pick(r, [5, 25, 100]),
    ...(chance(r, 0.7) ? { hourlyUsd: pick(r, [0.0416, 0.192, 3.06]) } : {}),
    ...(chance(r, 0.5)
      ? {
          peak: {
            hourlyUsd: pick(r, [0.0832, 0.5]),
            timezone: pick(r, TIME_ZONES),
            windows: [{ days: WEEKDAYS, start: '08:00', end: '19:00' }],
          },
        }
      : {}),
    storageGb: pick(r, [0, 30, 100]),
  }),
  (r) => ({ rule: 'idle', window: pick(r, ['15m', '30m']), ...(chance(r, 0.5) ? { warnBefore: '5m' } : {}) }),
  (r) => ({ rule: 'over-use', window: '15m', cpuPercentAbove: pick(r, [90, 95]), action: 'notify' }),
  (r) => ({ rule: 'health', window: '5m', action: 'reboot', ...(chance(r, 0.5) ? { escalate: { action: 'stop', within: '1h' } } : {}) }),
  () => ({ rule: 'heartbeat-lost', window: '30m', action: 'notify' }),
  (r) => ({
    rule: 'schedule',
    timezone: pick(r, TIME_ZONES),
    windows: chance(r, 0.8)
      ? [{ days: WEEKDAYS, start: '08:00', end: '19:00' }]
      : [{ days: ['mon', 'wed', 'fri'], start: '22:00', end: '06:00' }],
    ...(chance(r, 0.5) ? { warnBefore: '15m' } : {}),
  }),
  (r) => ({ rule: 'task-completion', unit: 'batch.service', after: '2m', action: pick(r, ['stop', 'terminate']) }),
];
const RULE_NAMES = ['lifetime', 'running-time', 'spend', 'idle', 'over-use', 'health', 'heartbeat-lost', 'schedule', 'task-completion'];

function policyAt(r: Rand, i: number, load: typeof loadPolicy): Policy {
  const n = between(r, 1, 6);
  const chosen = new Set<number>();
  while (chosen.size < n) chosen.add(between(r, 0, RULES.length));
  return load({ id: `bench-${i}`, dryRun: chance(r, 0.1), rules: [...chosen].sort().map((k) => RULES[k](r)) });
}

function samplesAt(r: Rand, end: number): Sample[] {
  const idle = chance(r, 0.5);
  const out: Sample[] = [];
  for (let k = 29; k >= 0; k--) {
    const busy = !idle || chance(r, 0.05);
    out.push({
      at: end - k * MIN,
      cpuPercent: busy ? 20 + r() * 80 : r() * 3,
      netBytesPerSec: busy ? between(r, 20_000, 5_000_000) : between(r, 0, 5_000),
      loginSessions: busy && chance(r, 0.3) ? 1 : 0,
      statusOk: !chance(r, 0.05),
      agentErrors: chance(r, 0.03) ? 1 : 0,
    });
  }
  return out;
}

function observationAt(r: Rand, i: number): Observation {
  const state = pick(r, ['running', 'running', 'running', 'running', 'stopped', 'stopped', 'pending', 'stopping'] as const);
  const since = NOW - between(r, 5 * MIN, 3 * DAY);
  const cpState: 'running' | 'stopped' = chance(r, 0.85)
    ? state === 'stopped' || state === 'stopping'
      ? 'stopped'
      : 'running'
    : state === 'stopped'
      ? 'running'
      : 'stopped';
  const checkpoint: Checkpoint | undefined = chance(r, 0.9)
    ? { state: cpState, since, firstSeen: since - between(r, 0, 10 * DAY), runningMs: between(r, 0, 40 * HOUR), spendUsd: r() * 30 }
    : undefined;
  // Episode records as the engine writes them: one per rule here, oldest first.
  const episodes: EpisodeRecord[] = [];
  for (let k = between(r, 0, 4); k > 0; k--) {
    const rule = pick(r, RULE_NAMES);
    if (episodes.some((e) => e.rule === rule)) continue;
    episodes.push({
      rule,
      episode: String(Math.floor((NOW - between(r, 0, DAY)) / 1000)),
      warnedAt: NOW - between(r, 0, DAY),
      ...(chance(r, 0.5) ? { actedAt: NOW - between(r, 0, HOUR), action: 'stop' } : {}),
    });
  }
  const latest = (e: EpisodeRecord) => Math.max(e.warnedAt ?? 0, e.actedAt ?? 0);
  episodes.sort((a, b) => latest(a) - latest(b));
  const conditions: Record<string, number> = {};
  if (chance(r, 0.3)) conditions.idle = NOW - between(r, 0, 2 * HOUR);
  if (chance(r, 0.2)) conditions['task-completion'] = NOW - between(r, 0, HOUR);
  return {
    instanceId: `i-${(0x1000000 + i).toString(16)}abcdef0`,
    host: chance(r, 0.5) ? 'watchdog' : 'agent',
    state,
    stateSince: since,
    instanceType: 't3.medium',
    ...(chance(r, 0.7) ? { hourlyUsd: 0.0416 } : {}),
    ...(chance(r, 0.3) ? { netOutBytes: between(r, 0, 5e9) } : {}),
    ...(checkpoint ? { checkpoint } : {}),
    ...(episodes.length ? { episodes } : {}),
    ...(chance(r, 0.1) ? { overrides: { snoozeUntil: NOW + HOUR, ...(chance(r, 0.5) ? { lifetimeMs: DAY } : {}) } } : {}),
    ...(chance(r, 0.8) ? { heartbeat: { at: NOW - between(r, 0, 90 * MIN), conditions } } : {}),
    ...(chance(r, 0.85) ? { samples: samplesAt(r, NOW - between(r, 0, 2 * MIN)), samplePeriodMs: MIN } : {}),
    ...(chance(r, 0.2)
      ? {
          tasks: {
            'task-completion': chance(r, 0.5) ? { state: 'running' } : { state: 'exited', exitedAt: NOW - between(r, 0, 10 * MIN) },
          },
        }
      : {}),
  };
}

export interface Fleet {
  readonly policies: readonly Policy[];
  readonly observations: readonly Observation[];
  readonly nows: readonly number[];
}

/** The deterministic benchmark fleet (also usable by other benches and tests). */
export function buildFleet(size = FLEET, seed = SEED, load: typeof loadPolicy = loadPolicy): Fleet {
  const r = prng(seed);
  const policies: Policy[] = [];
  const observations: Observation[] = [];
  const nows: number[] = [];
  for (let i = 0; i < size; i++) {
    policies.push(policyAt(r, i, load));
    observations.push(observationAt(r, i));
    nows.push(NOW + between(r, 0, 2 * MIN));
  }
  return { policies, observations, nows };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Measurement {
  /** Evaluations per second of CPU time (the process's user + system time: one core's worth). */
  readonly perCpuSec: number;
  /** Evaluations per second of wall-clock time (lower when other processes share the core). */
  readonly perWallSec: number;
  /** Wall-clock µs per evaluation of each batch. */
  readonly batchMicros: number[];
  readonly actions: number;
}

/**
 * Runs the fleet `passes` times. Throughput is counted against CPU time, so that other
 * processes on a shared machine do not count against the engine; the per-evaluation
 * median comes from wall-clock batches (a preempted batch is an outlier the median drops).
 */
function measure(run: typeof evaluate, fleet: Fleet, passes: number): Measurement {
  const { policies, observations, nows } = fleet;
  const batchMicros: number[] = [];
  let actions = 0;
  let wall = 0n;
  const cpu0 = process.cpuUsage();
  for (let p = 0; p < passes; p++) {
    for (let start = 0; start < policies.length; start += BATCH) {
      const end = Math.min(start + BATCH, policies.length);
      const t0 = process.hrtime.bigint();
      for (let i = start; i < end; i++) if (run(policies[i], observations[i], nows[i]).action) actions++;
      const dt = process.hrtime.bigint() - t0;
      wall += dt;
      batchMicros.push(Number(dt) / 1000 / (end - start));
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const evals = passes * policies.length;
  return {
    perCpuSec: evals / ((cpu.user + cpu.system) / 1e6),
    perWallSec: evals / (Number(wall) / 1e9),
    batchMicros,
    actions: actions / passes,
  };
}

interface Engine {
  readonly evaluate: typeof evaluate;
  readonly loadPolicy: typeof loadPolicy;
}

/**
 * The decision engine as the guards ship it: policy parser, rules and `evaluate`
 * bundled and minified by esbuild into one module (the agent and the watchdog bundles
 * are built the same way), compiled in memory. Returns it with its size.
 */
async function bundledEngine(): Promise<{ engine: Engine; bytes: number }> {
  const { build } = await import('esbuild');
  const root = path.join(__dirname, '..');
  const out = await build({
    stdin: { contents: "export { evaluate, loadPolicy } from './lambda-agent';", resolveDir: root, loader: 'ts' },
    bundle: true,
    minify: true,
    write: false,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'silent',
  });
  const code = out.outputFiles[0].text;
  const filename = path.join(root, 'bench', 'engine.bundle.js');
  const m = new Module(filename) as Module & { _compile(code: string, filename: string): void };
  m.filename = filename;
  m._compile(code, filename);
  return { engine: m.exports as Engine, bytes: Buffer.byteLength(code) };
}

function run(engine: Engine, observations: Fleet): { perCpuSec: number; perWallSec: number; medianMicros: number; actions: number } {
  const fleet = { ...observations, policies: buildFleet(FLEET, SEED, engine.loadPolicy).policies };
  measure(engine.evaluate, fleet, 2); // warm-up: JIT, and the window caches
  const { batchMicros, ...m } = measure(engine.evaluate, fleet, 5);
  return { ...m, medianMicros: median(batchMicros) };
}

export async function benchEngine(): Promise<BenchRow[]> {
  const fleet = buildFleet();
  const { engine, bytes } = await bundledEngine();
  const shipped = run(engine, fleet);
  const source = run({ evaluate, loadPolicy }, fleet);
  const goalMicros = 1e6 / GOAL_EVALS_PER_SEC;
  const goal = `≥ ${GOAL_EVALS_PER_SEC.toLocaleString('en-US')}`;
  return [
    {
      name: 'evaluations per CPU second (one core, bundled as shipped)',
      value: shipped.perCpuSec,
      unit: 'evals/s',
      goal,
      ok: shipped.perCpuSec >= GOAL_EVALS_PER_SEC,
    },
    {
      name: 'median time per evaluation (bundled as shipped)',
      value: shipped.medianMicros,
      unit: 'µs',
      goal: `≤ ${goalMicros.toFixed(1)}`,
      ok: shipped.medianMicros <= goalMicros,
    },
    {
      name: 'evaluations per wall-clock second (bundled; shared machine)',
      value: shipped.perWallSec,
      unit: 'evals/s',
      goal: 'informational',
      ok: true,
    },
    {
      name: 'evaluations per CPU second (unbundled source, tsx)',
      value: source.perCpuSec,
      unit: 'evals/s',
      goal: 'informational',
      ok: true,
    },
    { name: 'median time per evaluation (unbundled source, tsx)', value: source.medianMicros, unit: 'µs', goal: 'informational', ok: true },
    {
      name: `fleet: decisions with an action (of ${FLEET.toLocaleString('en-US')})`,
      value: shipped.actions,
      unit: 'decisions',
      goal: 'informational',
      ok: true,
    },
    { name: 'engine bundle (parser + rules + evaluate, minified)', value: bytes / 1024, unit: 'KiB', goal: 'informational', ok: true },
  ];
}

if (require.main === module) {
  benchEngine()
    .then((rows) => {
      const width = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        const v = r.value >= 1000 ? Math.round(r.value).toLocaleString('en-US') : r.value.toFixed(2);
        console.log(
          `${r.name.padEnd(width)}  ${v.padStart(10)} ${r.unit.padEnd(9)}  goal ${r.goal.padEnd(14)} ${r.ok ? 'met' : 'NOT MET'}`,
        );
      }
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
