/**
 * Environment variable names shared by the constructs (which set them) and the
 * runtime (which reads them once, through the typed readers below).
 */

/** Policy id the watchdog enforces. */
export const POLICY_ID_ENV_VAR = 'SMVM_POLICY_ID';
/** Name of the SSM parameter holding the policy document (JSON). */
export const POLICY_PARAMETER_ENV_VAR = 'SMVM_POLICY_PARAMETER';
/** ARN of the SNS topic events are published to. */
export const TOPIC_ARN_ENV_VAR = 'SMVM_TOPIC_ARN';
/** Number of shards a schedule run fans out to (1 = no fan-out). */
export const SHARD_COUNT_ENV_VAR = 'SMVM_SHARD_COUNT';
/** Name of the watchdog function itself, for fan-out invocations. */
export const FUNCTION_NAME_ENV_VAR = 'AWS_LAMBDA_FUNCTION_NAME';
/** Watchdog: seconds between schedule runs (cadence of metric reads and usage events). Default 60. */
export const SCHEDULE_SECONDS_ENV_VAR = 'SMVM_SCHEDULE_SECONDS';
/** Log level: debug, info, warn, error. */
export const LOG_LEVEL_ENV_VAR = 'SMVM_LOG_LEVEL';
/** Region of the AWS Price List API endpoint (us-east-1, eu-central-1 or ap-south-1). */
export const PRICING_REGION_ENV_VAR = 'SMVM_PRICING_REGION';
/** Optional endpoint of the Price List API (a loopback server in tests). */
export const PRICING_ENDPOINT_ENV_VAR = 'SMVM_PRICING_ENDPOINT';

/** Agent: directory of its configuration and state. */
export const AGENT_HOME_ENV_VAR = 'SMVM_HOME';
/** Agent: root of the proc file system it samples. */
export const PROC_ROOT_ENV_VAR = 'SMVM_PROC_ROOT';
/** Agent: instance metadata endpoint. */
export const IMDS_ENDPOINT_ENV_VAR = 'SMVM_IMDS_ENDPOINT';
/** Agent: sampling interval in seconds. */
export const SAMPLE_SECONDS_ENV_VAR = 'SMVM_SAMPLE_SECONDS';
/** Agent: the command run when the API cannot be reached and a hard limit is crossed. */
export const SHUTDOWN_COMMAND_ENV_VAR = 'SMVM_SHUTDOWN_COMMAND';
/** Standard SDK endpoint override, honoured by every client (watchdog, agent, CLI). */
export const AWS_ENDPOINT_URL_ENV_VAR = 'AWS_ENDPOINT_URL';

/** Directory on the instance holding the agent's files. */
export const AGENT_DIR = '/etc/smvm';
/** File holding the management id, as the original description asks. */
export const MANAGEMENT_ID_FILE = 'management-id';
/** File holding the agent's configuration (JSON), written by the bootstrap. */
export const AGENT_CONFIG_FILE = 'agent.json';

/** SSM parameter holding a policy's document. */
export function policyParameterName(policyId: string): string {
  return `/smvm/${policyId}/policy`;
}
/** SSM parameter holding the ARN of a policy's SNS topic (read by the CLI). */
export function topicParameterName(policyId: string): string {
  return `/smvm/${policyId}/topic`;
}
/** SSM parameter pointing at the current agent artifact (bucket, key, sha256). */
export function agentArtifactParameterName(policyId: string): string {
  return `/smvm/${policyId}/agent`;
}

export class MissingEnvironmentError extends Error {
  constructor(name: string) {
    super(`Environment variable ${name} is required`);
    this.name = 'MissingEnvironmentError';
  }
}

type Env = Record<string, string | undefined>;

export function getStringFromEnv(env: Env, name: string, fallback?: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    if (fallback !== undefined) return fallback;
    throw new MissingEnvironmentError(name);
  }
  return value;
}

export function getNumberFromEnv(env: Env, name: string, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new MissingEnvironmentError(name);
  }
  const value = Number(raw);
  if (!Number.isFinite(value)) {
    throw new Error(`Environment variable ${name} must be a number, got: ${JSON.stringify(raw)}`);
  }
  return value;
}
