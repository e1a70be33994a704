/**
 * The agent's memory on disk (`<stateDir>/agent-state.json`): what must survive a
 * restart of the agent (crash, SIGKILL, upgrade) or of the instance. Written only when
 * it changes, atomically (temporary file, fsync, rename), so a kill never leaves half a
 * file; a damaged file is set aside and the agent starts afresh (its tags remember the
 * episodes, so no action is repeated).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint, EpisodeRecord } from '../contract/state';

/** What the agent remembers of a watched task, for the boot in {@link AgentState.bootTime}. */
export interface TaskMemory {
  /** The task was seen running (only then does its absence count as finished). */
  readonly seen?: boolean;
  /** Epoch ms it was first seen finished. */
  readonly exitedAt?: number;
}

export interface AgentState {
  /** Boot (epoch ms, from /proc/stat btime) the boot-scoped fields belong to. */
  readonly bootTime?: number;
  /** Local accounting checkpoint, used while the watchdog has written none. */
  readonly checkpoint?: Checkpoint;
  /** The agent's own episode records (warnings, actions; `pending` = not confirmed). */
  readonly episodes: readonly EpisodeRecord[];
  /** Watched tasks by rule name (this boot). */
  readonly tasks: Readonly<Record<string, TaskMemory>>;
  /** Bytes sent in earlier boots, and the last total seen in this one. */
  readonly netOutBase?: number;
  readonly netOutLast?: number;
}

export const STATE_FILE = 'agent-state.json';

export const EMPTY_STATE: AgentState = { episodes: [], tasks: {} };

export interface StateStore {
  readonly path: string;
  /** The saved state, or the empty state with a problem when the file is damaged. */
  load(): { state: AgentState; problem?: string };
  /** Writes the state unless it equals what was last written. Returns whether it wrote. */
  save(state: AgentState): boolean;
}

function valid(s: unknown): s is AgentState {
  if (!s || typeof s !== 'object') return false;
  const o = s as Record<string, unknown>;
  return Array.isArray(o.episodes) && !!o.tasks && typeof o.tasks === 'object';
}

export function createStateStore(dir: string): StateStore {
  const path = join(dir, STATE_FILE);
  let last = '';
  return {
    path,
    load() {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        return { state: EMPTY_STATE };
      }
      try {
        const s = JSON.parse(text) as unknown;
        if (!valid(s)) throw new Error('not an agent state');
        last = text;
        return { state: s };
      } catch (e) {
        try {
          renameSync(path, `${path}.damaged`);
        } catch {
          /* reported below */
        }
        return { state: EMPTY_STATE, problem: `${path} is damaged (${(e as Error).message}); set aside as ${STATE_FILE}.damaged` };
      }
    },
    save(state) {
      const text = JSON.stringify(state);
      if (text === last) return false;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${path}.tmp`, text, { mode: 0o600, flush: true });
      renameSync(`${path}.tmp`, path);
      last = text;
      return true;
    },
  };
}
