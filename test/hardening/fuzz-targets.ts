/**
 * Bad input, fuzzed: one property per input the hosts take from outside, each runnable
 * by the jest suite (`test/unit/hardening/*.fuzz.test.ts`) and by the bench (which counts
 * the cases). Seeds are fixed (override with FUZZ_SEED) and printed on failure.
 *
 * - the watchdog handler: EventBridge events of any shape;
 * - the agent's /proc sampler: truncated, garbage, huge, missing files;
 * - the agent's IMDS client: errors, hangs, slow answers, expired or broken credentials;
 * - the watchdog's pricing adapter: missing and malformed Price List answers.
 *
 * (Policies and hand-edited tag values are fuzzed in test/unit/fuzz/policy-and-tags.test.ts.)
 */
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { createImdsClient } from '../../lambda-agent/adapters/agent/imds';
import { createProcSampler, UTMP_RECORD_SIZE } from '../../lambda-agent/adapters/agent/proc';
import type { AwsClient } from '../../lambda-agent/adapters/ec2';
import { createPriceList, parseOnDemandPrice, PriceError } from '../../lambda-agent/adapters/pricing';
import { createLogger } from '../../lambda-agent/log';
import { createWatchdog } from '../../lambda-agent/watchdog/watchdog';
import { startFakeImds, type FakeImdsFault, type FakeRoleCredentials } from '../support/fake-imds';

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261126);

export interface FuzzTarget {
  readonly name: string;
  /** Default number of cases in the jest suite. */
  readonly runs: number;
  /** Runs the property; resolves with fast-check's details (never throws for a failed property). */
  run(params: { seed: number; numRuns: number }): Promise<fc.RunDetails<any>>;
}

/** Throws fast-check's report (with seed and path) when the property failed. */
export function assertDetails(d: fc.RunDetails<any>): void {
  if (d.failed) throw new Error(fc.defaultReportMessage(d) ?? `property failed (seed ${d.seed})`);
}

// ---------------------------------------------------------------- the watchdog handler

const POLICY = JSON.stringify({ id: 'fuzz', rules: [{ rule: 'lifetime', max: '1h', action: 'stop' }] });

/** Fake clients: the policy parameter and an empty fleet; every call recorded. */
function fakeClients(calls: string[]) {
  const client = (service: string, answer: (c: unknown) => unknown): AwsClient => ({
    send: async (command: unknown) => {
      calls.push(`${service} ${(command as { constructor: { name: string } }).constructor.name}`);
      return answer(command);
    },
  });
  return {
    ssm: client('ssm', (c) => (c instanceof GetParameterCommand ? { Parameter: { Value: POLICY } } : {})),
    ec2: client('ec2', (c) => (c instanceof DescribeInstancesCommand ? { Reservations: [] } : {})),
    sns: client('sns', () => ({ MessageId: 'm' })),
    cloudwatch: client('monitoring', () => ({ MetricDataResults: [] })),
    pricing: client('pricing', () => ({ PriceList: [] })),
  };
}

const ISO = fc.date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });
const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    'Scheduled Event ',
    'scheduled event',
    'EC2 Instance State-change Notification\n',
    'aws.events',
    'aws.ec2',
    '__proto__',
    'constructor',
    'i-',
    'i-0123456789abcdef0',
    'i-0123456789ABCDEF0',
    'i-0123456789abcdef0; rm -rf /',
    'i-' + 'a'.repeat(5000),
    '\u0000',
    '💥',
  ),
);
const instanceId = fc.oneof(fc.stringMatching(/^i-[0-9a-f]{8,17}$/), oddString);
const state = fc.oneof(
  fc.constantFrom('pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated', 'rebooting', 'RUNNING', ''),
  json,
);

/** Events near the real shapes, with fields missing, mistyped or odd. */
export const eventArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  json,
  fc.anything({
    maxDepth: 3,
    withNullPrototype: true,
    withBigInt: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withTypedArray: true,
    withSparseArray: true,
    withBoxedValues: true,
  }),
  fc.record(
    {
      version: fc.constant('0'),
      source: fc.oneof(fc.constant('aws.events'), oddString),
      'detail-type': fc.oneof(fc.constant('Scheduled Event'), oddString),
      time: fc.oneof(ISO, oddString, json),
      detail: json,
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      source: fc.oneof(fc.constant('aws.ec2'), oddString),
      'detail-type': fc.oneof(fc.constant('EC2 Instance State-change Notification'), oddString),
      time: fc.oneof(ISO, oddString),
      detail: fc.oneof(fc.record({ 'instance-id': instanceId, state }, { requiredKeys: [] }), json),
      resources: fc.array(oddString, { maxLength: 2 }),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      smvmShard: fc.oneof(
        fc.record({ index: json, count: json }, { requiredKeys: [] }),
        fc.record({ index: fc.integer({ min: -5, max: 2000 }), count: fc.integer({ min: -5, max: 2000 }) }),
        json,
      ),
    },
    { requiredKeys: [] },
  ),
);

