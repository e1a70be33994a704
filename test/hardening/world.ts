/**
 * The hardening tests' world: moto behind the fault proxy, a policy's topic, queue and
 * parameter, a mixed fleet, and the two real hosts wired to it — the watchdog
 * (`createWatchdog` with an injected clock) and agents (the agent's `Agent` with its
 * lean AWS client, a scripted /proc sampler, tags from a snapshot standing in for
 * instance metadata, and an in-memory disk).
 *
 * Every caller signs with its own access key id (`operator`, `watchdog`, `agent-<id>`,
 * `os-<id>`), so the proxy's log says who did what. Clients are wrapped to log their
 * *logical* calls (one per SDK `send` or agent client method, whatever the retries
 * underneath) and can be made to crash at their k-th call, before or after it.
 */
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { PricingClient } from '@aws-sdk/client-pricing';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { createAwsClient, type AwsClient as AgentAwsClient } from '../../lambda-agent/adapters/agent/aws-http';
import type { ProcSampler, Sample as ProcSample } from '../../lambda-agent/adapters/agent/proc';
import type { AwsClient } from '../../lambda-agent/adapters/ec2';
import { createAgent, type Agent } from '../../lambda-agent/agent/loop';
import { EMPTY_STATE, type AgentState, type StateStore } from '../../lambda-agent/agent/state-file';
import type { TaskWatcher } from '../../lambda-agent/agent/tasks';
import { policyParameterName } from '../../lambda-agent/contract/env';
import { parseEvent, type SmvmEvent } from '../../lambda-agent/contract/events';
import { POLICY_TAG, POLICY_VERSION_TAG, MANAGEMENT_ID_TAG } from '../../lambda-agent/contract/tags';
import { createLogger, type Logger } from '../../lambda-agent/log';
import type { Policy, PolicyDocument } from '../../lambda-agent/policy/model';
import { loadPolicy } from '../../lambda-agent/policy/parse';
import { createWatchdog, type Watchdog } from '../../lambda-agent/watchdog/watchdog';
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from '../support/fault-proxy';
import type { MotoServer } from '../support/moto';

/** Attempts the deployed watchdog makes per call (watchdog/clients.ts). */
export const WATCHDOG_EC2_ATTEMPTS = 8;
export const WATCHDOG_OTHER_ATTEMPTS = 4;
/** Per-attempt timeout of the test clients (the proxy's `timeout` fault waits for it). */
export const CLIENT_TIMEOUT_MS = 700;

/** A crash of the host at its k-th logical call: every later call fails too (the process is gone). */
export class CrashError extends Error {
  constructor(where: string) {
    super(`crash injected ${where}`);
    this.name = 'CrashError';
  }
}

/** One logical call (a `send`, or an agent client method), whatever the retries underneath. */
export interface LogicalCall {
  readonly principal: string;
  readonly service: string;
  readonly action: string;
  readonly instanceIds: readonly string[];
  readonly tags?: Readonly<Record<string, string>>;
  /** SNS Publish: the event. */
  readonly event?: SmvmEvent;
  /** The test clock. */
  readonly time: number;
  /** Proxy calls recorded before this one started (orders logical calls among transitions). */
  readonly proxySeqBefore: number;
  ok?: boolean;
  error?: string;
}

/** Crash plan shared by one host's clients. */
export interface Crasher {
  /** Crash at this logical call (0-based) … */
  at?: number;
  /** … before it is sent, or after it took effect. */
  phase?: 'before' | 'after';
  /** Calls seen so far. */
  calls: number;
  crashed: boolean;
}

export function newCrasher(at?: number, phase: 'before' | 'after' = 'before'): Crasher {
  return { ...(at === undefined ? {} : { at, phase }), calls: 0, crashed: false };
}

/**
 * A retry strategy with the deployed attempts but compressed backoff (ms instead of
 * seconds), so a test can run thousands of faulted calls. Retries exactly what the
 * SDK's standard strategy retries: throttling, transient (timeouts, resets) and 5xx.
 */
