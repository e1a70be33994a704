/**
 * `npm run bench`: every benchmark of the project in one run, each figure printed with
 * its unit and its goal. Ratios are measured side by side inside each benchmark.
 *
 *   npm run bench                 all benchmarks
 *   npm run bench -- engine synth only these (engine, synth, watchdog, agent, replay, hardening)
 */
import type { BenchRow } from './row';
export type { BenchRow };

type Suite = { name: string; load: () => Promise<() => Promise<BenchRow[] | { rows: BenchRow[]; text?: string }>> };

const SUITES: Suite[] = [
  { name: 'engine', load: async () => (await import('./engine')).benchEngine },
  { name: 'synth', load: async () => (await import('./synth')).benchSynth },
  { name: 'watchdog', load: async () => (await import('./watchdog')).benchWatchdog },
  { name: 'agent', load: async () => (await import('./agent')).benchAgent },
  { name: 'replay', load: async () => (await import('./replay')).benchReplayReport },
  { name: 'hardening', load: async () => (await import('./hardening')).benchHardening },
];

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  if (Math.abs(v) >= 0.01 || v === 0) return v.toFixed(3);
  return v.toPrecision(3);
}

export function formatTable(rows: Array<BenchRow & { suite: string }>): string {
  const header = ['suite', 'figure', 'value', 'unit', 'goal', 'met'];
  const body = rows.map((r) => [r.suite, r.name, fmt(r.value), r.unit, r.goal, r.ok ? 'yes' : 'NO']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i === 2 ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const all: Array<BenchRow & { suite: string }> = [];
  const texts: string[] = [];
  for (const s of SUITES) {
    if (only.length && !only.includes(s.name)) continue;
    const started = Date.now();
    process.stderr.write(`bench: ${s.name} ...\n`);
    const run = await s.load();
    const out = await run();
    const rows = Array.isArray(out) ? out : out.rows;
    if (!Array.isArray(out) && out.text) texts.push(out.text);
    all.push(...rows.map((r) => ({ ...r, suite: s.name })));
    process.stderr.write(`bench: ${s.name} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
  console.log(formatTable(all));
  for (const t of texts) console.log('\n' + t);
  const missed = all.filter((r) => !r.ok);
  console.log(
    `\n${all.length - missed.length} of ${all.length} goals met${missed.length ? `; not met: ${missed.map((m) => `${m.suite}/${m.name}`).join(', ')}` : ''}`,
  );
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
