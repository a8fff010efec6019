import { redactingReplacer } from './redact.ts';

/**
 * The logging surface cores depend on. Powertools' Logger satisfies it in Lambda; the CLI and local
 * mode use `createConsoleLogger`.
 */
export interface Logger {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** The CLI's and local mode's log level (Lambda goes by Powertools' own variables). */
export const LOG_LEVEL_SETTING = {
  variable: 'PGWARDEN_LOG_LEVEL',
  /** Errors only: what went wrong reaches stderr, the rest stays quiet. */
  defaultLevel: 'error',
} as const satisfies { variable: string; defaultLevel: LogLevel };

/** The log level an environment asks for; the default when it asks for none, or for one that does not exist. */
export function logLevelFrom(env: Record<string, string | undefined>): LogLevel {
  const requested = env[LOG_LEVEL_SETTING.variable]?.trim().toLowerCase();
  return requested !== undefined && requested in ORDER
    ? (requested as LogLevel)
    : LOG_LEVEL_SETTING.defaultLevel;
}

export interface ConsoleLoggerOptions {
  level?: LogLevel;
  /** Where JSON lines go. @default process.stderr */
  write?: (line: string) => void;
  /** Keys added to every line, e.g. `{ service: 'monitor' }`. */
  keys?: Record<string, unknown>;
}

/** Structured JSON-lines logger that redacts every value as it serialises it; used outside Lambda. */
export function createConsoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const threshold = ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (level: Exclude<LogLevel, 'silent'>, message: string, extra?: Record<string, unknown>) => {
    if (ORDER[level] < threshold) return;
    const record = {
      level: level.toUpperCase(),
      timestamp: new Date().toISOString(),
      message,
      ...options.keys,
      ...extra,
    };
    write(JSON.stringify(record, redactingReplacer));
  };
  return {
    debug: (message, extra) => emit('debug', message, extra),
    info: (message, extra) => emit('info', message, extra),
    warn: (message, extra) => emit('warn', message, extra),
    error: (message, extra) => emit('error', message, extra),
  };
}

export const silentLogger: Logger = createConsoleLogger({ level: 'silent' });
