/**
 * Bundles the watchdog and the agent with esbuild's JS API during synth, and caches
 * the result by content: the cache entry is reused only while every input file that
 * esbuild read (its metafile) still has the same sha256. Bundles are written under
 * `build/bundles/` of the library (ignored by git), so a test run or a synth bundles
 * each entry once, and jest workers share the result.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deterministicZip } from './zip';

/**
 * Root of the library: the folder holding package.json and the lambda-agent/ sources
 * that are bundled. Two levels up from the sources (constructs/private/); from the
 * published package's compiled code (dist/constructs/private/), one more.
 */
export const LIBRARY_ROOT = libraryRoot(path.resolve(__dirname, '..', '..'));

function libraryRoot(near: string): string {
  for (const dir of [near, path.dirname(near)]) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'lambda-agent'))) return dir;
  }
  return near;
}

export interface BundleOptions {
  /** Absolute path of the entry file. */
  readonly entry: string;
  /** esbuild target, e.g. `node22`. */
  readonly target: string;
  /** What is bundled, for messages: `watchdog` or `agent`. */
  readonly what: 'watchdog' | 'agent';
  /** Compile-time constants (esbuild `define`). @default - none */
  readonly define?: Record<string, string>;
}

export interface Bundle {
  /** Absolute path of the minified CommonJS bundle. */
  readonly jsPath: string;
  /** Hex sha256 of the bundle. */
  readonly sha256: string;
  /** Size of the bundle in bytes. */
  readonly bytes: number;
}

export interface ZippedBundle extends Bundle {
  /** Absolute path of the reproducible zip holding `index.js`. */
  readonly zipPath: string;
  /** Hex sha256 of the zip. */
  readonly zipSha256: string;
  /** Base64 sha256 of the zip, as Lambda's `source_code_hash` expects. */
  readonly zipSha256Base64: string;
}

interface Manifest {
  readonly inputs: Record<string, string>;
  readonly sha256: string;
  readonly bytes: number;
  readonly zipSha256: string;
}

/** Thrown when an entry is missing or does not compile. */
export class BundleError extends Error {
  constructor(
    message: string,
    /** True when the entry file does not exist. */
    readonly missing: boolean,
  ) {
    super(message);
    this.name = 'BundleError';
  }
}

const memo = new Map<string, ZippedBundle>();

function sha256(data: Buffer | string): crypto.Hash {
  return crypto.createHash('sha256').update(data);
}

function fileSha(file: string): string | undefined {
  try {
    return sha256(fs.readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}

function cacheRoot(): string {
  return path.join(LIBRARY_ROOT, 'build', 'bundles');
}

function esbuildVersion(): string {
  return (require('esbuild') as typeof import('esbuild')).version;
}

function buildOptions(o: BundleOptions): import('esbuild').BuildOptions {
  return {
    entryPoints: [o.entry],
    absWorkingDir: LIBRARY_ROOT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: o.target,
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    sourcemap: false,
    define: o.define ?? {},
    metafile: true,
    write: false,
    outfile: path.join(LIBRARY_ROOT, 'build', 'out', 'index.js'),
    logLevel: 'silent',
  };
}

function valid(dir: string): Manifest | undefined {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
  for (const [file, hash] of Object.entries(manifest.inputs)) {
    if (fileSha(path.resolve(LIBRARY_ROOT, file)) !== hash) return undefined;
  }
  if (fileSha(path.join(dir, 'index.js')) !== manifest.sha256) return undefined;
  if (fileSha(path.join(dir, 'bundle.zip')) !== manifest.zipSha256) return undefined;
  return manifest;
}

function result(dir: string, m: Manifest): ZippedBundle {
  return {
    jsPath: path.join(dir, 'index.js'),
    sha256: m.sha256,
    bytes: m.bytes,
    zipPath: path.join(dir, 'bundle.zip'),
    zipSha256: m.zipSha256,
    zipSha256Base64: Buffer.from(m.zipSha256, 'hex').toString('base64'),
  };
}

/** Writes a file atomically (concurrent jest workers may build the same entry). */
function writeAtomic(file: string, data: Buffer | string): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/**
 * Bundles `entry` (or reuses the cached bundle) and zips it reproducibly.
 * @param useCache read and write the on-disk cache (tests turn it off to prove reproducibility)
 */
export function bundle(o: BundleOptions, useCache = true): ZippedBundle {
  if (!fs.existsSync(o.entry)) throw new BundleError(`${o.entry} does not exist`, true);
  const key = sha256(
    JSON.stringify({
      entry: path.relative(LIBRARY_ROOT, o.entry),
      target: o.target,
      define: o.define ?? {},
      esbuild: esbuildVersion(),
      v: 1,
    }),
  )
    .digest('hex')
    .slice(0, 24);
  const dir = path.join(cacheRoot(), `${o.what}-${key}`);
  if (useCache) {
    const hit = memo.get(dir);
    if (hit) return hit;
    const m = valid(dir);
    if (m) {
      const r = result(dir, m);
      memo.set(dir, r);
      return r;
    }
  }

  const esbuild = require('esbuild') as typeof import('esbuild');
  let out: import('esbuild').BuildResult & { outputFiles: import('esbuild').OutputFile[] };
  try {
    out = esbuild.buildSync(buildOptions(o)) as typeof out;
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number } }> }).errors ?? [];
    const text = errors.length
      ? errors.map((x) => `  ${x.location ? `${x.location.file}:${x.location.line}: ` : ''}${x.text}`).join('\n')
      : `  ${(e as Error).message}`;
    throw new BundleError(text, false);
  }
  const js = Buffer.from(out.outputFiles.find((f) => f.path.endsWith('.js'))!.contents);
  const zip = deterministicZip([{ name: 'index.js', data: js }]);
  const inputs: Record<string, string> = {};
  for (const file of Object.keys(out.metafile!.inputs).sort()) {
    const abs = path.resolve(LIBRARY_ROOT, file);
    const h = fileSha(abs);
    if (h) inputs[path.relative(LIBRARY_ROOT, abs)] = h;
  }
  const manifest: Manifest = {
    inputs,
    sha256: sha256(js).digest('hex'),
    bytes: js.length,
    zipSha256: sha256(zip).digest('hex'),
  };
  fs.mkdirSync(cacheRoot(), { recursive: true });
  const target = useCache ? dir : fs.mkdtempSync(path.join(cacheRoot(), `${o.what}-nocache-`));
  fs.mkdirSync(target, { recursive: true });
  writeAtomic(path.join(target, 'index.js'), js);
  writeAtomic(path.join(target, 'bundle.zip'), zip);
  writeAtomic(path.join(target, 'manifest.json'), JSON.stringify(manifest, null, 1));
  const r = result(target, manifest);
  if (useCache) memo.set(dir, r);
  return r;
}
