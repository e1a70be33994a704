/**
 * `npm start`: the library's whole story on an embedded local cloud, in about a minute.
 *
 * 1. synthesizes the example stacks into cdktf.out/ (offline);
 * 2. starts moto (a local AWS emulator) on a free loopback port;
 * 3. synthesizes the demo stack (one policy, three instances) and applies its run-time
 *    resources to moto from the Terraform JSON (apply.ts);
 * 4. launches the fleet, runs a REAL agent process for instance A (installed from the
 *    S3 artifact, a fake IMDS, a fake /proc switched from busy to idle) and the
 *    SYNTHESIZED watchdog bundle on a 5-second schedule and at every state change, and
 *    prints the timeline read from the topic;
 * 5. prints the usage report (the smvm CLI's `report`) and cleans everything up, also on
 *    Ctrl-C or error.
 *
 * {@link runDemo} returns the milestones it saw, so the integration test can check them.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Table from 'cli-table3';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { run as smvm } from '../../lambda-agent/cli/main';
import type { CliContext } from '../../lambda-agent/cli/context';
import type { AgentConfigDocument } from '../../lambda-agent/contract/bootstrap';
import {
  AWS_ENDPOINT_URL_ENV_VAR,
  AGENT_CONFIG_FILE,
  AGENT_HOME_ENV_VAR,
  IMDS_ENDPOINT_ENV_VAR,
  LOG_LEVEL_ENV_VAR,
  MANAGEMENT_ID_FILE,
  PROC_ROOT_ENV_VAR,
  SCHEDULE_SECONDS_ENV_VAR,
  SHUTDOWN_COMMAND_ENV_VAR,
  agentArtifactParameterName,
  policyParameterName,
  topicParameterName,
} from '../../lambda-agent/contract/env';
import { parseEvent, type SmvmEvent } from '../../lambda-agent/contract/events';
import { decodeHeartbeat } from '../../lambda-agent/contract/state';
import { HEARTBEAT_TAG, MANAGEMENT_ID_TAG, POLICY_TAG, POLICY_VERSION_TAG } from '../../lambda-agent/contract/tags';
import { formatDuration } from '../../lambda-agent/policy/duration';
import { createProcRoot, spawnAgent, type AgentProcess, type ProcRoot } from '../../test/agent/harness';
import { startFakeImds, type FakeImds } from '../../test/support/fake-imds';
import { FAKE_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../../test/support/moto';
import { deployPolicy, launchInstances, type DeployedPolicy, type LaunchedInstance } from './apply';
import { BUSY_FOR_MS, chooseDemoPolicy, ruleMs, type DemoPolicy } from './policy';
import { DEMO_AMI, DEMO_INSTANCES, synthDemoStack, type InstanceLabel } from './stack';
import { startWatchdogHost, type InvocationResult, type WatchdogHost } from './watchdog-host';

/** Seconds between the watchdog's scheduled runs in the demo (EventBridge's minimum is a minute). */
export const DEMO_SCHEDULE_SECONDS = 5;

export type MilestoneKind =
  | 'synthesized'
  | 'cloud-started'
  | 'deployed'
  | 'launched'
  | 'operator'
  | 'agent-started'
  | 'first-heartbeat'
  | 'load-idle'
  | 'idle-reported'
  | 'idle-warning'
  | 'idle-stop'
  | 'heartbeat-lost'
  | 'lifetime-warning'
  | 'lifetime-stop'
  | 'state-change'
  | 'agent-exited'
  | 'report';

export interface Milestone {
  readonly kind: MilestoneKind;
  /** ms since the fleet was launched (negative: before). */
  readonly at: number;
  readonly instance?: InstanceLabel;
  /** Which guard (or who) did it. */
  readonly by?: string;
  readonly text: string;
}

export interface DemoOptions {
  /** Where the example stacks are synthesized. @default 'cdktf.out' */
  readonly outdir?: string;
  /** Receives every line of output. @default console.log */
  readonly print?: (line: string) => void;
  /** Aborts the demo (Ctrl-C); cleanup still runs. */
  readonly signal?: AbortSignal;
  /** Hard cap of the whole demo, ms. @default 120000 */
  readonly timeoutMs?: number;
}

export interface DemoResult {
  readonly milestones: readonly Milestone[];
  /** Every event read from the topic, in the order received (deduplicated by id). */
  readonly events: ReadonlyArray<{ readonly receivedAt: number; readonly event: SmvmEvent }>;
  /** The usage report's text. */
  readonly report: string;
  readonly instances: Readonly<Record<InstanceLabel, string>>;
  readonly policy: DemoPolicy;
  readonly timings: {
    readonly synthMs: number;
    readonly cloudMs: number;
    readonly deployMs: number;
    readonly fleetMs: number;
    readonly totalMs: number;
  };
  readonly resources: DemoResources;
  readonly watchdog: {
    readonly scheduled: number;
    readonly stateChanges: number;
    readonly codeSha256: string;
    readonly errors: readonly string[];
  };
}

