/**
 * Plays Lambda for the synthesized watchdog: unpacks the code package (the zip asset of
 * the synthesized stack, checked against its `source_code_hash`), loads `index.js` in a
 * separate Node process with the function's environment — as one warm container — and
 * invokes its handler with EventBridge events, one invocation at a time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WatchdogFunction } from './apply';
import { readStoredZip } from './unzip';

/** What the handler returned (the watchdog's WatchdogResult, as JSON). */
export type InvocationResult = { readonly outcome: string } & Record<string, unknown>;

export interface WatchdogHost {
  /** Path of the unpacked `index.js`. */
  readonly codePath: string;
  /** sha256 (hex) of the unpacked `index.js`. */
  readonly codeSha256: string;
  /** Invokes the handler (queued behind the invocation in progress). */
  invoke(event: unknown): Promise<InvocationResult>;
  /** Invocations waiting or running. */
  readonly busy: number;
  /** JSON log lines the function wrote. */
  readonly logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

// The container: loads the handler once (init errors are reported by name and message,
// as Lambda does), then runs one invocation per message.
const RUNTIME = `
const [file, exportName] = process.argv.slice(1);
let fn;
try { fn = require(file)[exportName]; if (typeof fn !== 'function') throw new Error(exportName + ' is not a function'); }
catch (e) { fn = undefined; process.send({ init: 'error', error: e.name + ': ' + e.message }, () => process.exit(3)); }
if (fn) process.send({ init: 'ok' });
process.on('message', (m) => {
  Promise.resolve()
    .then(() => fn(m.event, { awsRequestId: m.id, functionName: process.env.AWS_LAMBDA_FUNCTION_NAME }))
    .then((result) => process.send({ id: m.id, result }), (e) => process.send({ id: m.id, error: (e && e.name) + ': ' + (e && e.message) }));
});
process.on('disconnect', () => process.exit(0));
`;

export async function startWatchdogHost(fn: WatchdogFunction, env: Record<string, string>, workDir: string): Promise<WatchdogHost> {
  const zip = fs.readFileSync(fn.zipPath);
  const zipHash = crypto.createHash('sha256').update(zip).digest('base64');
  if (zipHash !== fn.sourceCodeHash) {
    throw new Error(`watchdog: the code package ${fn.zipPath} does not match its source_code_hash (${zipHash} ≠ ${fn.sourceCodeHash})`);
  }
  const [moduleName, exportName] = fn.handler.split('.');
  const entry = readStoredZip(zip).find((e) => e.name === `${moduleName}.js`);
  if (!entry) throw new Error(`watchdog: the code package has no ${moduleName}.js`);
  const dir = path.join(workDir, 'lambda-task');
  fs.mkdirSync(dir, { recursive: true });
  const codePath = path.join(dir, `${moduleName}.js`);
  fs.writeFileSync(codePath, entry.data);

  const child: ChildProcess = spawn(process.execPath, ['-e', RUNTIME, codePath, exportName], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ unparsed: line });
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-8192)));

  const pending = new Map<string, { resolve: (r: InvocationResult) => void; reject: (e: Error) => void }>();
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      for (const p of pending.values())
        p.reject(new Error(`watchdog: the function's process exited (${signal ?? code}) during an invocation. ${stderr}`));
      pending.clear();
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const onMessage = (m: { init?: string; error?: string }) => {
      if (m.init === 'ok') resolve();
      else if (m.init === 'error') reject(new Error(`watchdog: Runtime.ImportModuleError/init failure: ${m.error}`));
    };
    child.once('message', onMessage);
    child.once('error', reject);
    void exit.then(() => reject(new Error(`watchdog: the function's process exited during init. ${stderr}`)));
  });
  child.on('message', (m: { id?: string; result?: InvocationResult; error?: string }) => {
    const p = m.id ? pending.get(m.id) : undefined;
    if (!p) return;
    pending.delete(m.id!);
    if (m.error !== undefined) p.reject(new Error(`watchdog: the handler failed: ${m.error}`));
    else p.resolve(m.result!);
  });

  let chain: Promise<unknown> = Promise.resolve();
  let busy = 0;
  let n = 0;
  const send = (event: unknown) =>
    new Promise<InvocationResult>((resolve, reject) => {
      if (exited) return reject(new Error('watchdog: the function is not running'));
      const id = `demo-${++n}`;
      pending.set(id, { resolve, reject });
      child.send({ id, event });
    });

  return {
    codePath,
    codeSha256: crypto.createHash('sha256').update(entry.data).digest('hex'),
    logs,
    get busy() {
      return busy;
    },
    invoke(event) {
      busy++;
      const run = chain.then(() => send(event));
      chain = run.catch(() => undefined).finally(() => busy--);
      return run;
    },
    async close() {
      if (!exited) {
        child.kill('SIGKILL');
        await exit;
      }
    },
  };
}
