/**
 * Synth-time errors of the constructs. Each message has the shape
 * `<construct path>: '<field>' <problem>, got: <value>. <fix>` and is phrased in the
 * terms of the props the user wrote. Long explanations live in the named factories
 * below, so the wording is in one place and pinned by tests.
 */
import type { IConstruct } from 'constructs';
import { formatPolicyError, type PolicyError } from '../lambda-agent/policy/parse';

/** A misuse of the constructs' API, detected at synth time; carries the construct path. */
export class ValidationError extends Error {
  /** Path of the construct whose props are wrong, e.g. `DevBoxes/Policy`. */
  readonly constructPath: string;

  constructor(message: string, scope: IConstruct) {
    super(`${scope.node.path}: ${message}`);
    this.name = 'ValidationError';
    this.constructPath = scope.node.path;
  }
}

/** The policy document passed to a `SelfManagementPolicy` has problems: one line per problem. */
export class PolicyDocumentError extends ValidationError {
  constructor(
    scope: IConstruct,
    /** Every problem of the document, as `parsePolicy` reported them. */
    readonly problems: readonly PolicyError[],
  ) {
    super(policyDocumentInvalid(scope.node.path, problems), scope);
    this.name = 'PolicyDocumentError';
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function kb(bytes: number): string {
  return `${bytes.toLocaleString('en-US')} bytes`;
}

// ---------------------------------------------------------------- factories

/** `'field' <problem>, got: <value>. <fix>` */
export function invalidProp(field: string, problem: string, value: unknown, fix: string): string {
  return `'${field}' ${problem}, got: ${show(value)}. ${fix}`;
}

export function policyDocumentInvalid(path: string, problems: readonly PolicyError[]): string {
  const lines = problems.map((p) => `  [${path}] ${formatPolicyError(p)}`);
  return (
    `'policy' has ${problems.length} problem${problems.length === 1 ? '' : 's'}; fix each in the policy document:\n` + lines.join('\n')
  );
}

export function policyParameterTooLarge(bytes: number): string {
  return invalidProp(
    'policy',
    `is ${kb(bytes)} as normalized JSON; a standard-tier SSM parameter holds at most 4,096`,
    `${bytes} bytes`,
    'Shorten descriptions or split the rules over two policies.',
  );
}

export function runtimeTooOld(runtime: string): string {
  return invalidProp(
    'runtime',
    'must be nodejs22.x or newer (the watchdog bundle targets Node 22)',
    runtime,
    "Use 'nodejs22.x' (the default) or a newer Node.js runtime.",
  );
}

export function invalidSchedule(expression: string): string {
  return invalidProp(
    'schedule',
    "must be an EventBridge schedule expression such as 'rate(1 minute)', 'rate(5 minutes)' or 'cron(0/5 * * * ? *)'",
    expression,
    "Use 'rate(N minute|minutes|hour|hours|day|days)' (singular for N = 1) or a six-field cron().",
  );
}

export function invalidSubscription(index: number, protocol: string, endpoint: string, expected: string): string {
  return invalidProp(
    `subscriptions[${index}].endpoint`,
    `must be ${expected} for protocol '${protocol}'`,
    endpoint,
    'Fix the endpoint or choose the protocol that matches it.',
  );
}

/** An esbuild entry (watchdog or agent) is missing: another part of the project has not landed yet. */
export function entryNotFound(what: 'watchdog' | 'agent', entry: string): string {
  return (
    `the ${what} entry '${entry}' does not exist, so the ${what} cannot be bundled. ` +
    `It is written by the ${what} work stream (lambda-agent/${what === 'watchdog' ? 'watchdog/handler.ts exporting handler' : 'agent/main.ts'}); ` +
    `until it lands, pass '${what}Entry' to point at another entry.`
  );
}

export function bundleFailed(what: string, entry: string, messages: string): string {
  return `esbuild could not bundle the ${what} from '${entry}':\n${messages}`;
}

export function managedTagInProps(key: string): string {
  return invalidProp(
    `tags.${key}`,
    "uses the reserved 'smvm:' prefix; these tags are written by the policy, the watchdog and the agent",
    key,
    "Remove it, or rename it without the 'smvm:' prefix.",
  );
}

export function userDataTooLarge(rawBytes: number, gzippedBytes: number, limit: number): string {
  return (
    `'userData' makes the instance's user data too large for EC2, which accepts at most ${kb(limit)} (before base64), ` +
    `got: ${kb(rawBytes)} as MIME multipart, ${kb(gzippedBytes)} gzipped. ` +
    'Move large files to S3 (or an SSM parameter) and fetch them from your script.'
  );
}

export function unknownUserDataType(firstLine: string): string {
  return invalidProp(
    'userData',
    "must start with a line cloud-init recognizes: '#!' (script), '#cloud-config', '#include', '#cloud-boothook', '## template: jinja' or a MIME 'Content-Type:' header",
    firstLine,
    "Add the right first line, e.g. '#!/bin/bash'.",
  );
}

export function userDataContainsBoundary(boundary: string): string {
  return invalidProp(
    'userData',
    `contains the MIME boundary '${boundary}' that separates it from the agent bootstrap`,
    boundary,
    'Remove that line from your user data.',
  );
}

export function hibernationNeedsEncryptedRoot(encrypted: unknown): string {
  return invalidProp(
    'rootBlockDevice.encrypted',
    'must be true: the policy hibernates instances, and EC2 hibernation writes RAM to the root volume, which must be encrypted',
    encrypted,
    "Set rootBlockDevice: { encrypted: true } (and a volume at least as large as the instance's RAM plus the OS).",
  );
}

export function hibernationUnsupportedType(instanceType: string, families: readonly string[]): string {
  return invalidProp(
    'instanceType',
    `cannot hibernate; the policy hibernates instances and hibernation is supported (non-metal sizes) by the families ${families.join(', ')}`,
    instanceType,
    "Choose one of those families, or change the policy's 'hibernate' actions to 'stop'.",
  );
}

export function rootVolumeMustBeDeleted(value: unknown): string {
  return invalidProp(
    'rootBlockDevice.deleteOnTermination',
    'must be true (or left out): a self-managed instance that is terminated by its policy must not leave its root volume behind',
    value,
    'Remove deleteOnTermination, and keep data you need on a separate volume or in S3.',
  );
}

export function managedSettingConflict(resource: string, field: string, value: unknown): string {
  return invalidProp(
    field,
    `is already set on ${resource}, and a self-management policy manages it`,
    value,
    field.startsWith('iamInstanceProfile')
      ? "Remove it and add the permissions your software needs to the policy's 'agentRole'."
      : 'Remove it; the policy sets it.',
  );
}

export function alreadyManaged(resource: string, otherPolicy: string): string {
  return invalidProp(
    'policy',
    `cannot be applied to ${resource}: it is already managed by policy '${otherPolicy}'`,
    otherPolicy,
    'Apply exactly one self-management policy to each instance or launch template.',
  );
}

export function launchTemplateInstanceWithoutUserData(resource: string): string {
  return (
    `'userData' is missing on ${resource}, which launches from a launch template: instance-level user data ` +
    "(with the agent bootstrap) would replace the template's, got: nothing. " +
    'Apply the policy to the launch template instead (policy.applyTo(template)), or give the instance its own userData.'
  );
}

export function unresolvedTagSpecifications(resource: string): string {
  return invalidProp(
    'tagSpecifications',
    `of ${resource} is an unresolved token, so the policy cannot add its instance tags`,
    'token',
    'Pass tagSpecifications as a literal list.',
  );
}
