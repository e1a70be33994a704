/**
 * The REAL bundled agent, spawned as a process against moto (EC2, SNS → SQS, SSM) and a
 * fake IMDS for an instance launched in moto, with a proc root the test rewrites.
 *
 * The scenarios run concurrently (each with its own instance, topic, queue, proc root
 * and state): the idle one has to wait out the idle rule's one-minute minimum window,
 * and the others fit inside that minute.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATE_FILE, type AgentState } from '../../lambda-agent/agent/state-file';
import { decodeEpisodes, decodeHeartbeat } from '../../lambda-agent/contract/state';
import {
  AGENT_EPISODES_TAG,
  HEARTBEAT_TAG,
  MANAGEMENT_ID_TAG,
  POLICY_TAG,
  POLICY_VERSION_TAG,
  SHUTDOWN_BEHAVIOR_TAG,
} from '../../lambda-agent/contract/tags';
import { findRule } from '../../lambda-agent/rules';
import type { PolicyDocument } from '../../lambda-agent/policy/model';
import type { Decision } from '../../lambda-agent/engine/evaluate';
import { startMoto, stopMoto, type MotoServer } from '../support/moto';
import type { FakeImds } from '../support/fake-imds';
import {
  agentBundle,
  agentHome,
  Cloud,
  countingProxy,
  createProcRoot,
  imdsFor,
  readJson,
  sleep,
  spawnAgent,
  tempDir,
  waitFor,
  type AgentProcess,
  type CountingProxy,
  type ProcRoot,
  type TopicQueue,
} from './harness';

jest.setTimeout(100_000);

let motoP: Promise<MotoServer> | undefined;
const moto = () => (motoP ??= startMoto());
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await stopMoto();
});

interface Scenario {
  readonly cloud: Cloud;
  readonly id: string;
  readonly q: TopicQueue;
  readonly proc: ProcRoot;
  readonly imds: FakeImds;
  readonly proxy: CountingProxy;
  readonly stateDir: string;
  readonly shutdownFile: string;
  readonly policyParameter: string;
  /** Spawns the agent (again, with the same home and state). */
  spawn(): Promise<AgentProcess>;
  /** The agent's state file. */
  state(): AgentState | undefined;
  decisions(a: AgentProcess): Decision[];
}

/** One instance governed by `doc`, booted `bootAgoSec` seconds ago. */
async function scenario(name: string, doc: PolicyDocument, bootAgoSec: number, opts: { busy?: boolean } = {}): Promise<Scenario> {
  const m = await moto();
  const cloud = new Cloud(m);
  const policyParameter = `/smvm/${doc.id}/policy`;
  const hash = await cloud.putPolicy(policyParameter, doc);
  // The shutdown behaviour the constructs would give the instance (and tag it with).
  const terminates = doc.rules.some((r) => findRule(r.rule)?.kind === 'hard' && r.action === 'terminate');
  const id = await cloud.launch({
    [POLICY_TAG]: doc.id,
    [MANAGEMENT_ID_TAG]: `smvm-${doc.id}-0123456789ab`,
    [POLICY_VERSION_TAG]: hash,
    [SHUTDOWN_BEHAVIOR_TAG]: terminates ? 'terminate' : 'stop',
  });
  const q = await cloud.topicWithQueue(name);
  const imds = await imdsFor(cloud, id);
  const proxy = await countingProxy(m.endpoint);
  const proc = createProcRoot({ bootTimeSec: Math.floor(Date.now() / 1000) - bootAgoSec, busy: opts.busy });
  const stateDir = tempDir('state');
  const shutdownFile = join(tempDir('shutdown'), 'shutdown-requested');
  const home = agentHome({
    policyId: doc.id,
    region: m.region,
    topicArn: q.topicArn,
    policyParameter,
    artifactParameter: `/smvm/${doc.id}/agent`,
    stateDir,
    utmpPath: proc.utmpPath,
  });
  const agents: AgentProcess[] = [];
  cleanups.push(async () => {
    for (const a of agents) await a.kill('SIGKILL');
    proc.stop();
    await imds.close();
    await proxy.close();
  });
  const bundle = await agentBundle();
  return {
    cloud,
    id,
    q,
    proc,
    imds,
    proxy,
    stateDir,
    shutdownFile,
    policyParameter,
    async spawn() {
      const a = spawnAgent(bundle.file, {
        SMVM_HOME: home,
        SMVM_PROC_ROOT: proc.dir,
        SMVM_IMDS_ENDPOINT: imds.endpoint,
        AWS_ENDPOINT_URL: proxy.endpoint,
        SMVM_SHUTDOWN_COMMAND: `echo requested >> ${shutdownFile}`,
        SMVM_LOG_LEVEL: 'debug',
      });
      agents.push(a);
      await a.waitForLine('the agent start', (l) => l.message === 'agent started' || l.message === 'agent not configured');
      return a;
    },
    state: () => readJson<AgentState>(join(stateDir, STATE_FILE)),
    decisions: (a) => a.lines.filter((l) => l.message === 'decision made').map((l) => l.decision as Decision),
  };
}

