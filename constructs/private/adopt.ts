/**
 * What a self-management policy sets on an instance or a launch template, shared by
 * `SelfManagedInstance` (which declares its instance with these settings) and by
 * `policy.applyTo()` / `policy.aspect()` (which adopt existing resources).
 */
import * as zlib from 'node:zlib';
import type { IConstruct } from 'constructs';
import { Fn, Token } from 'cdktf';
import { Instance, type InstanceMetadataOptions, type InstanceRootBlockDevice } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate, type LaunchTemplateTagSpecifications } from '@cdktf/provider-aws/lib/launch-template';
import { TAG_PREFIX } from '../../lambda-agent/contract';
import {
  ValidationError,
  alreadyManaged,
  hibernationNeedsEncryptedRoot,
  hibernationUnsupportedType,
  launchTemplateInstanceWithoutUserData,
  managedSettingConflict,
  managedTagInProps,
  rootVolumeMustBeDeleted,
  unknownUserDataType,
  unresolvedTagSpecifications,
  userDataContainsBoundary,
  userDataTooLarge,
} from '../errors';
import type { SelfManagementPolicy } from '../self-management-policy';
import { HIBERNATION_FAMILIES, canHibernate } from './hibernation';
import { MIME_BOUNDARY, USER_DATA_LIMIT_BYTES, base64gzipExpression, detectContentType, mimeMultipart, userDataSize } from './user-data';

/**
 * Instance metadata: IMDSv2 only (tokens required), and a PUT response hop limit of 1 so
 * that the session token cannot travel past the instance's own network stack: a process
 * in a bridged container (one more hop) or a request forwarded by a proxy on the host
 * cannot obtain it, hence cannot obtain the agent role's credentials, which may stop and
 * terminate this instance. Tags are readable through metadata (the agent reads its policy
 * and limits from them without an API call).
 */
export const METADATA_OPTIONS = {
  httpEndpoint: 'enabled',
  httpTokens: 'required',
  httpPutResponseHopLimit: 1,
  instanceMetadataTags: 'enabled',
} as const;

/** File names cloud-init gives the parts; scripts run in this (alphabetical) order. */
export const USER_PART_FILENAME = '10-user-data';
export const BOOTSTRAP_PART_FILENAME = '90-smvm-agent-bootstrap';

/** Which policy manages which resource. */
const managedBy = new WeakMap<IConstruct, SelfManagementPolicy>();

export function markManaged(node: IConstruct, policy: SelfManagementPolicy): void {
  managedBy.set(node, policy);
}

export function managingPolicy(node: IConstruct): SelfManagementPolicy | undefined {
  return managedBy.get(node);
}

/** A plain aws_instance or aws_launch_template the aspect should adopt. */
export function isAdoptable(node: IConstruct): node is Instance | LaunchTemplate {
  if (managedBy.has(node)) return false;
  if (node instanceof LaunchTemplate) return true;
  if (!(node instanceof Instance)) return false;
  // Launched from a template without user data of its own: the template carries the agent.
  return !(node.launchTemplateInput && node.userDataInput === undefined && node.userDataBase64Input === undefined);
}

function describe(node: IConstruct): string {
  return `${node instanceof LaunchTemplate ? 'aws_launch_template' : 'aws_instance'} '${node.node.path}'`;
}

// ---------------------------------------------------------------- user data

const expressions = new WeakMap<SelfManagementPolicy, Map<string, string>>();

/**
 * The user data expression (`${base64gzip("<MIME>")}`) for a user part and the policy's
 * bootstrap; throws when cloud-init would not recognize the user part or the result is
 * over EC2's 16 KB.
 */
