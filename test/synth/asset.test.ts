/**
 * The watchdog zip is built by the constructs themselves (esbuild, then a zip with fixed
 * times and attributes), so the same code always gives the same bytes and Terraform
 * never sees a change that is not one.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { bundle } from '../../constructs/private/bundle';
import { deterministicZip } from '../../constructs/private/zip';
import { WATCHDOG_FIXTURE, one, parse, testPolicy } from './support/synth';

/** Synthesizes a fresh app to disk and returns the watchdog zip it wrote. */
function synthesizedZip(): { bytes: Buffer; hash: string } {
  const app = Testing.app();
  const stack = new TerraformStack(app, 'stack');
  new AwsProvider(stack, 'Aws', { region: 'us-east-1' });
  testPolicy(stack);
  const outdir = Testing.fullSynth(stack);
  const fn = one(parse(fs.readFileSync(path.join(outdir, 'stacks', 'stack', 'cdk.tf.json'), 'utf8')), 'aws_lambda_function');
  return { bytes: fs.readFileSync(path.join(outdir, 'stacks', 'stack', fn.filename)), hash: fn.source_code_hash };
}

function pythonZipInfo(file: string): unknown {
  const out = spawnSync(
    'python3',
    [
      '-c',
      [
        'import json, sys, zipfile',
        'z = zipfile.ZipFile(sys.argv[1])',
        'print(json.dumps({"bad": z.testzip(), "entries": [{"name": i.filename, "date": list(i.date_time), "mode": oct(i.external_attr >> 16), "method": i.compress_type, "size": i.file_size} for i in z.infolist()]}))',
      ].join('\n'),
      file,
    ],
    { encoding: 'utf8' },
  );
  if (out.status !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout);
}

describe('watchdog asset', () => {
  it('is byte-identical across two synths, and its hash is the one Lambda is given', () => {
    // GIVEN two separate syntheses of the same stack
    const a = synthesizedZip();
    const b = synthesizedZip();
    // THEN the zips are the same bytes, and source_code_hash is their sha256
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.hash).toBe(crypto.createHash('sha256').update(a.bytes).digest('base64'));
  });

  it('is rebuilt to the same bytes without the cache', () => {
    const first = bundle({ entry: WATCHDOG_FIXTURE, target: 'node22', what: 'watchdog' }, false);
    const second = bundle({ entry: WATCHDOG_FIXTURE, target: 'node22', what: 'watchdog' }, false);
    expect(first.zipPath).not.toBe(second.zipPath);
    expect(fs.readFileSync(first.zipPath).equals(fs.readFileSync(second.zipPath))).toBe(true);
    expect(first.zipSha256).toBe(second.zipSha256);
    for (const b of [first, second]) fs.rmSync(path.dirname(b.zipPath), { recursive: true, force: true });
  });

  it('is a valid zip with one stored entry, index.js, stamped 1980-01-01 with fixed attributes', () => {
    const b = bundle({ entry: WATCHDOG_FIXTURE, target: 'node22', what: 'watchdog' });
    expect(pythonZipInfo(b.zipPath)).toEqual({
      bad: null,
      entries: [{ name: 'index.js', date: [1980, 1, 1, 0, 0, 0], mode: '0o100644', method: 0, size: b.bytes }],
    });
  });

  it('holds the minified CommonJS bundle that exports the handler', async () => {
    const b = bundle({ entry: WATCHDOG_FIXTURE, target: 'node22', what: 'watchdog' });
    const code = fs.readFileSync(b.jsPath, 'utf8');
    expect(code.split('\n').length).toBeLessThanOrEqual(2);
    const mod = { exports: {} as { handler?: () => Promise<unknown> } };
    new Function('module', 'exports', 'require', 'process', code)(mod, mod.exports, require, { env: { SMVM_POLICY_ID: 'dev' } });
    await expect(mod.exports.handler!()).resolves.toEqual({ policyId: 'dev' });
  });

  it('sorts entries and fixes times whatever the input order', () => {
    const x = { name: 'b.js', data: Buffer.from('b') };
    const y = { name: 'a/a.js', data: Buffer.from('a') };
    expect(deterministicZip([x, y]).equals(deterministicZip([y, x]))).toBe(true);
  });

  it('is rebuilt when an input changes, and reused while none does', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smvm-entry-'));
    const entry = path.join(dir, 'handler.ts');
    fs.writeFileSync(entry, 'export const handler = async () => 1;\n');
    const first = bundle({ entry, target: 'node22', what: 'watchdog' });
    const stamp = fs.statSync(path.join(path.dirname(first.zipPath), 'manifest.json')).mtimeMs;
    expect(bundle({ entry, target: 'node22', what: 'watchdog' })).toEqual(first);
    expect(fs.statSync(path.join(path.dirname(first.zipPath), 'manifest.json')).mtimeMs).toBe(stamp);
    fs.writeFileSync(entry, 'export const handler = async () => 2;\n');
    // a new process (or jest worker) validates the cache against the inputs' content
    jest.isolateModules(() => {
      const fresh = require('../../constructs/private/bundle') as typeof import('../../constructs/private/bundle');
      expect(fresh.bundle({ entry, target: 'node22', what: 'watchdog' }).sha256).not.toBe(first.sha256);
    });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.dirname(first.zipPath), { recursive: true, force: true });
  });
});