export function fastRetryStrategy(maxAttempts: number, baseMs = 4) {
  const token = (count: number, delay: number) => ({ getRetryCount: () => count, getRetryDelay: () => delay, getRetryCost: () => 0 });
  return {
    mode: 'standard',
    acquireInitialRetryToken: async () => token(0, 0),
    refreshRetryTokenForRetry: async (t: { getRetryCount(): number }, info: { errorType: string }) => {
      const next = t.getRetryCount() + 1;
      if (next >= maxAttempts || info.errorType === 'CLIENT_ERROR') throw new Error('no retry');
      return token(next, Math.min(60, baseMs * 2 ** (next - 1)));
    },
    recordSuccess: () => undefined,
  };
}

function commandName(command: unknown): string {
  return String((command as { constructor?: { name?: string } })?.constructor?.name ?? 'Unknown').replace(/Command$/, '');
}

/** Instance ids and tags named by an SDK command's input. */
function describeInput(action: string, input: Record<string, unknown>): Pick<LogicalCall, 'instanceIds' | 'tags' | 'event'> {
  const ids = ((input.InstanceIds as string[] | undefined) ?? (input.Resources as string[] | undefined) ?? []).slice();
  const tagList = input.Tags as Array<{ Key?: string; Value?: string }> | undefined;
  const tags =
    /^(CreateTags|DeleteTags)$/.test(action) && tagList ? Object.fromEntries(tagList.map((t) => [t.Key ?? '', t.Value ?? ''])) : undefined;
  let event: SmvmEvent | undefined;
  if (action === 'Publish' && typeof input.Message === 'string') {
    try {
      event = parseEvent(input.Message);
    } catch {
      event = undefined;
    }
  }
  return { instanceIds: ids, ...(tags ? { tags } : {}), ...(event ? { event } : {}) };
}

export interface SimClock {
  now: number;
}

export interface WorldOptions {
  readonly moto: MotoServer;
  readonly seed: number;
  /** Start of the test clock (epoch ms). @default - the next whole hour from now */
  readonly start?: number;
  readonly proxy?: Partial<FaultProxyOptions>;
}

/** What the soak's fleet is made of. */
export type FleetKind = 'policy' | 'other-policy' | 'prefix-sharing' | 'unmanaged' | 'case-variant';

export interface FleetInstance {
  readonly id: string;
  readonly kind: FleetKind;
  readonly tags: Readonly<Record<string, string>>;
  readonly launchedAt: number;
}

export interface AgentHandle {
  readonly id: string;
  agent: Agent;
  readonly store: MemoryStore;
  readonly crasher: Crasher;
  /** Boot time of the current incarnation's instance run. */
  bootTime: number;
  incarnation: number;
}

/** The agent's disk, in memory: survives the agent (a kill), not the test. */
export class MemoryStore implements StateStore {
  readonly path = '/mem/agent-state.json';
  private text?: string;
  load(): { state: AgentState; problem?: string } {
    return { state: this.text ? (JSON.parse(this.text) as AgentState) : EMPTY_STATE };
  }
  save(state: AgentState): boolean {
    const t = JSON.stringify(state);
    if (t === this.text) return false;
    this.text = t;
    return true;
  }
  get state(): AgentState {
    return this.load().state;
  }
}

/** A scripted /proc: the sample of an instance at a time comes from the test's usage function. */
export function scriptedSampler(usage: (at: number) => { cpuPercent: number; netBytesPerSec: number }): ProcSampler {
  let sent = 0;
  let last: number | undefined;
  return {
    sample(at: number): ProcSample {
      const u = usage(at);
      if (last !== undefined && at > last) sent += (u.netBytesPerSec / 2) * ((at - last) / 1000);
      last = at;
      return {
        at,
        cpuPercent: u.cpuPercent,
        netBytesPerSec: u.netBytesPerSec,
        netInBytesPerSec: u.netBytesPerSec / 2,
        netOutBytesPerSec: u.netBytesPerSec / 2,
        netOutBytesTotal: Math.round(sent),
        loginSessions: 0,
      };
    },
  };
}

