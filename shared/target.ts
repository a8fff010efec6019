/**
 * A monitored database and the policy pgwarden applies to it. Users write targets with durations as
 * text ("30m"); everything downstream works in seconds. The same parser runs at `cdk synth` (so bad
 * config fails the deploy) and at a Lambda's cold start.
 */
import type { AuthSpec, ConnectionSpec } from './connection.ts';
import { TLS_MODES } from './connection.ts';
import {
  array,
  boolean,
  duration,
  type Infer,
  map,
  number,
  object,
  oneOf,
  optional,
  refine,
  type Schema,
  string,
  withDefault,
} from './validate.ts';

/** Health thresholds; defaults come from the incident runbook. */
export interface Thresholds {
  /** Connection utilization (of usable slots) that counts as pool pressure. @default 80 */
  utilizationPct: number;
  /** A query running longer is long-running. @default 300 (5 min) */
  longQuerySeconds: number;
  /** A session idle in transaction longer is unhealthy. @default 300 */
  idleInTransactionSeconds: number;
  /** Transaction-id age that needs attention. @default 1,000,000,000 */
  wraparoundAge: number;
  /**
   * A session waiting on a lock this long makes its lock chain a problem; shorter waits are ordinary
   * contention (counted in BlockedSessions, never an incident). @default 60
   */
  lockWaitSeconds: number;
  /** Consecutive failed probes (confirmed a second apart) before an outage is declared. @default 3 */
  failuresBeforeOutage: number;
  /** Consecutive threshold breaches before a degraded verdict opens an incident. @default 2 */
  breachesBeforeIncident: number;
}

/** What the remediator may do, and what it must never touch. */
export interface RemediationPolicy {
  /** Report what would be done, do nothing. @default false */
  dryRun: boolean;
  /** Terminate sessions idle longer than this. @default 1800 (30 min, the runbook's figure) */
  idleAfterSeconds: number;
  /** Terminate sessions idle in transaction longer than this. @default 600 */
  idleInTransactionAfterSeconds: number;
  /** Cancel queries running longer than this; null = never (off by default). */
  cancelQueriesAfterSeconds: number | null;
  /** Terminate an idle-in-transaction session at the head of a lock chain. @default true */
  terminateBlockers: boolean;
  /** ...once it has been idle in its transaction this long. @default 60 */
  blockerIdleSeconds: number;
  /** Most sessions acted on per run. @default 20 */
  maxPerRun: number;
  /**
   * Users never touched (in addition to superusers, rdsadmin and replication). The strong guard: the
   * server sets a session's role at login, a client cannot claim one it did not authenticate as.
   */
  protectUsers: string[];
  /**
   * application_name values never touched. A client chooses its own application_name, so any client
   * can claim one of these; protect by user where it matters.
   */
  protectApplications: string[];
  /**
   * Escalated policy when the pool is nearly exhausted (utilization ≥ utilizationPct, or the server
   * answered 53300): sessions idle longer than idleAfterSeconds are terminated, longest idle first and
   * at most maxPerRun per run. A session idle for 30 s while new connections are being refused is
   * holding a slot nothing uses. @default { utilizationPct: 95, idleAfterSeconds: 30 }
   */
  pressure: { utilizationPct: number; idleAfterSeconds: number };
  /**
   * Put the first 200 characters of each acted-on session's statement in the audit (logs, results,
   * pages). Query text can hold personal data or secrets. @default false
   */
  includeQueryText: boolean;
  /** Runbook may call StartDBInstance on a stopped instance. @default false */
  allowStartInstance: boolean;
  /** Runbook may reboot the instance as a last resort. @default false */
  allowReboot: boolean;
  /** Runbook may force a failover as a last resort. @default false */
  allowFailover: boolean;
}

export interface RdsRef {
  instanceId?: string;
  clusterId?: string;
  region?: string;
}

export interface Target {
  /** Short stable id: metric dimension, execution names, dashboard rows. */
  id: string;
  connection: ConnectionSpec;
  rds?: RdsRef;
  thresholds: Thresholds;
  remediation: RemediationPolicy;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  utilizationPct: 80,
  longQuerySeconds: 300,
  idleInTransactionSeconds: 300,
  wraparoundAge: 1_000_000_000,
  lockWaitSeconds: 60,
  failuresBeforeOutage: 3,
  breachesBeforeIncident: 2,
};

