/**
 * Agent footprint and reaction, measured on this machine:
 *
 * - CPU time and peak RSS of the REAL bundled agent (as its unit runs it, at the default
 *   10 s interval, sampling the real /proc) beside an empty Node process started at the
 *   same moment, read from /proc/<pid>/stat, /proc/<pid>/schedstat and VmHWM;
 * - bundle size (minified) and bootstrap size (gzipped);
 * - reaction time: a proc root switched to a crossing state (the watched process of a
 *   task-completion rule disappears) until moto shows the instance stopped, at the
 *   default 10 s interval, no fake clock.
 *
 * 60 s of steady state (after a 30 s warm-up) by default; SMVM_BENCH_QUICK=1 measures
 * 15 s after a 5 s warm-up (for development). The start-up CPU is reported on its own.
 *   npx tsx bench/agent.ts        or        npm run bench -- agent
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { AGENT_BUNDLE_GOAL_BYTES, buildAgentBundle } from '../lambda-agent/agent/build';
import { STATE_FILE, type AgentState } from '../lambda-agent/agent/state-file';
import { AGENT_NODE_FLAGS, renderBootstrap, renderUserData } from '../lambda-agent/contract/bootstrap';
import { agentArtifactParameterName, policyParameterName } from '../lambda-agent/contract/env';
import { POLICY_TAG, POLICY_VERSION_TAG } from '../lambda-agent/contract/tags';
import type { PolicyDocument } from '../lambda-agent/policy/model';
import { agentHome, Cloud, createProcRoot, readJson, spawnAgent, tempDir, waitFor, type AgentProcess } from '../test/agent/harness';
import { startFakeImds } from '../test/support/fake-imds';
import { startMoto, stopMoto } from '../test/support/moto';
import type { BenchRow } from './row';

export type { BenchRow };

const CLK_TCK = 100;

/** CPU time of a process in ms: schedstat (ns) when available, else utime + stime (ticks). */
function cpuMs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')')[1].trim().split(/\s+/);
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  }
}

