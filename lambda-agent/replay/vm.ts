/**
 * One VM of a trace under every policy of the comparison: what a worker thread (or the
 * replay itself, in-thread) does per VM.
 */
import { REPLAY_POLICIES, findReplayPolicy, type ReplayPolicy } from './policies';
import { compilePolicy, prepareVm, replayVm, type PreparedVm, type VmPolicyResult } from './simulate';
import { loadVmFile, type ParseStats } from './trace';

/** One VM's replay under all policies. */
export interface VmReplay {
  readonly id: string;
  readonly instanceType: string;
  readonly hourlyUsd: number;
  readonly oversize: boolean;
  readonly neverRuns: boolean;
  readonly spanMs: number;
  readonly wasteMs: number;
  readonly stats: ParseStats;
  readonly results: readonly VmPolicyResult[];
  /** CPU time this VM took: reading and parsing, replaying (ms). */
  readonly loadMs: number;
  readonly replayMs: number;
}

export function policiesFor(keys: readonly string[] | undefined): ReplayPolicy[] {
  if (!keys) return [...REPLAY_POLICIES];
  const out: ReplayPolicy[] = [REPLAY_POLICIES[0]];
  for (const k of keys) {
    const p = findReplayPolicy(k);
    if (!p) throw new Error(`unknown replay policy '${k}'; known: ${REPLAY_POLICIES.map((q) => q.key).join(', ')}`);
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** Replay one prepared VM under the given policies. */
export function replayPrepared(
  vm: PreparedVm,
  policies: readonly ReplayPolicy[],
  opts: { everySample?: boolean; recordEvents?: boolean } = {},
  loadMs = 0,
): VmReplay {
  const t0 = performance.now();
  const results = vm.neverRuns ? [] : policies.map((p) => replayVm(vm, compilePolicy(p, vm.price.hourlyUsd), opts));
  return {
    id: vm.id,
    instanceType: vm.price.type,
    hourlyUsd: vm.price.hourlyUsd,
    oversize: vm.price.oversize,
    neverRuns: vm.neverRuns,
    spanMs: vm.endMs - vm.startMs,
    wasteMs: vm.wasteMs,
    stats: vm.trace.stats,
    results,
    loadMs,
    replayMs: performance.now() - t0,
  };
}

/** Read, parse and replay one VM file. */
export function replayFile(
  dir: string,
  id: string,
  policyKeys: readonly string[] | undefined,
  opts: { everySample?: boolean; recordEvents?: boolean } = {},
): VmReplay {
  const t0 = performance.now();
  const vm = prepareVm(loadVmFile(dir, id));
  return replayPrepared(vm, policiesFor(policyKeys), opts, performance.now() - t0);
}
