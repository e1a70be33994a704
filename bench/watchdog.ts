/**
 * Watchdog benchmark: API calls per cycle, wall time against a bare describe of the same
 * fleet, CPU and memory per instance, and the control-plane cost per managed instance.
 *
 *   npx tsx bench/watchdog.ts        (standalone)   npm run bench -- watchdog
 *
 * - 100, 1,000 and 2,000 instances in moto (started here): calls per steady cycle by
 *   operation, and the cycle's wall time beside a bare paginated DescribeInstances of
 *   the same fleet with the same filter, interleaved in the same run.
 * - 10,000 and 100,000 instances against an in-process fake EC2 (moto's describe is
 *   quadratic past ~2,000): CPU time and peak heap per instance per cycle.
 * - Cost per managed instance-month at a 1-minute schedule from the measured calls,
 *   durations and log bytes, at the list prices in shared/REFERENCE.md.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EC2Client } from '@aws-sdk/client-ec2';
import { PricingClient } from '@aws-sdk/client-pricing';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { describePolicyInstances } from '../lambda-agent/adapters/ec2';
import { encodeCheckpoint, encodeHeartbeat } from '../lambda-agent/contract/state';
import { HEARTBEAT_TAG, STATE_TAG } from '../lambda-agent/contract/tags';
import { createLogger } from '../lambda-agent/log';
import { loadPolicy } from '../lambda-agent/policy/parse';
import { planMetrics } from '../lambda-agent/watchdog/metrics';
import { createWatchdog, type WatchdogDeps } from '../lambda-agent/watchdog/watchdog';
import { countCalls, createFakeEc2, fakeInstances, runFleet, writesIn } from '../test/support/fleet';
import { startMoto, stopMoto } from '../test/support/moto';
import type { BenchRow } from './row';

export type { BenchRow };

// ---------------------------------------------------------------- fixtures

const POLICY_ID = 'bench';
/** A Wednesday, inside office hours in Amsterdam, away from hour and 10-minute slot starts. */
const NOW = Date.parse('2026-11-25T12:03:17Z');
const H = 3_600_000;
const POLICY = {
  id: POLICY_ID,
  rules: [
    { rule: 'lifetime', max: '7d', action: 'terminate', warnBefore: '1h' },
    { rule: 'running-time', max: '100h', action: 'stop' },
    { rule: 'spend', maxUsd: 100, hourlyUsd: 0.0416 },
    { rule: 'idle', window: '30m', action: 'stop', warnBefore: '5m' },
    { rule: 'heartbeat-lost', action: 'notify' },
    {
      rule: 'schedule',
      timezone: 'Europe/Amsterdam',
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '07:00', end: '20:00' }],
    },
  ],
};
const SEEDED_TAGS = {
  [STATE_TAG]: encodeCheckpoint({ state: 'running', since: NOW - 3 * H, firstSeen: NOW - 50 * H, runningMs: 20 * H, spendUsd: 1.25 }),
  [HEARTBEAT_TAG]: encodeHeartbeat({
    at: NOW - 60_000,
    cpuPercent: 37.5,
    netBytesPerSec: 81920,
    loginSessions: 1,
    netOutBytes: 123456789,
    conditions: {},
    version: '1.0.0',
  }),
};

// Published list prices (us-east-1; shared/REFERENCE.md).
const PRICE = {
  lambdaGbSecondArm: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  metricRequested: 0.01 / 1000,
  snsPublish: 0.5 / 1e6,
  logGb: 0.5,
  alarmMonth: 0.1,
};
const RUNS_PER_MONTH = 43_800; // a 1-minute schedule
/** The watchdog function's memory: its RSS after a cycle is ~120 MB (SDK clients). */
const LAMBDA_GB = 0.25;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const row = (name: string, value: number, unit: string, goal: string, ok: boolean): BenchRow => ({ name, value, unit, goal, ok });

function fakeClient(answer: (command: any) => unknown) {
  return { send: async (command: any) => answer(command) };
}

function silentLogger(bytes: { n: number }) {
  return createLogger({ service: 'smvm-watchdog', sink: (line) => void (bytes.n += line.length + 1), clock: () => NOW });
}

let gc: (() => void) | undefined;
function tryGc(): void {
  if (!gc) {
    try {
      v8.setFlagsFromString('--expose_gc');
      gc = vm.runInNewContext('gc') as () => void;
    } catch {
      gc = () => undefined;
    }
  }
  gc();
}

// ---------------------------------------------------------------- moto

