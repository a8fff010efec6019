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
