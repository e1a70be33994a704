import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTaskWatcher, parseUnitShow, taskSpecs, type TaskSpec } from '../../../lambda-agent/agent/tasks';
import type { TaskMemory } from '../../../lambda-agent/agent/state-file';
import { loadPolicy } from '../../../lambda-agent/policy/parse';

const BOOT = Date.UTC(2026, 10, 26, 8, 0, 0);
const NOW = BOOT + 3_600_000;

describe('parseUnitShow', () => {
  const show = (state: string, start: number, exit: number) =>
    `ActiveState=${state}\nExecMainStartTimestampMonotonic=${start}\nExecMainExitTimestampMonotonic=${exit}\n`;
  it.each([
    ['a running service', show('active', 5_000_000, 0), 'running'],
    ['a starting service', show('activating', 5_000_000, 0), 'running'],
    ['a service running again after an earlier exit', show('active', 9_000_000, 7_000_000), 'running'],
    ['a finished oneshot', show('inactive', 5_000_000, 65_000_000), { ran: true, exitedAt: BOOT + 65_000 }],
    ['a failed service', show('failed', 5_000_000, 6_000_000), { ran: true, exitedAt: BOOT + 6000 }],
    ['a oneshot that remains active after exit', show('active', 5_000_000, 8_000_000), { ran: true, exitedAt: BOOT + 8000 }],
    ['a unit never started', show('inactive', 0, 0), { ran: false, exitedAt: undefined }],
    ['garbage', 'Failed to connect to bus', 'unknown'],
    ['an odd state', show('maintenance', 1, 0), 'unknown'],
  ])('%s', (_name, text, expected) => {
    expect(parseUnitShow(text, BOOT)).toEqual(expected);
  });
});

describe('the task watcher', () => {
  const specs: TaskSpec[] = [{ rule: 'job', process: 'batchjob' }];
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'smvm-tasks-'));
  });
  const proc = (pid: number, comm?: string) => {
    rmSync(join(root, String(pid)), { recursive: true, force: true });
    if (comm !== undefined) {
      mkdirSync(join(root, String(pid)));
      writeFileSync(join(root, String(pid), 'comm'), `${comm}\n`);
    }
  };

  it('reports a process finished only after it was seen running, and remembers when', async () => {
    const w = createTaskWatcher({ procRoot: root, systemctl: 'systemctl' });
    proc(1, 'systemd');
    let c = await w.check(specs, {}, NOW, BOOT);
    expect(c.tasks.job).toEqual({ state: 'unknown' }); // never seen: not finished
    expect(c.changed).toBe(false);
    proc(4242, 'batchjob');
    c = await w.check(specs, c.memory, NOW + 1000, BOOT);
    expect(c).toEqual({ tasks: { job: { state: 'running' } }, memory: { job: { seen: true } }, changed: true });
    proc(4242);
    c = await w.check(specs, c.memory, NOW + 2000, BOOT);
    expect(c.tasks.job).toEqual({ state: 'exited', exitedAt: NOW + 2000 });
    expect(c.changed).toBe(true);
    c = await w.check(specs, c.memory, NOW + 9000, BOOT);
    expect(c.tasks.job).toEqual({ state: 'exited', exitedAt: NOW + 2000 });
    expect(c.changed).toBe(false);
    proc(5000, 'batchjob'); // started again: running, a later exit is a new episode
    c = await w.check(specs, c.memory, NOW + 10_000, BOOT);
    expect(c.tasks.job).toEqual({ state: 'running' });
  });

  it('reports unknown, never finished, when the proc root cannot be read', async () => {
    const w = createTaskWatcher({ procRoot: join(root, 'missing'), systemctl: 'systemctl' });
    const memory: Record<string, TaskMemory> = { job: { seen: true } };
    const c = await w.check(specs, memory, NOW, BOOT);
    expect(c.tasks.job).toEqual({ state: 'unknown' });
    expect(c.memory).toEqual(memory);
  });

  it('asks systemd at most every 30 s, and a failed call is unknown', async () => {
    const calls: string[][] = [];
    let out = 'ActiveState=active\nExecMainStartTimestampMonotonic=1000000\nExecMainExitTimestampMonotonic=0\n';
    const w = createTaskWatcher({
      procRoot: root,
      systemctl: '/bin/systemctl',
      exec: async (file, args) => {
        calls.push([file, ...args]);
        if (out === 'fail') throw new Error('exit 1');
        return out;
      },
    });
    const unit: TaskSpec[] = [{ rule: 'batch', unit: 'batch.service' }];
    let c = await w.check(unit, {}, NOW, BOOT);
    expect(c.tasks.batch).toEqual({ state: 'running' });
    expect(calls[0]).toEqual([
      '/bin/systemctl',
      'show',
      '-p',
      'ActiveState',
      '-p',
      'ExecMainStartTimestampMonotonic',
      '-p',
      'ExecMainExitTimestampMonotonic',
      'batch.service',
    ]);
    out = 'ActiveState=inactive\nExecMainStartTimestampMonotonic=1000000\nExecMainExitTimestampMonotonic=20000000\n';
    c = await w.check(unit, c.memory, NOW + 10_000, BOOT);
    expect(c.tasks.batch).toEqual({ state: 'running' }); // cached
    c = await w.check(unit, c.memory, NOW + 30_000, BOOT);
    expect(c.tasks.batch).toEqual({ state: 'exited', exitedAt: BOOT + 20_000 });
    out = 'fail';
    c = await w.check(unit, c.memory, NOW + 60_000, BOOT);
    expect(c.tasks.batch).toEqual({ state: 'unknown' });
    expect(calls).toHaveLength(3);
  });

  it('takes its specs from the policy', () => {
    const p = loadPolicy({
      id: 'p',
      rules: [
        { rule: 'task-completion', name: 'render', unit: 'render.service' },
        { rule: 'task-completion', name: 'train', process: 'python3' },
        { rule: 'lifetime', max: '1d' },
      ],
    });
    expect(taskSpecs(p)).toEqual([
      { rule: 'render', unit: 'render.service', process: undefined },
      { rule: 'train', unit: undefined, process: 'python3' },
    ]);
  });
});
