/**
 * The soak: many watchdog cycles and agent ticks over a mixed fleet in moto, behind the
 * fault proxy, on a test clock with a seeded schedule of usage, clock jumps, fault
 * storms, agent kills and people starting, stopping, terminating, snoozing and
 * extending instances; then a clean phase; then the independent model's checks
 * (`model.ts`). Used by the jest suite (bounded), `scripts/soak.ts` (long) and
 * `bench/hardening.ts`.
 *
 * One step of the test clock (the policy's sampling interval, 5 minutes):
 *   1. people act (through the proxy as `operator`, never faulted);
 *   2. a tag snapshot stands in for instance metadata;
 *   3. every running instance of the policy has its agent sample and decide (a kill
 *      replaces an agent by a new incarnation with the same disk);
 *   4. the scheduled watchdog run (retried twice when it throws, as Lambda does);
 *   5. one state-change run per transition of the step (EventBridge's notifications);
 *   6. the clock advances, sometimes by a jump.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { extend, snooze } from '../../lambda-agent/cli/commands';
import type { CliContext } from '../../lambda-agent/cli/context';
import { topicParameterName } from '../../lambda-agent/contract/env';
import { POLICY_TAG } from '../../lambda-agent/contract/tags';
import { seededRandom, type FaultKind, type FaultRule } from '../support/fault-proxy';
import type { MotoServer } from '../support/moto';
import { checkHistory, HOUR, MIN, policyDocument, type History, type ModelPolicy, type ModelReport, type SampleTaken } from './model';
import { MemoryStore, newCrasher, scheduledEvent, stateChangeEvent, World, type AgentHandle, type FleetInstance } from './world';

export interface SoakOptions {
  readonly seed: number;
  /** Steps with random faults, clock jumps and kills. */
  readonly faultSteps: number;
  /** Clean steps after them (no faults, no jumps): every due action must be taken here. */
  readonly cleanSteps: number;
  /** Instances per kind. */
  readonly fleet?: {
    policy?: number;
    silent?: number;
    otherPolicy?: number;
    prefixSharing?: number;
    unmanaged?: number;
    caseVariant?: number;
  };
  /** Multiplies every fault rate. @default 1 */
  readonly faultScale?: number;
  /** The policy's figures. @default {@link SOAK_POLICY} */
  readonly policy?: ModelPolicy;
  /** Progress lines. */
  readonly progress?: (line: string) => void;
  /** Return the recorded history with the report. */
  readonly keepHistory?: boolean;
}

export interface SoakReport {
  readonly seed: number;
  readonly steps: number;
  readonly simulatedHours: number;
  readonly wallSeconds: number;
  readonly scheduleRuns: number;
  readonly stateChangeRuns: number;
  /** Watchdog invocations that threw (AWS unreachable after retries): Lambda retries them. */
  readonly watchdogThrows: number;
  /** Scheduled runs whose container was killed at a random call (then run again). */
  readonly watchdogCrashes: number;
  readonly agentTicks: number;
  readonly agentKills: number;
  readonly agentTickErrors: number;
  readonly clockJumps: number;
  readonly proxyCalls: number;
  readonly faults: Record<FaultKind, number>;
  readonly faultsBy: Record<string, number>;
  readonly people: Record<string, number>;
  readonly model: ModelReport;
  /** Log lines at warn or error of the hosts, by message. */
  readonly logMessages: Record<string, number>;
  /** With `keepHistory`: what the model judged (to debug a failed soak). */
  readonly history?: History;
}

/** The soak policy: short limits so that a few simulated hours exercise every rule. */
export const SOAK_POLICY: ModelPolicy = {
  id: 'soak',
  lifetimeMs: 7 * HOUR,
  lifetimeWarnMs: 30 * MIN,
  runningMs: 2 * HOUR,
  runningWarnMs: 15 * MIN,
  idleWindowMs: 30 * MIN,
  idleGraceMs: 10 * MIN,
  idleCpuBelow: 5,
  idleNetBelow: 10_240,
  sampleMs: 5 * MIN,
  heartbeatMs: 30 * MIN,
};

