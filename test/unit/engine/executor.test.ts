/**
 * The executor's recovery of actions a crashed or failed run left pending: confirmed ones
 * are announced and completed, unconfirmed fresh ones are reset to their warning for the
 * engine to decide again (never carried out blindly), expired ones are abandoned.
 */
import type { EpisodeRecord } from '../../../lambda-agent/contract/state';
import {
  finishPending,
  recoverPending,
  PENDING_EXPIRY_MS,
  PENDING_SETTLE_MS,
  type ExecutionContext,
  type ExecutorPorts,
} from '../../../lambda-agent/executor';
import type { SmvmEvent } from '../../../lambda-agent/contract/event-core';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const MIN = 60_000;
const ctx: ExecutionContext = { source: 'watchdog', policyId: 'p', writesCheckpoint: true };
const stop: EpisodeRecord = {
  rule: 'idle',
  episode: 'e1',
  warnedAt: NOW - 10 * MIN,
  actedAt: NOW - 2 * MIN,
  action: 'stop',
  pending: true,
};

function ports() {
  const calls: string[] = [];
  const saved: Array<readonly EpisodeRecord[] | undefined> = [];
  const events: SmvmEvent[] = [];
  const p: ExecutorPorts = {
    perform: async (action) => {
      calls.push(action);
      return new Map();
    },
    saveState: async (_id, s) => void saved.push(s.episodes),
    publish: async (e) => void events.push(e),
  };
  return { p, calls, saved, events };
}

describe('recoverPending', () => {
  it('announces and completes an action whose effect is visible', () => {
    const r = recoverPending(ctx, 'i-1', 'stopped', [stop], NOW);
    expect(r.records).toEqual([{ rule: 'idle', episode: 'e1', warnedAt: stop.warnedAt, actedAt: stop.actedAt, action: 'stop' }]);
    expect(r.events.map((e) => [e.type, e.episode])).toEqual([['stopped', 'e1']]);
  });

  it('resets a fresh action whose effect is not visible to its warning, for the engine to decide again', () => {
    const r = recoverPending(ctx, 'i-1', 'running', [stop], NOW);
    expect(r.records).toEqual([{ rule: 'idle', episode: 'e1', warnedAt: stop.warnedAt, action: 'stop' }]);
    expect(r.events).toEqual([]);
    const unwarned = recoverPending(ctx, 'i-1', 'running', [{ ...stop, warnedAt: undefined }], NOW);
    expect(unwarned.records).toEqual([]);
  });

  it('leaves alone an action recorded so recently that it may still be in progress, until its effect shows', () => {
    const recent = { ...stop, actedAt: NOW - PENDING_SETTLE_MS + 1 };
    expect(recoverPending(ctx, 'i-1', 'running', [recent], NOW)).toEqual({ events: [] });
    expect(recoverPending(ctx, 'i-1', 'running', [recent], NOW + 1).records).toEqual([
      { rule: 'idle', episode: 'e1', warnedAt: stop.warnedAt, action: 'stop' },
    ]);
    expect(recoverPending(ctx, 'i-1', 'stopping', [recent], NOW).events.map((e) => e.type)).toEqual(['stopped']);
  });

  it('abandons and announces an expired action whose effect is not visible', () => {
    const r = recoverPending(ctx, 'i-1', 'running', [stop], stop.actedAt! + PENDING_EXPIRY_MS + 1);
    expect(r.records).toEqual([]);
    expect(r.events.map((e) => e.type)).toEqual(['error']);
  });

  it('changes nothing without a pending record', () => {
    expect(recoverPending(ctx, 'i-1', 'running', [{ ...stop, pending: undefined }], NOW)).toEqual({ events: [] });
  });
});

describe('finishPending', () => {
  it('never carries an unconfirmed action out itself: writes the reset records at once and returns them', async () => {
    const { p, calls, saved, events } = ports();
    const out = await finishPending([{ instanceId: 'i-1', state: 'running', records: [stop] }], p, ctx, NOW);
    expect(calls).toEqual([]);
    expect(events).toEqual([]);
    const reset = [{ rule: 'idle', episode: 'e1', warnedAt: stop.warnedAt, action: 'stop' }];
    expect(saved).toEqual([reset]);
    expect(out.get('i-1')).toEqual(reset);
  });

  it('leaves the records as they were when the write fails (the next run tries again)', async () => {
    const { p } = ports();
    const out = await finishPending(
      [{ instanceId: 'i-1', state: 'running', records: [stop] }],
      { ...p, saveState: async () => Promise.reject(new Error('throttled')) },
      ctx,
      NOW,
    );
    expect(out.has('i-1')).toBe(false);
  });
});