export const DEFAULT_REMEDIATION: RemediationPolicy = {
  dryRun: false,
  idleAfterSeconds: 1_800,
  idleInTransactionAfterSeconds: 600,
  cancelQueriesAfterSeconds: null,
  terminateBlockers: true,
  blockerIdleSeconds: 60,
  maxPerRun: 20,
  protectUsers: [],
  protectApplications: [],
  pressure: { utilizationPct: 95, idleAfterSeconds: 30 },
  includeQueryText: false,
  allowStartInstance: false,
  allowReboot: false,
  allowFailover: false,
};

export const TARGET_ID = /^[a-z0-9][a-z0-9-]{0,39}$/;
const IDENTIFIER = /^[A-Za-z0-9_.-]{1,128}$/;
const RDS_ID = /^[a-zA-Z][a-zA-Z0-9-]{0,62}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const SECRET_ID =
  /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]{1,512})$/;

/**
 * PostgreSQL keeps at most NAMEDATALEN - 1 = 63 bytes of a role name and of application_name, and
 * shows any byte of application_name outside printable ASCII as `?` (or a `\x` escape from 16 on). A
 * protection entry it could never report would protect nothing, silently: such entries are refused.
 */
const MAX_REPORTED_NAME_BYTES = 63;

function reportableName(kind: 'role' | 'application'): Schema<string> {
  const base =
    kind === 'role'
      ? string({ pattern: IDENTIFIER, patternHint: 'a role name' })
      : string({ maxLength: 4096, patternHint: 'an application_name' });
  return refine(base, (name) => {
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes > MAX_REPORTED_NAME_BYTES)
      return {
        problem: `is ${bytes} bytes long; PostgreSQL keeps at most ${MAX_REPORTED_NAME_BYTES} bytes of a ${kind === 'role' ? 'role name' : 'application_name'}, so pg_stat_activity never shows this value and it would protect nothing`,
        fix: `Use the name as pg_stat_activity shows it (its first ${MAX_REPORTED_NAME_BYTES} bytes).`,
      };
    if (kind === 'application' && !/^[\x20-\x7e]*$/.test(name))
      return {
        problem:
          'has characters outside printable ASCII; PostgreSQL shows them as "?" or \\x escapes in application_name, so this entry would never match',
        fix: 'Use the application_name exactly as pg_stat_activity shows it.',
      };
    return undefined;
  });
}

/** A role `protectUsers` may name: the strong guard, since a client cannot choose its role. */
export const protectedUser = reportableName('role');
/** An application `protectApplications` may name. A client chooses its application_name freely. */
export const protectedApplication = reportableName('application');

/** A duration written as text, as seconds. */
const seconds = (minMs = 0, maxMs = 30 * 86_400_000) => map(duration({ minMs, maxMs }), (ms) => ms / 1_000);

/** User-facing auth: exactly one of a secret, IAM, or (local use only) nothing. */
export const authInput = refine(
  object({
    secretArn: optional(string({ pattern: SECRET_ID, patternHint: 'a Secrets Manager secret ARN or name' })),
    iam: optional(boolean()),
    region: optional(string({ pattern: REGION, patternHint: 'an AWS region such as "eu-west-1"' })),
  }),
  (a) =>
    a.secretArn && a.iam
      ? {
          problem: 'names both a secret and IAM authentication',
          fix: 'Keep one: "secretArn" or "iam": true.',
        }
      : !a.secretArn && !a.iam
        ? {
            problem: 'names no credential source',
            fix: 'Set "secretArn" to a Secrets Manager secret, or "iam": true for RDS IAM authentication.',
          }
        : undefined,
);

