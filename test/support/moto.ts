/**
 * Test helper: a private moto_server (AWS API emulator) per test file.
 *
 * In jest: `const moto = useMoto();` at the top of a file starts the server in
 * beforeAll, resets it before each test and stops it after all. Elsewhere (bench,
 * demo): `await startMoto()` … `await stopMoto()`.
 *
 * With `{ auth: true }` moto checks signatures and IAM actions. The helper then creates,
 * after every reset, an IAM user with an allow-all policy (`credentials`) and a role
 * session (`sessionCredentials`, with a session token), so signed requests can succeed
 * and a wrong secret is refused.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';

/** Options of {@link startMoto} and {@link useMoto}. */
export interface MotoOptions {
  /** Start with authentication on (`INITIAL_NO_AUTH_ACTION_COUNT=0`). @default false */
  readonly auth?: boolean;
  /** How long to wait for the server to answer, in ms. @default 20000 */
  readonly startTimeoutMs?: number;
}

/** Static credentials accepted by moto. */
export interface MotoCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Region every test uses. */
export const MOTO_REGION = 'us-east-1';
/** moto's default account. */
export const MOTO_ACCOUNT_ID = '123456789012';
/** Credentials used when authentication is off (moto accepts anything). */
export const FAKE_CREDENTIALS: MotoCredentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

const ALLOW_ALL = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
const TRUST_ALL = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'sts:AssumeRole' }],
});

/**
 * Runs moto as a child that is killed when our end of its stdin closes, so a jest worker
 * that dies without running afterAll leaves no server behind.
 */
const WRAPPER = [
  'import subprocess, sys, threading',
  'p = subprocess.Popen(sys.argv[1:])',
  'def watch():',
  '    sys.stdin.read()',
  '    p.kill()',
  'threading.Thread(target=watch, daemon=True).start()',
  'sys.exit(p.wait())',
].join('\n');

