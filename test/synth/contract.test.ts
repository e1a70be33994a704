/**
 * Every tag key, environment variable name and parameter name the constructs write comes
 * from lambda-agent/contract, so IaC and runtime cannot drift apart.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Aspects, Testing } from 'cdktf';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { SelfManagedInstance } from '../../constructs';
import * as contract from '../../lambda-agent/contract';
import { parse, testPolicy, type Json, type Synthesized } from './support/synth';

const ENV_NAMES = new Set(
  Object.entries(contract)
    .filter(([name, value]) => name.endsWith('_ENV_VAR') && typeof value === 'string')
    .map(([, value]) => value as string),
);
const TAG_KEYS = new Set<string>(contract.ALL_TAGS);

let s: Synthesized;
beforeAll(() => {
  // GIVEN everything the constructs can write: a policy with every option, a declared instance, adopted resources
  s = parse(
    Testing.synthScope((scope) => {
      const policy = testPolicy(scope, {
        policy: {
          id: 'dev',
          rules: [
            { rule: 'lifetime', max: '7d', action: 'terminate' },
            { rule: 'spend', maxUsd: 25 },
            { rule: 'schedule', timezone: 'Europe/Amsterdam', windows: [{ days: ['mon'], start: '08:00', end: '19:00' }] },
            { rule: 'health', action: 'reboot', escalate: { action: 'terminate' } },
          ],
        },
        shardCount: 2,
        topicKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/t',
        volumeKmsKeyArns: ['arn:aws:kms:us-east-1:123456789012:key/v'],
        subscriptions: [{ protocol: 'email', endpoint: 'ops@example.com' }],
      });
      new SelfManagedInstance(scope, 'Box', {
        policy,
        ami: 'ami-1',
        instanceType: 't3.large',
        tags: { Name: 'box' },
        userData: '#!/bin/sh\n',
      });
      new Instance(scope, 'Legacy', { ami: 'ami-1', instanceType: 't3.large', userData: '#!/bin/sh\n' });
      new LaunchTemplate(scope, 'Template', {
        imageId: 'ami-1',
        tagSpecifications: [{ resourceType: 'instance', tags: { Name: 'fleet' } }],
      });
      Aspects.of(scope).add(policy.aspect());
    }),
  );
});

/** Every value under a key named `key`, anywhere in the synthesized JSON. */
function collect(node: Json, key: string, out: Json[] = []): Json[] {
  if (Array.isArray(node)) node.forEach((n) => collect(n, key, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === key) out.push(v);
      collect(v, key, out);
    }
  }
  return out;
}

describe('contract', () => {
  it('writes only contract tag keys with the smvm: prefix', () => {
    const keys = collect(s.resource, 'tags').flatMap((tags) => Object.keys(tags));
    const ours = keys.filter((k) => k.toLowerCase().startsWith('smvm'));
    expect(ours.length).toBeGreaterThan(10);
    for (const key of ours) expect(TAG_KEYS).toContain(key);
    // and the constructs write only the infrastructure keys
    for (const key of ours) expect(contract.INFRASTRUCTURE_TAGS as readonly string[]).toContain(key);
  });

  it('names only contract tag keys in IAM conditions', () => {
    const conditions = collect(s.data, 'condition').flat() as Array<{ variable: string; values: string[] }>;
    const resourceTags = conditions
      .filter((c) => c.variable.startsWith('aws:ResourceTag/'))
      .map((c) => c.variable.slice('aws:ResourceTag/'.length));
    expect(resourceTags.length).toBeGreaterThan(0);
    for (const key of resourceTags) expect(TAG_KEYS).toContain(key);
    const tagKeyValues = conditions
      .filter((c) => c.variable === 'aws:TagKeys' && c.values.some((v) => v !== 'true' && v !== 'false'))
      .flatMap((c) => c.values);
    for (const key of tagKeyValues) expect(TAG_KEYS).toContain(key);
  });

  it('sets only contract environment variables on the watchdog', () => {
    const names = collect(s.resource.aws_lambda_function, 'variables').flatMap((v) => Object.keys(v));
    expect(names.length).toBeGreaterThanOrEqual(4);
    for (const name of names) expect(ENV_NAMES).toContain(name);
  });

  it('names its parameters with the contract functions', () => {
    const names = collect(s.resource.aws_ssm_parameter, 'name').sort();
    expect(names).toEqual(
      [contract.agentArtifactParameterName('dev'), contract.policyParameterName('dev'), contract.topicParameterName('dev')].sort(),
    );
  });

  it('spells no tag key or environment variable name inline in the constructs', () => {
    const root = path.join(__dirname, '..', '..', 'constructs');
    const files = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
    const literals = [...TAG_KEYS, ...ENV_NAMES].filter(
      (x) => x !== contract.AWS_ENDPOINT_URL_ENV_VAR && x !== contract.FUNCTION_NAME_ENV_VAR,
    );
    for (const file of files(root)) {
      // code only: documentation may name the keys
      const code = fs
        .readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      for (const literal of literals) {
        expect([path.relative(root, file), new RegExp(`['"\`]${literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"\`]`).test(code)]).toEqual(
          [path.relative(root, file), false],
        );
      }
    }
  });
});