const NO_TASKS: TaskWatcher = { check: async () => ({ tasks: {}, memory: {}, changed: false }) };

export class World {
  readonly clock: SimClock;
  readonly logical: LogicalCall[] = [];
  readonly delivered: Array<{ event: SmvmEvent; receivedAt: number }> = [];
  readonly logLines: string[] = [];
  readonly fleet: FleetInstance[] = [];
  /** Tags of every instance as of the last {@link snapshotTags}. */
  readonly tags = new Map<string, Record<string, string>>();
  policy!: Policy;
  topicArn = '';
  queueUrl = '';
  proxy!: FaultProxy;
  private operatorEc2!: EC2Client;
  private sqs!: SQSClient;

  private constructor(
    readonly moto: MotoServer,
    readonly seed: number,
    start: number,
  ) {
    this.clock = { now: start };
  }

  static async create(opts: WorldOptions): Promise<World> {
    const start = opts.start ?? Math.ceil((Date.now() + 60_000) / 3_600_000) * 3_600_000;
    const w = new World(opts.moto, opts.seed, start);
    w.proxy = await startFaultProxy({
      target: opts.moto.endpoint,
      seed: opts.seed,
      clock: () => w.clock.now,
      ec2Fidelity: true,
      hangMs: 10_000,
      ...opts.proxy,
    });
    w.operatorEc2 = new EC2Client(w.operatorSdk());
    w.sqs = new SQSClient(opts.moto.sdkConfig());
    return w;
  }

  get now(): number {
    return this.clock.now;
  }

  /** SDK client config for a caller, through the proxy, with the deployed attempts and compressed backoff. */
  sdk(principal: string, maxAttempts = WATCHDOG_OTHER_ATTEMPTS, timeoutMs = CLIENT_TIMEOUT_MS) {
    return {
      region: this.moto.region,
      endpoint: this.proxy.endpoint,
      credentials: { accessKeyId: principal, secretAccessKey: 'x' },
      maxAttempts,
      retryStrategy: fastRetryStrategy(maxAttempts) as any,
      requestHandler: { requestTimeout: timeoutMs, throwOnRequestTimeout: true },
    };
  }

  /** The people's and the test's own client config: never faulted, never retried, patient. */
  operatorSdk(principal = 'operator') {
    return this.sdk(principal, 1, 30_000);
  }

  /** Wraps an SDK client: logs logical calls, crashes as planned. */
  wrap(principal: string, service: string, client: AwsClient, crasher?: Crasher): AwsClient {
    return {
      send: async (command: any, options?: any) => {
        const action = commandName(command);
        const input = (command?.input ?? {}) as Record<string, unknown>;
        const entry: LogicalCall = {
          principal,
          service,
          action,
          ...describeInput(action, input),
          time: this.now,
          proxySeqBefore: this.proxy.calls.length,
        };
        this.logical.push(entry);
        return this.crashing(crasher, entry, () => client.send(command, options));
      },
    };
  }

  private async crashing<T>(crasher: Crasher | undefined, entry: LogicalCall, call: () => Promise<T>): Promise<T> {
    if (crasher) {
      const index = crasher.calls++;
      if (crasher.crashed) {
        entry.ok = false;
        entry.error = 'CrashError';
        throw new CrashError(`(process already gone, call ${index})`);
      }
      if (crasher.at === index && crasher.phase === 'before') {
        crasher.crashed = true;
        entry.ok = false;
        entry.error = 'CrashError';
        throw new CrashError(`before call ${index} (${entry.action})`);
      }
      if (crasher.at === index && crasher.phase === 'after') {
        crasher.crashed = true;
        try {
          await call();
        } catch {
          /* the process dies anyway */
        }
        entry.ok = false;
        entry.error = 'CrashError';
        throw new CrashError(`after call ${index} (${entry.action})`);
      }
    }
    try {
      const out = await call();
      entry.ok = true;
      return out;
    } catch (e) {
      entry.ok = false;
      entry.error = (e as Error).name;
      throw e;
    }
  }

