/**
 * The agent's tick: sample → observation → evaluate → executeAll → heartbeat.
 *
 * Sampling runs on its own fixed-rate timer and never waits for I/O, so a slow API call
 * cannot leave a gap in the samples (a gap breaks an idle window). Deciding runs after
 * each sample unless the previous decision is still in flight. What the agent must not
 * forget (its episodes, the local checkpoint, watched tasks) is on disk and in its own
 * tag; what it reads about itself (policy version, the watchdog's checkpoint and
 * episodes, snooze, extensions) comes from instance metadata tags, which are free. The
 * policy document is read from SSM at start and when the policy-version tag changes,
 * never polled.
 *
 * Written as a closure rather than a class: the bundle must stay under 100 KB and
 * minified locals are far shorter than `this.` properties.
 */
import { AwsHttpError, type AwsClient } from '../adapters/agent/aws-http';
import type { ImdsClient } from '../adapters/agent/imds';
import type { ProcSampler } from '../adapters/agent/proc';
import { messageAttributes, type SmvmEvent } from '../contract/event-core';
import { contentHash } from '../contract/ids';
import {
  decodeCheckpoint,
  decodeEpisodes,
  decodeExtensions,
  decodeSnooze,
  encodeEpisodes,
  encodeHeartbeat,
  type Checkpoint,
  type EpisodeRecord,
} from '../contract/state';
import {
  AGENT_EPISODES_TAG,
  EPISODES_TAG,
  EXTEND_TAG,
  HEARTBEAT_TAG,
  MANAGEMENT_ID_TAG,
  POLICY_VERSION_TAG,
  SHUTDOWN_BEHAVIOR_TAG,
  SNOOZE_TAG,
  STATE_TAG,
} from '../contract/tags';
import { transition } from '../engine/accounting';
import { evaluate, type Decision } from '../engine/evaluate';
import { executeAll, finishPending, type ActionResult, type ExecutionContext, type ExecutorPorts, type InstanceAction } from '../executor';
import type { Logger } from '../log';
import type { Policy } from '../policy/model';
import { loadPolicy } from '../policy/parse';
import { tariffOf } from '../policy/tariff';
import type { Observation, Sample, TaskStatus } from '../rules/types';
import type { AgentConfig } from './config';
import { EMPTY_STATE, type AgentState, type StateStore } from './state-file';
import { taskSpecs, type TaskWatcher } from './tasks';

const MINUTE = 60_000;
/** A checkpoint "running" since before this boot by more than this belongs to an earlier run. */
const RUN_TOLERANCE_MS = 5 * MINUTE;
/**
 * Instance tags are read every 6 sampling intervals, at most every minute (a read is a
 * request per tag; the watchdog runs every minute too). Tags are also read again right
 * before any warning or action.
 */
const TAGS_EVERY_MS = MINUTE;
/** Most samples kept, whatever the windows. */
const MAX_SAMPLES = 20_000;

export interface AgentPorts {
  readonly imds: Pick<ImdsClient, 'tags'>;
  readonly aws: Pick<
    AwsClient,
    'stopInstances' | 'rebootInstances' | 'terminateInstances' | 'createTags' | 'ssmGetParameter' | 'snsPublish'
  >;
  readonly sampler: ProcSampler;
  readonly tasks: TaskWatcher;
  readonly store: StateStore;
  readonly log: Logger;
  /** Runs the OS shutdown command. */
  readonly shutdown: (command: string) => Promise<void>;
  /** Writes the heartbeat file: the epoch second until which the agent counts as alive. */
  readonly writeHeartbeatFile: (aliveUntilSec: number) => void;
}

