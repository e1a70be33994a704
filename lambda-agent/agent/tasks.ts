/**
 * Watches the tasks of task-completion rules: a systemd unit (`systemctl show`) or a
 * process by name (`<procRoot>/<pid>/comm`). A task counts as finished only after it
 * was seen running in this boot (remembered on disk), so a task that has not started
 * yet, or a name that matches nothing, never looks finished; a failed check is
 * `unknown`, never finished.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Policy } from '../policy/model';
import type { TaskStatus } from '../rules/types';
import type { TaskMemory } from './state-file';

export interface TaskSpec {
  /** The rule's name (tasks are reported by rule). */
  readonly rule: string;
  readonly unit?: string;
  readonly process?: string;
}

/** Runs a program and resolves with its stdout. */
export type Exec = (file: string, args: readonly string[]) => Promise<string>;

export interface TaskWatcherOptions {
  readonly procRoot: string;
  readonly systemctl: string;
  /** @default - node:child_process execFile with a 5 s timeout */
  readonly exec?: Exec;
  /** A unit is asked at most this often (a fork costs far more than a tick). @default 30000 */
  readonly unitPollMs?: number;
}

export interface TaskCheck {
  readonly tasks: Record<string, TaskStatus>;
  readonly memory: Record<string, TaskMemory>;
  readonly changed: boolean;
}

export interface TaskWatcher {
  check(
    specs: readonly TaskSpec[],
    memory: Readonly<Record<string, TaskMemory>>,
    now: number,
    bootTime: number | undefined,
  ): Promise<TaskCheck>;
}

/** The tasks the policy's task-completion rules name. */
export function taskSpecs(policy: Policy): TaskSpec[] {
  return policy.rules
    .filter((r) => r.type === 'task-completion')
    .map((r) => ({ rule: r.name, unit: r.params.unit as string | undefined, process: r.params.process as string | undefined }));
}

const defaultExec: Exec = (file, args) =>
  new Promise((resolve, reject) =>
    execFile(file, args as string[], { timeout: 5000, encoding: 'utf8' }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );

/** What one look at a task found: running, unknown, or not running (did it run in this boot, and when did it exit?). */
type Seen = 'running' | 'unknown' | { readonly ran?: boolean; readonly exitedAt?: number };

/** `systemctl show` output → what it says about the unit. */
export function parseUnitShow(text: string, bootTime: number | undefined): Seen {
  const f = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1].trim();
  const state = f('ActiveState');
  const start = Number(f('ExecMainStartTimestampMonotonic')) || 0;
  const exit = Number(f('ExecMainExitTimestampMonotonic')) || 0;
  const finished = start > 0 && exit >= start;
  if (/^(active|activating|reloading|deactivating)$/.test(state ?? '') && !finished) return 'running';
  if (state === 'inactive' || state === 'failed' || finished)
    return { ran: start > 0, exitedAt: exit > 0 && bootTime !== undefined ? bootTime + Math.floor(exit / 1000) : undefined };
  return 'unknown';
}

export function createTaskWatcher(opts: TaskWatcherOptions): TaskWatcher {
  const exec = opts.exec ?? defaultExec;
  const pollMs = opts.unitPollMs ?? 30_000;
  const units = new Map<string, { at: number; seen: Seen }>();

  /** Names of the running processes, or undefined when the proc root cannot be listed. */
  function processNames(): Set<string> | undefined {
    let entries: string[];
    try {
      entries = readdirSync(opts.procRoot);
    } catch {
      return undefined;
    }
    const names = new Set<string>();
    for (const e of entries) {
      try {
        if (/^\d+$/.test(e)) names.add(readFileSync(join(opts.procRoot, e, 'comm'), 'utf8').trim());
      } catch {
        /* exited while listing */
      }
    }
    return names;
  }

  async function unit(name: string, now: number, bootTime: number | undefined): Promise<Seen> {
    const cached = units.get(name);
    if (cached && now - cached.at < pollMs) return cached.seen;
    let seen: Seen = 'unknown';
    try {
      seen = parseUnitShow(
        await exec(opts.systemctl, [
          'show',
          '-p',
          'ActiveState',
          '-p',
          'ExecMainStartTimestampMonotonic',
          '-p',
          'ExecMainExitTimestampMonotonic',
          name,
        ]),
        bootTime,
      );
    } catch {
      /* unknown */
    }
    units.set(name, { at: now, seen });
    return seen;
  }

  return {
    async check(specs, memory, now, bootTime) {
      const tasks: Record<string, TaskStatus> = {};
      const next: Record<string, TaskMemory> = {};
      const procs = specs.some((s) => s.process) ? processNames() : undefined;
      for (const s of specs) {
        const m = memory[s.rule] ?? {};
        const seen: Seen = s.unit
          ? await unit(s.unit, now, bootTime)
          : s.process && procs
            ? procs.has(s.process)
              ? 'running'
              : {}
            : 'unknown';
        let mem: TaskMemory = m;
        if (seen === 'running') mem = { seen: true };
        else if (seen !== 'unknown' && (m.seen || seen.ran)) mem = { seen: true, exitedAt: m.exitedAt ?? seen.exitedAt ?? now };
        tasks[s.rule] =
          seen === 'running'
            ? { state: 'running' }
            : mem.exitedAt !== undefined && seen !== 'unknown'
              ? { state: 'exited', exitedAt: mem.exitedAt }
              : { state: 'unknown' };
        if (mem.seen) next[s.rule] = mem;
      }
      return { tasks, memory: next, changed: JSON.stringify(next) !== JSON.stringify(memory) };
    },
  };
}
