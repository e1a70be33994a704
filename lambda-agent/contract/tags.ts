/**
 * Instance tag keys: the one place where the constructs, the watchdog, the agent and
 * the CLI agree on what is written where.
 *
 * Keys contain no `/` and no spaces, so that they are readable through instance
 * metadata tags (IMDS refuses such keys when `instance_metadata_tags` is enabled).
 * AWS tag keys are case-insensitive in the console but IAM `StringEquals` on
 * `aws:TagKeys` is case-sensitive: the IAM policies therefore match keys with
 * `StringEqualsIgnoreCase`/`ForAnyValue:StringLike` on the lower-case forms below.
 */
export const TAG_PREFIX = 'smvm:';

/** Which policy governs the instance. Written by the constructs only. */
export const POLICY_TAG = 'smvm:policy';
/** Unique management id of the instance (see {@link formatManagementId}). Constructs only. */
export const MANAGEMENT_ID_TAG = 'smvm:management-id';
/** Hash of the policy document the instance was last deployed with. Constructs only. */
export const POLICY_VERSION_TAG = 'smvm:policy-version';
/** Lifetime hard limit in seconds, read by the dependency-free shutdown guard. Constructs only. */
export const HARD_LIMIT_TAG = 'smvm:hard-limit';
/**
 * The instance's shutdown behaviour (`stop` or `terminate`: what an OS poweroff does), read
 * by the agent before it powers the OS off for a hard limit. Constructs only.
 */
export const SHUTDOWN_BEHAVIOR_TAG = 'smvm:shutdown-behavior';

/** Accounting checkpoint (see `contract/codec.ts`). Watchdog only. */
export const STATE_TAG = 'smvm:state';
/** Warnings issued and actions taken, per rule episode. Watchdog only. */
export const EPISODES_TAG = 'smvm:episodes';

/** Agent heartbeat: time, sampled usage, condition reports. Agent only. */
export const HEARTBEAT_TAG = 'smvm:heartbeat';
/** Agent's own warnings/actions per episode, so the watchdog never repeats them. Agent only. */
export const AGENT_EPISODES_TAG = 'smvm:agent-episodes';

/** Snooze of the soft rules until a time. Operators only (CLI). */
export const SNOOZE_TAG = 'smvm:snooze';
/** Explicit extensions of the hard limits. Operators only (CLI). */
export const EXTEND_TAG = 'smvm:extend';

/** Keys the agent may write on its own instance, and nothing else. */
export const AGENT_WRITABLE_TAGS = [HEARTBEAT_TAG, AGENT_EPISODES_TAG] as const;
/** Keys the watchdog may write. Never the policy tag: no moving instances between policies. */
export const WATCHDOG_WRITABLE_TAGS = [STATE_TAG, EPISODES_TAG] as const;
/** Keys operators write through the CLI. */
export const OPERATOR_WRITABLE_TAGS = [SNOOZE_TAG, EXTEND_TAG] as const;
/** Keys set by the infrastructure code (constructs) and by nobody at run time. */
export const INFRASTRUCTURE_TAGS = [POLICY_TAG, MANAGEMENT_ID_TAG, POLICY_VERSION_TAG, HARD_LIMIT_TAG, SHUTDOWN_BEHAVIOR_TAG] as const;

export const ALL_TAGS = [...INFRASTRUCTURE_TAGS, ...WATCHDOG_WRITABLE_TAGS, ...AGENT_WRITABLE_TAGS, ...OPERATOR_WRITABLE_TAGS] as const;

export type SmvmTagKey = (typeof ALL_TAGS)[number];

/** A tag key as it is accepted by EC2: at most 128 characters; values at most 256. */
export const MAX_TAG_VALUE_LENGTH = 256;