export interface AgentOptions {
  readonly config: AgentConfig;
  readonly instanceId: string;
  readonly version: string;
  /** Epoch ms of this boot (/proc/stat btime); undefined when unreadable. */
  readonly bootTime?: number;
  /** Epoch ms the heartbeat file was last written before this start (the previous run's end). */
  readonly lastAliveAt?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface Agent {
  /** Loads the disk state (closing the previous boot's) and primes the sampler. */
  start(): void;
  /** Starts the fixed-rate timer: sample, then decide unless a decision is in flight. */
  run(): void;
  /** Stops the timer, waits for the decision in flight (at most `waitMs`) and saves. */
  stop(waitMs?: number): Promise<void>;
  /** One sample (synchronous) and the heartbeat file. */
  sample(now: number): void;
  /** One decision: refresh what is due, evaluate, carry it out, report. */
  decide(now: number): Promise<Decision | undefined>;
  /** The sampling interval in force. */
  intervalMs(): number;
}

const key = (r: { rule: string; episode: string }) => `${r.rule}:${r.episode}`;
const minOf = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

/**
 * Union of episode records from several sources (disk, the agent's tag, the
 * watchdog's tag). Per rule and episode: the earliest warning and action; pending only
 * if no source has the action completed.
 */
export function mergeEpisodes(...lists: ReadonlyArray<readonly EpisodeRecord[]>): EpisodeRecord[] {
  const m = new Map<string, EpisodeRecord>();
  for (const r of lists.flat()) {
    const p = m.get(key(r));
    const actedAt = minOf(p?.actedAt, r.actedAt);
    const done = !!p && [p, r].some((x) => x.actedAt !== undefined && !x.pending);
    m.set(key(r), {
      ...p,
      ...r,
      warnedAt: minOf(p?.warnedAt, r.warnedAt),
      actedAt,
      action: (p?.actedAt !== undefined ? p.action : r.action) ?? p?.action,
      pending: actedAt !== undefined && !done && (r.pending || p?.pending) ? true : undefined,
    });
  }
  return [...m.values()];
}

/** A deterministic fraction in [0, 1) from the instance id (heartbeat phase). */
export function seededFraction(instanceId: string): number {
  return parseInt(contentHash(instanceId).slice(0, 8), 16) / 2 ** 32;
}

/** The next periodic heartbeat after `t`: slots every `intervalMs`, offset by the instance's phase. */
export function nextHeartbeatSlot(t: number, intervalMs: number, instanceId: string): number {
  const phase = seededFraction(instanceId) * intervalMs;
  return phase + (Math.floor((t - phase) / intervalMs) + 1) * intervalMs;
}

/** Condition-triggered heartbeats are at least this far apart (see docs/agent.md for the budget). */
export function conditionSpacingMs(policy: Pick<Policy, 'sampleIntervalMs' | 'heartbeatIntervalMs'>): number {
  return Math.min(5 * MINUTE, Math.max(policy.sampleIntervalMs, policy.heartbeatIntervalMs / 60));
}

/** Samples to keep: the longest window of the policy's sample-based rules, plus a margin. */
export function sampleCapacity(policy: Policy, intervalMs: number): number {
  const longest = Math.max(0, ...policy.rules.map((r) => (typeof r.params.windowMs === 'number' ? r.params.windowMs : 0)));
  return Math.min(MAX_SAMPLES, Math.ceil(longest / intervalMs) + 4);
}

/** Epoch ms of the boot from the text of `<procRoot>/stat` (`btime`), or undefined. */
export function parseBootTime(statText: string): number | undefined {
  const m = /^btime\s+(\d{9,11})\s*$/m.exec(statText);
  return m ? Number(m[1]) * 1000 : undefined;
}

/** Errors that mean the API cannot be reached (after the client's retries). */
export function isUnreachable(e: unknown): boolean {
  if (e instanceof AwsHttpError) return e.statusCode === 0 || e.statusCode >= 500;
  return e instanceof Error && e.name === 'ImdsError';
}

/**
 * Whether powering the OS off may stand in for `action`, given the instance's shutdown
 * behaviour (tag `smvm:shutdown-behavior`, set by the constructs): a poweroff stops or
 * terminates the instance, and must never do more than the decided action. A stop or
 * hibernation only when the behaviour is `stop` (a hibernation then becomes a stop);
 * a termination whatever the behaviour (it then stops the instance at least). Unknown
 * behaviour: only for a termination.
 */
export function poweroffMayDo(action: InstanceAction, behaviour: string | undefined): boolean {
  if (action === 'terminate') return true;
  return (action === 'stop' || action === 'hibernate') && behaviour === 'stop';
}

/** SNS subjects: printable ASCII, one line. */
const asciiSubject = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);

