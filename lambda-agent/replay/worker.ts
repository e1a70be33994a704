/**
 * A replay worker thread: reads, parses and replays the VM files it is sent, one batch
 * at a time (see `replayInWorkers` in run.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './run';
import { replayFile } from './vm';

const data = workerData as { dir: string; keys?: string[]; everySample: boolean };
const port = parentPort;
if (port) {
  port.on('message', (m: ToWorker) => {
    if ('exit' in m) {
      port.close();
      return;
    }
    try {
      const replays = m.ids.map((id) => replayFile(data.dir, id, data.keys, { everySample: data.everySample }));
      port.postMessage({ replays } satisfies FromWorker);
    } catch (e) {
      port.postMessage({ error: `replay of VM(s) ${m.ids.join(', ')} failed: ${(e as Error).stack ?? String(e)}` } satisfies FromWorker);
    }
  });
  port.postMessage({ ready: true } satisfies FromWorker);
}
