/** Writes the generated reference documents (rules, events, event JSON Schema). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventJsonSchema, eventsMarkdown, rulesMarkdown } from '../lambda-agent/docs/generate';

const root = join(__dirname, '..');
writeFileSync(join(root, 'docs', 'rules.md'), rulesMarkdown());
writeFileSync(join(root, 'docs', 'events.md'), eventsMarkdown());
writeFileSync(join(root, 'lambda-agent', 'contract', 'event.schema.json'), JSON.stringify(eventJsonSchema(), null, 2) + '\n');
console.log('wrote docs/rules.md, docs/events.md, lambda-agent/contract/event.schema.json');