/** A watchdog over fake clients (the policy parameter, an empty fleet), its log lines and AWS calls. */
export function fakeWatchdog() {
  const lines: string[] = [];
  const calls: string[] = [];
  const wd = createWatchdog({
    ...fakeClients(calls),
    clock: { now: () => Date.parse('2030-01-01T00:00:00Z') },
    env: { SMVM_POLICY_ID: 'fuzz', SMVM_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:smvm-fuzz', AWS_REGION: 'us-east-1' },
    logger: createLogger({ service: 'fuzz', level: 'debug', sink: (l) => lines.push(l) }),
  });
  return { wd, lines, calls };
}

export const watchdogEvents: FuzzTarget = {
  name: 'watchdog handler: EventBridge events',
  runs: 400,
  async run({ seed, numRuns }) {
    const { wd, lines, calls } = fakeWatchdog();
    return fc.check(
      fc.asyncProperty(eventArbitrary, async (event) => {
        lines.length = 0;
        calls.length = 0;
        const r = await wd.handle(event);
        if (r.outcome === 'rejected') {
          // Rejected clearly: problems in words, one error line, and no AWS call at all.
          if (!Array.isArray(r.problems) || r.problems.length === 0) return false;
          if (!r.problems.every((p) => typeof p === 'string' && p.length > 0)) return false;
          const logged = lines.map((l) => JSON.parse(l) as { level: string; message: string; problems?: unknown });
          if (!logged.some((l) => l.level === 'ERROR' && l.message === 'event rejected' && Array.isArray(l.problems))) return false;
          return calls.length === 0;
        }
        // Accepted: only the three real shapes, and a state change only for a well-formed instance id.
        if (r.outcome !== 'cycle') return false;
        const e = event as Record<string, any>;
        if (r.trigger === 'state-change')
          return typeof e.detail?.['instance-id'] === 'string' && /^i-[0-9a-f]{8,17}$/.test(e.detail['instance-id']);
        if (r.trigger === 'schedule') return e['detail-type'] === 'Scheduled Event' && e.source === 'aws.events';
        return r.trigger === 'shard' && Number.isInteger(e.smvmShard?.index) && e.smvmShard.index < e.smvmShard.count;
      }),
      { seed, numRuns },
    );
  },
};

// ---------------------------------------------------------------- /proc

const counter = fc.oneof(
  fc.nat(),
  fc.bigInt({ min: 0n, max: 2n ** 64n }),
  fc.constantFrom('18446744073709551615', '9'.repeat(45), '-1', '1e9', '0x10', '', 'NaN', '１２'),
);
const text = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom('', '\n', '\u0000\u0000', 'cpu', 'cpu  1 2 3', 'MemTotal: 0 kB\n'),
);

function statOf(c: unknown[]): string {
  return `cpu  ${c.slice(0, 10).join(' ')}\ncpu0 ${c.slice(0, 10).join(' ')}\nintr 1\nbtime 1764150000\n`;
}
function netDevOf(rx: unknown, tx: unknown): string {
  return (
    'Inter-|   Receive                                                |  Transmit\n' +
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
    `    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: ${rx} 10 0 0 0 0 0 0 ${tx} 12 0 0 0 0 0 0\n`
  );
}
function diskOf(r: unknown, w: unknown): string {
  return `   8       0 sda 100 0 ${r} 50 200 0 ${w} 80 0 120 130 0 0 0 0 0 0\n   8       1 sda1 1 0 1 1 1 0 1 1 0 1 1 0 0 0 0 0 0\n`;
}

