/**
 * The savings replay from the command line (see docs/savings.md).
 *
 *   npx tsx scripts/replay.ts [--trace-dir DIR] [--json] [--every-sample] [--workers N]
 *                             [--vms ID,ID,...] [--policies KEY,KEY,...]
 *
 *   --trace-dir DIR   the trace (default ../shared/traces/bitbrains-rnd-2013-08 from the
 *                     repository root; when absent, the synthetic traces of the tests)
 *   --json            print { rows, meta, goals } as JSON instead of the table
 *   --every-sample    evaluate at every sample, as the agent would (slow; same decisions)
 *   --workers N       worker threads (0 = this thread; default up to 2)
 *   --vms, --policies restrict the replay (the baseline is always included)
 */
import { formatReplay, replayGoals, runReplay, type ReplayOptions } from '../lambda-agent/replay';

const USAGE =
  'usage: npx tsx scripts/replay.ts [--trace-dir DIR] [--json] [--every-sample] [--workers N] [--vms ID,...] [--policies KEY,...]';

export function parseArgs(argv: readonly string[]): { opts: ReplayOptions; json: boolean } {
  const opts: { -readonly [K in keyof ReplayOptions]: ReplayOptions[K] } = {};
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--trace-dir':
        opts.traceDir = value();
        break;
      case '--json':
        json = true;
        break;
      case '--every-sample':
        opts.everySample = true;
        break;
      case '--workers': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 0) throw new Error(`--workers must be a whole number ≥ 0\n${USAGE}`);
        opts.workers = n;
        break;
      }
      case '--vms':
        opts.vmIds = value().split(',').filter(Boolean);
        break;
      case '--policies':
        opts.policies = value().split(',').filter(Boolean);
        break;
      case '-h':
      case '--help':
        throw new Error(USAGE);
      default:
        throw new Error(`unknown argument '${a}'\n${USAGE}`);
    }
  }
  return { opts, json };
}

async function main(): Promise<void> {
  const { opts, json } = parseArgs(process.argv.slice(2));
  const result = await runReplay(opts);
  if (json) {
    console.log(JSON.stringify({ rows: result.rows, meta: result.meta, goals: replayGoals(result) }, null, 2));
  } else {
    console.log(formatReplay(result));
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
