import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { catalogFromFleet } from '../../shared/binding.ts';
import { secretsClientsByRegion } from '../../shared/credentials.ts';
import { fleetFromEnvironment } from '../../shared/fleet.ts';
import { createLambdaLogger, lambdaHandler, parseEnvironment } from '../../shared/lambda.ts';
import { duration, withDefault } from '../../shared/validate.ts';
import { handleProbe } from './probe.ts';

const logger = createLambdaLogger('probe');
const secrets = new SecretsManagerClient({});
// A secret is read in the region its ARN names, which may not be the function's own.
const secretsIn = secretsClientsByRegion(
  secrets,
  process.env.AWS_REGION,
  (region) => new SecretsManagerClient({ region }),
);
const env = parseEnvironment(
  {
    PGWARDEN_CONNECT_TIMEOUT: withDefault(duration({ minMs: 100, maxMs: 20_000 }), 3_000),
    PGWARDEN_STATEMENT_TIMEOUT: withDefault(duration({ minMs: 100, maxMs: 20_000 }), 2_000),
  },
  process.env,
  'probe',
);
// The deployed fleet: a payload names a target, the configuration says what it is.
const catalog = catalogFromFleet(fleetFromEnvironment(process.env, 'probe'), process.env.AWS_REGION);

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  const targetId = (event as { targetId?: unknown } | null)?.targetId;
  if (typeof targetId === 'string') logger.appendKeys({ targetId });
  return handleProbe(
    event,
    {
      connectTimeoutMs: env.PGWARDEN_CONNECT_TIMEOUT,
      statementTimeoutMs: env.PGWARDEN_STATEMENT_TIMEOUT,
      catalog,
    },
    { logger: log, secrets, secretsIn, signal },
  );
});
