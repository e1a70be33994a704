/**
 * Public entry of the runtime: the policy model, its parser and the decision engine,
 * shared by the agent, the watchdog, the CLI and the constructs.
 */
export { parsePolicy, loadPolicy, PolicyValidationError, formatPolicyError } from './policy/parse';
export type { PolicyError, ParseResult } from './policy/parse';
export type { Policy, PolicyDocument, RuleDocument, RuleConfig, AgentSettings } from './policy/model';
export { ACTION_STRENGTH } from './policy/model';
export { parseDuration, formatDuration } from './policy/duration';
export { evaluate } from './engine';
export type { Decision, RuleReport, RuleStatus, WarningNotice, PlannedAction } from './engine';
export { allRules, findRule, ruleNames, actionPermissions } from './rules';
export type { Observation, Sample, TaskStatus, InstanceState, Host, Accounting, RuleDefinition } from './rules';
export * as contract from './contract';
