/**
 * The fleet: which databases this deployment watches. A static list of targets, tag-based discovery
 * of RDS instances and clusters, or both, with shared defaults. Parsed by the CDK app at synth (so a
 * bad config fails the deploy) and by each function at cold start, from the same JSON.
 */
import { ConfigError, type Issue } from './errors.ts';
import {
  type DefaultsInput,
  defaultsInput,
  type Target,
  type TargetInput,
  targetInput,
  toTarget,
} from './target.ts';
import { array, type Infer, object, optional, safeParse, string, withDefault } from './validate.ts';

export const discoveryInput = object({
  /** Tag that marks an instance or cluster for monitoring. @default "pgwarden:monitor" */
  tagKey: withDefault(string({ maxLength: 128 }), 'pgwarden:monitor'),
  /** @default "true" */
  tagValue: withDefault(string({ maxLength: 256 }), 'true'),
});
export type Discovery = Infer<typeof discoveryInput>;

export const fleetInput = object({
  targets: withDefault(array(targetInput, { max: 500 }), [] as TargetInput[]),
  defaults: withDefault(defaultsInput, {} as DefaultsInput),
  discovery: optional(discoveryInput),
});
export type FleetInput = Infer<typeof fleetInput>;

export interface Fleet {
  targets: Target[];
  defaults: DefaultsInput;
  discovery?: Discovery;
}

export interface ParseFleetOptions {
  /**
   * The region IAM tokens are signed for when the fleet names none: the region the functions run in
   * (their AWS_REGION; the stack's region at synth).
   */
  defaultRegion?: string;
}

/** Validates a fleet and applies defaults; every problem is reported at once, each with its path. */
export function parseFleet(raw: unknown, subject: string, root = '', options: ParseFleetOptions = {}): Fleet {
  const parsed = safeParse(fleetInput, raw, root);
  const issues: Issue[] = parsed.ok ? [] : [...parsed.issues];
  if (!parsed.ok) throw new ConfigError(subject, issues);
  const { targets, discovery } = parsed.value;
  const defaults: DefaultsInput =
    parsed.value.defaults.region === undefined && options.defaultRegion
      ? { ...parsed.value.defaults, region: options.defaultRegion }
      : parsed.value.defaults;
  const at = (i: number, field: string) => `${root ? `${root}.` : ''}targets[${i}].${field}`;
  const seen = new Map<string, number>();
  targets.forEach((t, i) => {
    const first = seen.get(t.id);
    if (first !== undefined)
      issues.push({
        path: at(i, 'id'),
        received: JSON.stringify(t.id),
        problem: `repeats the id of targets[${first}]`,
        fix: 'Give every target its own id.',
      });
    seen.set(t.id, i);
    const auth = t.auth ?? defaults.auth;
    if (auth?.iam && !auth.region && !t.rds?.region && !defaults.region)
      issues.push({
        path: at(i, 'auth'),
        received: JSON.stringify(auth),
        problem: 'uses IAM authentication but no region is known to sign the token for',
        fix: 'Set "region" in auth, rds or defaults (the deployed functions use their own region).',
      });
    if (!t.auth && !defaults.auth)
      issues.push({
        path: at(i, 'auth'),
        received: 'nothing',
        problem: 'is required (no defaults.auth either)',
        fix: 'Set "auth": { "secretArn": "arn:aws:secretsmanager:..." } or { "iam": true }, here or in defaults.',
      });
  });
  if (targets.length === 0 && !discovery) {
    issues.push({
      path: root ? `${root}.targets` : 'targets',
      received: '[]',
      problem: 'names no database and discovery is off',
      fix: 'List targets, or enable "discovery" and tag your instances pgwarden:monitor=true.',
    });
  }
  if (discovery && !defaults.auth) {
    issues.push({
      path: root ? `${root}.defaults.auth` : 'defaults.auth',
      received: 'nothing',
      problem:
        'is required when discovery is on (discovered databases use it unless tagged pgwarden:secret-arn)',
      fix: 'Set defaults.auth to { "iam": true } or { "secretArn": "..." }.',
    });
  }
  // A discovered database is only known by its endpoint; a secret goes to one only when TLS proves
  // the endpoint is the one RDS named (see shared/binding.ts).
  if (discovery && defaults.auth?.secretArn && (defaults.tls ?? 'verify-full') !== 'verify-full') {
    issues.push({
      path: root ? `${root}.defaults.tls` : 'defaults.tls',
      received: JSON.stringify(defaults.tls),
      problem:
        'must be verify-full when discovered databases use a secret: pgwarden sends a secret to an endpoint it did not configure only when its certificate proves the name',
      fix: 'Remove "tls" from defaults (verify-full is the default), or use { "iam": true }, whose token is signed for the one endpoint.',
    });
  }
  if (issues.length > 0) throw new ConfigError(subject, issues);
  return {
    targets: targets.map((t) => toTarget(t, defaults)),
    defaults,
    ...(discovery ? { discovery } : {}),
  };
}

/** Environment variables carrying the fleet to the functions (compact JSON, defaults left out). */
export const FLEET_ENV = {
  targets: 'PGWARDEN_TARGETS',
  defaults: 'PGWARDEN_DEFAULTS',
  discovery: 'PGWARDEN_DISCOVERY',
} as const;

/** Reads the fleet from a function's environment; a ConfigError names the variable and the field. */
export function fleetFromEnvironment(env: Record<string, string | undefined>, functionName: string): Fleet {
  const raw: Record<string, unknown> = {};
  const issues: Issue[] = [];
  for (const [key, variable] of Object.entries(FLEET_ENV)) {
    const text = env[variable];
    if (text === undefined || text === '') continue;
    try {
      raw[key] = JSON.parse(text);
    } catch (error) {
      issues.push({
        path: variable,
        received: text.length > 60 ? `${JSON.stringify(text.slice(0, 57))}...` : JSON.stringify(text),
        problem: `is not JSON (${(error as Error).message})`,
        fix: 'Redeploy with `cdk deploy`; the variable is written by the CDK app from your config file.',
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(`environment of the ${functionName} function`, issues);
  // IAM tokens are signed for the function's own region unless the fleet names another.
  return parseFleet(
    raw,
    `environment of the ${functionName} function (${Object.values(FLEET_ENV).join(', ')})`,
    '',
    env.AWS_REGION ? { defaultRegion: env.AWS_REGION } : {},
  );
}

/**
 * The fleet exactly as written in the config file: durations as text. The functions parse their
 * environment with the same schema, so it must carry this form, not the parsed one (whose durations
 * are numbers of seconds).
 */
export interface FleetDocument {
  readonly targets: readonly Record<string, unknown>[];
  readonly defaults: Readonly<Record<string, unknown>>;
  readonly discovery?: Readonly<Record<string, unknown>>;
}

/** The fleet as the functions' environment carries it (compact JSON, as written). */
export function fleetEnvironment(document: FleetDocument): Record<string, string> {
  const env: Record<string, string> = { [FLEET_ENV.targets]: JSON.stringify(document.targets) };
  if (Object.keys(document.defaults).length > 0) env[FLEET_ENV.defaults] = JSON.stringify(document.defaults);
  if (document.discovery) env[FLEET_ENV.discovery] = JSON.stringify(document.discovery);
  return env;
}
