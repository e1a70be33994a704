/**
 * `npm start`'s demo, run in-process with its output collected: every milestone of the
 * story appears, in a sensible order, acted on by the right guard, read from the topic;
 * the watchdog that ran is the synthesized artifact; and everything the demo started is
 * gone afterwards — also when it is interrupted (Ctrl-C) or misses its deadline.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DemoError,
  REQUIRED,
  runDemo,
  type DemoResources,
  type DemoResult,
  type Milestone,
  type MilestoneKind,
} from '../../scripts/demo/run';
import { readStoredZip } from '../../scripts/demo/unzip';
import type { InstanceLabel } from '../../scripts/demo/stack';

jest.setTimeout(200_000);

const outdirs: string[] = [];
function tempOutdir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smvm-demo-test-'));
  outdirs.push(dir);
  return dir;
}
afterAll(() => outdirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function listening(endpoint: string | undefined): Promise<boolean> {
  if (!endpoint) return Promise.resolve(false);
  const { hostname, port } = new URL(endpoint);
  return new Promise((resolve) => {
    const s = net.connect({ host: hostname, port: Number(port) });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Everything the demo started is gone. */
async function expectCleanedUp(r: DemoResources): Promise<void> {
  expect(r.workDir).toBeDefined();
  expect(fs.existsSync(r.workDir!)).toBe(false);
  if (r.procRoot) expect(fs.existsSync(r.procRoot)).toBe(false);
  expect(alive(r.agentPid)).toBe(false);
  // a killed server's socket may outlive its parent by a few milliseconds
  const closed = async (endpoint?: string) => {
    for (let i = 0; i < 20 && (await listening(endpoint)); i++) await new Promise((r) => setTimeout(r, 100));
    return !(await listening(endpoint));
  };
  expect(await closed(r.motoEndpoint)).toBe(true);
  expect(await closed(r.imdsEndpoint)).toBe(true);
}

