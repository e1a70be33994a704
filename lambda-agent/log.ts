/**
 * Structured logs: one compact JSON object per line with fixed keys (`level`,
 * `message`, `timestamp`, `service`) plus the caller's keys, in the manner of
 * Powertools' logger. The message is a short phrase; figures go in keys. Reserved keys
 * cannot be overwritten. The engine never logs: it returns reasons.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const RESERVED = new Set(['level', 'message', 'timestamp', 'service']);

export interface Logger {
  debug(message: string, keys?: Record<string, unknown>): void;
  info(message: string, keys?: Record<string, unknown>): void;
  warn(message: string, keys?: Record<string, unknown>): void;
  error(message: string, keys?: Record<string, unknown>): void;
  /** Keys added to every later line (e.g. per invocation). */
  appendKeys(keys: Record<string, unknown>): void;
  /** A logger for a component, with extra persistent keys. */
  child(keys: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  service: string;
  level?: LogLevel;
  /** Where lines go. @default process.stdout */
  sink?: (line: string) => void;
  /** Clock for the timestamp. @default Date.now */
  clock?: () => number;
  persistentKeys?: Record<string, unknown>;
}

export function serializeError(e: unknown): Record<string, unknown> {
  if (e instanceof Error) {
    return {
      name: e.name,
      message: e.message,
      ...(e.stack ? { stack: e.stack.split('\n').slice(0, 6).join('\n') } : {}),
      ...((e as { cause?: unknown }).cause ? { cause: serializeError((e as { cause?: unknown }).cause) } : {}),
    };
  }
  return { message: String(e) };
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  const v = (value ?? '').toLowerCase();
  return v in ORDER ? (v as LogLevel) : fallback;
}

export function createLogger(opts: LoggerOptions): Logger {
  const sink = opts.sink ?? ((line: string) => process.stdout.write(line + '\n'));
  const clock = opts.clock ?? Date.now;
  const min = ORDER[opts.level ?? 'info'];
  const keys: Record<string, unknown> = { ...(opts.persistentKeys ?? {}) };
  const emit = (level: LogLevel, message: string, extra?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const line: Record<string, unknown> = {
      level: level.toUpperCase(),
      message,
      timestamp: new Date(clock()).toISOString(),
      service: opts.service,
    };
    for (const src of [keys, extra ?? {}]) {
      for (const [k, v] of Object.entries(src)) {
        if (RESERVED.has(k) || v === undefined) continue;
        line[k] = v instanceof Error ? serializeError(v) : v;
      }
    }
    sink(JSON.stringify(line));
  };
  return {
    debug: (m, k) => emit('debug', m, k),
    info: (m, k) => emit('info', m, k),
    warn: (m, k) => emit('warn', m, k),
    error: (m, k) => emit('error', m, k),
    appendKeys: (k) => Object.assign(keys, k),
    child: (k) => createLogger({ ...opts, persistentKeys: { ...keys, ...k } }),
  };
}