export const thresholdsInput = object({
  utilizationPct: optional(number({ min: 1, max: 100 })),
  longQuery: optional(seconds(1_000)),
  idleInTransaction: optional(seconds(1_000)),
  wraparoundAge: optional(number({ min: 1_000_000, max: 2_100_000_000, integer: true })),
  lockWait: optional(seconds(1_000)),
  failuresBeforeOutage: optional(number({ min: 1, max: 10, integer: true })),
  breachesBeforeIncident: optional(number({ min: 1, max: 10, integer: true })),
});

export const remediationInput = object({
  dryRun: optional(boolean()),
  idleAfter: optional(seconds(60_000)),
  idleInTransactionAfter: optional(seconds(10_000)),
  cancelQueriesAfter: optional(seconds(10_000)),
  terminateBlockers: optional(boolean()),
  blockerIdleAfter: optional(seconds(1_000)),
  maxPerRun: optional(number({ min: 1, max: 1_000, integer: true })),
  protectUsers: optional(array(protectedUser, { max: 100 })),
  protectApplications: optional(array(protectedApplication, { max: 100 })),
  pressure: optional(
    object({
      utilizationPct: optional(number({ min: 1, max: 100 })),
      idleAfter: optional(seconds(10_000)),
    }),
  ),
  includeQueryText: optional(boolean()),
  allowStartInstance: optional(boolean()),
  allowReboot: optional(boolean()),
  allowFailover: optional(boolean()),
});

/** A target as users write it in the config file. */
export const targetInput = object({
  id: string({
    pattern: TARGET_ID,
    patternHint: 'a short id of lowercase letters, digits and dashes (max 40), e.g. "orders-prod"',
  }),
  host: string({ maxLength: 253, patternHint: 'the instance or cluster endpoint' }),
  port: withDefault(number({ min: 1, max: 65_535, integer: true }), 5432),
  database: string({ pattern: IDENTIFIER, patternHint: 'a database name' }),
  user: optional(string({ pattern: IDENTIFIER, patternHint: 'the monitor role, e.g. "pgwarden_monitor"' })),
  auth: optional(authInput),
  tls: optional(oneOf(TLS_MODES)),
  caFile: optional(string({ patternHint: 'a path to a PEM bundle' })),
  rds: optional(
    refine(
      object({
        instanceId: optional(string({ pattern: RDS_ID, patternHint: 'a DB instance identifier' })),
        clusterId: optional(string({ pattern: RDS_ID, patternHint: 'a DB cluster identifier' })),
        region: optional(string({ pattern: REGION, patternHint: 'an AWS region such as "eu-west-1"' })),
      }),
      (r) =>
        !r.instanceId && !r.clusterId
          ? { problem: 'names neither an instance nor a cluster', fix: 'Set "instanceId" or "clusterId".' }
          : undefined,
    ),
  ),
  thresholds: optional(thresholdsInput),
  remediation: optional(remediationInput),
});
export type TargetInput = Infer<typeof targetInput>;

/** Settings every target inherits unless it says otherwise (also used for discovered targets). */
export const defaultsInput = object({
  region: optional(string({ pattern: REGION, patternHint: 'an AWS region such as "eu-west-1"' })),
  user: optional(string({ pattern: IDENTIFIER, patternHint: 'the monitor role, e.g. "pgwarden_monitor"' })),
  database: optional(string({ pattern: IDENTIFIER, patternHint: 'a database name' })),
  auth: optional(authInput),
  tls: optional(oneOf(TLS_MODES)),
  caFile: optional(string({ patternHint: 'a path to a PEM bundle' })),
  thresholds: optional(thresholdsInput),
  remediation: optional(remediationInput),
});
export type DefaultsInput = Infer<typeof defaultsInput>;

type ThresholdsIn = NonNullable<TargetInput['thresholds']>;
type RemediationIn = NonNullable<TargetInput['remediation']>;