/** One /proc file: well formed, truncated, garbage, or missing (undefined). */
function procFile(valid: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    { weight: 1, arbitrary: fc.tuple(valid, fc.nat()).map(([v, n]) => v.slice(0, n % (v.length + 1))) },
    { weight: 1, arbitrary: text },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const procSnapshot = fc.record({
  stat: procFile(fc.array(counter, { minLength: 4, maxLength: 10 }).map(statOf)),
  netDev: procFile(fc.tuple(counter, counter).map(([a, b]) => netDevOf(a, b))),
  diskstats: procFile(fc.tuple(counter, counter).map(([a, b]) => diskOf(a, b))),
  meminfo: procFile(fc.tuple(counter, counter).map(([t, a]) => `MemTotal:       ${t} kB\nMemFree: 1 kB\nMemAvailable:   ${a} kB\n`)),
  loadavg: procFile(fc.tuple(fc.double({ min: 0, max: 1e6, noNaN: true }), counter).map(([l, n]) => `${l} 0.5 0.5 1/467 ${n}\n`)),
  utmp: fc.oneof(
    fc.array(fc.tuple(fc.integer({ min: -2, max: 9 }), fc.string({ maxLength: 8 })), { maxLength: 4 }).map((rs) =>
      Buffer.concat(
        rs.map(([type, user]) => {
          const b = Buffer.alloc(UTMP_RECORD_SIZE);
          b.writeInt16LE(type, 0);
          b.write(user, 44, 32, 'latin1');
          return b;
        }),
      ),
    ),
    fc.uint8Array({ maxLength: UTMP_RECORD_SIZE * 2 }).map((a) => Buffer.from(a)),
    fc.constant(undefined),
  ),
});
type ProcSnapshot = typeof procSnapshot extends fc.Arbitrary<infer T> ? T : never;

/** Whether a stat file holds a readable aggregate cpu line: at least 4 counters, the first 8 fields all counters. */
function isCounterStat(s: string | undefined): boolean {
  const line = s?.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return false;
  const f = line.trim().split(/\s+/).slice(1, 9);
  return f.length >= 4 && f.every((x) => /^\d{1,40}$/.test(x));
}

export const procFiles: FuzzTarget = {
  name: 'agent /proc sampler: truncated, garbage, huge, missing files',
  runs: 200,
  async run({ seed, numRuns }) {
    const dir = mkdtempSync(join(tmpdir(), 'smvm-proc-fuzz-'));
    const proc = join(dir, 'proc');
    mkdirSync(join(proc, 'net'), { recursive: true });
    const utmpPath = join(dir, 'utmp');
    const put = (path: string, content: string | Buffer | undefined) => {
      if (content === undefined) {
        try {
          unlinkSync(path);
        } catch {
          /* already missing */
        }
      } else writeFileSync(path, content);
    };
    const write = (s: ProcSnapshot) => {
      put(join(proc, 'stat'), s.stat);
      put(join(proc, 'net/dev'), s.netDev);
      put(join(proc, 'diskstats'), s.diskstats);
      put(join(proc, 'meminfo'), s.meminfo);
      put(join(proc, 'loadavg'), s.loadavg);
      put(utmpPath, s.utmp);
    };
    const finiteOrUndefined = (v: unknown, min = 0, max = Infinity) =>
      v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max);
    try {
      return await fc.check(
        fc.asyncProperty(procSnapshot, procSnapshot, fc.integer({ min: 1, max: 3_600_000 }), async (a, b, gap) => {
          const sampler = createProcSampler({ procRoot: proc, utmpPath });
          write(a);
          sampler.sample(1_000_000);
          write(b);
          const s = sampler.sample(1_000_000 + gap);
          const ok =
            finiteOrUndefined(s.cpuPercent, 0, 100) &&
            finiteOrUndefined(s.memUsedPercent, 0, 100) &&
            finiteOrUndefined(s.netBytesPerSec) &&
            finiteOrUndefined(s.netInBytesPerSec) &&
            finiteOrUndefined(s.netOutBytesPerSec) &&
            finiteOrUndefined(s.netOutBytesTotal) &&
            finiteOrUndefined(s.diskBytesPerSec) &&
            finiteOrUndefined(s.load1) &&
            (s.loginSessions === undefined || (Number.isInteger(s.loginSessions) && s.loginSessions >= 0)) &&
            s.at === 1_000_000 + gap;
          if (!ok) return false;
          // Missing data never looks idle: without two readable stat files there is no CPU figure
          // (never a 0 %), and without two readable net/dev files no network rate.
          if ((!isCounterStat(a.stat) || !isCounterStat(b.stat)) && s.cpuPercent !== undefined) return false;
          if ((a.netDev === undefined || b.netDev === undefined) && s.netBytesPerSec !== undefined) return false;
          return true;
        }),
        { seed, numRuns },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

// ---------------------------------------------------------------- instance metadata

const imdsFault: fc.Arbitrary<FakeImdsFault | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.constantFrom(400, 401, 403, 404, 405, 429, 500, 502, 503).map((status) => ({ status })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }).map((delayMs) => ({ delayMs })) },
  { weight: 1, arbitrary: fc.constant({ hang: true }) },
);
const credentialKind = fc.constantFrom('valid', 'expired', 'expiring', 'none', 'empty-key');

export const imdsAnswers: FuzzTarget = {
  name: 'agent IMDS client: errors, hangs, slow, expired credentials',
  runs: 60,
  async run({ seed, numRuns }) {
    let script: Array<FakeImdsFault | undefined> = [];
    let cred: string = 'valid';
    let at = 0;
    const now = () => Date.parse('2030-01-01T00:00:00Z') + at;
    const credentials = (): FakeRoleCredentials | undefined => {
      const t = now();
      switch (cred) {
        case 'none':
          return undefined;
        case 'expired':
          return { accessKeyId: 'ASIAOLD', secretAccessKey: 's', sessionToken: 't', expiration: new Date(t - 60_000) };
        case 'expiring':
          return { accessKeyId: 'ASIASOON', secretAccessKey: 's', sessionToken: 't', expiration: new Date(t + 30_000) };
        case 'empty-key':
          return { accessKeyId: '', secretAccessKey: 's', sessionToken: 't', expiration: new Date(t + 3_600_000) };
        default:
          return { accessKeyId: 'ASIAGOOD', secretAccessKey: 's', sessionToken: 't', expiration: new Date(t + 3_600_000) };
      }
    };
    const imds = await startFakeImds({
      instanceId: 'i-0123456789abcdef0',
      credentials,
      tags: () => ({ 'smvm:policy': 'p', Name: 'a b' }),
      fault: () => script.shift(),
    });
    const TIMEOUT = 60;
    try {
      return await fc.check(
        fc.asyncProperty(fc.array(imdsFault, { maxLength: 12 }), credentialKind, fc.nat({ max: 7_200_000 }), async (faults, kind, skew) => {
          script = [...faults];
          cred = kind;
          at = skew;
          imds.revokeTokens();
          const client = createImdsClient({ endpoint: imds.endpoint, timeoutMs: TIMEOUT, retries: 1, retryDelayMs: 2, now });
          const started = Date.now();
          const settle = async <T>(p: Promise<T>) =>
            p.then(
              (value) => ({ ok: true as const, value }),
              (error: unknown) => ({ ok: false as const, error }),
            );
          const id = await settle(client.instanceId());
          const c = await settle(client.credentials());
          const t = await settle(client.tags());
          // Bounded: each request gives up after its timeout, with one retry (and one more token).
          if (Date.now() - started > 12 * (TIMEOUT + 45) + 3_000) return false;
          for (const r of [id, c, t]) if (!r.ok && (r.error as Error)?.name !== 'ImdsError') return false;
          if (id.ok && id.value !== 'i-0123456789abcdef0') return false;
          // No role, or a document without keys: an ImdsError, never half credentials.
          if (c.ok && (kind === 'none' || kind === 'empty-key')) return false;
          if (c.ok && (!c.value.accessKeyId || !c.value.secretAccessKey || !c.value.sessionToken)) return false;
          if (c.ok && (kind === 'expiring' || kind === 'expired')) {
            // Credentials close to (or past) their expiry are not served from the cache: IMDS is asked again.
            const asked = imds.requests.length;
            await settle(client.credentials());
            if (!imds.requests.slice(asked).some((r) => r.path.startsWith('/latest/meta-data/iam/security-credentials'))) return false;
          }
          if (t.ok) {
            const want: Record<string, string> = { 'smvm:policy': 'p', Name: 'a b' };
            const got = Object.entries(t.value.tags);
            // Tags are never made up or mixed up (a key deleted since it was listed may be missing).
            if (got.some(([k, v]) => want[k] !== v)) return false;
            if (!t.value.enabled && got.length) return false;
          }
          return true;
        }),
        { seed, numRuns },
      );
    } finally {
      await imds.close();
    }
  },
};

// ---------------------------------------------------------------- the Price List

const usd = fc.oneof(
  fc.double({ min: 0.0001, max: 100, noNaN: true }).map((v) => v.toFixed(10)),
  fc.constantFrom('0.0000000000', '-1', 'NaN', 'Infinity', '1e3', '', ' 0.5 ', '0x10', '9'.repeat(400), '0.0416000000', '.5', '5.'),
  json,
);
const unit = fc.oneof(fc.constantFrom('Hrs', 'hrs', 'Hr', 'hr', 'Quantity', 'GB-Mo', '', 'HRS '), json);
const priceDoc = fc
  .record(
    {
      product: fc.oneof(
        fc.record(
          { attributes: fc.record({ instanceType: fc.oneof(fc.constantFrom('t3.micro', 't3.large'), json) }, { requiredKeys: [] }) },
          { requiredKeys: [] },
        ),
        json,
      ),
      terms: fc.oneof(
        fc.record(
          {
            OnDemand: fc.oneof(
              fc.dictionary(
                fc.string({ maxLength: 6 }),
                fc.record(
                  {
                    priceDimensions: fc.oneof(
                      fc.dictionary(
                        fc.string({ maxLength: 6 }),
                        fc.record(
                          { unit, pricePerUnit: fc.oneof(fc.record({ USD: usd }, { requiredKeys: [] }), json) },
                          { requiredKeys: [] },
                        ),
                        { maxKeys: 3 },
                      ),
                      json,
                    ),
                  },
                  { requiredKeys: [] },
                ),
                { maxKeys: 3 },
              ),
              json,
            ),
          },
          { requiredKeys: [] },
        ),
        json,
      ),
    },
    { requiredKeys: [] },
  )
  .map((d) => JSON.stringify(d));
const priceEntry = fc.oneof(
  { weight: 6, arbitrary: priceDoc },
  { weight: 1, arbitrary: fc.tuple(priceDoc, fc.nat()).map(([d, n]) => d.slice(0, n % (d.length + 1))) },
  { weight: 1, arbitrary: json },
);

/** The documented meaning, independently: the highest positive hourly USD of entries for the type. */
function oracle(list: readonly unknown[], type: string): number | undefined {
  let best: number | undefined;
  for (const raw of list) {
    let doc: any;
    try {
      doc = JSON.parse(typeof raw === 'string' ? raw : String(raw));
    } catch {
      continue;
    }
    if (doc === null || typeof doc !== 'object') continue;
    const t = doc.product?.attributes?.instanceType;
    if (t !== undefined && t !== type) continue;
    const od = doc.terms?.OnDemand;
    if (!od || typeof od !== 'object') continue;
    for (const offer of Object.values<any>(od)) {
      const dims = offer?.priceDimensions;
      if (!dims || typeof dims !== 'object') continue;
      for (const dim of Object.values<any>(dims)) {
        const u = dim?.unit;
        const v = dim?.pricePerUnit?.USD;
        if (typeof u !== 'string' || !['hrs', 'hr'].includes(u.toLowerCase())) continue;
        if (typeof v !== 'string' || !/^\s*\d+(\.\d+)?\s*$/.test(v)) continue;
        const n = Number(v);
        if (Number.isFinite(n) && n > 0 && (best === undefined || n > best)) best = n;
      }
    }
  }
  return best;
}

export const priceListAnswers: FuzzTarget = {
  name: 'watchdog pricing adapter: missing and malformed Price List answers',
  runs: 400,
  async run({ seed, numRuns }) {
    return fc.check(
      fc.asyncProperty(
        fc.oneof(fc.constant(undefined), fc.array(priceEntry, { maxLength: 4 })),
        fc.constantFrom('t3.micro', 't3.large'),
        fc.oneof(fc.constant(undefined), fc.constantFrom('ThrottlingException', 'AccessDeniedException', 'TypeError')),
        async (list, type, fail) => {
          // The parser: a positive finite price (the oracle's), or a PriceError naming the type.
          let parsed: number | undefined;
          try {
            parsed = parseOnDemandPrice(list, type, 'us-east-1');
          } catch (e) {
            if (!(e instanceof PriceError) || !e.message.includes(type)) return false;
          }
          if (parsed !== undefined && !(Number.isFinite(parsed) && parsed > 0)) return false;
          if (parsed !== oracle(list ?? [], type)) return false;
          // The adapter: never throws; a failure is reported once per type.
          const client: AwsClient = {
            send: async () => {
              if (fail) throw Object.assign(new Error('no'), { name: fail });
              return { PriceList: list };
            },
          };
          const prices = createPriceList(client, { region: 'us-east-1', now: () => 0 });
          const first = await prices.lookup(type);
          const second = await prices.lookup(type);
          if (first.ok !== second.ok) return false;
          if (first.ok) return !fail && second.ok && first.hourlyUsd === parsed;
          return !second.ok && first.error instanceof PriceError && first.firstReport && !second.firstReport;
        },
      ),
      { seed, numRuns },
    );
  },
};

export const FUZZ_TARGETS: readonly FuzzTarget[] = [watchdogEvents, procFiles, imdsAnswers, priceListAnswers];
