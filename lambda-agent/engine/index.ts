export { evaluate } from './evaluate';
export type { Decision, RuleReport, RuleStatus, WarningNotice, PlannedAction } from './evaluate';
export { accountingAt, reconcile, billingOf, transition } from './accounting';