/** The fault mix of the faulty phase; `storm` steps multiply it. */
export function faultRules(scale: number): FaultRule[] {
  const guards = /^(watchdog|agent-)/;
  const writes = /^(StopInstances|TerminateInstances|CreateTags|Publish)$/;
  const r = (x: number) => Math.min(0.95, x * scale);
  return [
    // The nasty case first: the write took effect, the caller saw an error.
    { principal: guards, action: writes, kind: 'throttle', phase: 'after', rate: r(0.04) },
    { principal: guards, action: writes, kind: 'drop', phase: 'after', rate: r(0.02) },
    { principal: guards, action: writes, kind: 'timeout', phase: 'after', rate: r(0.002) },
    { principal: guards, service: 'ec2', kind: 'throttle', rate: r(0.06) },
    { principal: guards, service: 'sns', kind: 'throttle', rate: r(0.06) },
    { principal: guards, kind: 'http500', rate: r(0.02) },
    { principal: guards, kind: 'http503', rate: r(0.02) },
    { principal: guards, kind: 'drop', rate: r(0.015) },
    { principal: guards, kind: 'timeout', rate: r(0.002) },
    { principal: guards, kind: 'slow', rate: r(0.02), delayMs: 30 },
  ];
}

/** A seeded usage script: alternating busy and idle spans per instance. */
export function usageScript(seed: number, start: number, end: number) {
  const rand = seededRandom(seed);
  const spans: Array<{ from: number; idle: boolean }> = [];
  let t = start;
  let idle = rand() < 0.5;
  while (t < end + 12 * HOUR) {
    spans.push({ from: t, idle });
    t += (idle ? 20 + rand() * 100 : 10 + rand() * 80) * MIN;
    idle = !idle;
  }
  const at = (ms: number) => {
    let lo = 0;
    let hi = spans.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (spans[mid].from <= ms) lo = mid;
      else hi = mid - 1;
    }
    return spans[lo];
  };
  return {
    isIdle: (ms: number) => at(ms).idle,
    usage: (ms: number) =>
      at(ms).idle
        ? { cpuPercent: 0.5 + ((ms / MIN) % 3) * 0.7, netBytesPerSec: 800 }
        : { cpuPercent: 35 + ((ms / MIN) % 40), netBytesPerSec: 120_000 },
  };
}

function countMessages(lines: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) {
    try {
      const j = JSON.parse(l) as { level?: string; message?: string; service?: string };
      const k = `${j.service ?? '?'} ${j.level ?? '?'} ${j.message ?? '?'}`;
      out[k] = (out[k] ?? 0) + 1;
    } catch {
      out['unparsable log line'] = (out['unparsable log line'] ?? 0) + 1;
    }
  }
  return out;
}

