/**
 * The watchdog's Lambda entry point (bundled by the constructs with esbuild). Clients,
 * settings and caches live at module scope, so a warm container reuses them; the logic
 * is in `watchdog.ts` and `cycle.ts`.
 */
import { systemClock } from '../adapters/clock';
import { LOG_LEVEL_ENV_VAR } from '../contract/env';
import { createLogger, parseLogLevel } from '../log';
import { createAwsClients } from './clients';
import { readConfig } from './config';
import { createWatchdog, type InvocationContext, type WatchdogResult } from './watchdog';

const logger = createLogger({
  service: 'smvm-watchdog',
  level: parseLogLevel(process.env[LOG_LEVEL_ENV_VAR]),
});
const watchdog = createWatchdog({
  ...createAwsClients(readConfig(process.env)),
  clock: systemClock,
  env: process.env,
  logger,
});

export async function handler(event: unknown, context?: InvocationContext): Promise<WatchdogResult> {
  return watchdog.handle(event, context);
}
