/**
 * What the CLI runs with outside Lambda: a logger on stderr (errors only unless PGWARDEN_LOG_LEVEL says
 * otherwise) and AWS clients only when a command needs them.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { systemClock } from '../shared/clock.ts';
import type { SecretsReader } from '../shared/credentials.ts';
import { createConsoleLogger, logLevelFrom } from '../shared/logger.ts';
import type { Io } from './io.ts';

export function resolveRuntimeDeps(io: Io) {
  const level = logLevelFrom(io.env);
  // The AWS SDK takes longer to load than a probe takes to run: load it only when a secret is read.
  let client: Promise<SecretsManagerClient> | undefined;
  const secrets = {
    async send(
      command: Parameters<SecretsManagerClient['send']>[0],
      options?: { abortSignal?: AbortSignal },
    ) {
      client ??= import('@aws-sdk/client-secrets-manager').then((sdk) => new sdk.SecretsManagerClient({}));
      return (await client).send(command, options);
    },
  } as SecretsReader;
  return {
    logger: createConsoleLogger({ level, write: (line) => io.err(`${line}\n`) }),
    clock: systemClock,
    secrets,
  };
}