/** Runs one soak against a running moto (reset first). */
export async function runSoak(moto: MotoServer, opts: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  await moto.reset();
  // Repeatable instance ids (and so a repeatable order of calls) for a seed.
  await fetch(`${moto.endpoint}/moto-api/seed?a=${opts.seed}`, { method: 'POST' });
  const mp = opts.policy ?? SOAK_POLICY;
  const rand = seededRandom(opts.seed * 7919 + 1);
  const world = await World.create({ moto, seed: opts.seed });
  const progress = opts.progress ?? (() => undefined);
  try {
    const doc = policyDocument(mp);
    await world.setUp(doc);
    await new SSMClient(moto.sdkConfig()).send(
      new PutParameterCommand({ Name: topicParameterName(mp.id), Value: world.topicArn, Type: 'String', Overwrite: true }),
    );
    const policy = world.policy;

    // ------------------------------------------------------------ the fleet
    const n = { policy: 6, silent: 2, otherPolicy: 2, prefixSharing: 2, unmanaged: 2, caseVariant: 2, ...opts.fleet };
    const ours: FleetInstance[] = [];
    for (let i = 0; i < n.policy + n.silent; i++) ours.push(...(await world.launch('policy', 1, world.policyTags(policy, i))));
    /** Instances whose agent never runs (broken bootstrap): the watchdog alone guards them. */
    const silent = new Set(ours.slice(n.policy).map((o) => o.id));
    await world.launch('other-policy', n.otherPolicy, { [POLICY_TAG]: 'other' });
    await world.launch('prefix-sharing', n.prefixSharing, { [POLICY_TAG]: `${mp.id}-2` });
    await world.launch('unmanaged', n.unmanaged, { Name: 'not-managed' });
    for (let i = 0; i < n.caseVariant; i++) {
      await world.launch('case-variant', 1, i % 2 === 0 ? { 'SMVM:policy': mp.id } : { [POLICY_TAG]: mp.id.toUpperCase() });
    }
    await world.snapshotTags();
    const initialTags = new Map([...world.tags].map(([k, v]) => [k, { ...v }]));

    const totalSteps = opts.faultSteps + opts.cleanSteps;
    const usage = new Map(
      ours.map((o, i) => [o.id, usageScript(opts.seed * 1000 + i, world.now, world.now + totalSteps * 3 * mp.sampleMs)]),
    );
    const samples: SampleTaken[] = [];
    const snoozes: Array<{ id: string; at: number; until: number }> = [];
    const extensions: Array<{ id: string; at: number; lifetimeMs: number }> = [];
    const agents = new Map<string, AgentHandle>();
    const stores = new Map(ours.map((o) => [o.id, new MemoryStore()]));
    const states = new Map<string, string>(ours.map((o) => [o.id, 'running']));
    const people: Record<string, number> = {};
    const person = (what: string) => (people[what] = (people[what] ?? 0) + 1);
    const stepTimes: number[] = [];
    let scheduleRuns = 0;
    let stateChangeRuns = 0;
    let watchdogThrows = 0;
    let watchdogCrashes = 0;
    let agentTicks = 0;
    let agentKills = 0;
    let agentTickErrors = 0;
    let clockJumps = 0;
    let faultsEnd = world.now;
    let incarnations = 0;

    const cli: CliContext = {
      clients: {
        ec2: new EC2Client(world.operatorSdk()),
        ssm: new SSMClient(world.operatorSdk()),
        sns: new SNSClient(world.operatorSdk()),
        sqs: new SQSClient(world.operatorSdk()),
        sts: new STSClient(world.operatorSdk()),
      },
      now: () => world.now,
      out: () => undefined,
      err: (t) => world.logLines.push(JSON.stringify({ level: 'WARN', service: 'smvm-cli', message: t })),
      progress: false,
    };
    const watchdog = world.watchdog();
    const bootAgent = (id: string, bootTime: number, lastAliveAt?: number) => {
      const u = usage.get(id)!;
      const { agent, crasher } = world.agent({
        id,
        store: stores.get(id)!,
        bootTime,
        usage: u.usage,
        random: seededRandom(opts.seed * 31 + ++incarnations),
        imdsFault: () => world.now < faultsEnd && rand() < 0.02,
        shutdownBehaviour: 'terminate',
        onShutdown: () => person('os shutdown by an agent'),
        ...(lastAliveAt !== undefined ? { lastAliveAt } : {}),
      });
      agents.set(id, { id, agent, store: stores.get(id)!, crasher, bootTime, incarnation: incarnations });
    };
    for (const o of ours) if (!silent.has(o.id)) bootAgent(o.id, o.launchedAt);
    const lifetimeDue = (id: string) =>
      ours.find((o) => o.id === id)!.launchedAt +
      mp.lifetimeMs +
      extensions.filter((e) => e.id === id).reduce((a, e) => a + e.lifetimeMs, 0);
    const snoozeStep = Math.floor(rand() * opts.faultSteps * 0.6) + 3;
    const extendStep = Math.floor(rand() * opts.faultSteps * 0.4) + 2;
    const terminateStep = Math.floor(opts.faultSteps * 0.5 + rand() * opts.faultSteps * 0.4);
    let transitionsSeen = world.proxy.transitions.length;

    for (let k = 0; k < totalSteps; k++) {
      const faulty = k < opts.faultSteps;
      const storm = faulty && rand() < 0.12;
      world.proxy.setRules(faulty ? faultRules((opts.faultScale ?? 1) * (storm ? 4 : 1)) : []);
      if (!faulty && k === opts.faultSteps) faultsEnd = world.now;
      stepTimes.push(world.now);

      // 1. people
      for (const o of ours) {
        const s = states.get(o.id);
        if (s === 'stopped' && world.now < lifetimeDue(o.id) - HOUR && rand() < 0.12) {
          await world.personStart(o.id);
          person('start');
        } else if (s === 'running' && rand() < 0.008) {
          await world.personStop(o.id);
          person('stop');
        }
      }
      if (k === terminateStep) {
        const live = ours.filter((o) => states.get(o.id) === 'running' || states.get(o.id) === 'stopped');
        if (live.length > 1) {
          await world.personTerminate(live[Math.floor(rand() * live.length)].id);
          person('terminate');
        }
      }
      if (k === snoozeStep) {
        const running = ours.filter((o) => states.get(o.id) === 'running');
        if (running.length) {
          const id = running[Math.floor(rand() * running.length)].id;
          await snooze(cli, { instanceId: id, duration: '90m', reason: 'soak: long compile' });
          snoozes.push({ id, at: world.now, until: world.now + 90 * MIN });
          person('snooze');
        }
      }
      if (k === extendStep) {
        const id = ours[Math.floor(rand() * ours.length)].id;
        if (states.get(id) !== 'terminated') {
          await extend(cli, { instanceId: id, limit: 'lifetime', amount: '2h', reason: 'soak: demo tomorrow' });
          extensions.push({ id, at: world.now, lifetimeMs: 2 * HOUR });
          person('extend');
        }
      }

      // 2. what instance metadata would say
      const live = await world.snapshotTags();
      for (const o of ours) states.set(o.id, live.get(o.id) ?? 'unknown');

      // 3 and 4, in either order: agents of running instances, and the scheduled watchdog run
      const agentsTick = async () => {
        for (const o of ours) {
          // Live state: a guard may have stopped the machine earlier in this step.
          const lastT = [...world.proxy.transitions].reverse().find((t) => t.instanceId === o.id);
          const st = lastT ? (lastT.to === 'running' ? 'running' : lastT.to) : states.get(o.id);
          const h = agents.get(o.id);
          if ((st !== 'running' && st !== 'pending') || silent.has(o.id)) {
            agents.delete(o.id); // the machine is off: so is its agent
            continue;
          }
          const lastStart = [...world.proxy.transitions].reverse().find((t) => t.instanceId === o.id && t.to === 'running');
          const boot = lastStart?.time ?? o.launchedAt;
          if (!h || h.bootTime !== boot) bootAgent(o.id, boot);
          else if (faulty && rand() < 0.02) {
            agentKills++;
            bootAgent(o.id, boot, world.now - mp.sampleMs); // SIGKILL: systemd restarts it, memory lost, disk kept
          }
          const a = agents.get(o.id)!;
          a.agent.sample(world.now);
          samples.push({ id: o.id, at: world.now, idle: usage.get(o.id)!.isIdle(world.now), incarnation: a.incarnation });
          agentTicks++;
          try {
            await a.agent.decide(world.now);
          } catch (e) {
            agentTickErrors++;
            world.logLines.push(JSON.stringify({ level: 'ERROR', service: 'soak', message: 'agent tick threw', error: String(e) }));
          }
        }
      };
      // Lambda retries an asynchronous invocation twice; now and then the container dies mid-cycle.
      const schedule = async () => {
        if (faulty && rand() < 0.06) {
          const crasher = newCrasher(Math.floor(rand() * 8), rand() < 0.5 ? 'before' : 'after');
          watchdogCrashes++;
          scheduleRuns++;
          await world
            .watchdog({ principal: 'watchdog', crasher })
            .handle(scheduledEvent(world.now))
            .catch(() => undefined);
        }
        for (let attempt = 0; attempt < 3; attempt++) {
          scheduleRuns++;
          try {
            await watchdog.handle(scheduledEvent(world.now));
            break;
          } catch {
            watchdogThrows++;
          }
        }
      };
      if (rand() < 0.5) {
        await agentsTick();
        await schedule();
      } else {
        await schedule();
        await agentsTick();
      }

      // 5. EventBridge: the state changes of this step
      const fresh = world.proxy.transitions.slice(transitionsSeen);
      transitionsSeen = world.proxy.transitions.length;
      for (const t of fresh) {
        if (!ours.some((o) => o.id === t.instanceId)) continue;
        for (let attempt = 0; attempt < 3; attempt++) {
          stateChangeRuns++;
          try {
            await watchdog.handle(stateChangeEvent(t.instanceId, t.to, t.time));
            break;
          } catch {
            watchdogThrows++;
          }
        }
      }

      if (k % 12 === 11) {
        await world.drainEvents();
        progress(
          `soak seed ${opts.seed}: step ${k + 1}/${totalSteps}, ${world.proxy.calls.length} calls, ${Object.values(world.proxy.faults).reduce((a, b) => a + b, 0)} faults, ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      }

      // 6. time passes
      world.clock.now += mp.sampleMs;
      if (faulty && rand() < 0.05) {
        world.clock.now += [3, 6, 12, 24][Math.floor(rand() * 4)] * mp.sampleMs;
        clockJumps++;
      }
    }
    world.proxy.setRules([]);
    await world.drainEvents();
    await world.snapshotTags();
    const end = stepTimes[stepTimes.length - 1];

    const history: History = {
      policy: mp,
      fleet: world.fleet,
      calls: world.proxy.calls,
      transitions: world.proxy.transitions,
      logical: world.logical,
      samples,
      snoozes,
      extensions,
      delivered: world.delivered,
      finalTags: world.tags,
      initialTags,
      faultsEnd,
      end,
      steps: stepTimes,
    };
    const model = checkHistory(history);
    return {
      seed: opts.seed,
      steps: totalSteps,
      simulatedHours: (end - stepTimes[0]) / HOUR,
      wallSeconds: (Date.now() - started) / 1000,
      scheduleRuns,
      stateChangeRuns,
      watchdogThrows,
      watchdogCrashes,
      agentTicks,
      agentKills,
      agentTickErrors,
      clockJumps,
      proxyCalls: world.proxy.calls.length,
      faults: { ...world.proxy.faults },
      faultsBy: world.proxy.faultsBy(),
      people,
      model,
      logMessages: countMessages(world.logLines),
      ...(opts.keepHistory ? { history } : {}),
    };
  } finally {
    await world.close();
  }
}

/** A short text summary of a soak, for logs and the bench. */
export function formatSoak(r: SoakReport): string {
  const byCheck: Record<string, number> = {};
  for (const v of r.model.violations) byCheck[v.check] = (byCheck[v.check] ?? 0) + 1;
  return [
    `seed ${r.seed}: ${r.steps} steps, ${r.simulatedHours.toFixed(1)} simulated h in ${r.wallSeconds.toFixed(1)} s`,
    `watchdog: ${r.scheduleRuns} schedule runs, ${r.stateChangeRuns} state-change runs, ${r.watchdogThrows} threw, ${r.watchdogCrashes} killed mid-cycle; agents: ${r.agentTicks} ticks, ${r.agentKills} kills, ${r.agentTickErrors} tick errors; ${r.clockJumps} clock jumps`,
    `proxy: ${r.proxyCalls} calls; faults ${JSON.stringify(r.faults)}`,
    `people: ${JSON.stringify(r.people)}; guard actions ${JSON.stringify(r.model.figures.guardActionsBy)}`,
    `events: ${r.model.figures.expectedEvents} expected, ${r.model.figures.deliveredEvents} distinct delivered, ${r.model.figures.duplicateDeliveries} duplicates, lost ${JSON.stringify(r.model.figures.lostByType)}; ${r.model.figures.obligationsChecked} obligations checked`,
    `violations: ${r.model.violations.length ? JSON.stringify(byCheck) : 'none'}`,
    ...r.model.violations
      .slice(0, 40)
      .map((v) => `  ${v.check} ${v.instanceId ?? ''} ${v.at ? new Date(v.at).toISOString() : ''} ${v.detail}`),
  ].join('\n');
}