export function userDataExpression(policy: SelfManagementPolicy, userPart: string | undefined, scope: IConstruct): string {
  let cache = expressions.get(policy);
  if (!cache) expressions.set(policy, (cache = new Map()));
  const key = userPart ?? '';
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  if (userPart !== undefined && userPart !== '') {
    if (detectContentType(userPart) === undefined) throw new ValidationError(unknownUserDataType(userPart.split('\n', 1)[0]), scope);
    if (userPart.includes(MIME_BOUNDARY)) throw new ValidationError(userDataContainsBoundary(MIME_BOUNDARY), scope);
  }
  const bootstrap = policy.bootstrapScript;
  const bootstrapType = detectContentType(bootstrap);
  const document = (bootstrapContent: string) =>
    mimeMultipart([
      ...(userPart ? [{ filename: USER_PART_FILENAME, content: userPart }] : []),
      { filename: BOOTSTRAP_PART_FILENAME, content: bootstrapContent, contentType: bootstrapType },
    ]);
  const size = userDataSize(document(bootstrap));
  if (size.gzippedBytes > USER_DATA_LIMIT_BYTES) {
    throw new ValidationError(userDataTooLarge(size.rawBytes, size.gzippedBytes, USER_DATA_LIMIT_BYTES), scope);
  }
  // The bootstrap text lives once per policy (a Terraform local); each instance's user data refers to it.
  const expression = base64gzipExpression(document(policy.bootstrapReference));
  cache.set(key, expression);
  return expression;
}

/** Existing base64 user data as text: decoded (and gunzipped) at synth time, or by Terraform. */
function decodeBase64UserData(value: string): string {
  if (Token.isUnresolved(value)) return Fn.base64decode(value);
  const bytes = Buffer.from(value, 'base64');
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? zlib.gunzipSync(bytes) : bytes;
  return raw.toString('utf8');
}

// ---------------------------------------------------------------- checks

export function checkTags(tags: Record<string, string> | undefined, scope: IConstruct): void {
  if (!tags || Token.isUnresolved(tags)) return;
  for (const key of Object.keys(tags)) {
    if (key.toLowerCase().startsWith(TAG_PREFIX)) throw new ValidationError(managedTagInProps(key), scope);
  }
}

export function checkHibernation(
  instanceType: string | undefined,
  root: InstanceRootBlockDevice | undefined,
  scope: IConstruct,
  checkRoot = true,
): void {
  if (checkRoot && (root?.encrypted === undefined || (!Token.isUnresolved(root.encrypted) && root.encrypted !== true))) {
    throw new ValidationError(hibernationNeedsEncryptedRoot(root?.encrypted), scope);
  }
  if (instanceType && !Token.isUnresolved(instanceType) && !canHibernate(instanceType)) {
    throw new ValidationError(hibernationUnsupportedType(instanceType, HIBERNATION_FAMILIES), scope);
  }
}

export function rootBlockDevice(root: InstanceRootBlockDevice | undefined, scope: IConstruct): InstanceRootBlockDevice {
  const value = root?.deleteOnTermination;
  if (value !== undefined && !Token.isUnresolved(value) && value !== true) throw new ValidationError(rootVolumeMustBeDeleted(value), scope);
  return { ...root, deleteOnTermination: true };
}

function checkMetadata(existing: Record<string, unknown> | undefined, resource: string, scope: IConstruct): void {
  if (!existing) return;
  for (const [field, value] of Object.entries(METADATA_OPTIONS)) {
    const current = existing[field];
    if (current !== undefined && !Token.isUnresolved(current) && current !== value) {
      throw new ValidationError(managedSettingConflict(resource, `metadataOptions.${field}`, current), scope);
    }
  }
}

function checkUnset(current: unknown, wanted: unknown, resource: string, field: string, scope: IConstruct): void {
  if (current !== undefined && current !== wanted) throw new ValidationError(managedSettingConflict(resource, field, current), scope);
}

// ---------------------------------------------------------------- adoption

/** Applies `policy` to an existing aws_instance or aws_launch_template (idempotent). */
export function adopt(policy: SelfManagementPolicy, target: Instance | LaunchTemplate): void {
  const owner = managedBy.get(target);
  if (owner === policy) return;
  const resource = describe(target);
  if (owner) throw new ValidationError(alreadyManaged(resource, owner.policyId), target);
  if (target instanceof Instance) adoptInstance(policy, target, resource);
  else adoptLaunchTemplate(policy, target, resource);
  managedBy.set(target, policy);
}

