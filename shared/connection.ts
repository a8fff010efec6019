/**
 * How pgwarden reaches a database: host, port, database, user, where the password comes from, and how
 * strictly TLS is verified. Parsed from a `postgres://` URL (CLI, local mode) or from configuration.
 */
import type { Issue } from './errors.ts';
import { redact, registerSecret } from './redact.ts';
import { display } from './validate.ts';

export const TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export type AuthSpec =
  /** A literal password (URL, PGPASSWORD, local mode). */
  | { kind: 'password'; password: string }
  /** A Secrets Manager secret (ARN or name) whose JSON holds `password` and optionally `username`. */
  | { kind: 'secret'; secretId: string }
  /** An RDS IAM authentication token, signed locally for `region`. Needs TLS. */
  | { kind: 'iam'; region: string }
  /** No password (trust or peer authentication). */
  | { kind: 'none' };

export interface TlsSpec {
  mode: TlsMode;
  /** PEM bundle to trust in addition to the system's (e.g. the RDS global bundle). */
  caFile?: string;
}

export interface ConnectionSpec {
  host: string;
  port: number;
  database: string;
  /** Login role. May be omitted for `secret` auth, whose `username` is then used. */
  user?: string;
  auth: AuthSpec;
  tls: TlsSpec;
}

/** `host:port/database` — safe to print anywhere. */
export function describeConnection(spec: ConnectionSpec): string {
  return `${spec.user ? `${spec.user}@` : ''}${spec.host}:${spec.port}/${spec.database}`;
}

/** A connection spec without the password, for events, pages and logs. */
export function publicConnection(spec: ConnectionSpec): ConnectionSpec {
  if (spec.auth.kind !== 'password') return spec;
  return { ...spec, auth: { kind: 'none' } };
}

export interface ParseUrlOptions {
  /** Used when the URL carries no password (PGPASSWORD for the CLI). */
  passwordFallback?: string;
  /** Field name in error messages. @default "url" */
  path?: string;
}

const FIX_URL =
  'Write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=verify-full|require|disable].';

/**
 * Parses a `postgres://` or `postgresql://` URL. Returns the spec or the issues found; the password
 * never appears in an issue.
 */
export function parseDatabaseUrl(
  text: string,
  options: ParseUrlOptions = {},
): { ok: true; spec: ConnectionSpec } | { ok: false; issues: Issue[] } {
  const path = options.path ?? 'url';
  const issues: Issue[] = [];
  // Messages quote parts of the URL (an sslmode, a scheme); none may carry its password.
  const fail = (problem: string, fix = FIX_URL, received = safeUrl(text)) => {
    issues.push({ path, received, problem: redact(problem), fix });
    return { ok: false as const, issues };
  };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('is not a URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return fail(`has scheme "${url.protocol.replace(/:$/, '')}", not postgres`);
  }
  const parts = [url.hostname, url.username, url.pathname, url.password].map(decoded);
  if (parts.includes(undefined)) return fail('has a malformed %-escape', `Write "%" as %25. ${FIX_URL}`);
  const [hostname, user, pathname, urlPassword] = parts as string[];
  const host = (hostname as string).replace(/^\[(.*)\]$/, '$1');
  if (!host) return fail('has no host');
  const port = url.port ? Number(url.port) : 5432;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return fail('has an invalid port');
  if (!user) return fail('has no user', 'Add the login role: postgres://USER@HOST/DATABASE.');
  const database = (pathname as string).replace(/^\//, '') || user;
  const password = urlPassword || options.passwordFallback;
  registerSecret(password);

  const sslmode = url.searchParams.get('sslmode') ?? 'verify-full';
  if (!(TLS_MODES as readonly string[]).includes(sslmode)) {
    const why =
      sslmode === 'prefer' || sslmode === 'allow'
        ? `sslmode=${sslmode} silently falls back to an unencrypted connection, so pgwarden does not offer it`
        : `sslmode "${sslmode}" is not supported`;
    return fail(
      why,
      'Use sslmode=verify-full (default), verify-ca, require, or disable for a local server without TLS.',
    );
  }
  const caFile = url.searchParams.get('sslrootcert') ?? undefined;
  const auth: AuthSpec = password ? { kind: 'password', password } : { kind: 'none' };
  const tls: TlsSpec = caFile ? { mode: sslmode as TlsMode, caFile } : { mode: sslmode as TlsMode };
  return { ok: true, spec: { host, port, database, user, auth, tls } };
}

/** decodeURIComponent, or undefined for a malformed escape such as a lone "%". */
function decoded(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** The URL with its password masked, for messages, whatever its shape. */
export function safeUrl(text: string): string {
  let shown = text;
  try {
    const url = new URL(text);
    if (url.password) {
      url.password = '***';
      shown = url.toString();
    }
  } catch {
    // Not a URL at all: the redactor still finds `user:password@` in it.
  }
  return display(shown);
}
