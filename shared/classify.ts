/**
 * The one place database failures are classified. SQLSTATE first (it is stable across versions and
 * locales), then Node's errno, then node-postgres's own client-side messages.
 */
import { printable } from './printable.ts';
import { redact } from './redact.ts';

/** Failure categories. The names are part of the JSON contract of the probe and the CLI. */
export const FAILURE_CATEGORIES = [
  'unreachable',
  'timeout',
  'dns',
  'tls',
  'auth_failed',
  'database_missing',
  'too_many_connections',
  'starting_up',
  'shutting_down',
  'connection_lost',
  'query_canceled',
  'permission_denied',
  'unknown',
] as const;
export type FailureCategory = (typeof FAILURE_CATEGORIES)[number];

export interface Failure {
  category: FailureCategory;
  /** The server's SQLSTATE, when the server answered with one. */
  sqlstate?: string;
  /** Node's error code (ECONNREFUSED, ETIMEDOUT, ...), when the failure was below the protocol. */
  errno?: string;
  /** What happened, secrets removed. */
  message: string;
  /** Whether trying again soon can succeed without anyone changing anything. */
  retryable: boolean;
  /** Which phase failed. */
  phase: 'connect' | 'query';
}

const RETRYABLE: Record<FailureCategory, boolean> = {
  unreachable: true,
  timeout: true,
  dns: true,
  tls: false,
  auth_failed: false,
  database_missing: false,
  too_many_connections: true,
  starting_up: true,
  shutting_down: true,
  connection_lost: true,
  query_canceled: true,
  permission_denied: false,
  unknown: false,
};

const BY_SQLSTATE: Record<string, FailureCategory> = {
  '28P01': 'auth_failed',
  '28000': 'auth_failed',
  '3D000': 'database_missing',
  '53300': 'too_many_connections',
  '57P03': 'starting_up',
  '57P01': 'shutting_down',
  '57P02': 'shutting_down',
  '57P04': 'connection_lost',
  '57014': 'query_canceled',
  // lock_timeout: the health query queued behind a lock for too long.
  '55P03': 'timeout',
  '42501': 'permission_denied',
};

const BY_ERRNO: Record<string, FailureCategory> = {
  ECONNREFUSED: 'unreachable',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  ETIMEDOUT: 'timeout',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_FAIL: 'dns',
  EAI_NONAME: 'dns',
  ECONNRESET: 'connection_lost',
  EPIPE: 'connection_lost',
  ECONNABORTED: 'connection_lost',
};

/** TLS failures surface as OpenSSL / Node verification codes. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_|HOSTNAME_MISMATCH)/;

/** node-postgres raises these without a code; the texts are its own, stable across server versions. */
const CLIENT_MESSAGES: ReadonlyArray<[RegExp, FailureCategory]> = [
  [/connection timeout|timeout expired|query read timeout/i, 'timeout'],
  [/server does not support ssl|ssl connection|self[- ]signed|certificate/i, 'tls'],
  [
    /connection terminated unexpectedly|connection terminated|connection ended unexpectedly|client has encountered a connection error/i,
    'connection_lost',
  ],
];

interface ErrorLike {
  code?: unknown;
  errno?: unknown;
  message?: unknown;
  name?: unknown;
  cause?: unknown;
  errors?: unknown;
}

function isSqlstate(code: unknown): code is string {
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('E');
}

/** Maps any error thrown while connecting or querying to a `Failure`. Never throws. */
export function classifyError(error: unknown, phase: Failure['phase']): Failure {
  const e = (error ?? {}) as ErrorLike;
  // The server wrote it: one printable line, of a size a person reads.
  const message = printable(redact(typeof e.message === 'string' && e.message ? e.message : String(error)), {
    maxLength: 1_000,
  });
  const code = typeof e.code === 'string' ? e.code : undefined;

  // pgwarden's own refusals: it would not send the credential as asked, or stopped reading a server
  // that sent too much (a hostile or broken server is neither reachable nor healthy: `unknown`).
  if (e.name === 'AuthenticationRefusedError')
    return { category: 'auth_failed', message, retryable: false, phase };
  if (e.name === 'ReadLimitError') return { category: 'unknown', message, retryable: false, phase };

  if (isSqlstate(code)) {
    const category = BY_SQLSTATE[code] ?? 'unknown';
    return { category, sqlstate: code, message, retryable: RETRYABLE[category], phase };
  }
  if (code && BY_ERRNO[code]) {
    const category = BY_ERRNO[code] as FailureCategory;
    return { category, errno: code, message, retryable: RETRYABLE[category], phase };
  }
  if (code && TLS_CODE.test(code)) {
    return { category: 'tls', errno: code, message, retryable: false, phase };
  }
  // Happy-eyeballs connects raise an AggregateError whose members carry the errno.
  if (Array.isArray(e.errors) && e.errors.length > 0) {
    const inner = classifyError(e.errors[0], phase);
    if (inner.category !== 'unknown') return { ...inner, message };
  }
  for (const [pattern, category] of CLIENT_MESSAGES) {
    if (pattern.test(message))
      return { category, ...(code ? { errno: code } : {}), message, retryable: RETRYABLE[category], phase };
  }
  if (e.cause && e.cause !== error) {
    const inner = classifyError(e.cause, phase);
    if (inner.category !== 'unknown') return inner;
  }
  return { category: 'unknown', ...(code ? { errno: code } : {}), message, retryable: false, phase };
}

/** One-line human explanation of a category, with the first thing to check. */
export function explainCategory(category: FailureCategory): string {
  switch (category) {
    case 'unreachable':
      return 'connection refused: nothing listens on that host and port (server down, or a security group / firewall rejects it)';
    case 'timeout':
      return 'no answer in time: the host is silent (network path, security group dropping packets) or the server is overloaded';
    case 'dns':
      return 'the host name does not resolve (typo, deleted instance, or DNS outage)';
    case 'tls':
      return 'TLS could not be established or verified (CA bundle, host name, or sslmode)';
    case 'auth_failed':
      return 'the server rejected the credentials or pg_hba.conf has no matching entry';
    case 'database_missing':
      return 'the database named in the connection does not exist';
    case 'too_many_connections':
      return 'every connection slot is taken (53300): the pool is exhausted';
    case 'starting_up':
      return 'the server is starting up or recovering and not yet accepting connections';
    case 'shutting_down':
      return 'the server is shutting down or restarting after a crash';
    case 'connection_lost':
      return 'the connection was dropped mid-conversation (crash, failover or network reset)';
    case 'query_canceled':
      return 'the health query was canceled (statement timeout or pg_cancel_backend)';
    case 'permission_denied':
      return 'the monitor role lacks a privilege (grant pg_monitor)';
    case 'unknown':
      return 'an unexpected error';
  }
}
