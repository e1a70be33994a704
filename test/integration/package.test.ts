/**
 * The published package, as a consumer gets it: `npm pack` (which builds dist/), then an
 * offline `npm ci` of the tarball in a temporary consumer project, a consumer stack
 * compiled with tsc against the package's declarations (its three entry points), and
 * synthesized — the constructs bundling the watchdog and the agent from what the
 * package ships.
 *
 * Offline: the consumer's lockfile is derived from the repository's (same versions and
 * integrity hashes), so npm takes every tarball from its cache, where `npm ci` of the
 * repository put them.
 */
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { readStoredZip } from '../../scripts/demo/unzip';

jest.setTimeout(120_000);

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license: string;
  dependencies: Record<string, string>;
  bin: Record<string, string>;
  engines: Record<string, string>;
};

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dev?: boolean;
  devOptional?: boolean;
  inBundle?: boolean;
  link?: boolean;
  [k: string]: unknown;
}

const CONSUMER_DEPS = {
  cdktf: pkg.dependencies.cdktf,
  constructs: pkg.dependencies.constructs,
  '@cdktf/provider-aws': pkg.dependencies['@cdktf/provider-aws'],
};

const CONSUMER_MAIN = `
import { App, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { SelfManagedInstance, SelfManagementPolicy, type SelfManagementPolicyProps } from 'cdktf-self-managed-vm';
import { EVENT_TYPES, parseEvent, type SmvmEvent } from 'cdktf-self-managed-vm/events';
import { parsePolicy, type PolicyDocument } from 'cdktf-self-managed-vm/policy';

const policy: PolicyDocument = {
  id: 'consumer',
  rules: [
    { rule: 'idle', window: '30m', action: 'stop', warnBefore: '5m' },
    { rule: 'lifetime', max: '7d', action: 'terminate' },
  ],
};
const parsed = parsePolicy(policy);
if (!parsed.ok) throw new Error('the policy was refused');

const app = new App({ outdir: process.argv[2] });
const stack = new TerraformStack(app, 'consumer');
new AwsProvider(stack, 'Aws', { region: 'eu-west-1' });
const props: SelfManagementPolicyProps = { policy, subscriptions: [{ protocol: 'email', endpoint: 'ops@example.com' }] };
const smp = new SelfManagementPolicy(stack, 'Policy', props);
new SelfManagedInstance(stack, 'Box', { policy: smp, ami: 'ami-0123456789abcdef0', instanceType: 't3.micro' });
app.synth();

const event: SmvmEvent = parseEvent({
  schemaVersion: 1, id: 'consumer-1', type: 'usage', time: '2026-01-01T00:00:00Z', source: 'watchdog',
  severity: 'info', policyId: 'consumer', subject: 'usage', message: 'usage',
});
console.log(JSON.stringify({ hash: parsed.policy.hash, constructHash: smp.hash, eventTypes: EVENT_TYPES.length, event: event.type }));
`;

