/**
 * The rule and event references and the event JSON Schema are generated from the code
 * they describe; a stale committed copy fails here (regenerate: npx tsx scripts/gen-docs.ts).
 * The schema is also checked by an independent validator (Python's jsonschema).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventJsonSchema, eventsMarkdown, exampleEvent, rulesMarkdown } from '../../lambda-agent/docs/generate';
import { parseEvent } from '../../lambda-agent/contract/events';

const root = join(__dirname, '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

describe('generated documents', () => {
  it('docs/rules.md matches the rule registry', () => {
    expect(read('docs/rules.md')).toBe(rulesMarkdown());
  });

  it('docs/events.md matches the event schema', () => {
    expect(read('docs/events.md')).toBe(eventsMarkdown());
  });

  it('event.schema.json matches the event schema', () => {
    expect(JSON.parse(read('lambda-agent/contract/event.schema.json'))).toEqual(eventJsonSchema());
  });
});

describe('event JSON Schema, judged by an independent validator', () => {
  const validate = (event: unknown): string => {
    const script = [
      'import json, sys, jsonschema',
      'schema = json.load(open(sys.argv[1]))',
      'event = json.loads(sys.stdin.read())',
      'errors = sorted(e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(event))',
      'print("ok" if not errors else "; ".join(errors))',
    ].join('\n');
    return execFileSync('python3', ['-c', script, join(root, 'lambda-agent/contract/event.schema.json')], { input: JSON.stringify(event) })
      .toString()
      .trim();
  };

  it('accepts the documented example, which the TypeScript parser accepts too', () => {
    expect(parseEvent(JSON.stringify(exampleEvent())).id).toBe(exampleEvent().id);
    expect(validate(exampleEvent())).toBe('ok');
  });

  it('rejects an event with an unknown type and an extra field', () => {
    const bad = { ...exampleEvent(), type: 'exploded', colour: 'red' };
    expect(() => parseEvent(bad)).toThrow(/type/);
    expect(validate(bad)).toMatch(/'exploded' is not one of/);
    expect(validate(bad)).toMatch(/Additional properties are not allowed/);
  });
});