interface MotoMeasure {
  n: number;
  calls: Record<string, number>;
  /** Pages of the bare describe (moto pages by reservation, not by instance). */
  barePages: number;
  cycleMs: number;
  bareMs: number;
  logBytes: number;
}

async function measureMoto(sizes: readonly number[]): Promise<MotoMeasure[]> {
  const moto = await startMoto();
  const out: MotoMeasure[] = [];
  try {
    for (const n of sizes) {
      await moto.reset();
      const cfg = moto.sdkConfig();
      const ec2 = new EC2Client(cfg);
      const sns = new SNSClient(cfg);
      const ssm = new SSMClient(cfg);
      const cloudwatch = new CloudWatchClient(cfg);
      const calls = countCalls(ec2, sns, ssm, cloudwatch);
      const topic = await sns.send(new CreateTopicCommand({ Name: 'bench' }));
      await ssm.send(
        new PutParameterCommand({ Name: `/smvm/${POLICY_ID}/policy`, Value: JSON.stringify(POLICY), Type: 'String', Overwrite: true }),
      );
      await runFleet(ec2, { count: n, policyId: POLICY_ID, tags: SEEDED_TAGS });
      const logBytes = { n: 0 };
      const deps: WatchdogDeps = {
        ec2,
        sns,
        ssm,
        cloudwatch,
        pricing: new PricingClient({ ...cfg, endpoint: 'http://127.0.0.1:9' }),
        clock: { now: () => NOW },
        env: { SMVM_POLICY_ID: POLICY_ID, SMVM_TOPIC_ARN: topic.TopicArn!, AWS_REGION: moto.region },
        logger: silentLogger(logBytes),
      };
      const watchdog = createWatchdog(deps);
      const event = { 'detail-type': 'Scheduled Event', source: 'aws.events', time: new Date(NOW).toISOString() };
      await watchdog.handle(event); // warm-up (and a check that the seeded fleet is steady)
      const cycles: number[] = [];
      const bares: number[] = [];
      let steadyCalls: Record<string, number> = {};
      let steadyLog = 0;
      let barePages = 0;
      // Cycle and bare describe interleaved, in alternating order, so that drift and the
      // load of the machine weigh on both alike.
      const timeCycle = async () => {
        calls.reset();
        logBytes.n = 0;
        const t = performance.now();
        await watchdog.handle(event);
        cycles.push(performance.now() - t);
        steadyCalls = { ...calls.counts };
        steadyLog = logBytes.n;
      };
      const timeBare = async () => {
        const t = performance.now();
        barePages = 0;
        for await (const page of describePolicyInstances(ec2, POLICY_ID)) barePages += page ? 1 : 0;
        bares.push(performance.now() - t);
      };
      for (let k = 0; k < 3; k++) {
        if (k % 2 === 0) {
          await timeCycle();
          await timeBare();
        } else {
          await timeBare();
          await timeCycle();
        }
      }
      out.push({ n, calls: steadyCalls, barePages, cycleMs: median(cycles), bareMs: median(bares), logBytes: steadyLog });
      process.stderr.write(
        `bench watchdog: moto n=${n} cycle ${median(cycles).toFixed(0)} ms, bare describe ${median(bares).toFixed(0)} ms, calls ${JSON.stringify(steadyCalls)}\n`,
      );
    }
  } finally {
    await stopMoto(moto);
  }
  return out;
}

// ---------------------------------------------------------------- in-process fake

interface FakeMeasure {
  n: number;
  cpuUsPerInstance: number;
  wallMs: number;
  peakHeapBytesPerInstance: number;
  writes: number;
}

