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

/** Validates a fleet and applies defaults; every problem is reported at once, each with its path. */
export function parseFleet(raw: unknown, subject: string, root = ''): Fleet {
  const parsed = safeParse(fleetInput, raw, root);
  const issues: Issue[] = parsed.ok ? [] : [...parsed.issues];
  if (!parsed.ok) throw new ConfigError(subject, issues);
  const { targets, defaults, discovery } = parsed.value;
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
  return parseFleet(
    raw,
    `environment of the ${functionName} function (${Object.values(FLEET_ENV).join(', ')})`,
  );
}

/** The fleet as the functions' environment carries it. */
export function fleetEnvironment(input: FleetInput): Record<string, string> {
  const env: Record<string, string> = { [FLEET_ENV.targets]: JSON.stringify(input.targets) };
  if (Object.keys(input.defaults).length > 0) env[FLEET_ENV.defaults] = JSON.stringify(input.defaults);
  if (input.discovery) env[FLEET_ENV.discovery] = JSON.stringify(input.discovery);
  return env;
}