describe('the npm package', () => {
  let dir: string;
  let consumer: string;
  let packed: { filename: string; files: Array<{ path: string }> };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smvm-package-'));
    consumer = path.join(dir, 'consumer');
    fs.mkdirSync(path.join(consumer, 'src'), { recursive: true });
    // prepack builds dist/ first
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 90_000,
    });
    packed = (JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<typeof packed>)[0];
  }, 100_000);
  afterAll(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it('ships what a consumer needs and nothing else', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of [
      'package.json',
      'LICENSE',
      'README.md',
      'dist/constructs/index.js',
      'dist/constructs/index.d.ts',
      'dist/lambda-agent/contract/events.js',
      'dist/lambda-agent/contract/events.d.ts',
      'dist/lambda-agent/index.js',
      'dist/lambda-agent/index.d.ts',
      'dist/lambda-agent/cli/main.js',
      // bundled by the constructs at synth time
      'lambda-agent/watchdog/handler.ts',
      'lambda-agent/agent/main.ts',
      'lambda-agent/contract/event.schema.json',
    ]) {
      expect(files).toContain(f);
    }
    const outside = files.filter((f) => !/^(dist\/(constructs|lambda-agent)\/|lambda-agent\/|package\.json$|README\.md$|LICENSE$)/.test(f));
    expect(outside).toEqual([]);
    expect(files.filter((f) => /^(test|scripts|stacks|bench|docs|build|cdktf\.out|node_modules)\//.test(f))).toEqual([]);
    expect(files.filter((f) => /^lambda-agent\/(replay|docs|cli)\//.test(f))).toEqual([]);
    expect(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).toContain(
      'Apache License\n                           Version 2.0, January 2004',
    );
    expect(pkg.license).toBe('Apache-2.0');
  });

  it('installs offline, compiles a consumer stack against its types and synthesizes it', async () => {
    const tarball = path.join(dir, packed.filename);
    const spec = `file:../${packed.filename}`;
    const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
    // The consumer's lockfile: the repository's production tree, with registry URLs, plus the tarball.
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
    const packages: Record<string, LockEntry> = {
      '': { name: 'consumer', version: '1.0.0', dependencies: { 'cdktf-self-managed-vm': spec, ...CONSUMER_DEPS } },
      'node_modules/cdktf-self-managed-vm': {
        version: pkg.version,
        resolved: spec,
        integrity,
        license: pkg.license,
        dependencies: pkg.dependencies,
        bin: pkg.bin,
        engines: pkg.engines,
      },
    };
    for (const [key, entry] of Object.entries(lock.packages)) {
      if (!key.startsWith('node_modules/') || entry.dev || entry.devOptional) continue;
      const name = key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
      const resolved =
        entry.resolved ??
        (entry.inBundle || entry.link ? undefined : `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${entry.version}.tgz`);
      packages[key] = { ...entry, ...(resolved ? { resolved } : {}) };
    }
    fs.writeFileSync(
      path.join(consumer, 'package.json'),
      JSON.stringify({
        name: 'consumer',
        version: '1.0.0',
        private: true,
        dependencies: { 'cdktf-self-managed-vm': spec, ...CONSUMER_DEPS },
      }),
    );
    fs.writeFileSync(
      path.join(consumer, 'package-lock.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }),
    );
    try {
      await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
        cwd: consumer,
        timeout: 90_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (e) {
      const stderr = (e as { stderr?: string }).stderr ?? String(e);
      throw new Error(
        `offline install of the tarball failed (a tarball missing from the npm cache? run npm ci in the repository first):\n${stderr}`,
      );
    }
    expect(fs.existsSync(path.join(consumer, 'node_modules', 'cdktf-self-managed-vm', 'dist', 'constructs', 'index.js'))).toBe(true);

    // The bin is linked and runs.
    const help = await run(path.join(consumer, 'node_modules', '.bin', 'smvm'), ['--help'], { cwd: consumer });
    expect(help.stdout).toContain('smvm — self-managed VMs');

    // The exports map: the three entry points and package.json, nothing deeper.
    const resolveFrom = (request: string) =>
      run(process.execPath, ['-e', `console.log(require(${JSON.stringify(request)}) && 'ok')`], { cwd: consumer }).then(
        (r) => r.stdout.trim(),
        (e: { stderr: string }) => (/ERR_PACKAGE_PATH_NOT_EXPORTED/.test(e.stderr) ? 'not exported' : e.stderr),
      );
    expect(await resolveFrom('cdktf-self-managed-vm/package.json')).toBe('ok');
    expect(await resolveFrom('cdktf-self-managed-vm/events')).toBe('ok');
    expect(await resolveFrom('cdktf-self-managed-vm/dist/constructs/private/bundle.js')).toBe('not exported');

    // Compile a consumer stack with tsc (strict, node16 resolution: the exports map's types).
    fs.writeFileSync(path.join(consumer, 'src', 'main.ts'), CONSUMER_MAIN);
    fs.writeFileSync(
      path.join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'node16',
          moduleResolution: 'node16',
          strict: true,
          skipLibCheck: true,
          outDir: 'dist',
          rootDir: 'src',
          typeRoots: [path.join(ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        include: ['src'],
      }),
    );
    await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], { cwd: consumer }).catch(
      (e: { stdout: string }) => {
        throw new Error(`the consumer stack does not compile against the package:\n${e.stdout}`);
      },
    );

    // Synthesize it.
    const outdir = path.join(dir, 'out');
    const synth = await run(process.execPath, [path.join(consumer, 'dist', 'main.js'), outdir], { cwd: consumer, timeout: 60_000 });
    const printed = JSON.parse(synth.stdout.trim().split('\n').pop()!) as {
      hash: string;
      constructHash: string;
      eventTypes: number;
      event: string;
    };
    expect(printed).toMatchObject({ event: 'usage', hash: printed.constructHash });
    const stackDir = path.join(outdir, 'stacks', 'consumer');
    const tf = JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8')) as {
      resource: Record<string, Record<string, Record<string, any>>>;
    };

    const instances = Object.values(tf.resource.aws_instance);
    expect(instances).toHaveLength(1);
    expect(instances[0].tags).toMatchObject({ 'smvm:policy': 'consumer', 'smvm:policy-version': printed.hash });
    expect(instances[0].tags['smvm:management-id']).toMatch(/^smvm-consumer-[0-9a-f]{12}$/);

    const functions = Object.values(tf.resource.aws_lambda_function);
    expect(functions).toHaveLength(1);
    const fn = functions[0];
    expect(fn).toMatchObject({
      function_name: 'smvm-consumer-watchdog',
      handler: 'index.handler',
      environment: { variables: { SMVM_POLICY_ID: 'consumer' } },
    });
    const zip = fs.readFileSync(path.join(stackDir, fn.filename as string));
    expect(crypto.createHash('sha256').update(zip).digest('base64')).toBe(fn.source_code_hash);
    const index = readStoredZip(zip).find((e) => e.name === 'index.js')!;
    expect(index.data.length).toBeGreaterThan(100_000);

    // The watchdog the package bundled is a working Lambda entry: it loads and asks for its settings.
    const code = path.join(dir, 'watchdog.js');
    fs.writeFileSync(code, index.data);
    const load = `try { require(${JSON.stringify(code)}) } catch (e) { process.stderr.write(e.name + ': ' + e.message); process.exit(3) }`;
    const init = await run(process.execPath, ['-e', load], { env: { PATH: process.env.PATH ?? '' } }).then(
      () => 'loaded without settings',
      (e: { stderr: string }) => e.stderr,
    );
    expect(init).toBe('MissingEnvironmentError: Environment variable SMVM_POLICY_ID is required');

    // The agent artifact is uploaded from an asset of the stack.
    const objects = Object.values(tf.resource.aws_s3_object);
    expect(objects).toHaveLength(1);
    const agent = fs.readFileSync(path.join(stackDir, objects[0].source as string));
    expect(objects[0].key).toBe(`agent/${crypto.createHash('sha256').update(agent).digest('hex')}/agent.js`);
  });
});
