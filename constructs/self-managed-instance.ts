/**
 * `SelfManagedInstance`: an `aws_instance` under a {@link SelfManagementPolicy}. It adds
 * nothing but the instance itself: the role, profile, topic and watchdog belong to the
 * policy and are shared by all its instances.
 */
import { Construct } from 'constructs';
import { Instance, type InstanceConfig } from '@cdktf/provider-aws/lib/instance';
import { MANAGEMENT_ID_TAG } from '../lambda-agent/contract';
import type { SelfManagementPolicy } from './self-management-policy';
import { METADATA_OPTIONS, checkHibernation, checkTags, markManaged, rootBlockDevice, userDataExpression } from './private/adopt';

export interface SelfManagedInstanceProps extends Omit<
  InstanceConfig,
  'userData' | 'userDataBase64' | 'iamInstanceProfile' | 'metadataOptions' | 'instanceInitiatedShutdownBehavior' | 'hibernation'
> {
  /** The policy that governs the instance (tags, instance profile, agent bootstrap). */
  readonly policy: SelfManagementPolicy;
  /**
   * Your own user data: a script (`#!`), `#cloud-config`, or any part cloud-init
   * recognizes. It becomes the first part of a MIME multipart document whose second part
   * bootstraps the agent; the document is gzipped (EC2 accepts 16 KB after gzip).
   * @default - only the agent bootstrap
   */
  readonly userData?: string;
  /**
   * Tags of the instance. Merged with the policy's `smvm:` tags, which you may not set.
   * @default - only the policy's tags
   */
  readonly tags?: Record<string, string>;
}

/**
 * An EC2 instance that manages itself by a policy: stopped when idle, terminated at the
 * end of its life, and so on, by its agent and by the policy's watchdog.
 *
 * Managed for you: `iam_instance_profile` (the policy's), `metadata_options` (IMDSv2,
 * hop limit 1, tags in metadata), `instance_initiated_shutdown_behavior`, `hibernation`,
 * `root_block_device.delete_on_termination` and the user data (yours first, then the
 * agent bootstrap). The user data never depends on the policy's rules or the agent's
 * version, so editing the policy or upgrading the library changes only tags.
 */
export class SelfManagedInstance extends Construct {
  /** The `aws_instance` (construct id `Resource`). */
  readonly instance: Instance;
  /** The policy that governs the instance. */
  readonly policy: SelfManagementPolicy;
  /** The management id (`smvm:management-id` tag), stable across deployments. */
  readonly managementId: string;

  constructor(scope: Construct, id: string, props: SelfManagedInstanceProps) {
    super(scope, id);
    const { policy, userData, tags, rootBlockDevice: root, ...config } = props;

    // ------------------------------------------------------------ validation first
    checkTags(tags, this);
    const rootDevice = rootBlockDevice(root, this);
    if (policy.hibernates) checkHibernation(config.instanceType, root, this);
    const userDataBase64 = userDataExpression(policy, userData, this);

    const ours = policy.managementTags(this);
    this.policy = policy;
    this.managementId = ours[MANAGEMENT_ID_TAG];
    this.instance = new Instance(this, 'Resource', {
      ...config,
      tags: { ...tags, ...ours },
      iamInstanceProfile: policy.instanceProfileName,
      metadataOptions: { ...METADATA_OPTIONS },
      instanceInitiatedShutdownBehavior: policy.shutdownBehavior,
      ...(policy.hibernates ? { hibernation: true } : {}),
      rootBlockDevice: rootDevice,
      userDataBase64,
    });
    this.node.defaultChild = this.instance;
    markManaged(this.instance, policy);
  }

  /** The instance id. @attribute */
  get instanceId(): string {
    return this.instance.id;
  }
}
