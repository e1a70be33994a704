/**
 * The example stacks, synthesized with the library's real watchdog and agent. Snapshots
 * mask what other parts of the project own (bundle hashes, the policy-version hash, the
 * bootstrap text), so they pin the infrastructure, not the runtime's code.
 */
import 'cdktf/lib/testing/adapters/jest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing, type TerraformStack } from 'cdktf';
import { AutoscalingGroup } from '@cdktf/provider-aws/lib/autoscaling-group';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { createApp } from '../../main';
import { BatchWorkersStack, DeveloperBoxesStack, FleetStack } from '../../stacks';
import { POLICY_TAG, POLICY_VERSION_TAG } from '../../lambda-agent/contract';
import { LIBRARY_ROOT } from '../../constructs/private/bundle';
import { one, parse, resourcesOf } from './support/synth';

Testing.setupJest();

function mask(json: string): string {
  const data = JSON.parse(json);
  for (const key of Object.keys(data.locals ?? {})) data.locals[key] = '<bootstrap: lambda-agent/contract/bootstrap.ts>';
  return JSON.stringify(data, null, 2)
    .replace(/[0-9a-f]{64}/g, '<sha256>')
    .replace(/[A-Za-z0-9+/]{43}=/g, '<sha256-base64>')
    .replace(new RegExp(`"${POLICY_VERSION_TAG}": "[0-9a-f]{16}"`, 'g'), `"${POLICY_VERSION_TAG}": "<policy hash>"`)
    .replace(/version [0-9a-f]{16}/g, 'version <policy hash>');
}

const STACKS: Array<[string, (app: ReturnType<typeof Testing.app>) => TerraformStack]> = [
  ['developer-boxes', (app) => new DeveloperBoxesStack(app, 'developer-boxes')],
  ['batch-workers', (app) => new BatchWorkersStack(app, 'batch-workers')],
  ['fleet', (app) => new FleetStack(app, 'fleet')],
];

describe.each(STACKS)('example stack %s', (name, build) => {
  let json: string;
  beforeAll(() => {
    json = Testing.synth(build(Testing.app()), true);
  });

  it('matches its snapshot', () => {
    expect(mask(json)).toMatchSnapshot();
  });

  it('keeps its state in a local backend at a relative path', () => {
    expect(JSON.parse(json).terraform.backend).toEqual({ local: { path: `terraform.${name}.tfstate` } });
  });
});

describe('example policies', () => {
  it('developer boxes: idle 30 min stop, 7-day lifetime terminate, $25 cap, office hours Mon–Fri 08:00–19:00 Amsterdam', () => {
    const s = parse(Testing.synth(new DeveloperBoxesStack(Testing.app(), 'developer-boxes')));
    const doc = JSON.parse(one(s, 'aws_ssm_parameter', 'Policy_PolicyParameter').insecure_value);
    expect(doc.rules).toEqual([
      expect.objectContaining({ rule: 'idle', window: '30m', action: 'stop' }),
      expect.objectContaining({ rule: 'lifetime', max: '7d', action: 'terminate' }),
      expect.objectContaining({ rule: 'spend', maxUsd: 25 }),
      expect.objectContaining({
        rule: 'schedule',
        timezone: 'Europe/Amsterdam',
        windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
      }),
    ]);
    expect(Object.values(resourcesOf(s, 'aws_instance')).map((i) => i.tags.Owner)).toEqual(['alice', 'bob', 'carol']);
  });

  it('batch workers: terminate when the task completes or after 12 hours', () => {
    const s = parse(Testing.synth(new BatchWorkersStack(Testing.app(), 'batch-workers')));
    const doc = JSON.parse(one(s, 'aws_ssm_parameter', 'Policy_PolicyParameter').insecure_value);
    expect(doc.rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ rule: 'task-completion', unit: 'batch.service', action: 'terminate' }),
        expect.objectContaining({ rule: 'lifetime', max: '12h', action: 'terminate' }),
      ]),
    );
    expect(Object.values(resourcesOf(s, 'aws_instance')).every((i) => i.instance_initiated_shutdown_behavior === 'terminate')).toBe(true);
  });

  it('fleet: an auto scaling group launching from the adopted template', () => {
    const json = Testing.synth(new FleetStack(Testing.app(), 'fleet'));
    expect(json).toHaveResourceWithProperties(AutoscalingGroup, {
      min_size: 4,
      max_size: 4,
      launch_template: { id: '${aws_launch_template.WorkerTemplate.id}', version: '$Latest' },
    });
    expect(json).toHaveResourceWithProperties(LaunchTemplate, {
      tag_specifications: [{ resource_type: 'instance', tags: expect.objectContaining({ Name: 'fleet-worker', [POLICY_TAG]: 'fleet' }) }],
    });
  });
});

describe('the app', () => {
  it('synthesizes every stack offline, with no absolute path of this machine in cdk.tf.json', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'smvm-app-'));
    try {
      createApp(outdir).synth();
      const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8'));
      expect(Object.keys(manifest.stacks).sort()).toEqual(['batch-workers', 'developer-boxes', 'fleet']);
      for (const stack of Object.values(manifest.stacks) as Array<{ synthesizedStackPath: string }>) {
        const text = fs.readFileSync(path.join(outdir, stack.synthesizedStackPath), 'utf8');
        expect(text).not.toContain(LIBRARY_ROOT);
        expect(text).not.toContain(os.tmpdir());
        // the assets it names were written next to it
        for (const asset of text.match(/assets\/[^"]+/g) ?? [])
          expect(fs.existsSync(path.join(outdir, path.dirname(stack.synthesizedStackPath), asset))).toBe(true);
      }
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
