/**
 * A long soak: many seeds (or one, many times longer), each a full run of the hardening
 * soak (test/hardening/soak.ts) against a private moto, judged by the independent model.
 *
 *   npx tsx scripts/soak.ts                       10 seeds from 1, 60 faulty + 50 clean steps each
 *   npx tsx scripts/soak.ts --seeds 50 --from 100
 *   npx tsx scripts/soak.ts --seed 7 --fault-steps 300 --clean-steps 80 --scale 2 --fleet 20
 *   npx tsx scripts/soak.ts --minutes 30          as many seeds as fit in 30 minutes
 *
 * Exit status 1 when any seed broke a guarantee (known bugs, listed in
 * test/hardening/known.ts, are reported but do not fail the run unless
 * --strict). Each failing seed is printed with its violations, so it can be replayed with
 * `SMVM_SOAK_SEED=<seed> npx jest test/integration/hardening/soak.test.ts`.
 */
import { startMoto, stopMoto } from '../test/support/moto';
import { formatSoak, runSoak, type SoakReport } from '../test/hardening/soak';
import { isKnown } from '../test/hardening/known';

interface Args {
  seeds: number;
  from: number;
  faultSteps: number;
  cleanSteps: number;
  scale: number;
  fleet: number;
  minutes?: number;
  strict: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seeds: 10, from: 1, faultSteps: 60, cleanSteps: 50, scale: 1, fleet: 6, strict: false };
  for (let i = 0; i < argv.length; i++) {
    const next = () => Number(argv[++i]);
    switch (argv[i]) {
      case '--seeds':
        a.seeds = next();
        break;
      case '--from':
        a.from = next();
        break;
      case '--seed':
        a.from = next();
        a.seeds = 1;
        break;
      case '--fault-steps':
        a.faultSteps = next();
        break;
      case '--clean-steps':
        a.cleanSteps = next();
        break;
      case '--scale':
        a.scale = next();
        break;
      case '--fleet':
        a.fleet = next();
        break;
      case '--minutes':
        a.minutes = next();
        a.seeds = Number.MAX_SAFE_INTEGER;
        break;
      case '--strict':
        a.strict = true;
        break;
      default:
        throw new Error(`soak: unknown argument '${argv[i]}'. See the header of scripts/soak.ts.`);
    }
  }
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const moto = await startMoto();
  const deadline = args.minutes ? Date.now() + args.minutes * 60_000 : Infinity;
  const reports: SoakReport[] = [];
  try {
    for (let seed = args.from; seed < args.from + args.seeds && Date.now() < deadline; seed++) {
      const r = await runSoak(moto, {
        seed,
        faultSteps: args.faultSteps,
        cleanSteps: args.cleanSteps,
        faultScale: args.scale,
        fleet: { policy: args.fleet },
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      reports.push(r);
      console.log(formatSoak(r));
      console.log('');
    }
  } finally {
    await stopMoto(moto);
  }
  const failing = reports.filter((r) => r.model.violations.some((v) => args.strict || !isKnown(v)));
  const known = reports.reduce((n, r) => n + r.model.violations.filter(isKnown).length, 0);
  const sum = (f: (r: SoakReport) => number) => reports.reduce((n, r) => n + f(r), 0);
  console.log(
    `${reports.length} soaks, ${sum((r) => r.steps)} steps, ${sum((r) => r.simulatedHours).toFixed(0)} simulated hours, ` +
      `${sum((r) => r.scheduleRuns + r.stateChangeRuns)} watchdog runs, ${sum((r) => r.agentTicks)} agent ticks, ` +
      `${sum((r) => Object.values(r.faults).reduce((a, b) => a + b, 0))} faults, ${sum((r) => r.model.figures.guardActions)} actions; ` +
      `${known} known-bug violations; ${failing.length ? `FAILING seeds: ${failing.map((r) => r.seed).join(', ')}` : 'no other violation'}`,
  );
  process.exit(failing.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
