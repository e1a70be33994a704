/**
 * Generated reference documents: the rule reference from the rule registry, the event
 * reference and JSON Schema from the contract's event schema. `scripts/gen-docs.ts`
 * writes them; a test fails when a committed copy is stale.
 */
import { toJSONSchema } from 'zod/v4/core';
import { allRules } from '../rules';
import { eventSchema, EVENT_SCHEMA_VERSION, EVENT_TYPES, MESSAGE_ATTRIBUTES, defaultSeverity } from '../contract/events';

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  required?: string[];
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  description?: string;
};

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'object' && s.properties) return 'object';
  return String(s.type ?? 'any');
}

function fieldRows(schema: JsonSchema, prefix = ''): string[] {
  const rows: string[] = [];
  for (const [name, s] of Object.entries(schema.properties ?? {})) {
    const req = schema.required?.includes(name) ? 'yes' : 'no';
    rows.push(`| \`${prefix}${name}\` | ${typeOf(s)} | ${req} |`);
    if (s.type === 'object' && s.properties) rows.push(...fieldRows(s, `${prefix}${name}.`));
    if (s.type === 'array' && s.items?.properties) rows.push(...fieldRows(s.items, `${prefix}${name}[].`));
  }
  return rows;
}

/** The event JSON Schema, as committed in `lambda-agent/contract/event.schema.json`. */
export function eventJsonSchema(): Record<string, unknown> {
  const schema = toJSONSchema(eventSchema) as Record<string, unknown>;
  return {
    $schema: schema.$schema,
    $id: `https://smvm.dev/schemas/event-v${EVENT_SCHEMA_VERSION}.json`,
    title: `smvm event, schema version ${EVENT_SCHEMA_VERSION}`,
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}

export function rulesMarkdown(): string {
  const out: string[] = [
    '# Rule reference',
    '',
    'Generated from the rule registry (`lambda-agent/rules/`) by `npx tsx scripts/gen-docs.ts`; do not edit by hand.',
    '',
    'Every rule also accepts `name` (unique within the policy; default: the rule type), `action` and `warnBefore` (announce the action this long before it happens). Durations are written `90s`, `30m`, `8h`, `3d` or ISO 8601 (`PT8H`). *Hard* limits (lifetime, running time, spend) can only be extended explicitly (`smvm extend`), never snoozed; *soft* rules can be snoozed (`smvm snooze`).',
    '',
    '| rule | kind | evaluated by | actions (first = default) | summary |',
    '|---|---|---|---|---|',
  ];
  for (const r of allRules())
    out.push(`| [\`${r.name}\`](#${r.name}) | ${r.kind} | ${r.hosts.join(', ')} | ${r.actions.join(', ')} | ${r.summary} |`);
  for (const r of allRules()) {
    const schema = toJSONSchema(r.schema) as JsonSchema;
    out.push('', `## ${r.name}`, '', r.summary, '', '| field | type | required |', '|---|---|---|', ...fieldRows(schema), '');
    out.push('Example:', '', '```json', JSON.stringify(r.example, null, 2), '```');
  }
  return out.join('\n') + '\n';
}

export function eventsMarkdown(): string {
  const schema = toJSONSchema(eventSchema) as JsonSchema;
  const out: string[] = [
    '# Event reference',
    '',
    `Generated from the contract's event schema (\`lambda-agent/contract/events.ts\`, JSON Schema in \`lambda-agent/contract/event.schema.json\`); do not edit by hand. Schema version: **${EVENT_SCHEMA_VERSION}**.`,
    '',
    "Every guard (agent, watchdog, CLI) publishes one JSON event per fact to the policy's SNS topic. The SNS `Subject` is the event's `subject` (readable in email). Message attributes, for SNS subscription filter policies: " +
      MESSAGE_ATTRIBUTES.map((a) => `\`${a}\``).join(', ') +
      '. Delivery is at least once: deduplicate on `id` (the same fact always has the same id, whichever guard announces it).',
    '',
    '## Fields',
    '',
    '| field | type | required |',
    '|---|---|---|',
    ...fieldRows(schema),
    '',
    '## Types',
    '',
    '| type | default severity | meaning |',
    '|---|---|---|',
  ];
  const meaning: Record<string, string> = {
    warning: 'an action will follow at `dueAt` unless the condition clears (or the instance is snoozed/extended)',
    stopped: 'the instance was stopped',
    hibernated: 'the instance was hibernated',
    rebooted: 'the instance was rebooted',
    terminated: 'the instance was terminated',
    started: 'the instance was started (a schedule window opened)',
    notified: 'a rule with action `notify` fired',
    skipped: 'an action was due but not taken: dry run, termination or stop protection (`detail.skipped`)',
    'state-changed': "the instance changed state outside the policy's actions",
    'heartbeat-lost': 'the agent stopped reporting; the watchdog alone guards the instance',
    'task-finished': 'a watched task (systemd unit or process) finished',
    snoozed: 'an operator snoozed the soft rules (`detail.by`, `detail.reason`)',
    extended: 'an operator extended a hard limit (`detail.by`, `detail.reason`, `detail.limit`, `detail.amount`)',
    usage: 'periodic usage summary of the policy (`detail.instances`, running hours, spend, actions, limits left)',
    error: 'something could not be done (bad tag, API failure, unknown price); the message says what and what to do',
  };
  for (const t of EVENT_TYPES) out.push(`| \`${t}\` | ${defaultSeverity(t)} | ${meaning[t] ?? ''} |`);
  out.push('', '## Example', '', '```json', JSON.stringify(exampleEvent(), null, 2), '```', '');
  out.push(
    '## Subscribing',
    '',
    "TypeScript: `import { parseEvent } from 'cdktf-self-managed-vm/events'` validates a message body and returns the typed event. Other languages: validate against `event.schema.json` (JSON Schema 2020-12). Filter policy example, only hard actions and errors:",
    '',
    '```json',
    JSON.stringify({ eventType: ['stopped', 'terminated', 'error', 'heartbeat-lost'] }, null, 2),
    '```',
  );
  return out.join('\n') + '\n';
}

export function exampleEvent() {
  return {
    schemaVersion: EVENT_SCHEMA_VERSION,
    id: '3f1c2a9b7d0e4c55',
    type: 'stopped',
    time: '2026-11-26T18:04:00.000Z',
    source: 'agent',
    severity: 'info',
    policyId: 'dev-boxes',
    instanceId: 'i-0123456789abcdef0',
    managementId: 'smvm-dev-boxes-5e0c7d1a2b3c',
    subject: 'i-0123456789abcdef0 stopped: idle',
    message: 'idle for 30m (window 30m): CPU ≤ 1.2% < 5%, network ≤ 0.3 KB/s < 10.0 KB/s.',
    rule: 'idle',
    episode: '1795712640',
    action: 'stop',
    accounting: { lifetimeMs: 29_160_000, runningMs: 29_160_000, spendUsd: 0.337, firstSeen: 1795683840000 },
    detail: { rules: ['idle'] },
  } as const;
}