/** Turns a validated user target into the internal form: its own settings, then the defaults, then the runbook's figures. */
export function toTarget(input: TargetInput, defaults: DefaultsInput = {}): Target {
  const authIn = input.auth ?? defaults.auth;
  if (!authIn) throw new Error(`target ${input.id} has no auth (validate with parseFleet first)`);
  const region = authIn.region ?? input.rds?.region ?? defaults.region;
  if (!authIn.secretArn && !region) {
    throw new Error(`target ${input.id} uses IAM auth without a region (validate with parseFleet first)`);
  }
  const auth: AuthSpec = authIn.secretArn
    ? { kind: 'secret', secretId: authIn.secretArn }
    : { kind: 'iam', region: region as string };
  const t: Partial<ThresholdsIn> = { ...defaults.thresholds, ...input.thresholds };
  const r: Partial<RemediationIn> = { ...defaults.remediation, ...input.remediation };
  const pressure = { ...defaults.remediation?.pressure, ...input.remediation?.pressure };
  const D = DEFAULT_REMEDIATION;
  const thresholds: Thresholds = {
    utilizationPct: t.utilizationPct ?? DEFAULT_THRESHOLDS.utilizationPct,
    longQuerySeconds: t.longQuery ?? DEFAULT_THRESHOLDS.longQuerySeconds,
    idleInTransactionSeconds: t.idleInTransaction ?? DEFAULT_THRESHOLDS.idleInTransactionSeconds,
    wraparoundAge: t.wraparoundAge ?? DEFAULT_THRESHOLDS.wraparoundAge,
    lockWaitSeconds: t.lockWait ?? DEFAULT_THRESHOLDS.lockWaitSeconds,
    failuresBeforeOutage: t.failuresBeforeOutage ?? DEFAULT_THRESHOLDS.failuresBeforeOutage,
    breachesBeforeIncident: t.breachesBeforeIncident ?? DEFAULT_THRESHOLDS.breachesBeforeIncident,
  };
  const remediation: RemediationPolicy = {
    dryRun: r.dryRun ?? D.dryRun,
    idleAfterSeconds: r.idleAfter ?? D.idleAfterSeconds,
    idleInTransactionAfterSeconds: r.idleInTransactionAfter ?? D.idleInTransactionAfterSeconds,
    cancelQueriesAfterSeconds: r.cancelQueriesAfter ?? D.cancelQueriesAfterSeconds,
    terminateBlockers: r.terminateBlockers ?? D.terminateBlockers,
    blockerIdleSeconds: r.blockerIdleAfter ?? D.blockerIdleSeconds,
    maxPerRun: r.maxPerRun ?? D.maxPerRun,
    protectUsers: r.protectUsers ?? D.protectUsers,
    protectApplications: r.protectApplications ?? D.protectApplications,
    pressure: {
      utilizationPct: pressure.utilizationPct ?? D.pressure.utilizationPct,
      idleAfterSeconds: pressure.idleAfter ?? D.pressure.idleAfterSeconds,
    },
    includeQueryText: r.includeQueryText ?? D.includeQueryText,
    allowStartInstance: r.allowStartInstance ?? D.allowStartInstance,
    allowReboot: r.allowReboot ?? D.allowReboot,
    allowFailover: r.allowFailover ?? D.allowFailover,
  };
  const rdsRegion = input.rds?.region ?? region;
  const rds: RdsRef | undefined = input.rds
    ? {
        ...(input.rds.instanceId ? { instanceId: input.rds.instanceId } : {}),
        ...(input.rds.clusterId ? { clusterId: input.rds.clusterId } : {}),
        ...(rdsRegion ? { region: rdsRegion } : {}),
      }
    : undefined;
  const user = input.user ?? defaults.user;
  const mode = input.tls ?? defaults.tls ?? 'verify-full';
  const caFile = input.caFile ?? defaults.caFile;
  return {
    id: input.id,
    connection: {
      host: input.host,
      port: input.port,
      database: input.database,
      ...(user ? { user } : {}),
      auth,
      tls: caFile ? { mode, caFile } : { mode },
    },
    ...(rds ? { rds } : {}),
    thresholds,
    remediation,
  };
}

/**
 * The internal connection form carried in Lambda and Step Functions payloads. Literal passwords are
 * refused: payloads are logged by AWS (execution history), so only references travel.
 */
