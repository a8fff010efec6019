import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { catalogFromFleet } from '../../shared/binding.ts';
import { secretsClientsByRegion } from '../../shared/credentials.ts';
import { createLambdaLogger, lambdaHandler } from '../../shared/lambda.ts';
import { emfRecord } from '../../shared/metrics.ts';
import { sessionsSignalled } from '../../shared/remediation/remediator.ts';
import { runRemediate } from './remediate.ts';
import { remediateEnvironment } from './settings.ts';

const logger = createLambdaLogger('remediate');
const secrets = new SecretsManagerClient({});
// A secret is read in the region its ARN names, which may not be the function's own.
const secretsIn = secretsClientsByRegion(
  secrets,
  process.env.AWS_REGION,
  (region) => new SecretsManagerClient({ region }),
);
const { fleet, connectTimeoutMs, statementTimeoutMs } = remediateEnvironment(process.env);
// The deployed fleet: a payload names a target, the configuration says what it is.
const catalog = catalogFromFleet(fleet, process.env.AWS_REGION);

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  const targetId = (event as { targetId?: unknown } | null)?.targetId;
  if (typeof targetId === 'string') logger.appendKeys({ targetId });
  const result = await runRemediate(
    event,
    {
      connectTimeoutMs,
      statementTimeoutMs,
      catalog,
    },
    { logger: log, secrets, secretsIn, signal },
  );
  // Inside a VPC without NAT there is no route to PutMetricData: the metric travels as an embedded
  // metric format line, written raw so no logger prefix breaks the JSON.
  const line = emfRecord(
    [{ name: 'SessionsTerminated', value: sessionsSignalled(result) }],
    result.targetId,
    Date.now(),
  );
  process.stdout.write(`${line}\n`);
  return result;
});