/** Peak resident set (VmHWM) in MB. */
function peakRssMb(pid: number): number {
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  return Number(kb) / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchAgent(): Promise<BenchRow[]> {
  const quick = process.env.SMVM_BENCH_QUICK === '1';
  const seconds = quick ? 15 : 60;
  const rows: BenchRow[] = [];
  const bundle = await buildAgentBundle(join(tempDir('bench-bundle'), 'agent.js'));
  rows.push({
    name: 'agent bundle (minified)',
    value: bundle.bytes / 1024,
    unit: 'KiB',
    goal: '≤ 100 KiB',
    ok: bundle.bytes <= AGENT_BUNDLE_GOAL_BYTES,
  });
  const opts = {
    policyId: 'bench',
    region: 'us-east-1',
    topicArn: 'arn:aws:sns:us-east-1:123456789012:smvm-bench-events',
    policyParameter: policyParameterName('bench'),
    artifactParameter: agentArtifactParameterName('bench'),
  };
  const gz = gzipSync(renderBootstrap(opts), { level: 9 }).length;
  rows.push({ name: 'bootstrap user data (gzipped)', value: gz, unit: 'B', goal: '≤ 4096 B', ok: gz <= 4096 });
  rows.push({
    name: 'user data as sent (gzip + MIME)',
    value: renderUserData(opts).length,
    unit: 'B',
    goal: '≤ 4096 B',
    ok: renderUserData(opts).length <= 4096,
  });

  const moto = await startMoto();
  const stops: Array<() => Promise<unknown> | unknown> = [];
  try {
    const cloud = new Cloud(moto);
    const q = await cloud.topicWithQueue('bench');
    const idle: PolicyDocument = {
      id: 'bench',
      rules: [
        { rule: 'idle', window: '30m', action: 'stop', warnBefore: '5m' },
        { rule: 'over-use', window: '15m', cpuPercentAbove: 95, action: 'notify' },
        { rule: 'lifetime', max: '30d', action: 'stop' },
      ],
    };
    const hash = await cloud.putPolicy(opts.policyParameter, idle);
    const footprintId = await cloud.launch({ [POLICY_TAG]: 'bench', [POLICY_VERSION_TAG]: hash });
    const tags = await cloud.tags(footprintId);
    const imds = await startFakeImds({ instanceId: footprintId, tags: () => tags });
    stops.push(() => imds.close());

    // Reaction: a second instance whose task (a process in a fake proc root) ends.
    const taskDoc: PolicyDocument = { id: 'bench-task', rules: [{ rule: 'task-completion', process: 'batchjob', action: 'stop' }] };
    const taskHash = await cloud.putPolicy(policyParameterName('bench-task'), taskDoc);
    const taskId = await cloud.launch({ [POLICY_TAG]: 'bench-task', [POLICY_VERSION_TAG]: taskHash });
    const taskTags = await cloud.tags(taskId);
    const taskImds = await startFakeImds({ instanceId: taskId, tags: () => taskTags });
    stops.push(() => taskImds.close());
    const proc = createProcRoot({ bootTimeSec: Math.floor(Date.now() / 1000) - 600 });
    stops.push(() => proc.stop());
    proc.setProcess(4242, 'batchjob');

    const base = { PATH: process.env.PATH ?? '/usr/bin:/bin', AWS_ENDPOINT_URL: moto.endpoint };
    const flags = AGENT_NODE_FLAGS.split(' ');
    const footprintState = tempDir('bench-state');
    const agent = spawnAgent(
      bundle.file,
      { ...base, SMVM_HOME: agentHome({ ...opts, topicArn: q.topicArn, stateDir: footprintState }), SMVM_IMDS_ENDPOINT: imds.endpoint },
      flags,
    );
    const empty = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
    stops.push(
      () => agent.kill('SIGKILL'),
      () => empty.kill('SIGKILL'),
    );
    const taskState = tempDir('bench-task-state');
    const taskAgent: AgentProcess = spawnAgent(
      bundle.file,
      {
        ...base,
        SMVM_HOME: agentHome({
          ...opts,
          policyId: 'bench-task',
          policyParameter: policyParameterName('bench-task'),
          topicArn: q.topicArn,
          stateDir: taskState,
          utmpPath: proc.utmpPath,
        }),
        SMVM_IMDS_ENDPOINT: taskImds.endpoint,
        SMVM_PROC_ROOT: proc.dir,
      },
      flags,
    );
    stops.push(() => taskAgent.kill('SIGKILL'));

    await agent.waitForLine('the first decision', (l) => l.message === 'decision made', 20_000);
    const startupCpu = cpuMs(agent.proc.pid!);
    await waitFor('the task seen running', () => readJson<AgentState>(join(taskState, STATE_FILE))?.tasks['task-completion']?.seen, 30_000);

    // Steady state: after a warm-up (V8 compiles the tick's code paths lazily), for `seconds`.
    await sleep(quick ? 5000 : 30_000);
    const t0 = performance.now();
    const a0 = cpuMs(agent.proc.pid!);
    const e0 = cpuMs(empty.pid!);
    // The task ends at a random phase of the agent's 10 s interval, during the measurement.
    await sleep(Math.min(seconds * 1000 - 14_000, 1000 + Math.random() * 10_000));
    const switchedAt = performance.now();
    proc.setProcess(4242, undefined);
    const reaction = waitFor(
      'the stop in moto',
      async () => ((await cloud.state(taskId)) === 'stopped' ? performance.now() - switchedAt : undefined),
      30_000,
      100,
    );
    const reactionMs = await reaction;
    await sleep(Math.max(0, seconds * 1000 - (performance.now() - t0)));
    const wall = performance.now() - t0;
    const agentCpu = ((cpuMs(agent.proc.pid!) - a0) / wall) * 100;
    const emptyCpu = ((cpuMs(empty.pid!) - e0) / wall) * 100;
    const agentRss = peakRssMb(agent.proc.pid!);
    const emptyRss = peakRssMb(empty.pid!);

    rows.push({
      name: 'agent start-up CPU (one-off: load, parse, first decision)',
      value: startupCpu,
      unit: 'ms',
      goal: '(reference)',
      ok: true,
    });
    rows.push({
      name: `agent CPU, ${seconds} s steady state at the default 10 s interval`,
      value: agentCpu,
      unit: '% of one core',
      goal: '≤ 0.05 %',
      ok: agentCpu <= 0.05,
    });
    rows.push({ name: 'empty Node process CPU, same window', value: emptyCpu, unit: '% of one core', goal: '(reference)', ok: true });
    rows.push({
      name: 'agent peak RSS (VmHWM)',
      value: agentRss,
      unit: 'MB',
      goal: `≤ 1.25 × empty (${(1.25 * emptyRss).toFixed(1)} MB)`,
      ok: agentRss <= 1.25 * emptyRss,
    });
    rows.push({ name: 'empty Node process peak RSS (VmHWM)', value: emptyRss, unit: 'MB', goal: '(reference)', ok: true });
    rows.push({
      name: 'reaction: task ended → instance stopped (10 s interval)',
      value: reactionMs / 1000,
      unit: 's',
      goal: '≤ 15 s',
      ok: reactionMs <= 15_000,
    });
    if (agent.exited || taskAgent.exited) throw new Error(`bench: an agent exited early: ${agent.stderr()}${taskAgent.stderr()}`);
  } finally {
    for (const s of stops.reverse()) await s();
    await stopMoto();
  }
  return rows;
}

if (require.main === module) {
  benchAgent().then(
    (rows) => {
      for (const r of rows)
        console.log(`${r.ok ? 'ok ' : 'NO '} ${r.name}: ${r.value.toFixed(r.value < 1 ? 4 : 1)} ${r.unit} (goal ${r.goal})`);
      process.exitCode = rows.every((r) => r.ok) ? 0 : 1;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 2;
    },
  );
}
