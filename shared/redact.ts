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

/** `scheme://user:password@`, the password up to the first `@`, `/`, `?` or `#`. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/gi;
/**
 * Malformed URLs: one slash or no colon (`https:/user:pw@`, `postgres//user:pw@`), and PostgreSQL's
 * with a bare colon (`postgresql:user:pw@`). The password runs to the token's last `@`.
 */
const MALFORMED_URL_CREDENTIALS =
  /\b([a-z][a-z0-9+.-]*(?::\/|\/\/)[^\s:/?#@"'<>]*|postgres(?:ql)?:[^\s:/?#@"'<>]*):([^\s"'<>]*)@/gi;
/**
 * `scheme://user:password` cut short before its `@host`: what follows the colon is no port (not all
 * digits), so it may be a password. Nothing may follow it but the end of the token.
 */
const HOSTLESS_URL_CREDENTIALS =
  /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'<>]*):(?!\d+(?:[\s/?#"'<>]|$))([^\s/?#@"'<>]+)(?=[\s/?#"'<>]|$)/gi;
/**
 * `user:password@host` with no scheme, starting a token. The password holds no `:`, `/` or brackets,
 * which keeps log prefixes such as `UTC:10.0.1.4(5544):app@orders` (RDS's `%t:%r:%u@%d`) intact.
 */
const BARE_CREDENTIALS = /(^|[\s"'=(<,[{])([A-Za-z0-9_.%+-]+):([^\s:/()@"'<>[\]]+)@(?=[A-Za-z0-9[])/g;
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
    .replace(URL_CREDENTIALS, `$1:${MASK}@`)
    .replace(MALFORMED_URL_CREDENTIALS, `$1:${MASK}@`)
    .replace(HOSTLESS_URL_CREDENTIALS, `$1:${MASK}`)
    .replace(BARE_CREDENTIALS, `$1$2:${MASK}@`)
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
