/**
 * The watchdog's settings, read once from the environment through the contract's typed
 * readers (a missing variable throws "Environment variable X is required").
 */
import {
  getNumberFromEnv,
  getStringFromEnv,
  FUNCTION_NAME_ENV_VAR,
  LOG_LEVEL_ENV_VAR,
  POLICY_ID_ENV_VAR,
  POLICY_PARAMETER_ENV_VAR,
  PRICING_ENDPOINT_ENV_VAR,
  PRICING_REGION_ENV_VAR,
  SCHEDULE_SECONDS_ENV_VAR,
  SHARD_COUNT_ENV_VAR,
  TOPIC_ARN_ENV_VAR,
  policyParameterName,
} from '../contract/env';
import { isPolicyId } from '../contract/ids';
import { parseLogLevel, type LogLevel } from '../log';

export interface WatchdogConfig {
  readonly policyId: string;
  readonly policyParameter: string;
  readonly topicArn: string;
  /** Shards a schedule run fans out to (1: no fan-out). */
  readonly shardCount: number;
  /** This function's name (fan-out invokes it); required when shardCount > 1. */
  readonly functionName?: string;
  /** Region of the instances (their prices are looked up for it). */
  readonly region: string;
  readonly pricingRegion: string;
  readonly pricingEndpoint?: string;
  /** Time between schedule runs. */
  readonly scheduleIntervalMs: number;
  readonly logLevel: LogLevel;
}

type Env = Record<string, string | undefined>;

/** Price List API endpoints exist only in these regions. */
export const PRICING_REGIONS = ['us-east-1', 'eu-central-1', 'ap-south-1'] as const;

export function readConfig(env: Env): WatchdogConfig {
  const policyId = getStringFromEnv(env, POLICY_ID_ENV_VAR);
  if (!isPolicyId(policyId)) {
    throw new Error(
      `Environment variable ${POLICY_ID_ENV_VAR} must be a policy id (lower-case letters, digits, hyphens), got: ${JSON.stringify(policyId)}`,
    );
  }
  const shardCount = getNumberFromEnv(env, SHARD_COUNT_ENV_VAR, 1);
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > 1000) {
    throw new Error(
      `Environment variable ${SHARD_COUNT_ENV_VAR} must be an integer from 1 to 1000, got: ${JSON.stringify(env[SHARD_COUNT_ENV_VAR])}`,
    );
  }
  const functionName = env[FUNCTION_NAME_ENV_VAR] || undefined;
  if (shardCount > 1 && !functionName)
    throw new Error(`Environment variable ${FUNCTION_NAME_ENV_VAR} is required when ${SHARD_COUNT_ENV_VAR} > 1`);
  const pricingRegion = getStringFromEnv(env, PRICING_REGION_ENV_VAR, 'us-east-1');
  if (!(PRICING_REGIONS as readonly string[]).includes(pricingRegion)) {
    throw new Error(
      `Environment variable ${PRICING_REGION_ENV_VAR} must be one of ${PRICING_REGIONS.join(', ')}, got: ${JSON.stringify(pricingRegion)}`,
    );
  }
  const scheduleSeconds = getNumberFromEnv(env, SCHEDULE_SECONDS_ENV_VAR, 60);
  if (scheduleSeconds < 1)
    throw new Error(
      `Environment variable ${SCHEDULE_SECONDS_ENV_VAR} must be at least 1, got: ${JSON.stringify(env[SCHEDULE_SECONDS_ENV_VAR])}`,
    );
  return {
    policyId,
    policyParameter: getStringFromEnv(env, POLICY_PARAMETER_ENV_VAR, policyParameterName(policyId)),
    topicArn: getStringFromEnv(env, TOPIC_ARN_ENV_VAR),
    shardCount,
    ...(functionName ? { functionName } : {}),
    region: getStringFromEnv(env, 'AWS_REGION', getStringFromEnv(env, 'AWS_DEFAULT_REGION', 'us-east-1')),
    pricingRegion,
    ...(env[PRICING_ENDPOINT_ENV_VAR] ? { pricingEndpoint: env[PRICING_ENDPOINT_ENV_VAR] } : {}),
    scheduleIntervalMs: scheduleSeconds * 1000,
    logLevel: parseLogLevel(env[LOG_LEVEL_ENV_VAR]),
  };
}
