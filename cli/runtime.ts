/**
 * What the CLI runs with outside Lambda: a logger on stderr (errors only unless PGWARDEN_LOG_LEVEL says
 * otherwise) and AWS clients only when a command needs them.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { systemClock } from '../shared/clock.ts';
import { createConsoleLogger, logLevelFrom } from '../shared/logger.ts';
import type { Io } from './io.ts';

export function resolveRuntimeDeps(io: Io) {
  const level = logLevelFrom(io.env);
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
