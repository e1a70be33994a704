/**
 * Hardening figures: one bounded soak (the real watchdog and agents over a mixed fleet in
 * moto, behind the fault proxy, judged by the independent model; about 30–50 s) and the
 * fuzz targets with their case counts. `npm run bench -- hardening`.
 *
 * Goals: no duplicate, wrong-instance, premature or missed action, no lost event, no
 * accounting error. Known bugs (test/hardening/known.ts) are counted, not hidden.
 */
import { FUZZ_SEED, FUZZ_TARGETS } from '../test/hardening/fuzz-targets';
import { isKnown } from '../test/hardening/known';
import { formatSoak, runSoak } from '../test/hardening/soak';
import { FAULT_KINDS } from '../test/support/fault-proxy';
import { startMoto, stopMoto } from '../test/support/moto';

export interface HardeningRow {
  name: string;
  value: number;
  unit: string;
  goal: string;
  ok: boolean;
}

/** Seed of the bench's soak (SMVM_SOAK_SEED overrides). */
const SEED = Number(process.env.SMVM_SOAK_SEED ?? 20261126);

export async function benchHardening(): Promise<HardeningRow[]> {
  const rows: HardeningRow[] = [];
  const moto = await startMoto();
  let report;
  try {
    report = await runSoak(moto, { seed: SEED, faultSteps: 60, cleanSteps: 50, progress: (l) => process.stderr.write(`bench: ${l}\n`) });
  } finally {
    await stopMoto(moto);
  }
  process.stderr.write(`${formatSoak(report)}\n`);
  const v = report.model.violations;
  const count = (checks: string[]) => v.filter((x) => checks.includes(x.check)).length;
  const zero = (name: string, n: number, extra = '') => rows.push({ name, value: n, unit: 'count', goal: `0${extra}`, ok: n === 0 });
  rows.push({
    name: `soak seed ${SEED}: watchdog runs (schedule + state change)`,
    value: report.scheduleRuns + report.stateChangeRuns,
    unit: 'runs',
    goal: '>= 100',
    ok: report.scheduleRuns + report.stateChangeRuns >= 100,
  });
  rows.push({ name: 'soak: agent ticks', value: report.agentTicks, unit: 'ticks', goal: '>= 100', ok: report.agentTicks >= 100 });
  rows.push({ name: 'soak: simulated time', value: report.simulatedHours, unit: 'h', goal: '>= 8', ok: report.simulatedHours >= 8 });
  rows.push({
    name: 'soak: hosts killed mid-work (watchdog containers + agents)',
    value: report.watchdogCrashes + report.agentKills,
    unit: 'kills',
    goal: '> 0',
    ok: report.watchdogCrashes + report.agentKills > 0,
  });
  for (const kind of FAULT_KINDS)
    rows.push({
      name: `soak: faults injected, ${kind}`,
      value: report.faults[kind],
      unit: 'faults',
      goal: kind === 'timeout' ? 'counted' : '> 0',
      ok: kind === 'timeout' || report.faults[kind] > 0,
    });
  const after = Object.entries(report.faultsBy)
    .filter(([k]) => / after$/.test(k))
    .reduce((a, [, n]) => a + n, 0);
  rows.push({ name: 'soak: faults after the call took effect', value: after, unit: 'faults', goal: '> 0', ok: after > 0 });
  rows.push({
    name: 'soak: actions taken by the guards',
    value: report.model.figures.guardActions,
    unit: 'actions',
    goal: '>= 10',
    ok: report.model.figures.guardActions >= 10,
  });
  rows.push({
    name: 'soak: due actions checked after recovery',
    value: report.model.figures.obligationsChecked,
    unit: 'actions',
    goal: '>= 5',
    ok: report.model.figures.obligationsChecked >= 5,
  });
  zero('soak: duplicate actions', count(['duplicate-action']));
  zero('soak: wrong-instance actions (and wrong tags, unscoped describes)', count(['wrong-instance', 'wrong-tag', 'unscoped-describe']));
  zero('soak: premature actions', count(['premature']));
  zero('soak: missed actions after recovery', count(['missed']));
  const lost = count(['lost-event', 'unannounced-action']);
  const lostKnown = v.filter((x) => ['lost-event', 'unannounced-action'].includes(x.check) && isKnown(x)).length;
  zero(`soak: lost events (of which known bugs: ${lostKnown})`, lost);
  zero('soak: hard actions without their warning', count(['unwarned-hard-action']));
  zero('soak: accounting mismatches (running time from tags vs model)', count(['accounting']));
  rows.push({
    name: 'soak: events delivered more than once (at-least-once)',
    value: report.model.figures.duplicateDeliveries,
    unit: 'messages',
    goal: 'counted',
    ok: true,
  });
  rows.push({ name: 'soak: wall time', value: report.wallSeconds, unit: 's', goal: '<= 90', ok: report.wallSeconds <= 90 });

  for (const target of FUZZ_TARGETS) {
    const started = Date.now();
    const d = await target.run({ seed: FUZZ_SEED, numRuns: target.runs });
    rows.push({
      name: `fuzz cases: ${target.name}`,
      value: d.numRuns,
      unit: `cases (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      goal: `${target.runs}, no failure`,
      ok: !d.failed && d.numRuns === target.runs,
    });
  }
  return rows;
}

if (require.main === module) {
  benchHardening().then(
    (rows) => {
      for (const r of rows) console.log(`${r.ok ? 'ok ' : 'NO '} ${r.name}: ${r.value} ${r.unit} (goal ${r.goal})`);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