export const connectionSchema = object({
  host: string({ maxLength: 253 }),
  port: number({ min: 1, max: 65_535, integer: true }),
  database: string({ pattern: IDENTIFIER, patternHint: 'a database name' }),
  user: optional(string({ pattern: IDENTIFIER, patternHint: 'a role name' })),
  auth: refine(
    object({
      kind: oneOf(['secret', 'iam', 'none'] as const),
      secretId: optional(string({ pattern: SECRET_ID, patternHint: 'a Secrets Manager secret ARN or name' })),
      region: optional(string({ pattern: REGION, patternHint: 'an AWS region' })),
    }),
    (a) =>
      a.kind === 'secret' && !a.secretId
        ? { problem: 'secret auth without a secretId', fix: 'Set auth.secretId.' }
        : a.kind === 'iam' && !a.region
          ? { problem: 'IAM auth without a region', fix: 'Set auth.region.' }
          : undefined,
  ),
  tls: object({ mode: oneOf(TLS_MODES), caFile: optional(string()) }),
});

/** Normalises the parsed payload connection into a ConnectionSpec. */
export function toConnectionSpec(c: Infer<typeof connectionSchema>): ConnectionSpec {
  const auth: AuthSpec =
    c.auth.kind === 'secret'
      ? { kind: 'secret', secretId: c.auth.secretId as string }
      : c.auth.kind === 'iam'
        ? { kind: 'iam', region: c.auth.region as string }
        : { kind: 'none' };
  return {
    host: c.host,
    port: c.port,
    database: c.database,
    ...(c.user ? { user: c.user } : {}),
    auth,
    tls: c.tls.caFile ? { mode: c.tls.mode, caFile: c.tls.caFile } : { mode: c.tls.mode },
  };
}

const thresholdsSchema = object({
  utilizationPct: number({ min: 1, max: 100 }),
  longQuerySeconds: number({ min: 1 }),
  idleInTransactionSeconds: number({ min: 1 }),
  wraparoundAge: number({ min: 1, integer: true }),
  // Payloads written before the setting existed (an incident open across an upgrade) get the default.
  lockWaitSeconds: withDefault(number({ min: 1 }), DEFAULT_THRESHOLDS.lockWaitSeconds),
  failuresBeforeOutage: number({ min: 1, max: 10, integer: true }),
  breachesBeforeIncident: number({ min: 1, max: 10, integer: true }),
});

/** The internal remediation policy carried in Lambda and Step Functions payloads (every field explicit). */
export const remediationSchema = object({
  dryRun: boolean(),
  idleAfterSeconds: number({ min: 1 }),
  idleInTransactionAfterSeconds: number({ min: 1 }),
  cancelQueriesAfterSeconds: withDefault(number({ min: 1 }) as Schema<number | null>, null),
  terminateBlockers: boolean(),
  blockerIdleSeconds: number({ min: 0 }),
  maxPerRun: number({ min: 1, max: 1_000, integer: true }),
  protectUsers: array(protectedUser, { max: 100 }),
  protectApplications: array(protectedApplication, { max: 100 }),
  pressure: object({ utilizationPct: number({ min: 1, max: 100 }), idleAfterSeconds: number({ min: 1 }) }),
  includeQueryText: withDefault(boolean(), false),
  allowStartInstance: boolean(),
  allowReboot: boolean(),
  allowFailover: boolean(),
});

/** The internal target form carried in Lambda and Step Functions payloads. */
export const targetSchema = object({
  id: string({ pattern: TARGET_ID, patternHint: 'a target id' }),
  connection: connectionSchema,
  rds: optional(
    object({
      instanceId: optional(string({ pattern: RDS_ID, patternHint: 'a DB instance identifier' })),
      clusterId: optional(string({ pattern: RDS_ID, patternHint: 'a DB cluster identifier' })),
      region: optional(string({ pattern: REGION, patternHint: 'an AWS region' })),
    }),
  ),
  thresholds: thresholdsSchema,
  remediation: remediationSchema,
});

/** Normalises a parsed payload target. */
export function toTargetFromPayload(t: Infer<typeof targetSchema>): Target {
  return {
    id: t.id,
    connection: toConnectionSpec(t.connection),
    ...(t.rds ? { rds: t.rds } : {}),
    thresholds: t.thresholds,
    remediation: t.remediation,
  };
}