function adoptInstance(policy: SelfManagementPolicy, instance: Instance, resource: string): void {
  const tags = instance.tagsInput;
  checkTags(tags, instance);
  checkUnset(instance.iamInstanceProfileInput, policy.instanceProfileName, resource, 'iamInstanceProfile', instance);
  checkMetadata(instance.metadataOptionsInput as Record<string, unknown> | undefined, resource, instance);
  checkUnset(
    instance.instanceInitiatedShutdownBehaviorInput,
    policy.shutdownBehavior,
    resource,
    'instanceInitiatedShutdownBehavior',
    instance,
  );
  const root = rootBlockDevice(instance.rootBlockDeviceInput, instance);
  if (policy.hibernates) checkHibernation(instance.instanceTypeInput, instance.rootBlockDeviceInput, instance);

  let userPart: string | undefined = instance.userDataInput;
  if (userPart === undefined && instance.userDataBase64Input !== undefined) userPart = decodeBase64UserData(instance.userDataBase64Input);
  if (userPart === undefined && instance.launchTemplateInput) {
    throw new ValidationError(launchTemplateInstanceWithoutUserData(resource), instance);
  }
  const userData = userDataExpression(policy, userPart, instance);

  const ours = policy.managementTags(instance);
  instance.tags =
    tags === undefined
      ? ours
      : Token.isUnresolved(tags)
        ? (Fn.merge([tags, ours]) as unknown as Record<string, string>)
        : { ...tags, ...ours };
  instance.iamInstanceProfile = policy.instanceProfileName;
  instance.putMetadataOptions({ ...(instance.metadataOptionsInput as InstanceMetadataOptions | undefined), ...METADATA_OPTIONS });
  instance.instanceInitiatedShutdownBehavior = policy.shutdownBehavior;
  if (policy.hibernates) instance.hibernation = true;
  instance.putRootBlockDevice(root);
  instance.resetUserData();
  instance.userDataBase64 = userData;
}

function adoptLaunchTemplate(policy: SelfManagementPolicy, template: LaunchTemplate, resource: string): void {
  const specs = template.tagSpecificationsInput;
  if (specs !== undefined && Token.isUnresolved(specs)) throw new ValidationError(unresolvedTagSpecifications(resource), template);
  const list = (specs ?? []) as LaunchTemplateTagSpecifications[];
  for (const s of list) checkTags(s.tags, template);
  const profile = template.iamInstanceProfileInput;
  if (profile && (profile.arn !== undefined || profile.name !== undefined)) {
    throw new ValidationError(managedSettingConflict(resource, 'iamInstanceProfile', profile.arn ?? profile.name), template);
  }
  checkMetadata(template.metadataOptionsInput as Record<string, unknown> | undefined, resource, template);
  checkUnset(
    template.instanceInitiatedShutdownBehaviorInput,
    policy.shutdownBehavior,
    resource,
    'instanceInitiatedShutdownBehavior',
    template,
  );
  // The root device name depends on the AMI, so a template's root encryption is left to EC2 to check at launch.
  if (policy.hibernates) checkHibernation(template.instanceTypeInput, undefined, template, false);

  const existing = template.userDataInput;
  const userPart = existing === undefined ? undefined : decodeBase64UserData(existing);
  const userData = userDataExpression(policy, userPart, template);

  const ours = policy.managementTags(template);
  let found = false;
  const merged = list.map((s) => {
    if (s.resourceType !== 'instance') return s;
    found = true;
    return { ...s, tags: { ...s.tags, ...ours } };
  });
  if (!found) merged.push({ resourceType: 'instance', tags: ours });
  template.putTagSpecifications(merged);
  template.putIamInstanceProfile({ arn: policy.instanceProfile.arn });
  template.putMetadataOptions({ ...template.metadataOptionsInput, ...METADATA_OPTIONS });
  template.instanceInitiatedShutdownBehavior = policy.shutdownBehavior;
  if (policy.hibernates) template.putHibernationOptions({ configured: true });
  template.userData = userData;
}
