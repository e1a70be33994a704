/**
 * Synth cost of self-management: a stack with 1,000 `SelfManagedInstance`s against the
 * same stack with 1,000 plain `aws_instance`s, measured side by side in one process
 * (alternating runs, median), plus the resources the policy adds per instance.
 *
 *   npx tsx bench/synth.ts          (tsx transpiles only; no ts-node stack-trace hook)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, LocalBackend, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { SelfManagedInstance, SelfManagementPolicy } from '../constructs';
import type { BenchRow } from './row';

export type { BenchRow };

const INSTANCES = 1000;
const RUNS = 5;
const USER_DATA = '#!/bin/bash\necho "hello from $(hostname)"\n';

type Variant = 'plain' | 'managed';

function buildApp(variant: Variant, count: number, outdir: string): App {
  const app = new App({ outdir });
  const stack = new TerraformStack(app, 'bench');
  new AwsProvider(stack, 'Aws', { region: 'eu-west-1' });
  new LocalBackend(stack, { path: 'terraform.bench.tfstate' });
  if (variant === 'plain') {
    for (let i = 0; i < count; i++) {
      new Instance(stack, `Box${i}`, {
        ami: 'ami-0123456789abcdef0',
        instanceType: 't3.micro',
        tags: { Name: `box-${i}` },
        userData: USER_DATA,
      });
    }
  } else {
    const policy = new SelfManagementPolicy(stack, 'Policy', {
      policy: {
        id: 'bench',
        rules: [
          { rule: 'idle', window: '30m' },
          { rule: 'lifetime', max: '7d', action: 'terminate' },
        ],
      },
    });
    for (let i = 0; i < count; i++) {
      new SelfManagedInstance(stack, `Box${i}`, {
        policy,
        ami: 'ami-0123456789abcdef0',
        instanceType: 't3.micro',
        tags: { Name: `box-${i}` },
        userData: USER_DATA,
      });
    }
  }
  return app;
}

interface Run {
  /** CPU time (user + system) of building and synthesizing, ms: robust against other load on the machine. */
  readonly ms: number;
  /** Wall-clock time, ms. */
  readonly wallMs: number;
  readonly resources: number;
}

/** Builds and synthesizes (writing cdktf.out to a temporary directory). */
function synthOnce(variant: Variant, count: number): Run {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `smvm-bench-${variant}-`));
  try {
    const started = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    buildApp(variant, count, outdir).synth();
    const used = process.cpuUsage(cpu);
    const ms = (used.user + used.system) / 1000;
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const tf = JSON.parse(fs.readFileSync(path.join(outdir, 'stacks', 'bench', 'cdk.tf.json'), 'utf8')) as {
      resource?: Record<string, object>;
    };
    const resources = Object.values(tf.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
    return { ms, wallMs, resources };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function benchSynth(): Promise<BenchRow[]> {
  process.env.CHECKPOINT_DISABLE = '1';
  // Warm up both paths (module loading, JIT, the bundle cache).
  synthOnce('plain', 50);
  synthOnce('managed', 50);
  const plain: number[] = [];
  const managed: number[] = [];
  const plainWall: number[] = [];
  const managedWall: number[] = [];
  const ratios: number[] = [];
  let plainResources = 0;
  let managedResources = 0;
  // Pairs run back to back (alternating which goes first), so both see the same machine load.
  for (let i = 0; i < RUNS; i++) {
    let pp: Run;
    let mm: Run;
    if (i % 2 === 0) {
      pp = synthOnce('plain', INSTANCES);
      mm = synthOnce('managed', INSTANCES);
    } else {
      mm = synthOnce('managed', INSTANCES);
      pp = synthOnce('plain', INSTANCES);
    }
    plain.push(pp.ms);
    managed.push(mm.ms);
    plainWall.push(pp.wallMs);
    managedWall.push(mm.wallMs);
    ratios.push(mm.ms / pp.ms);
    plainResources = pp.resources;
    managedResources = mm.resources;
  }
  const policyOnly = synthOnce('managed', 0).resources;
  const perInstance = (managedResources - policyOnly) / INSTANCES - 1;
  const ratio = median(ratios);
  return [
    { name: `synth ${INSTANCES} plain aws_instance (CPU)`, value: median(plain), unit: 'ms', goal: 'baseline', ok: true },
    { name: `synth ${INSTANCES} SelfManagedInstance (CPU)`, value: median(managed), unit: 'ms', goal: 'see ratio', ok: true },
    { name: `synth ${INSTANCES} plain aws_instance (wall)`, value: median(plainWall), unit: 'ms', goal: 'baseline', ok: true },
    { name: `synth ${INSTANCES} SelfManagedInstance (wall)`, value: median(managedWall), unit: 'ms', goal: 'see ratio', ok: true },
    { name: 'synth time self-managed / plain (CPU, median of paired runs)', value: ratio, unit: '×', goal: '≤ 1.5', ok: ratio <= 1.5 },
    {
      name: 'resources added per instance by the policy',
      value: perInstance,
      unit: 'resources',
      goal: '0 beyond the instance',
      ok: perInstance === 0,
    },
    {
      name: 'resources of the policy itself (shared by its instances)',
      value: policyOnly,
      unit: 'resources',
      goal: 'once per policy',
      ok: plainResources === INSTANCES,
    },
  ];
}

if (require.main === module) {
  benchSynth()
    .then((rows) => {
      for (const r of rows)
        console.log(
          `${r.ok ? 'ok ' : 'NO '} ${r.name}: ${Number.isInteger(r.value) ? r.value : r.value.toFixed(3)} ${r.unit} (goal ${r.goal})`,
        );
    })
    .catch((e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    });
}
