/**
 * Resolves the password for a connection: a literal, a Secrets Manager secret, or an RDS IAM token.
 * Resolved values are cached briefly (a warm Lambda probes every few seconds) and registered with the
 * redactor so they can never be printed.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Clock } from './clock.ts';
import type { ConnectionSpec } from './connection.ts';
import { CredentialsError, describeError } from './errors.ts';
import { signRdsToken } from './iam-token.ts';
import { registerSecret } from './redact.ts';

export interface ResolvedCredentials {
  user: string;
  password?: string;
  /**
   * The password is an RDS IAM token: RDS asks for it in cleartext by design, and it is signed for the
   * one host and port it is sent to. The only credential pgwarden sends in cleartext, and only over TLS.
   */
  iamToken?: boolean;
}

/** What reading a secret needs of a Secrets Manager client. */
export type SecretsReader = Pick<SecretsManagerClient, 'send'>;

export interface CredentialDeps {
  /** Needed only for `secret` auth: the client for the function's own region. */
  secrets?: SecretsReader;
  /**
   * The client for a secret whose ARN names a region (`secretsInRegion`). Without it every secret is
   * read with `secrets`.
   */
  secretsIn?: (region: string) => SecretsReader;
  /** Signs IAM tokens; injectable for tests. */
  signToken?: (input: {
    hostname: string;
    port: number;
    username: string;
    region: string;
  }) => Promise<string>;
  clock: Clock;
  signal?: AbortSignal;
}

interface CacheEntry {
  value: ResolvedCredentials;
  expiresAt: number;
}

const SECRET_TTL_MS = 5 * 60_000;
/** IAM tokens live 15 minutes; renew well before. */
const TOKEN_TTL_MS = 10 * 60_000;
const cache = new Map<string, CacheEntry>();

const defaultSigner: NonNullable<CredentialDeps['signToken']> = (input) => signRdsToken(input);

function cacheKey(spec: ConnectionSpec): string {
  switch (spec.auth.kind) {
    case 'secret':
      return `secret:${spec.auth.secretId}`;
    case 'iam':
      return `iam:${spec.auth.region}:${spec.host}:${spec.port}:${spec.user}`;
    default:
      return '';
  }
}

/** Drops a cached credential, e.g. after the server rejected it (a rotated secret). */
export function forgetCredentials(spec: ConnectionSpec): void {
  const key = cacheKey(spec);
  if (key) cache.delete(key);
}

export async function resolveCredentials(
  spec: ConnectionSpec,
  deps: CredentialDeps,
): Promise<ResolvedCredentials> {
  const { auth } = spec;
  if (auth.kind === 'password') {
    registerSecret(auth.password);
    return { user: requireUser(spec), password: auth.password };
  }
  if (auth.kind === 'none') return { user: requireUser(spec) };

  const key = cacheKey(spec);
  const cached = cache.get(key);
  if (cached && cached.expiresAt > deps.clock.now()) return cached.value;

  let value: ResolvedCredentials;
  let ttl: number;
  if (auth.kind === 'secret') {
    value = await fetchSecret(spec, auth.secretId, deps);
    ttl = SECRET_TTL_MS;
  } else {
    const user = requireUser(spec);
    const sign = deps.signToken ?? defaultSigner;
    let token: string;
    try {
      token = await sign({ hostname: spec.host, port: spec.port, username: user, region: auth.region });
    } catch (error) {
      throw new CredentialsError(`could not sign an RDS IAM token for ${user}: ${describeError(error)}`, {
        cause: error,
      });
    }
    registerSecret(token);
    value = { user, password: token, iamToken: true };
    ttl = TOKEN_TTL_MS;
  }
  cache.set(key, { value, expiresAt: deps.clock.now() + ttl });
  return value;
}

/**
 * The region a secret lives in: the one its ARN names, or none for a bare name (which Secrets Manager
 * looks up in the caller's own region).
 */
export function secretRegion(secretId: string): string | undefined {
  return /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/.exec(secretId)?.[1];
}

/**
 * Secrets Manager clients by region, each built on first use and kept: the function's own client for
 * its region, a new one (from `create`) for any other region a secret's ARN names.
 */
export function secretsClientsByRegion<C extends SecretsReader>(
  home: C,
  homeRegion: string | undefined,
  create: (region: string) => C,
): (region: string) => C {
  const clients = new Map<string, C>();
  if (homeRegion) clients.set(homeRegion, home);
  return (region) => {
    let client = clients.get(region);
    if (!client) {
      client = create(region);
      clients.set(region, client);
    }
    return client;
  };
}

async function fetchSecret(
  spec: ConnectionSpec,
  secretId: string,
  deps: CredentialDeps,
): Promise<ResolvedCredentials> {
  // A secret in another region is only found there: ask the client of the region its ARN names.
  const region = secretRegion(secretId);
  const client = region && deps.secretsIn ? deps.secretsIn(region) : deps.secrets;
  if (!client) throw new CredentialsError('a Secrets Manager client is required for secret authentication');
  let secretString: string | undefined;
  try {
    // Loaded on first use: the command line's probe never reads a secret and starts faster without it.
    const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    const out = await client.send(
      new GetSecretValueCommand({ SecretId: secretId }),
      deps.signal ? { abortSignal: deps.signal } : {},
    );
    secretString = out.SecretString;
  } catch (error) {
    throw new CredentialsError(
      `could not read secret ${secretId}: ${describeError(error)} (inside a VPC without NAT this needs a Secrets Manager interface endpoint)`,
      { cause: error },
    );
  }
  if (!secretString) throw new CredentialsError(`secret ${secretId} has no SecretString`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString);
  } catch {
    // A plain-text secret is the password itself.
    registerSecret(secretString);
    return { user: requireUser(spec), password: secretString };
  }
  const record = (parsed ?? {}) as Record<string, unknown>;
  const password = typeof record.password === 'string' ? record.password : undefined;
  if (!password) throw new CredentialsError(`secret ${secretId} has no "password" field`);
  registerSecret(password);
  const user = spec.user ?? (typeof record.username === 'string' ? record.username : undefined);
  if (!user) throw new CredentialsError(`secret ${secretId} has no "username" and the target names no user`);
  return { user, password };
}

function requireUser(spec: ConnectionSpec): string {
  if (!spec.user) throw new CredentialsError(`no user for ${spec.host}:${spec.port}/${spec.database}`);
  return spec.user;
}
