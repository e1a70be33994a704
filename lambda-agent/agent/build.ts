/**
 * Builds the agent into ONE minified file for Node 18+ (no AWS SDK: the lean adapters
 * only). Used by the tests, the bench and the constructs (which upload it as the
 * versioned artifact the bootstrap installs).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

export interface AgentBundle {
  /** Absolute path of the bundle. */
  readonly file: string;
  /** Size in bytes (minified). */
  readonly bytes: number;
  /** sha256 (hex) of the bundle, as the artifact pointer carries it. */
  readonly sha256: string;
}

/** Size goal of the minified bundle. */
export const AGENT_BUNDLE_GOAL_BYTES = 100 * 1024;

const ROOT = resolve(__dirname, '..', '..');

/** Bundles `lambda-agent/agent/main.ts`. @param outFile @default dist/agent/agent.js */
export async function buildAgentBundle(outFile = join(ROOT, 'dist', 'agent', 'agent.js')): Promise<AgentBundle> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const file = resolve(outFile);
  await build({
    entryPoints: [join(__dirname, 'main.ts')],
    outfile: file,
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    legalComments: 'none',
    charset: 'utf8',
    logLevel: 'silent',
    define: { __SMVM_AGENT_VERSION__: JSON.stringify(pkg.version) },
  });
  const bytes = readFileSync(file);
  return { file, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}
