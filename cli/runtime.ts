/**
 * What the CLI runs with outside Lambda: a logger on stderr (quiet unless PGWARDEN_LOG_LEVEL says
 * otherwise) and AWS clients only when a command needs them.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { systemClock } from '../shared/clock.ts';
import { createConsoleLogger, type LogLevel } from '../shared/logger.ts';
import type { Io } from './io.ts';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export function resolveRuntimeDeps(io: Io) {
  const requested = io.env.PGWARDEN_LOG_LEVEL?.toLowerCase();
  const level: LogLevel = LEVELS.includes(requested as LogLevel) ? (requested as LogLevel) : 'silent';
  let secrets: SecretsManagerClient | undefined;
  return {
    logger: createConsoleLogger({ level, write: (line) => io.err(`${line}\n`) }),
    clock: systemClock,
    get secrets() {
      secrets ??= new SecretsManagerClient({});
      return secrets;
    },
  };
}
