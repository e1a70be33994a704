/**
 * Savings replay benchmark: the whole trace (295 VMs × 30 days) under every policy of
 * the comparison, with the goals of the "savings replay" issue (see docs/savings.md).
 *
 *   npx tsx bench/replay.ts       prints the policy table and the goals
 *   npm run bench -- replay       the goals, inside the project's bench run
 *
 * When the trace is absent the replay runs on the synthetic traces of the tests and
 * says so; the wall-time goal is then not judged.
 */
import { formatReplay, replayGoals, runReplay, type ReplayOptions, type ReplayResult } from '../lambda-agent/replay';
import type { BenchRow } from './row';

export type { BenchRow };

let last: Promise<{ rows: BenchRow[]; text: string; result: ReplayResult }> | undefined;

/** Run the replay once per process (later calls share the run) and keep its table. */
export function benchReplayReport(opts: ReplayOptions = {}): Promise<{ rows: BenchRow[]; text: string; result: ReplayResult }> {
  last ??= runReplay(opts).then((result) => ({ rows: replayGoals(result), text: formatReplay(result), result }));
  return last;
}

/** The goals of the replay, as bench rows. */
export async function benchReplay(): Promise<BenchRow[]> {
  return (await benchReplayReport()).rows;
}

/** The policy table of the same run, as text. */
export async function benchReplayTable(): Promise<string> {
  return (await benchReplayReport()).text;
}

if (require.main === module) {
  benchReplayReport()
    .then(({ text }) => console.log(text))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
