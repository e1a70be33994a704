import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStateStore, EMPTY_STATE, STATE_FILE, type AgentState } from '../../../lambda-agent/agent/state-file';

const STATE: AgentState = {
  bootTime: 1_764_150_000_000,
  checkpoint: { state: 'running', since: 1_764_150_000_000, firstSeen: 1_764_000_000_000, runningMs: 5000, spendUsd: 0.5 },
  episodes: [
    { rule: 'idle', episode: '1764150600', warnedAt: 1_764_152_000_000, actedAt: 1_764_152_300_000, action: 'stop', pending: true },
  ],
  tasks: { job: { seen: true, exitedAt: 1_764_151_000_000 } },
  netOutBase: 10,
  netOutLast: 20,
};

describe('the state file', () => {
  let dir: string;
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'smvm-state-')), 'nested');
  });

  it('starts empty, saves atomically with mode 600 and reads back what it saved', () => {
    const store = createStateStore(dir);
    expect(store.load()).toEqual({ state: EMPTY_STATE });
    expect(store.save(STATE)).toBe(true);
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
    expect(existsSync(store.path + '.tmp')).toBe(false);
    expect(createStateStore(dir).load()).toEqual({ state: STATE });
  });

  it('does not write what it wrote last', () => {
    const store = createStateStore(dir);
    expect(store.save(STATE)).toBe(true);
    expect(store.save({ ...STATE })).toBe(false);
    expect(store.save({ ...STATE, netOutLast: 21 })).toBe(true);
  });

  it('sets a damaged file aside and starts afresh', () => {
    const store = createStateStore(dir);
    store.save(STATE);
    writeFileSync(store.path, '{"episodes": [');
    const loaded = createStateStore(dir).load();
    expect(loaded.state).toEqual(EMPTY_STATE);
    expect(loaded.problem).toContain(`set aside as ${STATE_FILE}.damaged`);
    expect(readFileSync(store.path + '.damaged', 'utf8')).toBe('{"episodes": [');
    writeFileSync(store.path, '{"hello": 1}');
    expect(createStateStore(dir).load().problem).toContain('not an agent state');
  });
});
