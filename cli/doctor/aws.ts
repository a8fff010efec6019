/**
 * The AWS clients `pgwarden doctor --stack` and `pgwarden test-page --stack` use, with the caller's
 * own credentials and region (the SDK's usual chain: environment, profile, SSO). Loaded only by those
 * commands: `doctor --url` never pays for the SDK.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { describeError, PgWardenError } from '../../shared/errors.ts';
import { redact } from '../../shared/redact.ts';

/** Anything that sends SDK commands: a real client, or one pointed at an emulator in tests. */
export interface Sender {
  // biome-ignore lint/suspicious/noExplicitAny: each SDK client types send() by its own command union.
  send(command: any, options?: { abortSignal?: AbortSignal }): Promise<any>;
}

export interface AwsClients {
  /** The region the stack is in. */
  region: string;
  cloudformation: Sender;
  sns: Sender;
  cloudwatch: Sender;
  logs: Sender;
  lambda: Sender;
  iam: Sender;
  /** RDS in a region (a target may live in another). */
  rds(region: string): Sender;
  /** Secrets Manager in a region (a secret's ARN names its own). */
  secrets(region: string): Sender;
}

/** Each call gives up after this long: a doctor that hangs helps nobody at 3 a.m. */
export const CALL_TIMEOUT_MS = 15_000;

/** Sends `command` with a deadline. */
export function call<T>(client: Sender, command: unknown): Promise<T> {
  return client.send(command, { abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS) }) as Promise<T>;
}

/**
 * The caller's clients for `region`, or for the region the SDK finds in the environment or profile.
 * Rejects with a message naming the fix when no region is configured anywhere.
 */
export async function createAwsClients(region?: string): Promise<AwsClients> {
  const options = { maxAttempts: 3, ...(region ? { region } : {}) };
  const cloudformation = new CloudFormationClient(options);
  let resolved: string;
  try {
    resolved = await cloudformation.config.region();
  } catch {
    resolved = '';
  }
  if (!resolved)
    throw new AwsSetupError(
      'no AWS region is configured: pass --region (e.g. --region eu-west-1) or set AWS_REGION / a profile region',
    );
  const inRegion = { ...options, region: resolved };
  const byRegion = <C>(create: (r: string) => C) => {
    const clients = new Map<string, C>();
    return (r: string) => {
      let client = clients.get(r);
      if (!client) {
        client = create(r);
        clients.set(r, client);
      }
      return client;
    };
  };
  return {
    region: resolved,
    cloudformation: region ? cloudformation : new CloudFormationClient(inRegion),
    sns: new SNSClient(inRegion),
    cloudwatch: new CloudWatchClient(inRegion),
    logs: new CloudWatchLogsClient(inRegion),
    lambda: new LambdaClient(inRegion),
    iam: new IAMClient(inRegion),
    rds: byRegion((r) => new RDSClient({ ...options, region: r })),
    secrets: byRegion((r) => new SecretsManagerClient({ ...options, region: r })),
  };
}

/** The AWS side cannot be used at all (no region, no credentials). */
export class AwsSetupError extends PgWardenError {
  override name = 'AwsSetupError';
}

/** The error's AWS name (`AccessDeniedException`, `ResourceNotFoundException`, ...) if it has one. */
export function awsErrorName(error: unknown): string {
  return (error as { name?: string } | undefined)?.name ?? 'Error';
}

/** One line about an AWS call that failed, secrets removed. */
export function awsErrorText(error: unknown): string {
  const name = awsErrorName(error);
  const message = redact(describeError(error)).split('\n')[0] ?? '';
  return message.startsWith(name) ? message : `${name}: ${message}`;
}

const ACCESS_DENIED = /AccessDenied|AuthorizationError|UnauthorizedOperation|NotAuthorized|Forbidden/i;
const NO_CREDENTIALS =
  /CredentialsProviderError|Could not load credentials|ExpiredToken|InvalidClientTokenId/i;

/** What to do about an AWS call that failed: the permission it needs, credentials, or the error. */
export function awsFix(error: unknown, permission: string): string {
  const text = `${awsErrorName(error)} ${describeError(error)}`;
  if (ACCESS_DENIED.test(text))
    return `Allow ${permission} to the identity you run pgwarden as (aws sts get-caller-identity shows which).`;
  if (NO_CREDENTIALS.test(text))
    return 'Give pgwarden AWS credentials for the account: aws configure, AWS_PROFILE=..., or aws sso login.';
  return `Check the region (--region) and your network, then run the doctor again; ${permission} is the call that failed.`;
}
