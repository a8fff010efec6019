import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { catalogFromFleet } from '../../shared/binding.ts';
import { secretsClientsByRegion } from '../../shared/credentials.ts';
import { createLambdaLogger, lambdaHandler } from '../../shared/lambda.ts';
import { runProbe } from './probe.ts';
import { probeEnvironment } from './settings.ts';

const logger = createLambdaLogger('probe');
const secrets = new SecretsManagerClient({});
// A secret is read in the region its ARN names, which may not be the function's own.
const secretsIn = secretsClientsByRegion(
  secrets,
  process.env.AWS_REGION,
  (region) => new SecretsManagerClient({ region }),
);
const { fleet, connectTimeoutMs, statementTimeoutMs } = probeEnvironment(process.env);
// The deployed fleet: a payload names a target, the configuration says what it is.
const catalog = catalogFromFleet(fleet, process.env.AWS_REGION);

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  const targetId = (event as { targetId?: unknown } | null)?.targetId;
  if (typeof targetId === 'string') logger.appendKeys({ targetId });
  return runProbe(
    event,
    {
      connectTimeoutMs,
      statementTimeoutMs,
      catalog,
    },
    { logger: log, secrets, secretsIn, signal },
  );
});
