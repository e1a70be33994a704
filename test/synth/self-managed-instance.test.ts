import 'cdktf/lib/testing/adapters/jest';
import { Testing } from 'cdktf';
import type { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { SelfManagedInstance, ValidationError, type SelfManagedInstanceProps, type SelfManagementPolicy } from '../../constructs';
import {
  HARD_LIMIT_TAG,
  MANAGEMENT_ID_PATTERN,
  MANAGEMENT_ID_TAG,
  POLICY_TAG,
  POLICY_VERSION_TAG,
  SHUTDOWN_BEHAVIOR_TAG,
  parseManagementId,
} from '../../lambda-agent/contract';
import type { PolicyDocument } from '../../lambda-agent/policy/model';
import { loadPolicy } from '../../lambda-agent/policy/parse';
import { DEV_POLICY, one, parse, resourcesOf, testPolicy } from './support/synth';

Testing.setupJest();

const HIBERNATING: PolicyDocument = { id: 'hib', rules: [{ rule: 'idle', window: '30m', action: 'hibernate' }] };
const STOPPING: PolicyDocument = {
  id: 'soft',
  rules: [
    { rule: 'idle', window: '30m' },
    { rule: 'lifetime', max: '7d', action: 'stop' },
  ],
};

function box(
  scope: Construct,
  policy: SelfManagementPolicy,
  props: Partial<SelfManagedInstanceProps> = {},
  id = 'Box',
): SelfManagedInstance {
  return new SelfManagedInstance(scope, id, { policy, ami: 'ami-0123456789abcdef0', instanceType: 't3.large', ...props });
}

describe('SelfManagedInstance', () => {
  it('tags the instance with the policy, its management id, version, shutdown behaviour and lifetime hard limit, after your own tags', () => {
    // GIVEN a policy with a 7-day lifetime
    let managementId = '';
    const json = Testing.synthScope((scope) => {
      // WHEN an instance is declared with its own tags
      managementId = box(scope, testPolicy(scope), { tags: { Name: 'dev-alice', Owner: 'alice' } }).managementId;
    });
    // THEN the tags are merged
    expect(json).toHaveResourceWithProperties(Instance, {
      tags: {
        Name: 'dev-alice',
        Owner: 'alice',
        [POLICY_TAG]: 'dev',
        [MANAGEMENT_ID_TAG]: managementId,
        [POLICY_VERSION_TAG]: loadPolicy(DEV_POLICY).hash,
        [HARD_LIMIT_TAG]: String(7 * 24 * 3600),
        [SHUTDOWN_BEHAVIOR_TAG]: 'terminate',
      },
    });
    expect(managementId).toMatch(MANAGEMENT_ID_PATTERN);
    expect(parseManagementId(managementId)?.policyId).toBe('dev');
  });

  it('has no hard-limit tag without a lifetime rule, and the shortest limit with several', () => {
    const tagsOf = (doc: PolicyDocument) =>
      one(parse(Testing.synthScope((scope) => box(scope, testPolicy(scope, { policy: doc })))), 'aws_instance').tags as Record<
        string,
        string
      >;
    expect(tagsOf({ id: 'dev', rules: [{ rule: 'idle', window: '30m' }] })).not.toHaveProperty(HARD_LIMIT_TAG);
    expect(
      tagsOf({
        id: 'dev',
        rules: [
          { rule: 'lifetime', max: '7d' },
          { rule: 'lifetime', name: 'short', max: '12h' },
        ],
      })[HARD_LIMIT_TAG],
    ).toBe('43200');
  });

  it('arms the shutdown guard only for lifetime rules a poweroff does not exceed', () => {
    const tagsOf = (doc: PolicyDocument) =>
      one(parse(Testing.synthScope((scope) => box(scope, testPolicy(scope, { policy: doc })))), 'aws_instance').tags as Record<
        string,
        string
      >;
    // a notify-only lifetime rule never powers the instance off
    expect(tagsOf({ id: 'dev', rules: [{ rule: 'lifetime', max: '7d', action: 'notify' }] })).not.toHaveProperty(HARD_LIMIT_TAG);
    // a lifetime stop beside a terminating hard rule: a poweroff would terminate, so no guard for it
    expect(
      tagsOf({
        id: 'dev',
        rules: [
          { rule: 'lifetime', max: '1d', action: 'stop' },
          { rule: 'running-time', max: '40h', action: 'terminate' },
        ],
      }),
    ).not.toHaveProperty(HARD_LIMIT_TAG);
    // ... but a terminating lifetime rule is always guarded
    expect(
      tagsOf({
        id: 'dev',
        rules: [
          { rule: 'lifetime', max: '1d', action: 'stop' },
          { rule: 'lifetime', name: 'end', max: '7d', action: 'terminate' },
        ],
      })[HARD_LIMIT_TAG],
    ).toBe(String(7 * 86400));
  });

  it('derives the management id from the construct path: stable across synths, distinct per instance', () => {
    const ids = () => {
      const out: string[] = [];
      Testing.synthScope((scope) => {
        const policy = testPolicy(scope);
        out.push(box(scope, policy, {}, 'Alice').managementId, box(scope, policy, {}, 'Bob').managementId);
      });
      return out;
    };
    const first = ids();
    expect(ids()).toEqual(first);
    expect(first[0]).not.toBe(first[1]);
  });

  it('attaches the instance profile of the policy and requires IMDSv2 with hop limit 1 and tags in metadata', () => {
    const json = Testing.synthScope((scope) => box(scope, testPolicy(scope)));
    expect(json).toHaveResourceWithProperties(Instance, {
      ami: 'ami-0123456789abcdef0',
      instance_type: 't3.large',
      iam_instance_profile: '${aws_iam_instance_profile.Policy_InstanceProfile_DCBBF022.name}',
      metadata_options: {
        http_endpoint: 'enabled',
        http_tokens: 'required',
        http_put_response_hop_limit: 1,
        instance_metadata_tags: 'enabled',
      },
      root_block_device: { delete_on_termination: true },
    });
  });

  it('shuts down to terminate when a hard-limit rule terminates, else to stop, and tags the instance with it for the agent', () => {
    const behaviour = (doc: PolicyDocument) => {
      const instance = one(parse(Testing.synthScope((scope) => box(scope, testPolicy(scope, { policy: doc })))), 'aws_instance');
      // the agent powers the OS off only for an action that the behaviour does no more than
      expect(instance.tags[SHUTDOWN_BEHAVIOR_TAG]).toBe(instance.instance_initiated_shutdown_behavior);
      return instance.instance_initiated_shutdown_behavior;
    };
    expect(behaviour(DEV_POLICY)).toBe('terminate');
    expect(behaviour(STOPPING)).toBe('stop');
    // a soft rule that terminates (idle) does not make an OS shutdown a termination
    expect(behaviour({ id: 'dev', rules: [{ rule: 'idle', window: '30m', action: 'terminate' }] })).toBe('stop');
  });

  it('passes the provider config through, merging root_block_device', () => {
    const json = Testing.synthScope((scope) =>
      box(scope, testPolicy(scope), {
        subnetId: 'subnet-1',
        vpcSecurityGroupIds: ['sg-1'],
        keyName: 'alice',
        rootBlockDevice: { volumeSize: 50, volumeType: 'gp3', encrypted: true },
      }),
    );
    expect(json).toHaveResourceWithProperties(Instance, {
      subnet_id: 'subnet-1',
      vpc_security_group_ids: ['sg-1'],
      key_name: 'alice',
      root_block_device: { volume_size: 50, volume_type: 'gp3', encrypted: true, delete_on_termination: true },
    });
  });

  it('adds no resource but the instance itself', () => {
    const count = (n: number) =>
      Object.values(
        parse(
          Testing.synthScope((scope) => {
            const policy = testPolicy(scope);
            for (let i = 0; i < n; i++) box(scope, policy, {}, `Box${i}`);
          }),
        ).resource,
      ).reduce((sum, byName) => sum + Object.keys(byName).length, 0);
    expect(count(5) - count(0)).toBe(5);
  });

  it('exposes the L1 as instance and default child, and its id', () => {
    Testing.synthScope((scope) => {
      const b = box(scope, testPolicy(scope));
      expect(b.instance).toBeInstanceOf(Instance);
      expect(b.node.defaultChild).toBe(b.instance);
      expect(b.instance.node.id).toBe('Resource');
      expect(b.instanceId).toMatch(/^\$\{TfToken\[TOKEN\.\d+\]\}$/);
    });
  });

  describe('hibernation', () => {
    it('configures hibernation when a rule hibernates, with an encrypted root volume', () => {
      const json = Testing.synthScope((scope) =>
        box(scope, testPolicy(scope, { policy: HIBERNATING }), { rootBlockDevice: { encrypted: true, volumeSize: 40 } }),
      );
      expect(json).toHaveResourceWithProperties(Instance, {
        hibernation: true,
        root_block_device: { encrypted: true, volume_size: 40, delete_on_termination: true },
      });
    });

    it('leaves hibernation off otherwise', () => {
      const instance = one(parse(Testing.synthScope((scope) => box(scope, testPolicy(scope)))), 'aws_instance');
      expect(instance).not.toHaveProperty('hibernation');
    });

    it('fails without an encrypted root volume', () => {
      const build = () => Testing.synthScope((scope) => box(scope, testPolicy(scope, { policy: HIBERNATING })));
      expect(build).toThrow(ValidationError);
      expect(build).toThrowErrorMatchingInlineSnapshot(
        `"stack/Box: 'rootBlockDevice.encrypted' must be true: the policy hibernates instances, and EC2 hibernation writes RAM to the root volume, which must be encrypted, got: nothing. Set rootBlockDevice: { encrypted: true } (and a volume at least as large as the instance's RAM plus the OS)."`,
      );
    });

    it('fails for an instance type that cannot hibernate', () => {
      const build = (instanceType: string) => () =>
        Testing.synthScope((scope) =>
          box(scope, testPolicy(scope, { policy: HIBERNATING }), { instanceType, rootBlockDevice: { encrypted: true } }),
        );
      expect(build('m6g.large')).toThrowErrorMatchingInlineSnapshot(
        `"stack/Box: 'instanceType' cannot hibernate; the policy hibernates instances and hibernation is supported (non-metal sizes) by the families c3, c4, c5, c5d, c6i, c7i, m3, m4, m5, m5a, m5ad, m5d, m6i, m7i, r3, r4, r5, r5a, r5ad, r5d, r6i, r7i, t2, t3, t3a, got: "m6g.large". Choose one of those families, or change the policy's 'hibernate' actions to 'stop'."`,
      );
      expect(build('m5.metal')).toThrow(ValidationError);
      expect(build('m5.xlarge')).not.toThrow();
    });
  });

  describe('validation', () => {
    it('fails when your tags use the smvm: prefix', () => {
      expect(() =>
        Testing.synthScope((scope) => box(scope, testPolicy(scope), { tags: { [POLICY_TAG]: 'other' } })),
      ).toThrowErrorMatchingInlineSnapshot(
        `"stack/Box: 'tags.smvm:policy' uses the reserved 'smvm:' prefix; these tags are written by the policy, the watchdog and the agent, got: "smvm:policy". Remove it, or rename it without the 'smvm:' prefix."`,
      );
    });

    it('fails when the root volume would outlive the instance', () => {
      expect(() =>
        Testing.synthScope((scope) => box(scope, testPolicy(scope), { rootBlockDevice: { deleteOnTermination: false } })),
      ).toThrowErrorMatchingInlineSnapshot(
        `"stack/Box: 'rootBlockDevice.deleteOnTermination' must be true (or left out): a self-managed instance that is terminated by its policy must not leave its root volume behind, got: false. Remove deleteOnTermination, and keep data you need on a separate volume or in S3."`,
      );
    });
  });

  it('declares several instances under one policy, sharing its profile', () => {
    const s = parse(
      Testing.synthScope((scope) => {
        const policy = testPolicy(scope);
        box(scope, policy, {}, 'A');
        box(scope, policy, {}, 'B');
      }),
    );
    const instances = Object.values(resourcesOf(s, 'aws_instance'));
    expect(instances).toHaveLength(2);
    expect(new Set(instances.map((i) => i.iam_instance_profile)).size).toBe(1);
    expect(Object.keys(resourcesOf(s, 'aws_iam_instance_profile'))).toHaveLength(1);
  });
});