async function measureFake(n: number): Promise<FakeMeasure> {
  const instances = fakeInstances(n, POLICY_ID, () => SEEDED_TAGS, new Date(NOW - 3 * H));
  const ec2 = createFakeEc2({ instances });
  let peak = 0;
  const sample = () => {
    const h = process.memoryUsage().heapUsed;
    if (h > peak) peak = h;
  };
  const ec2Sampled = { send: async (c: any) => (sample(), ec2.send(c)) };
  const policyJson = JSON.stringify(POLICY);
  const watchdog = createWatchdog({
    ec2: ec2Sampled,
    sns: fakeClient(() => ({})),
    ssm: fakeClient(() => ({ Parameter: { Value: policyJson } })),
    cloudwatch: fakeClient(() => ({ MetricDataResults: [] })),
    pricing: fakeClient(() => ({ PriceList: [] })),
    clock: { now: () => NOW },
    env: { SMVM_POLICY_ID: POLICY_ID, SMVM_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:bench', AWS_REGION: 'us-east-1' },
    logger: silentLogger({ n: 0 }),
  });
  const event = { 'detail-type': 'Scheduled Event', source: 'aws.events', time: new Date(NOW).toISOString() };
  // A 1-minute schedule keeps its container warm: measure after a few cycles (JIT, window caches).
  for (let k = 0; k < 3; k++) await watchdog.handle(event);
  const cpu: number[] = [];
  const wall: number[] = [];
  const heap: number[] = [];
  for (let k = 0; k < 5; k++) {
    tryGc();
    const base = process.memoryUsage().heapUsed;
    peak = base;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await watchdog.handle(event);
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    sample();
    cpu.push((c.user + c.system) / n);
    heap.push((peak - base) / n);
  }
  const writes = Object.values(writesIn(ec2.calls)).reduce((a, b) => a + b, 0);
  process.stderr.write(
    `bench watchdog: fake n=${n} cpu ${median(cpu).toFixed(2)} µs/instance, wall ${median(wall).toFixed(0)} ms, peak heap ${median(heap).toFixed(0)} B/instance\n`,
  );
  return { n, cpuUsPerInstance: median(cpu), wallMs: median(wall), peakHeapBytesPerInstance: median(heap), writes };
}

// ---------------------------------------------------------------- cost model

interface CostModel {
  lambda: number;
  requests: number;
  metrics: number;
  sns: number;
  logs: number;
  total: number;
}

/** Control-plane cost per managed instance per month (1-minute schedule). */
function costPerInstanceMonth(
  n: number,
  cycleMs: number,
  metricsPerCycle: number,
  publishesPerCycle: number,
  logBytesPerCycle: number,
): CostModel {
  const lambda = (cycleMs / 1000) * LAMBDA_GB * RUNS_PER_MONTH * PRICE.lambdaGbSecondArm;
  const requests = RUNS_PER_MONTH * PRICE.lambdaRequest;
  const metrics = metricsPerCycle * RUNS_PER_MONTH * PRICE.metricRequested;
  // the usage event: one publish per policy per hour (730 a month), besides what a cycle publishes
  const sns = (publishesPerCycle * RUNS_PER_MONTH + 730) * PRICE.snsPublish;
  const logs = ((logBytesPerCycle * RUNS_PER_MONTH) / 1e9) * PRICE.logGb;
  const per = (v: number) => v / n;
  return {
    lambda: per(lambda),
    requests: per(requests),
    metrics: per(metrics),
    sns: per(sns),
    logs: per(logs),
    total: per(lambda + requests + metrics + sns + logs),
  };
}

/** GetMetricData cost of an agentless instance under an idle rule of `window` (3 metrics per read, one read per window/3). */
function agentlessMetricCost(window: string): number {
  const plan = planMetrics(loadPolicy({ id: 'x', rules: [{ rule: 'idle', window }] }))!;
  const readsPerMonth = (730 * H) / plan.slotMs;
  return readsPerMonth * 3 * PRICE.metricRequested;
}

// ---------------------------------------------------------------- entry

export async function benchWatchdog(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const moto = await measureMoto([100, 1000, 2000]);
  for (const m of moto) {
    const pages = m.barePages;
    const writes = Object.values(writesIn(m.calls)).reduce((a, b) => a + b, 0);
    const other = Object.entries(m.calls).filter(([op]) => op !== 'DescribeInstances' && op !== 'GetParameter');
    rows.push(
      row(
        `moto ${m.n}: DescribeInstances calls per steady cycle`,
        m.calls.DescribeInstances ?? 0,
        'calls',
        `= the bare describe's pages (${pages})`,
        (m.calls.DescribeInstances ?? 0) === pages,
      ),
    );
    rows.push(
      row(
        `moto ${m.n}: GetParameter calls per cycle`,
        m.calls.GetParameter ?? 0,
        'calls',
        '= 1 (policy read once)',
        m.calls.GetParameter === 1,
      ),
    );
    rows.push(row(`moto ${m.n}: write calls per steady cycle`, writes, 'calls', '= 0', writes === 0));
    rows.push(
      row(
        `moto ${m.n}: other calls per steady cycle`,
        other.reduce((a, [, v]) => a + v, 0),
        'calls',
        '= 0',
        other.length === 0,
      ),
    );
    rows.push(row(`moto ${m.n}: steady cycle wall time`, m.cycleMs, 'ms', 'informational', true));
    rows.push(row(`moto ${m.n}: bare paginated describe`, m.bareMs, 'ms', 'informational', true));
    rows.push(row(`moto ${m.n}: cycle / bare describe`, m.cycleMs / m.bareMs, 'ratio', '≤ 1.2', m.cycleMs / m.bareMs <= 1.2));
  }
  for (const n of [10_000, 100_000]) {
    const f = await measureFake(n);
    rows.push(row(`fake ${n}: CPU per instance per cycle`, f.cpuUsPerInstance, 'µs', '≤ 20', f.cpuUsPerInstance <= 20));
    rows.push(
      row(
        `fake ${n}: peak heap per instance per cycle`,
        f.peakHeapBytesPerInstance,
        'bytes',
        '≤ 2,048 (bounded by the page, not the fleet)',
        f.peakHeapBytesPerInstance <= 2048,
      ),
    );
    rows.push(row(`fake ${n}: cycle wall time`, f.wallMs, 'ms', 'informational', true));
    rows.push(row(`fake ${n}: write calls per steady cycle`, f.writes, 'calls', '= 0', f.writes === 0));
  }
  // Cost at 1,000 instances. A steady cycle's Lambda time is almost all waiting for
  // DescribeInstances; moto's describe of 1,000 tagged instances is far slower than
  // EC2's, so the duration measured against it is an upper bound. Our own time (the
  // cycle minus the bare describe of the same fleet) is shown beside it.
  const at1000 = moto.find((m) => m.n === 1000)!;
  const metrics = at1000.calls.GetMetricData ?? 0;
  const publishes = at1000.calls.Publish ?? 0;
  const cost = costPerInstanceMonth(1000, at1000.cycleMs, metrics, publishes, at1000.logBytes);
  const ours = costPerInstanceMonth(1000, Math.max(0, at1000.cycleMs - at1000.bareMs), metrics, publishes, at1000.logBytes);
  const budgetMs = ((0.001 * 1000 - (cost.total - cost.lambda) * 1000) / (LAMBDA_GB * RUNS_PER_MONTH * PRICE.lambdaGbSecondArm)) * 1000;
  rows.push(
    row('cost 1,000: Lambda GB-s (arm64, 256 MB), moto-measured duration, per instance-month', cost.lambda, 'USD', 'informational', true),
  );
  rows.push(row('cost 1,000: Lambda requests per instance-month', cost.requests, 'USD', 'informational', true));
  rows.push(row('cost 1,000: GetMetricData per instance-month (agents report)', cost.metrics, 'USD', 'informational', true));
  rows.push(row('cost 1,000: SNS publishes per instance-month', cost.sns, 'USD', 'informational', true));
  rows.push(row('cost 1,000: log ingestion per instance-month', cost.logs, 'USD', 'informational', true));
  rows.push(
    row(
      'cost 1,000: control plane per instance-month, moto-measured duration (upper bound)',
      cost.total,
      'USD',
      '≤ 0.001',
      cost.total <= 0.001,
    ),
  );
  rows.push(
    row(
      'cost 1,000: control plane per instance-month, our own time (cycle − bare describe)',
      ours.total,
      'USD',
      '≤ 0.001',
      ours.total <= 0.001,
    ),
  );
  rows.push(
    row(
      'cost 1,000: steady cycle duration at which the total is $0.001',
      budgetMs,
      'ms',
      'informational (the describe of 1,000 must take less)',
      true,
    ),
  );
  rows.push(row('cost: one CloudWatch alarm per instance-month (comparison)', PRICE.alarmMonth, 'USD', 'informational', true));
  rows.push(
    row(
      'cost: control plane (moto-measured) / one alarm',
      cost.total / PRICE.alarmMonth,
      'ratio',
      '≤ 0.01',
      cost.total / PRICE.alarmMonth <= 0.01,
    ),
  );
  for (const w of ['30m', '2h']) {
    rows.push(
      row(
        `cost: GetMetricData of an agentless instance, idle window ${w}, per month`,
        agentlessMetricCost(w),
        'USD',
        'informational (an alarm: $0.10)',
        true,
      ),
    );
  }
  return rows;
}

if (require.main === module) {
  benchWatchdog().then(
    (rows) => {
      const w = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        const v =
          Math.abs(r.value) >= 100 ? r.value.toFixed(0) : r.value < 0.01 && r.value !== 0 ? r.value.toPrecision(3) : r.value.toFixed(3);
        console.log(`${r.name.padEnd(w)}  ${v.padStart(12)} ${r.unit.padEnd(6)} goal ${r.goal.padEnd(44)} ${r.ok ? 'ok' : 'NOT MET'}`);
      }
      const missed = rows.filter((r) => !r.ok);
      console.log(`\n${rows.length - missed.length} of ${rows.length} goals met`);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