const running = new Set<MotoServer>();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function request(url: string, method: string, body = '', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`moto: no answer from ${url} within 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

const xml = (text: string, tag: string) => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(text)?.[1];

/** A running moto_server. */
export class MotoServer {
  private proc?: ChildProcess;
  private stderrTail = '';
  private port = 0;
  private userCredentials: MotoCredentials = FAKE_CREDENTIALS;
  private roleCredentials?: MotoCredentials;

  constructor(readonly options: MotoOptions = {}) {}

  /** `http://127.0.0.1:<port>`; throws before {@link start}. */
  get endpoint(): string {
    if (!this.port) throw new Error('moto: the server is not started; call useMoto() at the top of the file or await startMoto()');
    return `http://127.0.0.1:${this.port}`;
  }
  readonly region = MOTO_REGION;
  readonly accountId = MOTO_ACCOUNT_ID;
  /** Credentials that moto accepts (with auth: the IAM user's, new after each reset). */
  get credentials(): MotoCredentials {
    return this.userCredentials;
  }
  /** With auth: role session credentials (with a session token) that moto accepts. */
  get sessionCredentials(): MotoCredentials {
    if (!this.roleCredentials) throw new Error('moto: sessionCredentials exist only with { auth: true }');
    return this.roleCredentials;
  }
  /**
   * Config for an AWS SDK v3 client (S3 also needs `forcePathStyle: true`). With auth on,
   * create clients inside tests: the SDK caches what the provider returned, and each
   * reset issues new credentials.
   */
  sdkConfig(): { region: string; endpoint: string; credentials: () => Promise<MotoCredentials> } {
    return { region: this.region, endpoint: this.endpoint, credentials: async () => this.credentials };
  }
  /** The last 64 KB moto wrote to stderr. */
  get stderr(): string {
    return this.stderrTail;
  }

  /** Spawns moto_server on a free loopback port and waits until it answers. */
  async start(): Promise<this> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 20_000);
    for (let tries = 1; ; tries++) {
      this.port = await freePort();
      const env = { ...process.env, ...(this.options.auth ? { INITIAL_NO_AUTH_ACTION_COUNT: '0' } : {}) };
      const proc = spawn('python3', ['-c', WRAPPER, 'moto_server', '-H', '127.0.0.1', '-p', String(this.port)], {
        env,
        detached: true, // own process group, so kill() reaches moto too
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      this.proc = proc;
      this.stderrTail = '';
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (c: string) => (this.stderrTail = (this.stderrTail + c).slice(-65536)));
      let exited = false;
      let spawnError: Error | undefined;
      proc.once('exit', () => (exited = true));
      proc.once('error', (e) => {
        spawnError = e;
        exited = true;
      });
      running.add(this);
      while (!exited && Date.now() < deadline) {
        const ok = await request(`${this.endpoint}/moto-api/`, 'GET').then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) {
          await this.reset();
          return this;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      this.kill();
      // The port may have been taken between probing and binding: try again.
      if (exited && !spawnError && tries < 3 && Date.now() < deadline) continue;
      const why = spawnError ? `could not run moto_server (${spawnError.message})` : exited ? 'moto_server exited' : 'no answer';
      throw new Error(`moto: ${why} on port ${this.port} after ${tries} tries. stderr:\n${this.stderrTail}`);
    }
  }

  /** Deletes all resources (POST /moto-api/reset); with auth, recreates the test credentials. */
  async reset(): Promise<void> {
    const res = await request(`${this.endpoint}/moto-api/reset`, 'POST');
    if (res.status !== 200) throw new Error(`moto: reset failed with HTTP ${res.status}: ${res.body}`);
    if (this.options.auth) await this.createAuthCredentials();
  }

  /** Turns auth off for a few calls, creates a user and a role session, turns it back on. */
  private async createAuthCredentials(): Promise<void> {
    const setAuth = async (count: string) => {
      const r = await request(`${this.endpoint}/moto-api/reset-auth`, 'POST', count, { 'content-type': 'text/plain' });
      if (r.status !== 200) throw new Error(`moto: reset-auth ${count} failed with HTTP ${r.status}: ${r.body}`);
    };
    const call = async (service: string, version: string, params: Record<string, string>) => {
      const body = new URLSearchParams({ ...params, Version: version }).toString();
      const r = await request(`${this.endpoint}/`, 'POST', body, {
        'content-type': 'application/x-www-form-urlencoded',
        // Unchecked while auth is off; it only routes the call to the service.
        authorization: `AWS4-HMAC-SHA256 Credential=bootstrap/20240101/${this.region}/${service}/aws4_request, SignedHeaders=host, Signature=0`,
      });
      if (r.status !== 200) throw new Error(`moto: ${service} ${params.Action} failed with HTTP ${r.status}: ${r.body}`);
      return r.body;
    };
    await setAuth('inf');
    const iam = (p: Record<string, string>) => call('iam', '2010-05-08', p);
    await iam({ Action: 'CreateUser', UserName: 'smvm-test' });
    await iam({ Action: 'PutUserPolicy', UserName: 'smvm-test', PolicyName: 'all', PolicyDocument: ALLOW_ALL });
    const key = await iam({ Action: 'CreateAccessKey', UserName: 'smvm-test' });
    await iam({ Action: 'CreateRole', RoleName: 'smvm-test', AssumeRolePolicyDocument: TRUST_ALL });
    await iam({ Action: 'PutRolePolicy', RoleName: 'smvm-test', PolicyName: 'all', PolicyDocument: ALLOW_ALL });
    const session = await call('sts', '2011-06-15', {
      Action: 'AssumeRole',
      RoleArn: `arn:aws:iam::${this.accountId}:role/smvm-test`,
      RoleSessionName: 'smvm-test',
    });
    await setAuth('0');
    this.userCredentials = { accessKeyId: xml(key, 'AccessKeyId')!, secretAccessKey: xml(key, 'SecretAccessKey')! };
    this.roleCredentials = {
      accessKeyId: xml(session, 'AccessKeyId')!,
      secretAccessKey: xml(session, 'SecretAccessKey')!,
      sessionToken: xml(session, 'SessionToken')!,
    };
  }

  /** Kills the server's process group at once (synchronous, safe to call twice). */
  kill(): void {
    const proc = this.proc;
    running.delete(this);
    if (!proc?.pid || proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** Stops the server and waits for it to exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return void running.delete(this);
    const exited = new Promise((r) => proc.once('exit', r));
    this.kill();
    await exited;
  }
}

/** Starts a moto_server for use outside jest. */
export function startMoto(opts: MotoOptions = {}): Promise<MotoServer> {
  return new MotoServer(opts).start();
}

/** Stops one server, or every server started in this process. */
export async function stopMoto(server?: MotoServer): Promise<void> {
  await Promise.all((server ? [server] : [...running]).map((s) => s.stop()));
}

/**
 * Registers beforeAll (start), beforeEach (reset) and afterAll (stop) hooks and returns
 * the server; read its fields inside tests, not at module level.
 */
export function useMoto(opts: MotoOptions = {}): MotoServer {
  const server = new MotoServer(opts);
  beforeAll(() => server.start(), (opts.startTimeoutMs ?? 20_000) + 20_000);
  beforeEach(() => server.reset(), 15_000);
  afterAll(() => server.stop(), 10_000);
  return server;
}
