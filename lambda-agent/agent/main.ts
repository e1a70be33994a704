/**
 * The agent's entry point: wiring (config, IMDS, the lean AWS client, /proc, disk
 * state) and signals. Runs as `smvm-agent.service`; systemd restarts it whenever it
 * exits, and stops it with SIGTERM (the decision in flight finishes, the state is
 * saved). The work of each tick is in `loop.ts`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAwsClient } from '../adapters/agent/aws-http';
import { createImdsClient } from '../adapters/agent/imds';
import { createProcSampler } from '../adapters/agent/proc';
import { HEARTBEAT_FILE } from '../contract/bootstrap';
import { createLogger } from '../log';
import { AgentConfigError, loadAgentConfig } from './config';
import { createAgent, parseBootTime, type Agent } from './loop';
import { createStateStore } from './state-file';
import { createTaskWatcher } from './tasks';

declare const __SMVM_AGENT_VERSION__: string | undefined;

/** The version built into the bundle (`dev` when run from source). */
export const AGENT_VERSION = typeof __SMVM_AGENT_VERSION__ === 'string' ? __SMVM_AGENT_VERSION__ : 'dev';

/** Exit status for a missing or broken configuration (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

function tryRead(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  let config;
  try {
    config = loadAgentConfig(env);
  } catch (e) {
    createLogger({ service: 'smvm-agent', persistentKeys: { component: 'agent' } }).error('agent not configured', { error: e });
    return process.exit(e instanceof AgentConfigError ? EXIT_CONFIG : 1);
  }
  const log = createLogger({
    service: 'smvm-agent',
    level: config.logLevel,
    persistentKeys: { component: 'agent', policy_id: config.policyId },
  });
  process.on('uncaughtException', (e) => {
    log.error('agent crashed', { error: e });
    process.exit(1);
  });

  const imds = createImdsClient({ endpoint: config.imdsEndpoint });
  let instanceId: string | undefined;
  for (let i = 0; !instanceId; i++) {
    instanceId = await imds.instanceId().catch(async (e: unknown) => {
      log.warn('instance id unavailable', { attempt: i + 1, error: e });
      await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** i)));
      return undefined;
    });
  }
  log.appendKeys({ instance_id: instanceId });
  const aws = createAwsClient({ region: config.region, endpoint: config.awsEndpoint, credentials: () => imds.credentials() });

  const self = /\.js$/.test(process.argv[1] ?? '') ? tryRead(process.argv[1]) : undefined;
  const version = AGENT_VERSION + (self ? `+${createHash('sha256').update(self).digest('hex').slice(0, 8)}` : '');
  const bootTime = parseBootTime(String(tryRead(join(config.procRoot, 'stat')) ?? ''));
  const beatFile = join(config.stateDir, HEARTBEAT_FILE);
  let lastAliveAt: number | undefined;
  try {
    lastAliveAt = statSync(beatFile).mtimeMs;
  } catch {
    mkdirSync(config.stateDir, { recursive: true });
  }

  const exit = async (why: string) => {
    log.info('agent stopping', { why });
    await agent.stop();
    process.exit(0);
  };
  const agent: Agent = createAgent(
    { config, instanceId, version, bootTime, lastAliveAt },
    {
      imds,
      aws,
      sampler: createProcSampler(config),
      tasks: createTaskWatcher(config),
      store: createStateStore(config.stateDir),
      log,
      shutdown: (command) =>
        new Promise((ok, fail) => execFile('/bin/sh', ['-c', command], { timeout: 60_000 }, (e) => (e ? fail(e) : ok()))),
      writeHeartbeatFile: (until) => {
        writeFileSync(beatFile + '.tmp', `${until}\n`);
        renameSync(beatFile + '.tmp', beatFile);
      },
    },
  );
  agent.start();
  agent.run();
  log.info('agent started', { version, bootTime, stateDir: config.stateDir, procRoot: config.procRoot });
  for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => void exit(sig));
}

if (require.main === module) void main();
