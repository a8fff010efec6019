/**
 * Whether a role's own policies allow an action on a resource: enough to tell "the probe may read this
 * secret" from the policies pgwarden's stack writes (inline, no conditions but KMS's ViaService, which a
 * decrypt through Secrets Manager meets). It reads the role's identity policies only: permission
 * boundaries, service control policies and resource policies are not in them, so "allowed" means "the
 * role's policies allow it", and the summary says so.
 */

export interface PolicyStatement {
  Effect?: string;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: unknown;
}

export interface PolicyDocument {
  Statement?: PolicyStatement | PolicyStatement[];
}

export type Decision = 'allowed' | 'denied' | 'not-allowed';

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** IAM's wildcards: `*` any run of characters, `?` any one; actions match case-insensitively. */
function globMatches(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, ignoreCase ? 'is' : 's').test(value);
}

function matchesAction(statement: PolicyStatement, action: string): boolean {
  if (statement.NotAction !== undefined)
    return !list(statement.NotAction).some((p) => globMatches(p, action, true));
  return list(statement.Action).some((p) => globMatches(p, action, true));
}

function matchesResource(statement: PolicyStatement, resource: string): boolean {
  if (statement.NotResource !== undefined)
    return !list(statement.NotResource).some((p) => globMatches(p, resource, false));
  return list(statement.Resource).some((p) => globMatches(p, resource, false));
}

/** Parses a policy document as IAM returns it (URL-encoded JSON from GetRolePolicy, plain elsewhere). */
export function parsePolicyDocument(text: string): PolicyDocument {
  let decoded = text;
  try {
    decoded = decodeURIComponent(text);
  } catch {
    // Not URL-encoded.
  }
  return JSON.parse(decoded) as PolicyDocument;
}

/**
 * What `documents` say about `action` on `resource`: an explicit deny wins, then any allow; nothing
 * matching is IAM's implicit deny.
 */
export function evaluate(documents: readonly PolicyDocument[], action: string, resource: string): Decision {
  let allowed = false;
  for (const document of documents) {
    const statements = document.Statement === undefined ? [] : [document.Statement].flat();
    for (const statement of statements) {
      if (!matchesAction(statement, action) || !matchesResource(statement, resource)) continue;
      if (statement.Effect === 'Deny') return 'denied';
      if (statement.Effect === 'Allow') allowed = true;
    }
  }
  return allowed ? 'allowed' : 'not-allowed';
}
