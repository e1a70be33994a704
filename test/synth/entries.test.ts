/**
 * The library's own entries (written by the watchdog and agent work streams) bundle the
 * way the constructs need: a CommonJS watchdog exporting `handler`, an agent for Node 18
 * with the library's version built in.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Testing } from 'cdktf';
import { SelfManagementPolicy } from '../../constructs';
import { LIBRARY_ROOT } from '../../constructs/private/bundle';
import { POLICY_ID_ENV_VAR, POLICY_PARAMETER_ENV_VAR, TOPIC_ARN_ENV_VAR, policyParameterName } from '../../lambda-agent/contract';
import { DEV_POLICY } from './support/synth';

let artifacts: SelfManagementPolicy['artifacts'];
beforeAll(() => {
  Testing.synthScope((scope) => {
    artifacts = new SelfManagementPolicy(scope, 'Policy', { policy: DEV_POLICY }).artifacts;
  });
});

function cached(sha: string, file: string): string {
  const root = path.join(LIBRARY_ROOT, 'build', 'bundles');
  for (const dir of fs.readdirSync(root)) {
    const p = path.join(root, dir, file);
    if (
      fs.existsSync(p) &&
      JSON.parse(fs.readFileSync(path.join(root, dir, 'manifest.json'), 'utf8'))[file === 'bundle.zip' ? 'zipSha256' : 'sha256'] === sha
    )
      return p;
  }
  throw new Error(`no cached ${file} with sha256 ${sha}`);
}

describe('library entries', () => {
  it('bundles lambda-agent/watchdog/handler.ts into a module that exports handler', () => {
    const js = path.join(path.dirname(cached(artifacts.watchdogZipSha256, 'bundle.zip')), 'index.js');
    const out = spawnSync(
      process.execPath,
      ['--no-warnings', '-e', `process.stdout.write(typeof require(${JSON.stringify(js)}).handler)`],
      {
        env: {
          PATH: process.env.PATH,
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'testing',
          AWS_SECRET_ACCESS_KEY: 'testing',
          [POLICY_ID_ENV_VAR]: 'dev',
          [POLICY_PARAMETER_ENV_VAR]: policyParameterName('dev'),
          [TOPIC_ARN_ENV_VAR]: 'arn:aws:sns:us-east-1:123456789012:smvm-dev',
        },
        encoding: 'utf8',
      },
    );
    expect({ status: out.status, stdout: out.stdout, stderr: out.stderr }).toEqual({ status: 0, stdout: 'function', stderr: '' });
  });

  it('bundles lambda-agent/agent/main.ts with the library version built in', () => {
    const code = fs.readFileSync(cached(artifacts.agentSha256, 'index.js'), 'utf8');
    const { version } = JSON.parse(fs.readFileSync(path.join(LIBRARY_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(code).not.toContain('__SMVM_AGENT_VERSION__');
    expect(code).toContain(JSON.stringify(version));
    expect(artifacts.agentBytes).toBe(Buffer.byteLength(code));
  });
});
