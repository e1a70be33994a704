/**
 * The agent's configuration: `agent.json` (written by the bootstrap) in the agent's
 * home, the management-id file beside it, and a few environment variables read once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_STATE_DIR, type AgentConfigDocument } from '../contract/bootstrap';
import {
  AGENT_CONFIG_FILE,
  AGENT_DIR,
  AGENT_HOME_ENV_VAR,
  AWS_ENDPOINT_URL_ENV_VAR,
  IMDS_ENDPOINT_ENV_VAR,
  LOG_LEVEL_ENV_VAR,
  MANAGEMENT_ID_FILE,
  PROC_ROOT_ENV_VAR,
  SAMPLE_SECONDS_ENV_VAR,
  SHUTDOWN_COMMAND_ENV_VAR,
} from '../contract/env';
import { parseLogLevel, type LogLevel } from '../log';

export interface AgentConfig {
  readonly home: string;
  readonly policyId: string;
  readonly region: string;
  readonly topicArn: string;
  readonly policyParameter: string;
  readonly artifactParameter?: string;
  readonly stateDir: string;
  readonly utmpPath: string;
  readonly systemctl: string;
  readonly procRoot: string;
  readonly imdsEndpoint?: string;
  readonly awsEndpoint?: string;
  /** Run through `/bin/sh -c` when the API cannot be reached and a hard limit is crossed. */
  readonly shutdownCommand: string;
  /** Overrides the policy's `agent.sampleInterval` (ms). */
  readonly sampleIntervalMs?: number;
  readonly logLevel: LogLevel;
  /** From the management-id file, when the bootstrap could write it. */
  readonly managementId?: string;
}

export class AgentConfigError extends Error {
  override name = 'AgentConfigError';
}

type Env = Record<string, string | undefined>;

/** Reads the configuration once; throws {@link AgentConfigError} naming the file. */
export function loadAgentConfig(env: Env, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): AgentConfig {
  const home = env[AGENT_HOME_ENV_VAR] || AGENT_DIR;
  const file = join(home, AGENT_CONFIG_FILE);
  let d: Partial<AgentConfigDocument> | undefined;
  try {
    d = JSON.parse(read(file)) as Partial<AgentConfigDocument>;
  } catch {
    d = undefined;
  }
  if (!d?.policyId || !d.region || !d.topicArn || !d.policyParameter) {
    throw new AgentConfigError(`agent: ${file} must hold policyId, region, topicArn and policyParameter; rerun the bootstrap`);
  }
  let managementId: string | undefined;
  try {
    managementId = read(join(home, MANAGEMENT_ID_FILE)).trim() || undefined;
  } catch {
    managementId = undefined; // read from the tag instead
  }
  const seconds = Number(env[SAMPLE_SECONDS_ENV_VAR] || 0);
  if (!(seconds >= 0))
    throw new AgentConfigError(`agent: ${SAMPLE_SECONDS_ENV_VAR} must be a number of seconds, got: ${env[SAMPLE_SECONDS_ENV_VAR]}`);
  return {
    home,
    policyId: d.policyId,
    region: d.region,
    topicArn: d.topicArn,
    policyParameter: d.policyParameter,
    artifactParameter: d.artifactParameter || undefined,
    stateDir: d.stateDir || AGENT_STATE_DIR,
    utmpPath: d.utmpPath || '/run/utmp',
    systemctl: d.systemctl || 'systemctl',
    procRoot: env[PROC_ROOT_ENV_VAR] || '/proc',
    imdsEndpoint: env[IMDS_ENDPOINT_ENV_VAR] || undefined,
    awsEndpoint: env[AWS_ENDPOINT_URL_ENV_VAR] || undefined,
    shutdownCommand: env[SHUTDOWN_COMMAND_ENV_VAR] || 'systemctl poweroff',
    sampleIntervalMs: seconds ? Math.round(seconds * 1000) : undefined,
    logLevel: parseLogLevel(env[LOG_LEVEL_ENV_VAR]),
    managementId,
  };
}
