/**
 * `npm run synth`: synthesizes the app offline (no credentials, no telemetry look-up)
 * into cdktf.out/ and prints a summary: stacks, resources per stack, time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

process.env.CHECKPOINT_DISABLE = '1';

interface StackSummary {
  readonly name: string;
  readonly resources: number;
  readonly dataSources: number;
}

function summarize(outdir: string): StackSummary[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
    stacks: Record<string, { synthesizedStackPath: string }>;
  };
  return Object.entries(manifest.stacks).map(([name, s]) => {
    const tf = JSON.parse(fs.readFileSync(path.join(outdir, s.synthesizedStackPath), 'utf8')) as {
      resource?: Record<string, Record<string, unknown>>;
      data?: Record<string, Record<string, unknown>>;
    };
    const count = (block?: Record<string, Record<string, unknown>>) =>
      Object.values(block ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
    return { name, resources: count(tf.resource), dataSources: count(tf.data) };
  });
}

export async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  // Imported here so that the environment above is set before cdktf loads.
  const { createApp } = await import('../main');
  const outdir = 'cdktf.out';
  createApp(outdir).synth();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const stacks = summarize(outdir);
  const width = Math.max(5, ...stacks.map((s) => s.name.length));
  console.log(`${'stack'.padEnd(width)}  resources  data sources`);
  for (const s of stacks) console.log(`${s.name.padEnd(width)}  ${String(s.resources).padStart(9)}  ${String(s.dataSources).padStart(12)}`);
  const total = stacks.reduce((n, s) => n + s.resources, 0);
  console.log(`\n${stacks.length} stacks, ${total} resources, synthesized into ${outdir}/ in ${(ms / 1000).toFixed(2)} s`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