export function createAgent(opts: AgentOptions, io: AgentPorts): Agent {
  const { config, instanceId: id, bootTime: bt } = opts;
  const { aws, log } = io;
  const clock = opts.now ?? Date.now;
  let policy: Policy | undefined;
  let policyTag: string | undefined;
  let policyTries = 0;
  let policyRetryAt = 0;
  let tags: Record<string, string> = {};
  let tagsAt = -Infinity;
  let tagsWarned = false;
  const warned = new Set<string>();
  let disk: AgentState = EMPTY_STATE;
  let samples: Sample[] = [];
  let last: ReturnType<ProcSampler['sample']> | undefined;
  let errors = 0;
  let beatAt = -Infinity;
  let nextBeatAt = 0;
  let beatKey: string | undefined;
  let spacingMs = MINUTE;
  let agentTag: string | undefined;
  let agentTagDirty = false;
  let foreign = new Set<string>();
  let acting = new Set<string>();
  let hard = false;
  let shutdownAt = -Infinity;
  let tasks: Record<string, TaskStatus> = {};
  let timer: NodeJS.Timeout | undefined;
  let busy: Promise<unknown> | undefined;
  let nextAt = 0;
  let stopped = false;

  const intervalMs = () => config.sampleIntervalMs ?? policy?.sampleIntervalMs ?? 10_000;
  const managementId = () => config.managementId ?? tags[MANAGEMENT_ID_TAG];
  const execContext = (): ExecutionContext => {
    const m = managementId();
    return { source: 'agent', policyId: config.policyId, writesCheckpoint: false, ...(m ? { managementIds: new Map([[id, m]]) } : {}) };
  };

  /** Saves the disk state when it changed; false when it could not be written. */
  const persist = (): boolean => {
    try {
      io.store.save(disk);
      return true;
    } catch (e) {
      errors++;
      log.error('state file not written', { error: e });
      return false;
    }
  };

  /** A tag decoded, or undefined (a malformed tag is reported once and ignored). */
  const tag = <T>(name: string, decode: (v: string) => T): T | undefined => {
    const v = tags[name];
    if (!v) return undefined;
    try {
      return decode(v);
    } catch (e) {
      if (!warned.has(name + v)) log.warn('tag ignored', { tag: name, error: e });
      warned.add(name + v);
      return undefined;
    }
  };

  async function publish(e: SmvmEvent): Promise<void> {
    await aws.snsPublish({
      topicArn: config.topicArn,
      message: JSON.stringify(e),
      subject: asciiSubject(e.subject),
      attributes: messageAttributes(e),
    });
    log.info('event published', { event: e });
  }

  /** The episodes tag value, dropping the oldest completed records until it fits. */
  function fitEpisodes(records: readonly EpisodeRecord[]): string {
    const list = [...records];
    for (;;) {
      try {
        return encodeEpisodes(list, AGENT_EPISODES_TAG);
      } catch (e) {
        const i = list.findIndex((r) => !r.pending);
        if (i < 0) throw e;
        list.splice(i, 1);
      }
    }
  }

  /**
   * Saves the agent's own records on disk (authoritative) and in its tag (best effort).
   * An intent (a pending record) must reach the tag before a soft rule's action: if the
   * agent died after acting, the watchdog finishes and announces what the tag shows, and
   * nothing it cannot see. A hard limit is enforced anyway (disk suffices to finish it
   * after a restart, and the OS-shutdown fallback is for when the API is out of reach).
   */
  async function saveEpisodes(records: readonly EpisodeRecord[]): Promise<void> {
    const before = disk;
    const own = records.filter((r) => !foreign.has(key(r)) || acting.has(key(r)));
    disk = { ...disk, episodes: own };
    const onDisk = persist();
    const value = fitEpisodes(own);
    if (value === agentTag) return;
    try {
      await aws.createTags([id], { [AGENT_EPISODES_TAG]: value });
      agentTag = value;
      agentTagDirty = false;
    } catch (e) {
      agentTagDirty = true; // written with the next heartbeat
      log.warn('episodes tag not written', { error: e });
      if (!onDisk) throw e; // remembered nowhere: do not act
      if (!hard && own.some((r) => r.pending)) {
        // Not acting: the intent is withdrawn from disk too; the next tick decides again.
        disk = before;
        persist();
        throw e;
      }
    }
  }

  async function osShutdown(action: InstanceAction, why: string): Promise<void> {
    const now = clock();
    if (now - shutdownAt < MINUTE) return;
    shutdownAt = now;
    const command = config.shutdownCommand;
    log.error('os shutdown', { action, reason: why, command });
    try {
      await io.shutdown(command);
    } catch (e) {
      log.error('os shutdown failed', { command, error: e });
    }
  }

  /**
   * Acts on this instance; for hard limits, falls back to an OS shutdown when the API is
   * unreachable and the instance's shutdown behaviour does no more than the action.
   */
  async function perform(action: InstanceAction): Promise<Map<string, ActionResult>> {
    const ids = [id]; // the agent acts on its own instance only
    let r: ActionResult = { outcome: 'done' };
    try {
      if (action === 'start') r = { outcome: 'skipped', reason: 'not-applicable' };
      else if (action === 'reboot') await aws.rebootInstances(ids);
      else if (action === 'terminate') await aws.terminateInstances(ids);
      else {
        try {
          await aws.stopInstances(ids, { hibernate: action === 'hibernate' });
        } catch (e) {
          if (
            action !== 'hibernate' ||
            !(e instanceof AwsHttpError) ||
            !/^Unsupported|InvalidParameter|IncorrectInstanceState/.test(e.code)
          )
            throw e;
          await aws.stopInstances(ids);
          r = { outcome: 'fallback', performed: 'stop', reason: e.code };
        }
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (e instanceof AwsHttpError && e.code === 'OperationNotPermitted') {
        r = { outcome: 'skipped', reason: action === 'terminate' ? 'termination-protection' : 'stop-protection', detail: msg };
      } else if (hard && isUnreachable(e) && poweroffMayDo(action, tags[SHUTDOWN_BEHAVIOR_TAG])) {
        await osShutdown(action, msg);
        r = { outcome: 'failed', error: `${msg}; OS shutdown requested` };
      } else r = { outcome: 'failed', error: msg };
    }
    log.info('action performed', { action, result: r });
    return new Map([[id, r]]);
  }

  const ports: ExecutorPorts = { perform, saveState: (_i, s) => saveEpisodes(s.episodes ?? disk.episodes), publish };

  async function loadPolicyNow(now: number, want: string | undefined): Promise<void> {
    try {
      const p = loadPolicy(JSON.parse(await aws.ssmGetParameter(config.policyParameter)) as unknown);
      const before = intervalMs();
      if (p.hash !== policy?.hash) {
        log.info('policy loaded', { policy_hash: p.hash, versionTag: want, rules: p.rules.map((r) => r.name) });
        log.appendKeys({ policy_hash: p.hash });
      }
      policy = p;
      if (intervalMs() !== before && timer) {
        // A new sampling interval: the next sample comes one new interval from now.
        clearTimeout(timer);
        nextAt = now;
        timer = setTimeout(step, intervalMs());
      }
      policyRetryAt = 0;
      // The tag names the deployed document: until SSM shows it, look again a few times.
      if (want === undefined || p.hash === want || ++policyTries >= 3) {
        policyTag = want;
        policyTries = 0;
      } else policyRetryAt = now + 30_000;
    } catch (e) {
      // Unreadable or invalid (the watchdog announces invalid documents): keep the last good
      // policy and look again later, backing off to 5 minutes.
      log.error('policy not loaded', { error: e, parameter: config.policyParameter });
      policyRetryAt = now + Math.min(5 * MINUTE, 10_000 * 2 ** Math.min(5, policyTries++));
    }
  }

  /** Reads the instance tags; loads the policy at start and when its version tag changes. */
  async function refresh(now: number): Promise<void> {
    try {
      const t = await io.imds.tags();
      tags = t.tags;
      tagsAt = now;
      if (!t.enabled && !tagsWarned) {
        tagsWarned = true;
        log.warn('instance metadata tags disabled');
      }
    } catch (e) {
      errors++;
      log.warn('tags unavailable', { error: e });
    }
    const want = tags[POLICY_VERSION_TAG];
    if ((!policy || (want !== undefined && want !== policyTag)) && now >= policyRetryAt) await loadPolicyNow(now, want);
  }

  /** What the agent sees of itself now. */
  function observe(now: number, p: Policy): Observation {
    const watchdogCp = tag(STATE_TAG, decodeCheckpoint);
    let cp: Checkpoint | undefined = watchdogCp ?? disk.checkpoint;
    // A checkpoint still "running" since an earlier boot missed the stop: close that run
    // when the agent was last alive, so the stopped gap does not count as running.
    if (cp && cp.state === 'running' && bt !== undefined && cp.since < bt - RUN_TOLERANCE_MS) {
      const alive = opts.lastAliveAt !== undefined && opts.lastAliveAt < bt ? opts.lastAliveAt : cp.since;
      cp = transition(cp, 'stopped', Math.min(bt, Math.max(cp.since, alive)), tariffOf(p, undefined));
    }
    // The agent's tag as the agent last wrote it (instance metadata may show an older value).
    const ownTag = agentTag ?? tags[AGENT_EPISODES_TAG];
    let tagged: EpisodeRecord[] = [];
    try {
      tagged = ownTag ? decodeEpisodes(ownTag, AGENT_EPISODES_TAG) : [];
    } catch (e) {
      if (!warned.has(AGENT_EPISODES_TAG + ownTag)) log.warn('tag ignored', { tag: AGENT_EPISODES_TAG, error: e });
      warned.add(AGENT_EPISODES_TAG + ownTag);
    }
    const own = mergeEpisodes(disk.episodes, tagged);
    const theirs = tag(EPISODES_TAG, decodeEpisodes) ?? [];
    const ownKeys = new Set(own.map(key));
    foreign = new Set(theirs.map(key).filter((k) => !ownKeys.has(k)));
    const snooze = tag(SNOOZE_TAG, decodeSnooze);
    const sent = last?.netOutBytesTotal;
    const runSince =
      watchdogCp?.state === 'running' && bt !== undefined && watchdogCp.since >= bt - RUN_TOLERANCE_MS && watchdogCp.since <= now;
    return {
      instanceId: id,
      host: 'agent',
      state: 'running',
      stateSince: runSince ? watchdogCp.since : bt,
      netOutBytes: sent === undefined ? undefined : (disk.netOutBase ?? 0) + sent,
      checkpoint: cp,
      episodes: mergeEpisodes(own, theirs),
      overrides: { snoozeUntil: snooze?.until, ...tag(EXTEND_TAG, decodeExtensions) },
      samples,
      samplePeriodMs: intervalMs(),
      tasks,
    };
  }

  /**
   * Finishes actions that a crashed or failed run left pending: confirms and announces
   * them, or resets them for the engine to decide again now, or abandons them.
   */
  async function finishOwnPending(now: number): Promise<void> {
    const pending = disk.episodes.filter((r) => r.pending && r.actedAt !== undefined);
    if (pending.length === 0) return;
    // Running again in a later boot means that a stop or hibernate took effect.
    const state = pending.some((r) => bt !== undefined && r.actedAt! < bt) ? 'stopped' : 'running';
    hard = false;
    acting = new Set(pending.map(key));
    await finishPending([{ instanceId: id, state, records: disk.episodes }], ports, execContext(), now);
  }

  /**
   * Heartbeat tag: at the policy's interval (each instance at its own seeded phase) and
   * soon after the reported conditions change (spaced, backing off when throttled).
   */
  async function heartbeat(now: number, p: Policy, d: Decision, condKey: string): Promise<void> {
    if (!(now >= nextBeatAt || (now - beatAt >= spacingMs && (condKey !== beatKey || agentTagDirty)))) return;
    const sent = last?.netOutBytesTotal;
    const report = {
      at: now,
      cpuPercent: last?.cpuPercent,
      netBytesPerSec: last?.netBytesPerSec,
      loginSessions: last?.loginSessions,
      netOutBytes: sent === undefined ? undefined : (disk.netOutBase ?? 0) + sent,
      version: opts.version,
      conditions: d.conditions,
    };
    const out: Record<string, string> = {};
    try {
      out[HEARTBEAT_TAG] = encodeHeartbeat(report);
    } catch (e) {
      log.warn('heartbeat too long', { error: e });
      out[HEARTBEAT_TAG] = encodeHeartbeat({ ...report, conditions: {} });
    }
    if (agentTagDirty) out[AGENT_EPISODES_TAG] = fitEpisodes(disk.episodes);
    try {
      await aws.createTags([id], out);
      beatAt = now;
      beatKey = condKey;
      nextBeatAt = nextHeartbeatSlot(now, p.heartbeatIntervalMs, id);
      spacingMs = conditionSpacingMs(p);
      if (agentTagDirty) agentTag = out[AGENT_EPISODES_TAG];
      agentTagDirty = false;
      if (sent !== undefined) disk = { ...disk, netOutLast: sent };
      persist();
      log.debug('heartbeat written', { heartbeat: out[HEARTBEAT_TAG] });
    } catch (e) {
      const throttled = e instanceof AwsHttpError && /Throttl|LimitExceeded/.test(e.code);
      spacingMs = Math.min(p.heartbeatIntervalMs, spacingMs * (throttled ? 2 : 1));
      beatAt = now;
      nextBeatAt = now + spacingMs;
      log.warn('heartbeat not written', { error: e, retryInMs: spacingMs });
    }
  }

  async function decide(now: number): Promise<Decision | undefined> {
    if (!policy || now - tagsAt >= Math.min(TAGS_EVERY_MS, 6 * intervalMs())) await refresh(now);
    const p = policy;
    if (!p) return undefined;
    const specs = taskSpecs(p);
    if (specs.length > 0) {
      const c = await io.tasks.check(specs, disk.tasks, now, bt);
      tasks = c.tasks;
      if (c.changed) {
        disk = { ...disk, tasks: c.memory };
        persist();
      }
    }
    await finishOwnPending(now);
    let d = evaluate(p, observe(now, p), now);
    if ((d.action || d.warnings.length > 0) && tagsAt < now) {
      // Confirm with fresh tags (a snooze or an extension may have just arrived) before acting.
      await refresh(now);
      if (policy !== p) return undefined; // the policy changed: decide at the next tick
      d = evaluate(p, observe(now, p), now);
    }
    if (JSON.stringify(d.checkpoint) !== JSON.stringify(disk.checkpoint)) {
      disk = { ...disk, checkpoint: d.checkpoint };
      persist();
    }
    // A condition that falls due changes the key too: the report then shows it held for its
    // whole window, which is what the watchdog needs to act on it (should the agent fail to).
    const held = new Set(d.rules.filter((r) => r.status === 'due' || r.status === 'acted').map((r) => r.rule));
    const condKey = Object.keys(d.conditions)
      .sort()
      .map((r) => `${r}@${Math.floor(d.conditions[r] / 1000)}${held.has(r) ? '!' : ''}`)
      .join(',');
    log[d.action || d.warnings.length > 0 || condKey !== beatKey ? 'info' : 'debug']('decision made', { decision: d });
    hard = !!d.action?.hard;
    acting = new Set([...(d.action?.rules ?? []), ...d.warnings].map(key));
    const report = await executeAll([d], ports, execContext());
    for (const e of report.errors) log.error('action failed', { error: e.error });
    await heartbeat(now, p, d, condKey);
    return d;
  }

  /** One timer step: sample, decide unless a decision is in flight, schedule the next at a fixed rate. */
  function step(): void {
    if (stopped) return;
    const now = clock();
    sample(now);
    busy ??= decide(now)
      .catch((e: unknown) => log.error('tick failed', { error: e }))
      .finally(() => (busy = undefined));
    nextAt = Math.max(nextAt + intervalMs(), clock() + 10);
    timer = setTimeout(step, nextAt - clock());
  }

  function sample(now: number): void {
    const s = io.sampler.sample(now);
    last = s;
    samples.push({
      at: now,
      cpuPercent: s.cpuPercent,
      netBytesPerSec: s.netBytesPerSec,
      loginSessions: s.loginSessions,
      agentErrors: errors,
    });
    errors = 0;
    const cap = policy ? sampleCapacity(policy, intervalMs()) : 8;
    if (samples.length > cap) samples = samples.slice(-cap);
    try {
      io.writeHeartbeatFile(Math.floor((now + 3 * intervalMs() + MINUTE) / 1000));
    } catch (e) {
      errors++;
      log.warn('heartbeat file not written', { error: e });
    }
  }

  return {
    intervalMs,
    sample,
    decide,
    start() {
      const loaded = io.store.load();
      if (loaded.problem) log.warn('state file damaged', { problem: loaded.problem });
      disk = loaded.state;
      if (bt !== undefined && disk.bootTime !== bt) {
        // A new boot: watched tasks start over; the bytes sent so far move to the base.
        disk = { ...disk, bootTime: bt, tasks: {}, netOutBase: (disk.netOutBase ?? 0) + (disk.netOutLast ?? 0), netOutLast: 0 };
        persist();
      }
      last = io.sampler.sample(clock()); // primes the rates
    },
    run() {
      nextAt = clock();
      step();
    },
    async stop(waitMs = 20_000) {
      stopped = true;
      clearTimeout(timer);
      if (busy) await Promise.race([busy, new Promise((r) => setTimeout(r, waitMs).unref())]);
      persist();
    },
  };
}
