/**
 * RDS IAM authentication tokens, signed by the AWS SDK's own RDS signer (`@aws-sdk/rds-signer`): a
 * presigned `connect` request for one database user, valid 15 minutes. Signing makes no network call,
 * so an in-VPC function needs no endpoint or NAT for it. Credentials come from the Lambda environment;
 * elsewhere (the CLI) from the default AWS credential chain. The signer and the chain are loaded only
 * when a token is first signed, so a command that never uses IAM authentication never loads them.
 */

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

/** Signs a 15-minute token for `username` at `hostname:port`: the password PostgreSQL expects. */
export async function signRdsToken(
  request: TokenRequest,
  credentials: CredentialProvider = defaultCredentials,
): Promise<string> {
  const { Signer } = await import('@aws-sdk/rds-signer');
  const signer = new Signer({
    hostname: request.hostname,
    port: request.port,
    username: request.username,
    region: request.region,
    credentials,
  });
  return signer.getAuthToken();
}
