/** Importing this module registers every rule. */
import './lifetime';
import './running-time';
import './spend';
import './idle';
import './over-use';
import './health';
import './heartbeat-lost';
import './schedule';
import './task-completion';

export { findRule, ruleNames, allRules } from './registry';
export { actionPermissions } from './permissions';
export type * from './types';
