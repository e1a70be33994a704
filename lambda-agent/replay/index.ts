/**
 * The savings replay: policies compared on a month of real VM usage, through the same
 * `evaluate` the guards run. See docs/savings.md.
 */
export { runReplay, formatReplay, replayGoals, VM_MONTH_MS, WALL_BUDGET_MS } from './run';
export type { ReplayOptions, ReplayResult, ReplayRow, ReplayMeta, GoalCheck, WorkerRuntime } from './run';
export type { VmReplay } from './vm';
export { REPLAY_POLICIES, findReplayPolicy, OFFICE_HOURS, OUR_IDLE, DEV_BOX_CAP_HOURS } from './policies';
export type { ReplayPolicy } from './policies';
export { DISRUPTION, WASTE, isNeeded, isQuiet, wasteMask, neededMask, sampleIntervals } from './definitions';
export { M5_PRICES, PRICE_SOURCE, priceFor } from './pricing';
export type { InstancePrice } from './pricing';
export { prepareVm, replayVm, compilePolicy, EVENT_SAFE_RULES } from './simulate';
export type { PreparedVm, VmPolicyResult, ReplayEvent, SimulateOptions, CompiledPolicy } from './simulate';
export { parseVmCsv, loadVmFile, listTraceVms, hasTrace, defaultTraceDir, TRACE_PERIOD_MS } from './trace';
export type { VmTrace, ParseStats } from './trace';
export { syntheticFleet, syntheticVm, SYNTHETIC_MONDAY, TRACE_MONTH_START } from './synthetic';
