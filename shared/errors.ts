/**
 * The error hierarchy. Names are a contract: Step Functions `Retry`/`Catch` blocks and the CLI match
 * on them, so a class's `name` never changes once released.
 */

/** Base class of every error pgwarden raises on purpose. */
export class PgWardenError extends Error {
  override name = 'PgWardenError';
}

/** One thing wrong with an input: where, what was given, what is wrong, how to fix it. */
export interface Issue {
  /** Dotted path of the offending field, e.g. `targets[0].port` or `--idle-after`. */
  readonly path: string;
  /** What was received, already rendered safe for display (secrets masked). */
  readonly received: string;
  /** What is wrong with it. */
  readonly problem: string;
  /** What to do instead. */
  readonly fix: string;
}

export function formatIssue(issue: Issue): string {
  return `${issue.path}: ${issue.problem} (got ${issue.received}). ${issue.fix}`;
}

/** Input that does not satisfy its schema: an event, a config file, CLI arguments. */
export class ValidationError extends PgWardenError {
  override name = 'ValidationError';
  readonly issues: readonly Issue[];

  constructor(subject: string, issues: readonly Issue[], options?: ErrorOptions) {
    const lines = issues.map((issue) => `  - ${formatIssue(issue)}`);
    super(`invalid ${subject}:\n${lines.join('\n')}`, options);
    this.issues = issues;
  }
}

/** Configuration (environment, config file, CDK props) that cannot be used. Fails fast at cold start. */
export class ConfigError extends ValidationError {
  override name = 'ConfigError';
}

/** A command line that cannot be run. The CLI exits 2 on this. */
export class UsageError extends ValidationError {
  override name = 'UsageError';
}

/** A credential could not be obtained (Secrets Manager, IAM token). The message never holds the secret. */
export class CredentialsError extends PgWardenError {
  override name = 'CredentialsError';
}

/**
 * pgwarden would not answer the server's authentication request: it asked for the password in
 * cleartext (only an RDS IAM token over TLS is sent that way), or for a password none is configured for.
 */
export class AuthenticationRefusedError extends PgWardenError {
  override name = 'AuthenticationRefusedError';
}

/**
 * The server sent more than one session reads: a message larger than the limit, or more bytes, rows or
 * notices in total. The connection is closed at once; what was sent is never buffered whole.
 */
export class ReadLimitError extends PgWardenError {
  override name = 'ReadLimitError';
}

/** A function invoked through the Lambda API failed or returned something unusable. */
export class InvocationError extends PgWardenError {
  override name = 'InvocationError';
}

/** Renders any thrown value as a one-line message, never a stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