  logger(service: string): Logger {
    return createLogger({ service, level: 'warn', clock: () => this.now, sink: (line) => this.logLines.push(line) });
  }

  // ------------------------------------------------------------ set-up

  /** Topic, queue subscribed to it, and the policy parameter. */
  async setUp(doc: PolicyDocument): Promise<void> {
    this.policy = loadPolicy(doc);
    const sns = new SNSClient(this.moto.sdkConfig());
    this.topicArn = (await sns.send(new CreateTopicCommand({ Name: `smvm-${doc.id}` }))).TopicArn!;
    this.queueUrl = (await this.sqs.send(new CreateQueueCommand({ QueueName: `events-${doc.id}` }))).QueueUrl!;
    const arn = (await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!
      .QueueArn!;
    await sns.send(
      new SubscribeCommand({ TopicArn: this.topicArn, Protocol: 'sqs', Endpoint: arn, Attributes: { RawMessageDelivery: 'true' } }),
    );
    await new SSMClient(this.moto.sdkConfig()).send(
      new PutParameterCommand({ Name: policyParameterName(doc.id), Value: JSON.stringify(doc), Type: 'String', Overwrite: true }),
    );
  }

  /** Launches instances through the proxy (so launch times are on the test clock). */
  async launch(kind: FleetKind, count: number, tags: Record<string, string>, instanceType = 't3.micro'): Promise<FleetInstance[]> {
    const out = await this.operatorEc2.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        ClientToken: `launch-${this.fleet.length}-${this.now}`,
        InstanceType: instanceType as any,
        MinCount: count,
        MaxCount: count,
        ...(Object.keys(tags).length
          ? { TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] }
          : {}),
      }),
    );
    const made = out.Instances!.map((i) => ({ id: i.InstanceId!, kind, tags, launchedAt: this.now }));
    this.fleet.push(...made);
    return made;
  }

  /** The tags an instance of `policy` carries from the constructs. */
  policyTags(policy: Policy, n: number): Record<string, string> {
    return {
      [POLICY_TAG]: policy.id,
      [POLICY_VERSION_TAG]: policy.hash,
      [MANAGEMENT_ID_TAG]: `smvm-${policy.id}-${(0xa00000000000 + n).toString(16)}`,
    };
  }

  // ------------------------------------------------------------ people

  async personStart(id: string): Promise<void> {
    await this.operatorEc2.send(new StartInstancesCommand({ InstanceIds: [id] }));
  }
  async personStop(id: string): Promise<void> {
    await this.operatorEc2.send(new StopInstancesCommand({ InstanceIds: [id] }));
  }
  async personTerminate(id: string): Promise<void> {
    await this.operatorEc2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
  }
  async personTag(id: string, tags: Record<string, string>): Promise<void> {
    await this.operatorEc2.send(
      new CreateTagsCommand({ Resources: [id], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }),
    );
  }
  /** A host's shutdown from inside the OS (the agent's last resort), as its own caller. */
  async osShutdown(id: string, behaviour: 'stop' | 'terminate'): Promise<void> {
    const ec2 = new EC2Client(this.operatorSdk(`os-${id}`));
    await ec2.send(
      behaviour === 'terminate' ? new TerminateInstancesCommand({ InstanceIds: [id] }) : new StopInstancesCommand({ InstanceIds: [id] }),
    );
  }

  // ------------------------------------------------------------ observation

  async describeAll(): Promise<Instance[]> {
    const out: Instance[] = [];
    let token: string | undefined;
    do {
      const r = await this.operatorEc2.send(new DescribeInstancesCommand({ ...(token ? { NextToken: token } : {}) }));
      for (const res of r.Reservations ?? []) out.push(...(res.Instances ?? []));
      token = r.NextToken;
    } while (token);
    return out;
  }

  /** Refreshes {@link tags} and returns every instance's state. */
  async snapshotTags(): Promise<Map<string, string>> {
    const states = new Map<string, string>();
    for (const i of await this.describeAll()) {
      this.tags.set(i.InstanceId!, Object.fromEntries((i.Tags ?? []).map((t) => [t.Key!, t.Value ?? ''])));
      states.set(i.InstanceId!, i.State?.Name ?? 'unknown');
    }
    return states;
  }

  /** Receives everything the queue holds (raw delivery: the body is the event). */
  async drainEvents(): Promise<number> {
    let n = 0;
    for (;;) {
      const r = await this.sqs.send(new ReceiveMessageCommand({ QueueUrl: this.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      const msgs = r.Messages ?? [];
      if (msgs.length === 0) return n;
      for (const m of msgs) {
        try {
          this.delivered.push({ event: parseEvent(m.Body ?? ''), receivedAt: this.now });
        } catch (e) {
          this.logLines.push(JSON.stringify({ level: 'ERROR', message: 'undecodable event on the queue', body: m.Body, error: String(e) }));
        }
      }
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
      n += msgs.length;
    }
  }

  // ------------------------------------------------------------ hosts

  /** The real watchdog, its clients through the proxy as `principal`, on the test clock. */
  watchdog(opts: { principal?: string; crasher?: Crasher; scheduleSeconds?: number } = {}): Watchdog {
    const p = opts.principal ?? 'watchdog';
    const c = opts.crasher;
    return createWatchdog({
      ec2: this.wrap(p, 'ec2', new EC2Client(this.sdk(p, WATCHDOG_EC2_ATTEMPTS)), c),
      sns: this.wrap(p, 'sns', new SNSClient(this.sdk(p)), c),
      ssm: this.wrap(p, 'ssm', new SSMClient(this.sdk(p)), c),
      cloudwatch: this.wrap(p, 'monitoring', new CloudWatchClient(this.sdk(p)), c),
      pricing: this.wrap(p, 'pricing', new PricingClient(this.sdk(p)), c),
      clock: { now: () => this.now },
      env: {
        SMVM_POLICY_ID: this.policy.id,
        SMVM_TOPIC_ARN: this.topicArn,
        SMVM_SCHEDULE_SECONDS: String(opts.scheduleSeconds ?? 300),
        AWS_REGION: this.moto.region,
      },
      logger: this.logger('smvm-watchdog'),
    });
  }

  /** The lean agent client of an instance, through the proxy, logged and crashable. */
  agentClient(id: string, crasher: Crasher, random: () => number): AgentAwsClient {
    const principal = `agent-${id}`;
    const raw = createAwsClient({
      region: this.moto.region,
      endpoint: this.proxy.endpoint,
      credentials: async () => ({ accessKeyId: principal, secretAccessKey: 'x', sessionToken: 'session' }),
      maxAttempts: 4,
      timeoutMs: CLIENT_TIMEOUT_MS,
      baseDelayMs: 4,
      maxDelayMs: 40,
      random,
    });
    const log = <T>(service: string, action: string, extra: Partial<LogicalCall>, call: () => Promise<T>): Promise<T> => {
      const entry: LogicalCall = {
        principal,
        service,
        action,
        instanceIds: [],
        ...extra,
        time: this.now,
        proxySeqBefore: this.proxy.calls.length,
      };
      this.logical.push(entry);
      return this.crashing(crasher, entry, call);
    };
    return {
      ec2: (action, params) => log('ec2', action, {}, () => raw.ec2(action, params)),
      stopInstances: (ids, o) => log('ec2', 'StopInstances', { instanceIds: [...ids] }, () => raw.stopInstances(ids, o)),
      rebootInstances: (ids) => log('ec2', 'RebootInstances', { instanceIds: [...ids] }, () => raw.rebootInstances(ids)),
      terminateInstances: (ids) => log('ec2', 'TerminateInstances', { instanceIds: [...ids] }, () => raw.terminateInstances(ids)),
      createTags: (ids, tags) => log('ec2', 'CreateTags', { instanceIds: [...ids], tags: { ...tags } }, () => raw.createTags(ids, tags)),
      ssmGetParameter: (name) => log('ssm', 'GetParameter', {}, () => raw.ssmGetParameter(name)),
      snsPublish: (input) => {
        let event: SmvmEvent | undefined;
        try {
          event = parseEvent(input.message);
        } catch {
          event = undefined;
        }
        return log('sns', 'Publish', event ? { event } : {}, () => raw.snsPublish(input));
      },
      s3GetObject: (bucket, key) => log('s3', 'GetObject', {}, () => raw.s3GetObject(bucket, key)),
    };
  }

  /**
   * A new incarnation of an instance's agent (a boot, or a restart after a kill): same
   * disk, fresh memory. `tags` stands for instance metadata; `usage` for /proc.
   */
  agent(opts: {
    id: string;
    store: MemoryStore;
    bootTime: number;
    usage: (at: number) => { cpuPercent: number; netBytesPerSec: number };
    crasher?: Crasher;
    random: () => number;
    imdsFault?: () => boolean;
    shutdownBehaviour?: 'stop' | 'terminate';
    onShutdown?: (id: string) => void;
    lastAliveAt?: number;
  }): { agent: Agent; crasher: Crasher } {
    const crasher = opts.crasher ?? newCrasher();
    const aws = this.agentClient(opts.id, crasher, opts.random);
    const id = opts.id;
    const agent = createAgent(
      {
        config: {
          home: '/etc/smvm',
          policyId: this.policy.id,
          region: this.moto.region,
          topicArn: this.topicArn,
          policyParameter: policyParameterName(this.policy.id),
          stateDir: '/var/lib/smvm',
          utmpPath: '/run/utmp',
          systemctl: 'systemctl',
          procRoot: '/proc',
          shutdownCommand: 'systemctl poweroff',
          logLevel: 'warn',
        },
        instanceId: id,
        version: 'soak',
        bootTime: opts.bootTime,
        ...(opts.lastAliveAt !== undefined ? { lastAliveAt: opts.lastAliveAt } : {}),
        now: () => this.now,
      },
      {
        imds: {
          tags: async () => {
            if (crasher.crashed) throw new CrashError('(process already gone: imds)');
            if (opts.imdsFault?.()) {
              const e = new Error('imds: /latest/meta-data/tags/instance: HTTP 503 (after 3 attempts)');
              e.name = 'ImdsError';
              throw e;
            }
            return { tags: { ...(this.tags.get(id) ?? {}) }, enabled: true };
          },
        },
        aws,
        sampler: scriptedSampler(opts.usage),
        tasks: NO_TASKS,
        store: opts.store,
        log: this.logger('smvm-agent').child({ component: 'agent', instance_id: id }),
        shutdown: async () => {
          opts.onShutdown?.(id);
          await this.osShutdown(id, opts.shutdownBehaviour ?? 'stop');
        },
        writeHeartbeatFile: () => undefined,
      },
    );
    agent.start();
    return { agent, crasher };
  }

  /** Publishes an event as the operator (a CLI stand-in, for tests that need one). */
  async publishAsOperator(event: SmvmEvent): Promise<void> {
    await new SNSClient(this.operatorSdk()).send(new PublishCommand({ TopicArn: this.topicArn, Message: JSON.stringify(event) }));
  }

  async close(): Promise<void> {
    await this.proxy.close();
  }
}

export { scheduledEvent, stateChangeEvent } from '../support/eventbridge';
