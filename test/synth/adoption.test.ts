/**
 * Adopting an existing stack: `policy.applyTo(resource)` and `policy.aspect()` put plain
 * aws_instance and aws_launch_template resources under a policy with one line.
 */
import 'cdktf/lib/testing/adapters/jest';
import { gzipSync } from 'node:zlib';
import { Aspects, Fn, Testing } from 'cdktf';
import type { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { SelfManagedInstance, ValidationError } from '../../constructs';
import { HARD_LIMIT_TAG, MANAGEMENT_ID_TAG, POLICY_TAG, POLICY_VERSION_TAG } from '../../lambda-agent/contract';
import { loadPolicy } from '../../lambda-agent/policy/parse';
import { DEV_POLICY, gunzip, mimeParts, one, parse, testPolicy, userDataBytes, type Synthesized } from './support/synth';

Testing.setupJest();

const SCRIPT = '#!/bin/bash\necho legacy\n';
const METADATA = { http_endpoint: 'enabled', http_tokens: 'required', http_put_response_hop_limit: 1, instance_metadata_tags: 'enabled' };
const PROFILE = '${aws_iam_instance_profile.Policy_InstanceProfile_DCBBF022.name}';

/** An existing stack: two instances and a launch template, declared without any knowledge of the policy. */
function existingStack(scope: Construct) {
  return {
    web: new Instance(scope, 'Web', { ami: 'ami-1', instanceType: 't3.small', tags: { Name: 'web' }, userData: SCRIPT }),
    worker: new Instance(scope, 'Worker', {
      ami: 'ami-1',
      instanceType: 't3.small',
      userDataBase64: Buffer.from(SCRIPT).toString('base64'),
    }),
    template: new LaunchTemplate(scope, 'Template', {
      imageId: 'ami-1',
      instanceType: 'm6i.large',
      userData: Fn.base64encode(SCRIPT),
      tagSpecifications: [
        { resourceType: 'instance', tags: { Name: 'fleet' } },
        { resourceType: 'volume', tags: { Name: 'fleet-disk' } },
      ],
    }),
  };
}

function userPartOf(s: Synthesized, base64Attribute: string): { filenames: string[]; body: string } {
  const { parts } = mimeParts(gunzip(userDataBytes(s, base64Attribute)));
  return { filenames: parts.map((p) => p.filename ?? ''), body: parts[0].body };
}

describe('policy.aspect()', () => {
  let json: string;
  let s: Synthesized;
  beforeAll(() => {
    // GIVEN an existing stack WHEN one line adds the policy's aspect
    json = Testing.synthScope((scope) => {
      existingStack(scope);
      Aspects.of(scope).add(testPolicy(scope).aspect());
    });
    s = parse(json);
  });

  it('tags, profiles and locks down every plain aws_instance', () => {
    for (const name of ['Web', 'Worker']) {
      const instance = one(s, 'aws_instance', name);
      expect(instance).toMatchObject({
        iam_instance_profile: PROFILE,
        metadata_options: METADATA,
        instance_initiated_shutdown_behavior: 'terminate',
        root_block_device: { delete_on_termination: true },
        tags: expect.objectContaining({
          [POLICY_TAG]: 'dev',
          [POLICY_VERSION_TAG]: loadPolicy(DEV_POLICY).hash,
          [HARD_LIMIT_TAG]: '604800',
        }),
      });
      expect(instance.tags[MANAGEMENT_ID_TAG]).toMatch(/^smvm-dev-[0-9a-f]{12}$/);
      expect(instance).not.toHaveProperty('user_data');
    }
    expect(one(s, 'aws_instance', 'Web').tags.Name).toBe('web');
  });

  it("merges the bootstrap after each instance's own user data (plain or base64)", () => {
    for (const name of ['Web', 'Worker']) {
      expect(userPartOf(s, one(s, 'aws_instance', name).user_data_base64)).toEqual({
        filenames: ['10-user-data', '90-smvm-agent-bootstrap'],
        body: SCRIPT,
      });
    }
  });

  it('adds the tags to the instance tag specification of a launch template, and the rest of the settings', () => {
    expect(json).toHaveResourceWithProperties(LaunchTemplate, {
      iam_instance_profile: { arn: '${aws_iam_instance_profile.Policy_InstanceProfile_DCBBF022.arn}' },
      metadata_options: METADATA,
      instance_initiated_shutdown_behavior: 'terminate',
    });
    const template = one(s, 'aws_launch_template', 'Template');
    expect(template.tag_specifications).toEqual([
      {
        resource_type: 'instance',
        tags: expect.objectContaining({ Name: 'fleet', [POLICY_TAG]: 'dev', [MANAGEMENT_ID_TAG]: expect.stringMatching(/^smvm-dev-/) }),
      },
      { resource_type: 'volume', tags: { Name: 'fleet-disk' } },
    ]);
  });

  it("merges the bootstrap after the template's own (base64) user data", () => {
    expect(userPartOf(s, one(s, 'aws_launch_template', 'Template').user_data)).toEqual({
      filenames: ['10-user-data', '90-smvm-agent-bootstrap'],
      body: SCRIPT,
    });
  });

  it('adds no resources', () => {
    const plain = parse(Testing.synthScope((scope) => void existingStack(scope)));
    const withPolicy = parse(Testing.synthScope((scope) => void testPolicy(scope)));
    const count = (x: Synthesized) => Object.values(x.resource).reduce((n, byName) => n + Object.keys(byName).length, 0);
    expect(count(s)).toBe(count(plain) + count(withPolicy));
  });

  it('leaves SelfManagedInstances alone and instances that launch from a template to it', () => {
    const k = parse(
      Testing.synthScope((scope) => {
        const policy = testPolicy(scope);
        const template = new LaunchTemplate(scope, 'Template', { imageId: 'ami-1' });
        new Instance(scope, 'FromTemplate', { launchTemplate: { id: template.id } });
        new SelfManagedInstance(scope, 'Managed', { policy, ami: 'ami-1', instanceType: 't3.small', userData: SCRIPT });
        Aspects.of(scope).add(policy.aspect());
      }),
    );
    expect(one(k, 'aws_instance', 'FromTemplate')).not.toHaveProperty('user_data_base64');
    expect(one(k, 'aws_instance', 'FromTemplate')).not.toHaveProperty('tags');
    expect(userPartOf(k, one(k, 'aws_instance', 'Managed').user_data_base64).body).toBe(SCRIPT);
    expect(one(k, 'aws_launch_template', 'Template').tag_specifications[0].tags[POLICY_TAG]).toBe('dev');
  });
});

describe('policy.applyTo()', () => {
  it('adopts a single instance and is idempotent', () => {
    const s = parse(
      Testing.synthScope((scope) => {
        const policy = testPolicy(scope);
        const { web } = existingStack(scope);
        policy.applyTo(web);
        policy.applyTo(web);
      }),
    );
    expect(one(s, 'aws_instance', 'Web').tags[POLICY_TAG]).toBe('dev');
    expect(one(s, 'aws_instance', 'Worker')).not.toHaveProperty('tags');
    expect(userPartOf(s, one(s, 'aws_instance', 'Web').user_data_base64).body).toBe(SCRIPT);
  });

  it('reads existing gzipped base64 user data at synth time', () => {
    const s = parse(
      Testing.synthScope((scope) => {
        const gz = new Instance(scope, 'Gz', {
          ami: 'ami-1',
          instanceType: 't3.small',
          userDataBase64: gzipSync(SCRIPT).toString('base64'),
        });
        testPolicy(scope).applyTo(gz);
      }),
    );
    expect(userPartOf(s, one(s, 'aws_instance', 'Gz').user_data_base64).body).toBe(SCRIPT);
  });

  it('configures hibernation on a launch template when the policy hibernates', () => {
    const s = parse(
      Testing.synthScope((scope) => {
        const policy = testPolicy(scope, { policy: { id: 'hib', rules: [{ rule: 'idle', window: '30m', action: 'hibernate' }] } });
        policy.applyTo(existingStack(scope).template);
      }),
    );
    expect(one(s, 'aws_launch_template', 'Template')).toMatchObject({
      hibernation_options: { configured: true },
      instance_initiated_shutdown_behavior: 'stop',
    });
  });

  describe('fails', () => {
    const adopt =
      (f: (scope: Construct) => Instance | LaunchTemplate, id = 'dev') =>
      () =>
        Testing.synthScope((scope) => testPolicy(scope, { policy: { ...DEV_POLICY, id } }).applyTo(f(scope)));

    it('on a resource another policy manages', () => {
      expect(() =>
        Testing.synthScope((scope) => {
          const web = existingStack(scope).web;
          testPolicy(scope, {}, 'Policy').applyTo(web);
          testPolicy(scope, { policy: { ...DEV_POLICY, id: 'other' } }, 'Other').applyTo(web);
        }),
      ).toThrowErrorMatchingInlineSnapshot(
        `"stack/Web: 'policy' cannot be applied to aws_instance 'stack/Web': it is already managed by policy 'dev', got: "dev". Apply exactly one self-management policy to each instance or launch template."`,
      );
    });

    it('on an instance profile of its own', () => {
      expect(
        adopt((scope) => new Instance(scope, 'Web', { ami: 'ami-1', instanceType: 't3.small', iamInstanceProfile: 'web-profile' })),
      ).toThrowErrorMatchingInlineSnapshot(
        `"stack/Web: 'iamInstanceProfile' is already set on aws_instance 'stack/Web', and a self-management policy manages it, got: "web-profile". Remove it and add the permissions your software needs to the policy's 'agentRole'."`,
      );
    });

    it('on metadata options that contradict IMDSv2 with hop limit 1', () => {
      expect(
        adopt(
          (scope) => new Instance(scope, 'Web', { ami: 'ami-1', instanceType: 't3.small', metadataOptions: { httpTokens: 'optional' } }),
        ),
      ).toThrowErrorMatchingInlineSnapshot(
        `"stack/Web: 'metadataOptions.httpTokens' is already set on aws_instance 'stack/Web', and a self-management policy manages it, got: "optional". Remove it; the policy sets it."`,
      );
      expect(adopt((scope) => new LaunchTemplate(scope, 'T', { metadataOptions: { httpPutResponseHopLimit: 2 } }))).toThrow(
        ValidationError,
      );
      expect(adopt((scope) => new Instance(scope, 'Web', { ami: 'ami-1', metadataOptions: { httpTokens: 'required' } }))).not.toThrow();
    });

    it('on smvm: tags of its own', () => {
      expect(
        adopt(
          (scope) => new LaunchTemplate(scope, 'T', { tagSpecifications: [{ resourceType: 'instance', tags: { [POLICY_TAG]: 'x' } }] }),
        ),
      ).toThrow(/'tags.smvm:policy' uses the reserved 'smvm:' prefix/);
    });

    it('on an instance that launches from a template and has no user data of its own', () => {
      expect(
        adopt((scope) => new Instance(scope, 'Web', { launchTemplate: { id: new LaunchTemplate(scope, 'T', {}).id } })),
      ).toThrowErrorMatchingInlineSnapshot(
        `"stack/Web: 'userData' is missing on aws_instance 'stack/Web', which launches from a launch template: instance-level user data (with the agent bootstrap) would replace the template's, got: nothing. Apply the policy to the launch template instead (policy.applyTo(template)), or give the instance its own userData."`,
      );
    });
  });
});