const ruleStatus = (d: Decision | undefined, rule: string) => d?.rules.find((r) => r.rule === rule)?.status;

describe('the agent process', () => {
  test.concurrent(
    'stops an instance that went from busy to idle, within two sampling intervals of the crossing, after a warning',
    async () => {
      const s = await scenario(
        'idle',
        {
          id: 'idle-box',
          agent: { sampleInterval: '1s', heartbeatInterval: '1m' },
          rules: [{ rule: 'idle', window: '1m', cpuPercentBelow: 20, startGrace: '1m', warnBefore: '20s', action: 'stop' }],
        },
        3600,
        { busy: true },
      );
      const a = await s.spawn();
      await waitFor('three busy decisions', () => s.decisions(a).filter((d) => ruleStatus(d, 'idle') === 'ok').length >= 3, 10_000);
      expect(s.decisions(a).some((d) => ruleStatus(d, 'idle') === 'pending')).toBe(false);
      const idleAt = Date.now();
      s.proc.setBusy(false);

      // The heartbeat reports the new condition within seconds, not at the next hourly slot.
      const beat = await waitFor(
        'the idle condition in the heartbeat tag',
        async () => {
          const hb = (await s.cloud.tags(s.id))[HEARTBEAT_TAG];
          return hb && decodeHeartbeat(hb).conditions.idle !== undefined ? decodeHeartbeat(hb) : undefined;
        },
        8000,
      );
      expect(Math.abs(beat.conditions.idle - idleAt)).toBeLessThanOrEqual(2000);

      const stoppedAt = await waitFor(
        'the instance stopped in moto',
        async () => ((await s.cloud.state(s.id)) === 'stopped' ? Date.now() : undefined),
        75_000,
        100,
      );
      const [events, eventAt] = await waitFor('the stopped event', async () => {
        const ev = await s.cloud.events(s.q);
        return ev.some((e) => e.type === 'stopped') ? ([ev, Date.now()] as const) : undefined;
      });
      const stopped = events.find((e) => e.type === 'stopped')!;
      const since = Number(stopped.episode) * 1000; // idle episodes are keyed by the second the condition began
      const crossing = since + 60_000;
      expect(Math.abs(since - idleAt)).toBeLessThanOrEqual(1500);
      // Reaction: at most two sampling intervals (1 s each) after the crossing, +1 s for the episode's whole seconds.
      expect(stoppedAt - crossing).toBeLessThanOrEqual(3000);
      expect(eventAt - crossing).toBeLessThanOrEqual(3500); // the SNS event, read from SQS
      expect(stoppedAt - idleAt).toBeGreaterThanOrEqual(58_500);
      expect(stopped).toMatchObject({
        source: 'agent',
        policyId: 'idle-box',
        instanceId: s.id,
        managementId: 'smvm-idle-box-0123456789ab',
        rule: 'idle',
        action: 'stop',
      });
      const warning = events.find((e) => e.type === 'warning')!;
      expect(warning).toMatchObject({ rule: 'idle', episode: stopped.episode, action: 'stop', severity: 'warning' });
      expect(Date.parse(warning.time)).toBeLessThan(Date.parse(stopped.time));
      expect(Date.parse(warning.dueAt!)).toBeGreaterThanOrEqual(crossing - 1000);
      expect(events.filter((e) => e.type === 'stopped' || e.type === 'warning')).toHaveLength(2);
      // Tag writes stay few: no write per tick.
      expect(s.proxy.count('ec2 CreateTags')).toBeLessThanOrEqual(12);
      expect(s.proxy.count('ec2 StopInstances')).toBe(1);
      expect(existsSync(s.shutdownFile)).toBe(false);
      expect(decodeEpisodes((await s.cloud.tags(s.id))[AGENT_EPISODES_TAG])).toEqual([
        expect.objectContaining({ rule: 'idle', episode: stopped.episode, action: 'stop', actedAt: expect.any(Number) }),
      ]);
      expect(a.exited).toBe(false);
    },
  );

  test.concurrent(
    'picks up a policy edit (new SSM value + policy-version tag) without a restart, reading SSM only on the change',
    async () => {
      const doc: PolicyDocument = {
        id: 'edit-box',
        agent: { sampleInterval: '1s', heartbeatInterval: '1h' },
        rules: [{ rule: 'lifetime', max: '7d', action: 'stop' }],
      };
      const s = await scenario('edit', doc, 3600);
      const a = await s.spawn();
      await waitFor('five decisions', () => s.decisions(a).length >= 5);
      expect(await s.cloud.state(s.id)).toBe('running');
      expect(s.proxy.count('ssm GetParameter')).toBe(1);

      const v2 = await s.cloud.putPolicy(s.policyParameter, { ...doc, rules: [{ rule: 'lifetime', max: '30m', action: 'stop' }] });
      const editedAt = Date.now();
      await s.cloud.setTags(s.id, { [POLICY_VERSION_TAG]: v2 });
      await waitFor('the instance stopped in moto', async () => (await s.cloud.state(s.id)) === 'stopped', 12_000, 100);
      // Tags are read every 6 intervals (at most every minute): the edit is seen within seconds here.
      expect(Date.now() - editedAt).toBeLessThan(9000);
      const loaded = a.lines.filter((l) => l.message === 'policy loaded');
      expect(loaded.map((l) => l.policy_hash)).toEqual([expect.any(String), v2]);
      const stopped = await waitFor('the stopped event', async () => (await s.cloud.events(s.q)).find((e) => e.type === 'stopped'));
      expect(stopped).toMatchObject({ rule: 'lifetime', severity: 'critical', action: 'stop' });
      await sleep(3000);
      expect(s.proxy.count('ssm GetParameter')).toBe(2);
      expect(s.decisions(a).length).toBeGreaterThanOrEqual(10);
    },
  );

  test.concurrent('shuts the OS down with the configured command when a hard limit is crossed and the API is unreachable', async () => {
    // Lifetime 1h, booted 1h - 8s ago: the limit is crossed 8 s after the start.
    const s = await scenario(
      'hard',
      {
        id: 'hard-box',
        agent: { sampleInterval: '1s', heartbeatInterval: '1h' },
        rules: [{ rule: 'lifetime', max: '1h', action: 'stop' }],
      },
      3600 - 8,
    );
    const startedAt = Date.now();
    const a = await s.spawn();
    await waitFor('the first heartbeat', async () => (await s.cloud.tags(s.id))[HEARTBEAT_TAG]);
    await s.proxy.close(); // the API endpoint is now a closed port
    const closedAt = Date.now();
    expect(closedAt - startedAt).toBeLessThan(7000);
    await waitFor('the shutdown stand-in', () => existsSync(s.shutdownFile), 15_000, 100);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(7000);
    expect(readFileSync(s.shutdownFile, 'utf8')).toBe('requested\n');
    expect(await s.cloud.state(s.id)).toBe('running'); // the API was never reached
    expect(s.proxy.count('ec2 StopInstances')).toBe(0);
    const line = a.lines.find((l) => l.message === 'os shutdown')!;
    expect(line).toMatchObject({ level: 'ERROR', action: 'stop', command: `echo requested >> ${s.shutdownFile}` });
    // The stop stays pending on disk: after the reboot, the agent confirms it instead of stopping again.
    expect(s.state()!.episodes).toEqual([expect.objectContaining({ rule: 'lifetime', action: 'stop', pending: true })]);
    await sleep(2500);
    expect(readFileSync(s.shutdownFile, 'utf8')).toBe('requested\n'); // not repeated every tick
    expect(a.exited).toBe(false);
  });

  test.concurrent('does not repeat a warning or an action after being killed mid-episode (SIGKILL) and restarted', async () => {
    // Lifetime 1h crossed 8 s after the start, announced 4 s before.
    const s = await scenario(
      'kill',
      {
        id: 'kill-box',
        agent: { sampleInterval: '1s', heartbeatInterval: '1h' },
        rules: [{ rule: 'lifetime', max: '1h', warnBefore: '4s', action: 'stop' }],
      },
      3600 - 8,
    );
    const a1 = await s.spawn();
    await waitFor('the warning event', async () => (await s.cloud.events(s.q)).some((e) => e.type === 'warning'), 10_000);
    await a1.kill('SIGKILL');
    const a2 = await s.spawn();
    await waitFor('the instance stopped in moto', async () => (await s.cloud.state(s.id)) === 'stopped', 15_000, 100);
    await waitFor('the completed record on disk', () => s.state()?.episodes.some((r) => r.actedAt !== undefined && !r.pending));
    await a2.kill('SIGKILL');
    await s.cloud.start(s.id); // started again: a repeated stop would show
    const a3 = await s.spawn();
    await waitFor('four decisions of the third agent', () => s.decisions(a3).length >= 4);
    expect(ruleStatus(s.decisions(a3).at(-1), 'lifetime')).toBe('acted');
    expect(await s.cloud.state(s.id)).toBe('running');
    const events = await s.cloud.events(s.q);
    expect(events.map((e) => e.type).sort()).toEqual(['stopped', 'warning']);
    expect(s.proxy.count('ec2 StopInstances')).toBe(1);
    expect(s.decisions(a2).some((d) => d.warnings.length > 0)).toBe(false);
  });

  test.concurrent('survives malformed and missing /proc files: unknown data is never idle', async () => {
    const s = await scenario(
      'proc',
      {
        id: 'proc-box',
        agent: { sampleInterval: '1s', heartbeatInterval: '1h' },
        rules: [
          { rule: 'idle', window: '1m', startGrace: '1m', action: 'stop' },
          { rule: 'task-completion', process: 'batchjob', action: 'stop' },
        ],
      },
      3600,
    );
    s.proc.freeze();
    s.proc.write('stat', `cpu  banana\nbtime ${Math.floor(Date.now() / 1000) - 3600}\n`);
    s.proc.write('net/dev', undefined);
    s.proc.write('utmp', 'not a utmp file');
    const a = await s.spawn();
    await waitFor('four decisions', () => s.decisions(a).length >= 4);
    for (const d of s.decisions(a)) {
      expect(ruleStatus(d, 'idle')).toBe('unknown');
      expect(ruleStatus(d, 'task-completion')).toBe('unknown'); // never seen running: not finished
    }
    s.proc.write('stat', `cpu  1 2 3 4 5 6 7 8 9 10\nbtime ${Math.floor(Date.now() / 1000) - 3600}\n`);
    s.proc.write('123/comm', ''); // a process whose name cannot be read as the task
    s.proc.write('124', undefined);
    await sleep(2500);
    s.proc.write('', undefined); // the whole proc root disappears
    await sleep(2500);
    expect(a.exited).toBe(false);
    const after = s.decisions(a).slice(-2);
    for (const d of after) expect(ruleStatus(d, 'idle')).toBe('unknown');
    expect(await s.cloud.state(s.id)).toBe('running');
    expect(a.lines.some((l) => l.level === 'ERROR')).toBe(false);
    expect(await a.kill('SIGTERM')).toBe(0);
    expect(a.lines.at(-1)).toMatchObject({ message: 'agent stopping', why: 'SIGTERM' });
  });

  test.concurrent('terminates the instance when the watched process, once seen running, has exited', async () => {
    const s = await scenario(
      'task',
      {
        id: 'task-box',
        agent: { sampleInterval: '1s', heartbeatInterval: '1h' },
        rules: [{ rule: 'task-completion', process: 'batchjob', action: 'terminate' }],
      },
      3600,
    );
    s.proc.setProcess(4242, 'batchjob');
    const a = await s.spawn();
    await waitFor('the task seen running', () => s.decisions(a).some((d) => d.rules[0].reason === 'batchjob is running'));
    expect(s.state()!.tasks['task-completion']).toEqual({ seen: true });
    const exitedAt = Date.now();
    s.proc.setProcess(4242, undefined);
    await waitFor(
      'the instance terminated in moto',
      async () => ['shutting-down', 'terminated'].includes((await s.cloud.state(s.id)) ?? ''),
      5000,
      100,
    );
    expect(Date.now() - exitedAt).toBeLessThanOrEqual(2500);
    const ev = await waitFor('the terminated event', async () => (await s.cloud.events(s.q)).find((e) => e.type === 'terminated'));
    expect(ev).toMatchObject({ rule: 'task-completion', action: 'terminate', severity: 'critical' });
    expect(a.exited).toBe(false);
  });
});