describe('npm start (the demo)', () => {
  let result: DemoResult;
  let outdir: string;
  const lines: string[] = [];
  const one = (kind: MilestoneKind, instance?: InstanceLabel): Milestone => {
    const found = result.milestones.filter((m) => m.kind === kind && (!instance || m.instance === instance));
    expect(found).toHaveLength(1);
    return found[0];
  };

  beforeAll(async () => {
    outdir = tempOutdir();
    const started = Date.now();
    result = await runDemo({ outdir, print: (l) => lines.push(l) });
    // "about a minute", within the hard cap
    expect(Date.now() - started).toBeLessThan(120_000);
  }, 200_000);

  it('synthesizes the example stacks into the outdir', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as { stacks: Record<string, unknown> };
    expect(Object.keys(manifest.stacks).sort()).toEqual(['batch-workers', 'developer-boxes', 'fleet']);
    expect(lines.join('\n')).toMatch(/3 stacks, \d+ resources/);
  });

  it('sees every milestone, in the order of the story', () => {
    const launched = (['A', 'B', 'C'] as const).map((l) => one('launched', l));
    const t0 = Math.max(...launched.map((m) => m.at));
    const agentStarted = one('agent-started', 'A');
    const loadIdle = one('load-idle', 'A');
    const reported = one('idle-reported', 'A');
    const warned = one('idle-warning', 'A');
    const idleStop = one('idle-stop', 'A');
    const lost = one('heartbeat-lost', 'B');
    const lifeWarned = one('lifetime-warning', 'C');
    const lifeStop = one('lifetime-stop', 'C');
    const report = one('report');
    const idleWindow = 20_000 * (result.policy.idleWindow === '20s' ? 1 : 3);

    expect(agentStarted.at).toBeGreaterThanOrEqual(t0);
    expect(agentStarted.at).toBeLessThan(loadIdle.at);
    // the agent's heartbeat tag carries the idle condition soon after the load drops
    expect(reported.at).toBeGreaterThan(loadIdle.at);
    expect(reported.at - loadIdle.at).toBeLessThan(10_000);
    // the warning comes warnBefore ahead of the stop, the stop a window after the load dropped
    const warnBefore = result.policy.policy.rules.find((r) => r.type === 'idle')!.warnBeforeMs!;
    expect(warned.at).toBeLessThan(idleStop.at);
    expect(idleStop.at - warned.at).toBeGreaterThanOrEqual(warnBefore - 1_000);
    expect(idleStop.at - loadIdle.at).toBeGreaterThanOrEqual(idleWindow - 1_000);
    expect(idleStop.at - loadIdle.at).toBeLessThan(idleWindow + 10_000);
    // B: start grace 5 s + window 20 s of silence
    expect(lost.at - launched[1].at).toBeGreaterThanOrEqual(24_000);
    expect(lost.at - launched[1].at).toBeLessThan(40_000);
    // C: warned 10 s before its 45 s lifetime, stopped at it
    expect(lifeWarned.at).toBeLessThan(lifeStop.at);
    expect(lifeStop.at - launched[2].at).toBeGreaterThanOrEqual(44_000);
    expect(lifeStop.at - launched[2].at).toBeLessThan(60_000);
    // the stops are seen in EC2, and the OS of A ends its agent
    const stateChanges = result.milestones.filter((m) => m.kind === 'state-change');
    expect(stateChanges.map((m) => `${m.instance}:${m.text.split(';')[0]}`).sort()).toEqual(['A:running → stopped', 'C:running → stopped']);
    expect(one('agent-exited', 'A').text).toMatch(/exits with 0$/);
    // the report comes last
    expect(report.at).toBeGreaterThan(Math.max(...result.milestones.filter((m) => m.kind !== 'report').map((m) => m.at)));
  });

  it('has the right guard act on each instance', () => {
    expect(one('lifetime-warning', 'C').by).toBe('watchdog');
    expect(one('lifetime-stop', 'C').by).toBe('watchdog');
    expect(one('heartbeat-lost', 'B').by).toBe('watchdog');
    // A: its agent (the demo keeps the schedule away from the instants A's warning and stop fall due)
    expect(one('idle-warning', 'A').by).toBe('agent');
    expect(one('idle-stop', 'A').by).toBe('agent');
    // the operators' commands were announced by the CLI
    const cli = result.events.filter((e) => e.event.source === 'cli').map((e) => `${e.event.type}:${e.event.instanceId}`);
    expect(cli.sort()).toEqual(
      [`extended:${result.instances.A}`, `extended:${result.instances.B}`, `snoozed:${result.instances.C}`].sort(),
    );
  });

  it('publishes each fact once, and nothing it should not', () => {
    const evs = result.events.map((e) => e.event);
    expect(new Set(evs.map((e) => e.id)).size).toBe(evs.length);
    const of = (label: InstanceLabel) => evs.filter((e) => e.instanceId === result.instances[label]);
    const idle = of('A').filter((e) => e.rule === 'idle');
    expect(idle.map((e) => e.type)).toEqual(['warning', 'stopped']);
    expect(idle[0].episode).toBe(idle[1].episode);
    // A's agent is alive and C is snoozed: only B's agent is reported lost
    expect(evs.filter((e) => e.type === 'heartbeat-lost').map((e) => e.instanceId)).toEqual([result.instances.B]);
    // B's lifetime was extended: it is never stopped
    expect(of('B').filter((e) => ['stopped', 'terminated', 'warning'].includes(e.type))).toEqual([]);
    expect(evs.filter((e) => e.type === 'error')).toEqual([]);
    expect(result.watchdog.errors).toEqual([]);
    expect(result.watchdog.scheduled).toBeGreaterThanOrEqual(8);
  });

  it('ran the synthesized watchdog package, not the TypeScript source', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
      stacks: Record<string, { synthesizedStackPath: string }>;
    };
    const stackFile = path.join(outdir, manifest.stacks['developer-boxes'].synthesizedStackPath);
    const tf = JSON.parse(fs.readFileSync(stackFile, 'utf8')) as { resource: Record<string, Record<string, { filename: string }>> };
    const fn = Object.values(tf.resource.aws_lambda_function)[0];
    const zip = fs.readFileSync(path.resolve(path.dirname(stackFile), fn.filename));
    const index = readStoredZip(zip).find((e) => e.name === 'index.js')!;
    expect(result.watchdog.codeSha256).toBe(crypto.createHash('sha256').update(index.data).digest('hex'));
  });

  it('prints a readable timeline and the usage report', () => {
    const text = lines.join('\n');
    expect(text).toContain('What you are watching');
    const order = [
      /\+\s*0\.0 s {2}A {2}terraform launched i-/,
      /WARNING \[idle\]/,
      /HEARTBEAT-LOST/,
      /STOPPED \[idle\]/,
      /WARNING \[lifetime\]/,
      /STOPPED \[lifetime\]/,
      /\[5\/5\] Usage report/,
    ];
    const at = order.map((re) => lines.findIndex((l) => re.test(l)));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const usage = JSON.parse(result.report) as { instances: Array<{ instanceId: string; state: string; actions: number }> };
    const state = Object.fromEntries(usage.instances.map((i) => [i.instanceId, i.state]));
    expect(state).toEqual({ [result.instances.A]: 'stopped', [result.instances.B]: 'running', [result.instances.C]: 'stopped' });
    expect(text).toMatch(/Done in \d+ s/);
  });

  it('cleans up: no agent, no moto, no fake IMDS, no temporary files', () => expectCleanedUp(result.resources));
});

describe('npm start when things go wrong', () => {
  it('stops on Ctrl-C (abort) and still cleans up', async () => {
    const abort = new AbortController();
    const lines: string[] = [];
    const error = await runDemo({
      outdir: tempOutdir(),
      signal: abort.signal,
      print: (l) => {
        lines.push(l);
        if (/agent started/.test(l)) abort.abort();
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DemoError);
    expect((error as DemoError).message).toBe('interrupted');
    expect((error as DemoError).resources.agentPid).toBeDefined();
    await expectCleanedUp((error as DemoError).resources);
  });

  it('fails with the missing milestones when they do not happen in time, and still cleans up', async () => {
    const error = await runDemo({ outdir: tempOutdir(), timeoutMs: 10_000, print: () => undefined }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DemoError);
    const message = (error as DemoError).message;
    expect(message).toMatch(/^not seen within 10 s: /);
    for (const r of REQUIRED) expect(message).toContain(r.what);
    expect((error as DemoError).milestones.filter((m) => m.kind === 'launched')).toHaveLength(3);
    await expectCleanedUp((error as DemoError).resources);
  });
});
