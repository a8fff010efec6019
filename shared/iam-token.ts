/**
 * RDS IAM authentication tokens, signed locally: a SigV4 presigned `connect` request for one database
 * user, valid 15 minutes. No network call, so an in-VPC function needs no endpoint or NAT for them.
 * Credentials come from the Lambda environment; elsewhere (the CLI) from the default AWS credential
 * chain, loaded only then. The test suite checks the token against the AWS SDK's own RDS signer.
 */
import { createHash, createHmac } from 'node:crypto';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export type CredentialProvider = () => Promise<AwsCredentials>;

/** Lambda (and most CI) put the role's credentials in the environment. */
function fromEnvironment(env: Record<string, string | undefined>): AwsCredentials | undefined {
  const {
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_SESSION_TOKEN: sessionToken,
  } = env;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

/** Environment credentials, else the full default chain (profiles, SSO, instance roles). */
export const defaultCredentials: CredentialProvider = async () => {
  const env = fromEnvironment(process.env);
  if (env) return env;
  const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
  return defaultProvider()();
};

export interface TokenRequest {
  hostname: string;
  port: number;
  username: string;
  region: string;
}

const SERVICE = 'rds-db';
const ALGORITHM = 'AWS4-HMAC-SHA256';
const EXPIRES_SECONDS = 900;
const EMPTY_PAYLOAD_SHA256 = createHash('sha256').update('').digest('hex');

/** RFC 3986 escaping, as SigV4 canonicalizes query strings. */
function uriEscape(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

function queryString(params: Record<string, string>): string {
  return Object.keys(params)
    .sort()
    .map((key) => `${uriEscape(key)}=${uriEscape(params[key] as string)}`)
    .join('&');
}

/** Signs a 15-minute token for `username` at `hostname:port`: the password PostgreSQL expects. */
export async function signRdsToken(
  request: TokenRequest,
  credentials: CredentialProvider = defaultCredentials,
  signingDate: Date = new Date(),
): Promise<string> {
  const { accessKeyId, secretAccessKey, sessionToken } = await credentials();
  const amzDate = signingDate
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${request.region}/${SERVICE}/aws4_request`;
  const host = `${request.hostname}:${request.port}`;
  const params: Record<string, string> = {
    Action: 'connect',
    DBUser: request.username,
    'X-Amz-Algorithm': ALGORITHM,
    'X-Amz-Credential': `${accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(EXPIRES_SECONDS),
    ...(sessionToken ? { 'X-Amz-Security-Token': sessionToken } : {}),
    'X-Amz-SignedHeaders': 'host',
  };
  const canonicalRequest = [
    'GET',
    '/',
    queryString(params),
    `host:${host}\n`,
    'host',
    EMPTY_PAYLOAD_SHA256,
  ].join('\n');
  const stringToSign = [
    ALGORITHM,
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), request.region), SERVICE),
    'aws4_request',
  );
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  return `${host}/?${queryString({ ...params, 'X-Amz-Signature': signature })}`;
}
