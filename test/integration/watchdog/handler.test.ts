/**
 * The deployed artifact: lambda-agent/watchdog/handler.ts bundled with esbuild as the
 * constructs bundle it, run in a plain Node process with the standard SDK
 * configuration (AWS_ENDPOINT_URL pointing at moto, the pricing endpoint from the
 * environment) and the system clock — no test-only code path.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { POLICY_ID_ENV_VAR, PRICING_ENDPOINT_ENV_VAR, TOPIC_ARN_ENV_VAR } from '../../../lambda-agent/contract/env';
import { describeAll, runFleet, stateOf } from '../../support/fleet';
import { useMoto } from '../../support/moto';
import { startPricingServer } from '../../support/pricing-server';
import { createHarness, scheduledEvent } from './harness';

const moto = useMoto();
const run = promisify(execFile);
let bundle: string;
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smvm-watchdog-'));
  bundle = path.join(dir, 'index.js');
  await build({
    entryPoints: [path.join(__dirname, '../../../lambda-agent/watchdog/handler.ts')],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    outfile: bundle,
    logLevel: 'silent',
  });
}, 60_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function invoke(env: Record<string, string>, event: unknown): Promise<{ result: any; logs: any[] }> {
  // As Lambda does: an error at initialisation is reported by name and message.
  const script = `let handler;
try { ({ handler } = require(${JSON.stringify(bundle)})); } catch (e) { process.stderr.write('INIT ' + e.name + ': ' + e.message + '\\n'); process.exit(3); }
handler(${JSON.stringify(event)}, { awsRequestId: 'req-1', getRemainingTimeInMillis: () => 50000 })
  .then((r) => process.stderr.write('RESULT ' + JSON.stringify(r) + '\\n'), (e) => { process.stderr.write('THROWN ' + e.message + '\\n'); process.exit(2); });`;
  const { stdout, stderr } = await run(process.execPath, ['-e', script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = stderr.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no result; stderr:\n${stderr}`);
  return {
    result: JSON.parse(line.slice(7)),
    logs: stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  };
}

describe('the bundled watchdog handler', () => {
  it('runs a schedule cycle against moto with the standard SDK configuration and logs one summary line', async () => {
    const h = await createHarness(moto, { policyId: 'handler' });
    const prices = await startPricingServer({ prices: { 't3.micro': 0.0104 } });
    try {
      await h.putPolicy({
        id: 'handler',
        rules: [
          { rule: 'lifetime', max: '1s', action: 'stop' },
          { rule: 'spend', maxUsd: 100 },
        ],
      });
      const ids = await runFleet(h.ec2, { count: 2, policyId: 'handler' });
      await new Promise((r) => setTimeout(r, 2100));
      const env = {
        [POLICY_ID_ENV_VAR]: 'handler',
        [TOPIC_ARN_ENV_VAR]: h.queue.topicArn,
        [PRICING_ENDPOINT_ENV_VAR]: prices.endpoint,
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_REGION: moto.region,
        AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        AWS_LAMBDA_FUNCTION_NAME: 'smvm-handler-watchdog',
      };
      const { result, logs } = await invoke(env, scheduledEvent(Date.now()));
      expect(result).toMatchObject({ outcome: 'cycle', trigger: 'schedule', policyId: 'handler' });
      expect(result.report.actions.map((a: { result: string }) => a.result)).toEqual(['done', 'done']);
      const states = await describeAll(h.ec2, ids);
      expect(ids.map((id) => stateOf(states.get(id)))).toEqual(['stopped', 'stopped']);
      expect(prices.requests).toHaveLength(1);
      expect((await h.events()).map((e) => e.event.type)).toEqual(['stopped', 'stopped']);
      // logs: one line per decision that changed something, one summary
      expect(logs.filter((l) => l.message === 'decision made')).toHaveLength(2);
      const summary = logs.filter((l) => l.message === 'cycle finished');
      expect(summary).toHaveLength(1);
      expect(summary[0]).toMatchObject({
        level: 'INFO',
        service: 'smvm-watchdog',
        component: 'watchdog',
        policy_id: 'handler',
        request_id: 'req-1',
        instances: 2,
      });
      expect(summary[0].api_calls).toMatchObject({
        DescribeInstances: 1,
        StopInstances: 1,
        CreateTags: 4,
        Publish: 2,
        GetParameter: 1,
        GetProducts: 1,
      });

      // an event of the wrong shape is rejected, not thrown
      const bad = await invoke(env, { hello: 'world' });
      expect(bad.result.outcome).toBe('rejected');
      expect(bad.logs).toEqual([expect.objectContaining({ level: 'ERROR', message: 'event rejected' })]);
    } finally {
      await prices.close();
    }
  }, 60_000);

  it('fails to start with a clear message when a required variable is missing', async () => {
    const failure = await invoke({ AWS_REGION: 'us-east-1' }, {}).then(
      () => undefined,
      (e: { stderr?: string }) => e,
    );
    expect(failure?.stderr).toBe('INIT MissingEnvironmentError: Environment variable SMVM_POLICY_ID is required\n');
  }, 30_000);
});