/** The milestones without which the demo has failed, in the order they are expected. */
export const REQUIRED: ReadonlyArray<{ kind: MilestoneKind; instance: InstanceLabel; what: string }> = [
  { kind: 'idle-warning', instance: 'A', what: 'a warning that A is idle' },
  { kind: 'idle-stop', instance: 'A', what: 'A stopped for idleness' },
  { kind: 'heartbeat-lost', instance: 'B', what: "the watchdog's heartbeat-lost alert for B" },
  { kind: 'lifetime-warning', instance: 'C', what: "a warning of C's lifetime limit" },
  { kind: 'lifetime-stop', instance: 'C', what: 'C stopped by the watchdog at its lifetime limit' },
];

/** What the demo started, for checking that it was all cleaned up. */
export interface DemoResources {
  /** Temporary directory of the run (synthesized demo stack, instance A's files). */
  workDir?: string;
  motoEndpoint?: string;
  agentPid?: number;
  procRoot?: string;
  imdsEndpoint?: string;
}

export class DemoError extends Error {
  /** What had been seen and started when it failed (filled in by runDemo). */
  milestones: readonly Milestone[] = [];
  resources: DemoResources = {};
  constructor(message: string) {
    super(message);
    this.name = 'DemoError';
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

const iso = (t: number) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');

function scheduledEvent(time: number, account: string) {
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account,
    time: iso(time),
    region: MOTO_REGION,
    resources: [`arn:aws:events:${MOTO_REGION}:${account}:rule/smvm-demo-schedule`],
    detail: {},
  };
}

function stateChangeEvent(instanceId: string, state: string, time: number, account: string) {
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'EC2 Instance State-change Notification',
    source: 'aws.ec2',
    account,
    time: iso(time),
    region: MOTO_REGION,
    resources: [`arn:aws:ec2:${MOTO_REGION}:${account}:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, state },
  };
}

interface StackSummary {
  readonly name: string;
  readonly resources: number;
}

function summarizeSynth(outdir: string): StackSummary[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
    stacks: Record<string, { synthesizedStackPath: string }>;
  };
  return Object.entries(manifest.stacks).map(([name, s]) => {
    const tf = JSON.parse(fs.readFileSync(path.join(outdir, s.synthesizedStackPath), 'utf8')) as {
      resource?: Record<string, Record<string, unknown>>;
    };
    return { name, resources: Object.values(tf.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0) };
  });
}

/** The watchdog code package of an example stack in `outdir`: path and source_code_hash. */
function exampleWatchdogPackage(outdir: string): { zipPath: string; sourceCodeHash: string; stack: string } | undefined {
  const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
    stacks: Record<string, { synthesizedStackPath: string }>;
  };
  for (const [stack, s] of Object.entries(manifest.stacks)) {
    const file = path.join(outdir, s.synthesizedStackPath);
    const tf = JSON.parse(fs.readFileSync(file, 'utf8')) as { resource?: Record<string, Record<string, Record<string, unknown>>> };
    for (const f of Object.values(tf.resource?.aws_lambda_function ?? {})) {
      if (f.handler === 'index.handler' && typeof f.filename === 'string' && typeof f.source_code_hash === 'string') {
        return { zipPath: path.resolve(path.dirname(file), f.filename), sourceCodeHash: f.source_code_hash, stack };
      }
    }
  }
  return undefined;
}

/** One line for an event: its type, rule and the first sentence of its message. */
export function eventText(e: SmvmEvent): string {
  const first = e.message.split(/\.\s/)[0].replace(/\.$/, '');
  const body = e.source === 'cli' ? e.subject.replace(`${e.instanceId}: `, '').replace(`${e.instanceId} `, '') : first;
  const due =
    e.type === 'warning' && e.dueAt ? ` → ${e.action} in ${formatDuration(Math.max(0, Date.parse(e.dueAt) - Date.parse(e.time)))}` : '';
  const text = `${e.type.toUpperCase()}${e.rule && e.rule !== e.type ? ` [${e.rule}]` : ''}: ${body}${due}`;
  return text.length > 118 ? `${text.slice(0, 117)}…` : text;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

const rel = (ms: number) => `${ms < 0 ? '-' : '+'}${(Math.abs(ms) / 1000).toFixed(1)} s`;

/** Runs the demo; resolves with what it saw, rejects with a DemoError when a milestone is missed. */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const demoPolicy = chooseDemoPolicy();
  const outdir = path.resolve(opts.outdir ?? 'cdktf.out');
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? 120_000);
  const signal = opts.signal;
  const events: Array<{ receivedAt: number; event: SmvmEvent }> = [];
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smvm-demo-'));
  const resources: DemoResources = { workDir: work };
  cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
  let t0 = 0; // launch of the fleet
  const timings = { synthMs: 0, cloudMs: 0, deployMs: 0, fleetMs: 0, totalMs: 0 };

  const checkAbort = () => {
    if (signal?.aborted) throw new DemoError('interrupted');
  };
  /** Milestones with their absolute time; `at` is computed against the launch at the end. */
  const marks: Array<Omit<Milestone, 'at'> & { time: number }> = [];
  const mark = (m: Omit<Milestone, 'at'> & { time?: number }) => marks.push({ ...m, time: m.time ?? Date.now() });
  const milestones = (): Milestone[] => marks.map(({ time, ...m }) => ({ ...m, at: time - t0 }));
  const row = (at: number, who: string, by: string, text: string) =>
    print(`  ${rel(at).padStart(8)}  ${who.padEnd(1)}  ${by.padEnd(9)} ${text}`);

  const idleWindowMs = ruleMs(demoPolicy.policy, 'idle', 'windowMs');
  const lifetimeMs = ruleMs(demoPolicy.policy, 'lifetime', 'maxMs');
  const idleWarnMs = demoPolicy.policy.rules.find((r) => r.type === 'idle')!.warnBeforeMs ?? 0;
  const lifeWarnMs = demoPolicy.policy.rules.find((r) => r.type === 'lifetime')!.warnBeforeMs ?? 0;
  const hbWindowMs = ruleMs(demoPolicy.policy, 'heartbeat-lost', 'windowMs');
  const d = formatDuration;

  try {
    // ------------------------------------------------------------------ header
    const bar = '─'.repeat(86);
    print(bar);
    print(' cdktf-self-managed-vm — a live demo on a local AWS emulator (no AWS account needed)');
    print(bar);
    print(
      [
        'What you are watching: one self-management policy deployed to moto (a local AWS',
        'emulator) and three EC2 instances under it. Two guards enforce the policy with one',
        'decision engine: the AGENT inside an instance (here a real agent process reading a',
        'fake /proc) and the WATCHDOG Lambda outside (here the synthesized bundle, invoked every',
        `${DEMO_SCHEDULE_SECONDS} s and at every instance state change, as EventBridge would). Whatever they decide is`,
        "published to the policy's SNS topic; the timeline below is read from a queue on it.",
        '',
        `Policy '${demoPolicy.policy.id}' (seconds instead of hours, so that it fits in about a minute):`,
        `  idle            CPU < 5 % and network < 10 KB/s for ${d(idleWindowMs)} → stop (warning ${d(idleWarnMs)} before)`,
        `  lifetime        ${d(lifetimeMs)} after the instance was first seen → stop (warning ${d(lifeWarnMs)} before), a HARD limit`,
        `  heartbeat-lost  no heartbeat from the agent for ${d(hbWindowMs)} → notify`,
        '',
        'The fleet:',
        `  A  ${DEMO_INSTANCES.A}: busy for ${d(BUSY_FOR_MS)}, then idle → the agent warns, then stops it`,
        '     (its owner extended its lifetime, so idleness is what stops it)',
        `  B  ${DEMO_INSTANCES.B} → the watchdog raises heartbeat-lost (lifetime extended too)`,
        `  C  ${DEMO_INSTANCES.C}: no alert for the silent agent, but the lifetime`,
        `     is a hard limit → the watchdog warns, then stops it ${d(lifetimeMs)} after launch`,
      ].join('\n'),
    );
    if (demoPolicy.fallback) {
      print('');
      print(`Note: the policy parser refused the ${demoPolicy.fallback.wanted} idle window (${demoPolicy.fallback.refused});`);
      print(`      the demo uses ${demoPolicy.idleWindow}, the shortest accepted, and takes longer.`);
    }
    print('');

    // ------------------------------------------------------------------ 1. synthesize the example stacks
    print(`[1/5] Synthesizing the example stacks into ${path.relative(process.cwd(), outdir) || '.'}/ (offline)`);
    let t = Date.now();
    const { createApp } = await import('../../main');
    createApp(outdir).synth();
    const stacks = summarizeSynth(outdir);
    timings.synthMs = Date.now() - t;
    print(`      ${stacks.map((s) => `${s.name}: ${s.resources} resources`).join(' · ')}`);
    print(
      `      ${stacks.length} stacks, ${stacks.reduce((n, s) => n + s.resources, 0)} resources in ${(timings.synthMs / 1000).toFixed(1)} s`,
    );
    mark({ kind: 'synthesized', text: `${stacks.length} stacks` });
    checkAbort();

    // ------------------------------------------------------------------ 2. the local cloud
    t = Date.now();
    let moto: MotoServer;
    try {
      moto = await startMoto();
    } catch (e) {
      throw new DemoError(
        `the local AWS emulator did not start: ${(e as Error).message.split('\n')[0]}\n` +
          'npm start needs moto_server on the PATH: pip install "moto[server]"',
      );
    }
    cleanups.push(() => moto.stop());
    resources.motoEndpoint = moto.endpoint;
    timings.cloudMs = Date.now() - t;
    print(`[2/5] Local cloud: moto_server on ${moto.endpoint} (started in ${(timings.cloudMs / 1000).toFixed(1)} s)`);
    mark({ kind: 'cloud-started', text: moto.endpoint });
    checkAbort();

    const cfg = moto.sdkConfig();
    const ec2 = new EC2Client(cfg);
    const s3 = new S3Client({ ...cfg, forcePathStyle: true });
    const sns = new SNSClient(cfg);
    const sqs = new SQSClient(cfg);
    const ssm = new SSMClient(cfg);
    const sts = new STSClient(cfg);
    cleanups.push(() => [ec2, s3, sns, sqs, ssm, sts].forEach((c) => c.destroy()));

    // ------------------------------------------------------------------ 3. deploy the demo policy
    t = Date.now();
    print(`[3/5] Deploying policy '${demoPolicy.policy.id}' from its synthesized Terraform JSON`);
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'smvm-demo-events' }))).QueueUrl!;
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!
      .QueueArn!;
    const demo = synthDemoStack(path.join(work, 'synth'), { region: moto.region, policy: demoPolicy.document, queueArn });
    const deployed: DeployedPolicy = await deployPolicy(demo, { ec2, s3, sns, ssm });
    const wdFn = { ...deployed.watchdog };
    const example = exampleWatchdogPackage(outdir);
    let wdFrom = `the demo stack's zip asset`;
    if (example && example.sourceCodeHash === wdFn.sourceCodeHash) {
      wdFn.zipPath = example.zipPath;
      const relative = path.relative(process.cwd(), example.zipPath);
      const asset = (relative.startsWith('..') ? example.zipPath : relative).split(path.sep);
      wdFrom = `the zip asset ${[...asset.slice(0, -2), '…', asset[asset.length - 1]].join('/')}`;
    }
    const wdEnv: Record<string, string> = {
      ...wdFn.environment,
      // EventBridge's shortest rate is a minute; the demo runs the schedule every few seconds.
      [SCHEDULE_SECONDS_ENV_VAR]: String(DEMO_SCHEDULE_SECONDS),
      [AWS_ENDPOINT_URL_ENV_VAR]: moto.endpoint,
      AWS_REGION: moto.region,
      AWS_ACCESS_KEY_ID: FAKE_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: FAKE_CREDENTIALS.secretAccessKey,
      AWS_LAMBDA_FUNCTION_NAME: wdFn.functionName,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    };
    const wd: WatchdogHost = await startWatchdogHost(wdFn, wdEnv, work);
    cleanups.push(() => wd.close());
    timings.deployMs = Date.now() - t;
    print(`      topic ${deployed.topicArn}, with the queue smvm-demo-events subscribed (raw delivery)`);
    print(
      `      parameters ${policyParameterName(demoPolicy.policy.id)} (version ${demoPolicy.policy.hash}), ${topicParameterName(demoPolicy.policy.id)}, ${agentArtifactParameterName(demoPolicy.policy.id)}`,
    );
    print(`      agent artifact ${deployed.objects[0]}`);
    print(`      watchdog ${wdFn.functionName}: ${wdFn.handler} from ${wdFrom} (source_code_hash ${wdFn.sourceCodeHash.slice(0, 12)}…)`);
    print(
      `      ${deployed.applied.length} resources applied; ${Object.values(deployed.skipped).reduce((a, b) => a + b, 0)} have no part to play locally (IAM, EventBridge, logs, bucket settings)`,
    );
    mark({ kind: 'deployed', text: deployed.topicArn });
    checkAbort();

    // ------------------------------------------------------------------ 4. the fleet
    print(`[4/5] The fleet: times are relative to the launch; the run ends when every milestone has been seen`);
    print(
      `      every instance is tagged ${POLICY_TAG}=${demoPolicy.policy.id} and ${POLICY_VERSION_TAG}=${demoPolicy.policy.hash} (the policy's hash)`,
    );
    const launched: LaunchedInstance[] = await launchInstances(demo, ec2, DEMO_AMI);
    t0 = launched[0].launchedAt;
    const fleetStarted = Date.now();
    const ids = Object.fromEntries(launched.map((l) => [l.label, l.instanceId])) as Record<InstanceLabel, string>;
    const labelOf = (id?: string): InstanceLabel | undefined => launched.find((l) => l.instanceId === id)?.label;
    const account = moto.accountId;
    for (const l of launched) {
      const text = `launched ${l.instanceId} (${l.instanceType}), ${MANAGEMENT_ID_TAG}=${l.tags[MANAGEMENT_ID_TAG]}`;
      mark({ kind: 'launched', instance: l.label, time: l.launchedAt, by: 'terraform', text });
      row(l.launchedAt - t0, l.label, 'terraform', text);
    }

    // What EventBridge would do at once: one state-change event per new instance.
    const states = new Map<InstanceLabel, string>();
    for (const l of launched) {
      states.set(l.label, 'running');
      await wd.invoke(stateChangeEvent(l.instanceId, 'running', Date.now(), account));
    }

    // Operators: the smvm CLI, run in-process against the local cloud.
    const cliOut: string[] = [];
    const cli: CliContext = {
      clients: { ec2, ssm, sns, sqs, sts },
      now: Date.now,
      out: (s) => cliOut.push(s),
      err: (s) => cliOut.push(s),
      progress: false,
    };
    const operate = async (label: InstanceLabel, args: string[]) => {
      const code = await smvm(args, cli);
      if (code !== 0) throw new DemoError(`smvm ${args.join(' ')} failed (exit ${code}): ${cliOut.join('\n')}`);
      const text = `smvm ${args.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' ')}`;
      mark({ kind: 'operator', instance: label, by: 'operator', text });
      row(Date.now() - t0, label, 'operator', text);
    };
    await operate('A', ['extend', ids.A, 'lifetime', '10m', '--reason', 'let the idle rule show itself']);
    await operate('B', ['extend', ids.B, 'lifetime', '10m', '--reason', 'long job']);
    await operate('C', ['snooze', ids.C, '10m', '--reason', 'no alerts please']);

    // Instance A: what its user data's bootstrap does, then the agent as its systemd unit runs it.
    const root = path.join(work, 'instance-a');
    const home = path.join(root, 'etc', 'smvm');
    const stateDir = path.join(root, 'var', 'lib', 'smvm');
    fs.mkdirSync(home, { recursive: true });
    fs.mkdirSync(path.join(root, 'opt', 'smvm'), { recursive: true });
    const pointer = JSON.parse(
      (await ssm.send(new GetParameterCommand({ Name: agentArtifactParameterName(demoPolicy.policy.id) }))).Parameter!.Value!,
    ) as { bucket: string; key: string; sha256: string };
    const object = await s3.send(new GetObjectCommand({ Bucket: pointer.bucket, Key: pointer.key }));
    const agentCode = Buffer.from(await object.Body!.transformToByteArray());
    if (crypto.createHash('sha256').update(agentCode).digest('hex') !== pointer.sha256) {
      throw new DemoError(`the agent artifact s3://${pointer.bucket}/${pointer.key} does not match the sha256 of its pointer`);
    }
    const agentFile = path.join(root, 'opt', 'smvm', 'agent.js');
    fs.writeFileSync(agentFile, agentCode);
    const proc: ProcRoot = createProcRoot({ bootTimeSec: Math.floor(t0 / 1000), busy: true });
    resources.procRoot = proc.dir;
    cleanups.push(() => {
      proc.stop();
      fs.rmSync(proc.dir, { recursive: true, force: true });
    });
    const config: AgentConfigDocument = {
      policyId: demoPolicy.policy.id,
      region: moto.region,
      topicArn: deployed.topicArn,
      policyParameter: policyParameterName(demoPolicy.policy.id),
      artifactParameter: agentArtifactParameterName(demoPolicy.policy.id),
      stateDir,
      utmpPath: proc.utmpPath,
    };
    fs.writeFileSync(path.join(home, AGENT_CONFIG_FILE), JSON.stringify(config));
    const aTags = launched.find((l) => l.label === 'A')!.tags;
    fs.writeFileSync(path.join(home, MANAGEMENT_ID_FILE), `${aTags[MANAGEMENT_ID_TAG]}\n`);
    let tagCache: { at: number; tags: Promise<Record<string, string>> } | undefined;
    const readTags = async (id: string) => {
      const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      return Object.fromEntries((r.Reservations?.[0]?.Instances?.[0]?.Tags ?? []).map((x) => [x.Key!, x.Value!]));
    };
    const imds: FakeImds = await startFakeImds({
      instanceId: ids.A,
      region: moto.region,
      instanceType: launched.find((l) => l.label === 'A')!.instanceType,
      tags: () => {
        if (!tagCache || Date.now() - tagCache.at > 250) tagCache = { at: Date.now(), tags: readTags(ids.A) };
        return tagCache.tags;
      },
    });
    cleanups.push(() => imds.close());
    resources.imdsEndpoint = imds.endpoint;
    const agent: AgentProcess = spawnAgent(agentFile, {
      [AGENT_HOME_ENV_VAR]: home,
      [PROC_ROOT_ENV_VAR]: proc.dir,
      [IMDS_ENDPOINT_ENV_VAR]: imds.endpoint,
      [AWS_ENDPOINT_URL_ENV_VAR]: moto.endpoint,
      [SHUTDOWN_COMMAND_ENV_VAR]: `echo shutdown-requested >> ${JSON.stringify(path.join(root, 'shutdown'))}`,
      // a `decision made` line per sample: the demo reads the agent's sampling instants from them
      [LOG_LEVEL_ENV_VAR]: 'debug',
    });
    resources.agentPid = agent.proc.pid;
    cleanups.push(async () => {
      if (agent.exited) return;
      const grace = new AbortController();
      const term = agent.kill('SIGTERM').then(() => grace.abort());
      await sleep(3000, grace.signal);
      if (!agent.exited) await agent.kill('SIGKILL');
      await term;
    });
    await agent
      .waitForLine('the agent start', (l) => l.message === 'agent started' || l.message === 'agent not configured', 15_000)
      .catch(() => undefined);
    const startLine = agent.lines.find((l) => l.message === 'agent started');
    if (!startLine) {
      throw new DemoError(`the agent on A did not start: ${JSON.stringify(agent.lines.slice(-3))} ${agent.stderr().slice(-500)}`);
    }
    // The agent samples at a fixed rate from its first decision on: a0 + k × interval.
    const firstDecision = await agent.waitForLine('a first decision', (l) => l.message === 'decision made', 15_000).catch(() => undefined);
    if (!firstDecision) throw new DemoError(`the agent on A made no decision: ${agent.stderr().slice(-500)}`);
    const a0 = Number((firstDecision.decision as { at: number }).at);
    const sampleMs = demoPolicy.policy.sampleIntervalMs;
    {
      const text = `agent started (pid ${agent.proc.pid}), installed from s3://${pointer.bucket}/${pointer.key.split('/')[0]}/…/agent.js, sha256 verified`;
      mark({ kind: 'agent-started', instance: 'A', by: 'agent', text });
      row(Date.now() - t0, 'A', 'bootstrap', text);
    }

    // ---------------------------------------------------------------- the loops
    const seen = new Set<string>();
    const wdErrors: string[] = [];
    let scheduled = 0;
    let stateChanges = 0;
    let fatal: Error | undefined;
    let stopLoops = false;
    let agentStopRequested = false;
    const loops: Array<Promise<void>> = [];
    const loopSignal = new AbortController();
    /** Runs `fn` every `ms` at a fixed rate from `firstAt` (a run that overruns skips the slots it missed). */
    const every = (ms: number, fn: () => Promise<void>, firstAt = Date.now()) => {
      loops.push(
        (async () => {
          let next = firstAt;
          while (!stopLoops) {
            await sleep(Math.max(0, next - Date.now()), loopSignal.signal);
            if (stopLoops) break;
            try {
              await fn();
            } catch (e) {
              if (!stopLoops) fatal ??= e as Error;
            }
            while (next <= Date.now()) next += ms;
          }
        })(),
      );
    };
    // Choreography. Both guards enforce A's idle rule: the agent from its own samples, the
    // watchdog from the agent's heartbeat report, which rounds the start of the idle period
    // down to the second — so a scheduled run that falls just after a warning or stop is due
    // acts first. In production (10 s samples, a 1-minute schedule) that is rare; with the
    // demo's 2 s and 5 s it would happen often, and the timeline would mostly show the
    // watchdog acting on A. So the demo picks the phases, as a real schedule's would be
    // arbitrary: A's load drops just before one of the agent's samples, so that the idle
    // period starts on a sample (a0 + k × lcm); with a 20 s window and a 9 s warning, the
    // warning and the stop fall due half-way between two samples and are carried out by the
    // agent at its next one (≡ a0 + sample, whatever the timers' jitter), and the schedule
    // runs half a cycle away from those instants (≡ a0 + sample + cycle / 2).
    const cycleMs = DEMO_SCHEDULE_SECONDS * 1000;
    const lcm = (cycleMs * sampleMs) / gcd(cycleMs, sampleMs);
    const phase = a0 + sampleMs + cycleMs / 2;
    const firstSchedule = phase + Math.ceil((Date.now() - phase) / cycleMs) * cycleMs;
    const idleAt = a0 + Math.ceil((t0 + BUSY_FOR_MS - a0) / lcm) * lcm - sampleMs / 4;
    const has = (kind: MilestoneKind, instance?: InstanceLabel) =>
      marks.some((m) => m.kind === kind && (!instance || m.instance === instance));
    const onResult = (r: InvocationResult) => {
      if (r.outcome !== 'cycle') wdErrors.push(`watchdog run: ${JSON.stringify(r).slice(0, 300)}`);
      const report = r.report as { errors?: unknown[] } | undefined;
      for (const e of report?.errors ?? []) wdErrors.push(`watchdog: ${JSON.stringify(e).slice(0, 300)}`);
    };

    // The schedule: what EventBridge's rate rule would do.
    every(
      cycleMs,
      async () => {
        if (wd.busy > 1) return; // a run is still queued: skip, as a late schedule would
        scheduled++;
        onResult(await wd.invoke(scheduledEvent(Date.now(), account)));
      },
      firstSchedule,
    );

    // Instance states in moto; a change is sent to the watchdog as EventBridge would.
    every(1000, async () => {
      const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: Object.values(ids) }));
      for (const inst of (r.Reservations ?? []).flatMap((x) => x.Instances ?? [])) {
        const label = labelOf(inst.InstanceId);
        const state = inst.State?.Name;
        if (!label || !state || states.get(label) === state) continue;
        const before = states.get(label);
        states.set(label, state);
        const text = `${before} → ${state}; EventBridge's state-change event goes to the watchdog`;
        mark({ kind: 'state-change', instance: label, by: 'ec2', text });
        row(Date.now() - t0, label, 'ec2', text);
        stateChanges++;
        void wd.invoke(stateChangeEvent(inst.InstanceId!, state, Date.now(), account)).then(onResult, (e: Error) => (fatal ??= e));
        if (label === 'A' && (state === 'stopping' || state === 'stopped') && !agentStopRequested) {
          // The OS shuts down: systemd stops the agent with SIGTERM (its decision in flight finishes).
          agentStopRequested = true;
          void agent.kill('SIGTERM').then((code) => {
            const text = `the OS powers off: systemd stops the agent (SIGTERM), which exits with ${code}`;
            mark({ kind: 'agent-exited', instance: 'A', by: 'agent', text });
            row(Date.now() - t0, 'A', 'os', text);
          });
        }
      }
      // A's heartbeat tag: what the agent tells the watchdog.
      if (!agentStopRequested) {
        const hbValue = (await readTags(ids.A))[HEARTBEAT_TAG];
        if (hbValue) {
          const hb = decodeHeartbeat(hbValue);
          if (!has('first-heartbeat', 'A')) {
            const text = `first heartbeat in the ${HEARTBEAT_TAG} tag (agent version ${hb.version ?? '?'})`;
            mark({ kind: 'first-heartbeat', instance: 'A', by: 'agent', text });
            row(Date.now() - t0, 'A', 'agent', text);
          }
          if (hb.conditions.idle !== undefined && !has('idle-reported', 'A')) {
            const text = `its heartbeat tag now reports A idle (the watchdog reads that too)`;
            mark({ kind: 'idle-reported', instance: 'A', by: 'agent', text });
            row(Date.now() - t0, 'A', 'agent', text);
          }
        }
      }
    });

    // The timeline: events from the topic, through the SQS queue (raw delivery).
    every(500, async () => {
      for (;;) {
        const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        const msgs = r.Messages ?? [];
        if (msgs.length === 0) return;
        for (const m of msgs) {
          const e = parseEvent(m.Body!);
          if (seen.has(e.id)) continue; // the same fact announced twice carries the same id
          seen.add(e.id);
          events.push({ receivedAt: Date.now() - t0, event: e });
          const label = labelOf(e.instanceId);
          const at = Date.parse(e.time) - t0;
          const kind: MilestoneKind | undefined =
            e.type === 'warning' && e.rule === 'idle' && label === 'A'
              ? 'idle-warning'
              : e.type === 'stopped' && e.rule === 'idle' && label === 'A'
                ? 'idle-stop'
                : e.type === 'heartbeat-lost' && label === 'B'
                  ? 'heartbeat-lost'
                  : e.type === 'warning' && e.rule === 'lifetime' && label === 'C'
                    ? 'lifetime-warning'
                    : e.type === 'stopped' && e.rule === 'lifetime' && label === 'C'
                      ? 'lifetime-stop'
                      : undefined;
          const text = eventText(e);
          if (kind) mark({ kind, instance: label, time: Date.parse(e.time), by: e.source, text });
          row(at, label ?? '·', e.source, text);
        }
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
      }
    });

    // A's load: busy at first, idle after about BUSY_FOR_MS.
    const idleTimer = setTimeout(
      () => {
        proc.setBusy(false);
        const text = `the load drops: CPU 90 % → 0 % (the demo switches A's /proc to idle)`;
        mark({ kind: 'load-idle', instance: 'A', by: 'demo', text });
        row(Date.now() - t0, 'A', 'demo', text);
      },
      Math.max(0, idleAt - Date.now()),
    );
    cleanups.push(() => clearTimeout(idleTimer));

    try {
      const complete = () => REQUIRED.every((r) => has(r.kind, r.instance)) && (!agentStopRequested || has('agent-exited', 'A'));
      while (!complete()) {
        if (fatal) throw new DemoError(`the demo failed: ${fatal.message}`);
        if (signal?.aborted) throw new DemoError('interrupted');
        if (Date.now() > deadline) {
          const missing = REQUIRED.filter((r) => !has(r.kind, r.instance)).map((r) => r.what);
          const hints = [
            ...wdErrors.slice(-3),
            ...agent.lines
              .filter((l) => l.level === 'ERROR')
              .slice(-3)
              .map((l) => `agent: ${JSON.stringify(l)}`),
          ];
          throw new DemoError(
            `not seen within ${Math.round((deadline - started) / 1000)} s: ${missing.join('; ') || "the agent's exit"}` +
              (hints.length ? `\n${hints.join('\n')}` : ''),
          );
        }
        await sleep(200, signal);
      }
      // Let the last state change reach the watchdog and its events reach the queue.
      await sleep(1500, signal);
    } finally {
      stopLoops = true;
      loopSignal.abort();
      await Promise.all(loops);
    }
    timings.fleetMs = Date.now() - fleetStarted;
    checkAbort();

    // ------------------------------------------------------------------ 5. the report
    print(
      `[5/5] Usage report: smvm report --policy ${demoPolicy.policy.id} --json, run in-process (seconds here; the CLI's table shows hours)`,
    );
    cliOut.length = 0;
    const code = await smvm(['report', '--policy', demoPolicy.policy.id, '--json'], cli);
    if (code !== 0) throw new DemoError(`smvm report failed (exit ${code}): ${cliOut.join('\n')}`);
    const report = cliOut.join('\n');
    const usage = JSON.parse(report) as {
      policies: Array<{ instances: number; runningHours: number; actions: number }>;
      instances: Array<{
        instanceId: string;
        state: string;
        runningHours: number;
        lifetimeHours: number;
        spendUsd: number;
        actions: number;
      }>;
    };
    const secs = (h: number) => `${Math.round(h * 3600)} s`;
    const table = new Table({
      head: ['', 'instance', 'state', 'running', 'lifetime', 'spend', 'actions'],
      style: { head: [], border: [] },
    });
    for (const i of usage.instances) {
      table.push([
        labelOf(i.instanceId) ?? '',
        i.instanceId,
        i.state,
        secs(i.runningHours),
        secs(i.lifetimeHours),
        `$${i.spendUsd.toFixed(2)}`,
        String(i.actions),
      ]);
    }
    for (const l of table.toString().split('\n')) print(`      ${l}`);
    const total = usage.policies[0];
    print(
      `      policy ${demoPolicy.policy.id}: ${total.instances} instances, ${secs(total.runningHours)} of running time in all, ${total.actions} actions`,
    );
    mark({ kind: 'report', by: 'operator', text: 'smvm report' });

    timings.totalMs = Date.now() - started;
    const by = (kind: MilestoneKind) => marks.find((m) => m.kind === kind)?.by ?? '?';
    print('');
    print(
      `Done in ${Math.round(timings.totalMs / 1000)} s: A was stopped for idleness by the ${by('idle-stop')}, C at its lifetime limit by the ${by('lifetime-stop')},`,
    );
    print(
      `and the watchdog raised heartbeat-lost for B (${scheduled} scheduled and ${stateChanges + launched.length} state-change watchdog runs).`,
    );
    print('Next: `npm test`, docs/operations.md, and the synthesized stacks in cdktf.out/.');
    return {
      milestones: milestones(),
      events,
      report,
      instances: ids,
      policy: demoPolicy,
      timings,
      resources,
      watchdog: { scheduled, stateChanges: stateChanges + launched.length, codeSha256: wd.codeSha256, errors: wdErrors },
    };
  } catch (e) {
    const err = e instanceof DemoError ? e : new DemoError(e instanceof Error ? (e.stack ?? e.message) : String(e));
    err.milestones = t0 ? milestones() : [];
    err.resources = resources;
    throw err;
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort: the rest still runs
      }
    }
  }
}
