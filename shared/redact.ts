/**
 * Keeps secrets out of everything pgwarden emits: logs, pages, errors, CLI output. Credentials are
 * registered as they are resolved; every outward string passes through `redact`.
 */

const MASK = '***';
const known = new Set<string>();

/** Remembers a secret value (a password, a token) so `redact` masks it wherever it appears. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) known.add(value);
}

/**
 * `user:password@host` wherever it appears: in a URL, in a malformed one (`postgres:/user:pw@`,
 * `postgresql:user:pw@`, `postgres//user:pw@`) or with no scheme at all. The user part starts a token
 * (after whitespace, a quote, `=`, a bracket or a comma, optionally behind a scheme); the password runs
 * to the token's last `@`, so one with an unescaped `@` in it is masked whole. A password never starts
 * with `/`, which keeps `postgres://user@host` (no password) intact.
 */
const URL_CREDENTIALS =
  /(^|[\s"'=(<,[{])((?:[a-z][a-z0-9+.-]*:?\/{0,3})?[^\s:/?#@"'<>]*):(?!\/)([^\s"'<>]*)@/gi;
/**
 * `password=x`, `PGPASSWORD=x`, `password = 'x'` (SQL, libpq), the quotes kept. An unquoted value runs
 * to the next space or `&`, quotes inside it included.
 */
const KEY_VALUE =
  /\b([a-z_]*(?:password|passwd|pwd|secret|token))(\s*=\s*)(?:(['"])(?:(?!\3).)*\3|[^&\s]+)/gi;
/** `"password": "x"` in JSON (a secret's content, a payload). */
const JSON_KEY_VALUE = /("[a-z_]*(?:password|passwd|pwd|secret|token)"\s*:\s*")(?:[^"\\]|\\.)*"/gi;
const IAM_SIGNATURE = /(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=[^&\s'"]+/g;

/**
 * Masks URL passwords, `password=` pairs (also in JSON), signed-token parameters and every registered
 * secret.
 */
export function redact(text: string): string {
  let out = text
    .replace(URL_CREDENTIALS, `$1$2:${MASK}@`)
    .replace(KEY_VALUE, `$1$2$3${MASK}$3`)
    .replace(JSON_KEY_VALUE, `$1${MASK}"`)
    .replace(IAM_SIGNATURE, `$1=${MASK}`);
  for (const secret of known) {
    if (out.includes(secret)) out = out.split(secret).join(MASK);
  }
  return out;
}

/**
 * A `JSON.stringify` replacer that redacts every string value as it is serialised: the one redaction
 * path of every log line (the console logger and Powertools in Lambda both use it). Redacting values
 * before they are serialised keeps a line valid JSON and catches a secret whose escaped form differs.
 */
export function redactingReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'string' ? redact(value) : value;
}

/** Redacts every string inside a JSON-like value, returning a copy. */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((item) => redactDeep(item)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = redactDeep(item);
    return out as T;
  }
  return value;
}
