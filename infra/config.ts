/**
 * The deployment's configuration: which databases to watch (the fleet, in exactly the shape the
 * functions parse), where the in-VPC functions run, who receives pages and notifications, and the
 * clocks. It is validated once, at synth, with the project's schema toolkit, so a bad value fails
 * `cdk synth` with the field, the value and the fix instead of failing a deploy or a 3 a.m. page.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { monitorSettings } from '../functions/monitor/settings.ts';
import { SWEEP_EVERY } from '../functions/sweep/settings.ts';
import { durationText } from '../shared/duration.ts';
import { ConfigError, type Issue } from '../shared/errors.ts';
import { type Fleet, type FleetDocument, type FleetInput, fleetInput, parseFleet } from '../shared/fleet.ts';
import { clockSchema, RUNBOOK_CLOCK, runbookClockIssues } from '../shared/runbook/settings.ts';
import {
  array,
  boolean,
  duration,
  type Infer,
  number,
  object,
  optional,
  refine,
  safeParse,
  string,
  withDefault,
} from '../shared/validate.ts';

/** Where the app looks for the configuration unless `-c config=...` says otherwise. */
export const DEFAULT_CONFIG_FILE = 'pgwarden.config.json';
/** The committed, commented example users copy. */
export const EXAMPLE_CONFIG_FILE = 'pgwarden.config.example.json';

/** Lambda rejects a function whose environment variables (names and values) exceed 4 KB in total. */
export const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4_096;

/** Retention periods CloudWatch Logs accepts. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP_ID = /^sg-[0-9a-f]{8,17}$/;
const AVAILABILITY_ZONE = /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/;
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const HTTPS_URL = /^https:\/\/[^\s/]+(\/\S*)?$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(mrk-[0-9a-f]{32}|[0-9a-f-]{36})$/;
const DB_USER = /^[A-Za-z0-9_.-]{1,128}$/;
const DASHBOARD_NAME = /^[A-Za-z0-9_-]{1,255}$/;

const subscribersInput = object({
  emails: withDefault(
    array(string({ pattern: EMAIL, patternHint: 'an email address' }), { max: 100 }),
    [] as string[],
  ),
  httpsEndpoints: withDefault(
    array(string({ pattern: HTTPS_URL, patternHint: 'an https:// URL (e.g. an incident tool webhook)' }), {
      max: 100,
    }),
    [] as string[],
  ),
});

const networkInput = refine(
  object({
    vpcId: string({ pattern: VPC_ID, patternHint: 'a VPC id such as "vpc-0123456789abcdef0"' }),
    availabilityZones: array(
      string({ pattern: AVAILABILITY_ZONE, patternHint: 'an Availability Zone name such as "eu-west-1a"' }),
      { min: 1, max: 6 },
    ),
    privateSubnetIds: array(
      string({ pattern: SUBNET_ID, patternHint: 'a subnet id such as "subnet-0123456789abcdef0"' }),
      { min: 1, max: 16 },
    ),
    vpcCidrBlock: optional(
      string({ pattern: CIDR, patternHint: 'an IPv4 CIDR block such as "10.0.0.0/16"' }),
    ),
    securityGroupIds: withDefault(
      array(string({ pattern: SECURITY_GROUP_ID, patternHint: 'a security group id' }), { max: 4 }),
      [] as string[],
    ),
    databaseSecurityGroupIds: withDefault(
      array(string({ pattern: SECURITY_GROUP_ID, patternHint: 'a security group id' }), { max: 16 }),
      [] as string[],
    ),
    createSecretsManagerEndpoint: withDefault(boolean(), false),
  }),
  (n) =>
    n.privateSubnetIds.length % n.availabilityZones.length !== 0
      ? {
          problem: `lists ${n.privateSubnetIds.length} subnet(s) for ${n.availabilityZones.length} Availability Zone(s)`,
          fix: 'List the same number of private subnets in every zone, in the order of "availabilityZones".',
        }
      : undefined,
);

const CADENCE = monitorSettings.settings.cadenceMs;
const schedulesInput = object({
  cadence: CADENCE.schema,
  sweepEvery: withDefault(
    refine(duration({ minMs: SWEEP_EVERY.minMs, maxMs: SWEEP_EVERY.maxMs }), (ms) =>
      ms % 60_000 !== 0
        ? { problem: 'is not a whole number of minutes', fix: 'Write whole minutes, e.g. "5m" or "1h".' }
        : undefined,
    ),
    SWEEP_EVERY.defaultMs,
  ),
});

const escalationInput = object({
  escalateAfter: clockSchema('escalateAfter'),
  recheckEvery: clockSchema('recheckEvery'),
  maxDuration: clockSchema('maxDuration'),
});

const alarmsInput = object({
  probeFailingMinutes: withDefault(number({ min: 1, max: 60, integer: true }), 3),
});

const accessInput = object({
  secretArns: withDefault(
    array(string({ pattern: SECRET_ARN, patternHint: 'a Secrets Manager secret ARN' }), { max: 100 }),
    [] as string[],
  ),
  kmsKeyArns: withDefault(
    array(string({ pattern: KMS_KEY_ARN, patternHint: 'a KMS key ARN' }), { max: 20 }),
    [] as string[],
  ),
  iamDbUsers: withDefault(
    array(string({ pattern: DB_USER, patternHint: 'a database role name' }), { max: 20 }),
    [] as string[],
  ),
});

const retentionInput = refine(number({ min: 1, max: 3653, integer: true }), (days) =>
  (LOG_RETENTION_DAYS as readonly number[]).includes(days)
    ? undefined
    : {
        problem: 'is not a retention period CloudWatch Logs offers',
        fix: `Use one of ${LOG_RETENTION_DAYS.join(', ')}.`,
      },
);

/** The configuration file's schema. Unknown keys are refused with a "Did you mean" hint. */
export const configInput = object({
  fleet: optional(fleetInput),
  network: optional(networkInput),
  notifications: withDefault(
    object({
      pages: withDefault(subscribersInput, { emails: [], httpsEndpoints: [] }),
      notifications: withDefault(subscribersInput, { emails: [], httpsEndpoints: [] }),
    }),
    {
      pages: { emails: [], httpsEndpoints: [] },
      notifications: { emails: [], httpsEndpoints: [] },
    },
  ),
  schedules: withDefault(schedulesInput, { cadence: CADENCE.defaultMs, sweepEvery: SWEEP_EVERY.defaultMs }),
  escalation: withDefault(escalationInput, {
    escalateAfter: RUNBOOK_CLOCK.escalateAfter.defaultMs,
    recheckEvery: RUNBOOK_CLOCK.recheckEvery.defaultMs,
    maxDuration: RUNBOOK_CLOCK.maxDuration.defaultMs,
  }),
  alarms: withDefault(alarmsInput, { probeFailingMinutes: 3 }),
  access: withDefault(accessInput, { secretArns: [], kmsKeyArns: [], iamDbUsers: [] }),
  dashboardName: optional(
    string({ pattern: DASHBOARD_NAME, patternHint: 'letters, digits, "-" and "_" (max 255)' }),
  ),
  logRetentionDays: withDefault(retentionInput, 30),
  stateMachineLogsIncludeData: withDefault(boolean(), false),
});
type ConfigInput = Infer<typeof configInput>;

/** People who receive one topic's messages. */
export interface Subscribers {
  /** Email addresses; each must confirm the subscription from the email AWS sends. */
  readonly emails: readonly string[];
  /** HTTPS endpoints (incident tools, chat webhooks); each must confirm the subscription. */
  readonly httpsEndpoints: readonly string[];
}

/** Where the in-VPC functions (probe, remediate) run: the VPC of the databases, by attributes. */
export interface NetworkConfig {
  readonly vpcId: string;
  readonly availabilityZones: readonly string[];
  /** Subnets with a route to the databases, the same number per zone, in zone order. */
  readonly privateSubnetIds: readonly string[];
  /** Narrows the functions' egress to the VPC. @default - egress on the database ports to anywhere */
  readonly vpcCidrBlock?: string;
  /** Extra security groups attached to the in-VPC functions. @default none */
  readonly securityGroupIds: readonly string[];
  /** The databases' security groups: each gets an ingress rule from the functions on the database ports. @default none */
  readonly databaseSecurityGroupIds: readonly string[];
  /** Create a Secrets Manager interface endpoint in the subnets (needed for secret auth without NAT). @default false */
  readonly createSecretsManagerEndpoint: boolean;
}

/** Grants beyond what the static fleet names: for databases found by tag discovery. */
export interface AccessConfig {
  /** Secrets named only by discovery tags (`pgwarden:secret-arn`). @default none */
  readonly secretArns: readonly string[];
  /** Customer-managed KMS keys that encrypt the targets' secrets. @default none (aws/secretsmanager) */
  readonly kmsKeyArns: readonly string[];
  /** Database users discovered targets log in as with IAM authentication (`pgwarden:user` tags). @default none */
  readonly iamDbUsers: readonly string[];
}

/** The validated configuration of one pgwarden deployment. */
export interface PgWardenConfig {
  /**
   * The fleet exactly as written in the file (durations as text). The functions' environment
   * carries this form, because they parse it again with the same schema at cold start.
   */
  readonly fleetDocument: FleetDocument;
  /**
   * The fleet validated (durations in seconds), defaults not yet applied: the stack applies them with
   * `toTarget`, filling in its own region where the configuration names none.
   */
  readonly fleetInput: FleetInput;
  /** @default - none; required unless the stack runs in demo mode */
  readonly network?: NetworkConfig;
  readonly notifications: { readonly pages: Subscribers; readonly notifications: Subscribers };
  /** How often the monitor probes each target inside its one-minute run. @default 10 s */
  readonly cadenceMs: number;
  /** How often the idle-session sweep runs. @default 5 */
  readonly sweepEveryMinutes: number;
  /** Page if the incident is still open this long after it opened. @default 20 min */
  readonly escalateAfterMs: number;
  /** The runbook verifies the target this often. @default 60 s */
  readonly recheckEveryMs: number;
  /** The runbook ends an execution after this long. @default 4 h */
  readonly maxDurationMs: number;
  /** Consecutive failing minutes before a target's probe-failing alarm fires. @default 3 */
  readonly probeFailingMinutes: number;
  readonly access: AccessConfig;
  /**
   * Dashboards are global to the account: two stacks must not share a name.
   * @default - `<stack name>-<region>`
   */
  readonly dashboardName?: string;
  /** @default 30 */
  readonly logRetentionDays: number;
  /** Log execution input and output (may hold target hostnames). @default false */
  readonly stateMachineLogsIncludeData: boolean;
}

/** The fleet as users write it: the JSON that `parseFleet` accepts, kept verbatim. */

export interface ParseConfigOptions {
  /** Names the input in the error message. @default "pgwarden configuration" */
  readonly subject?: string;
  /** Demo mode supplies its own database and VPC, so `fleet` and `network` may be absent. @default false */
  readonly demo?: boolean;
}

const ROOT = 'config';

/** Stands for the region the stack deploys to while the configuration is validated. */
const DEPLOYMENT_REGION = 'deployment-region-1';

/**
 * Validates a configuration object and applies defaults. Every problem is reported at once, each
 * naming its field (`config.fleet.targets[0].port`), the value received and the fix.
 */
export function parseConfig(raw: unknown, options: ParseConfigOptions = {}): PgWardenConfig {
  const subject = options.subject ?? 'pgwarden configuration';
  const demo = options.demo ?? false;
  const parsed = safeParse(configInput, raw, ROOT);
  if (!parsed.ok) throw new ConfigError(subject, parsed.issues);
  const input = parsed.value;
  const rawFleet = (raw as { fleet?: unknown }).fleet;
  const issues: Issue[] = [];

  let fleet: Fleet = { targets: [], defaults: {} };
  if (rawFleet !== undefined && rawFleet !== null) {
    try {
      // The stack fills in its own region later; only its presence matters for validation here.
      fleet = parseFleet(rawFleet, subject, `${ROOT}.fleet`, { defaultRegion: DEPLOYMENT_REGION });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues);
    }
  } else if (!demo) {
    issues.push({
      path: `${ROOT}.fleet`,
      received: 'nothing',
      problem: 'is required',
      fix: 'List the databases to watch under "fleet.targets", or turn on "fleet.discovery" (see pgwarden.config.example.json).',
    });
  }
  if (!input.network && !demo) {
    issues.push({
      path: `${ROOT}.network`,
      received: 'nothing',
      problem: 'is required (the probe runs inside the VPC of your databases)',
      fix: 'Set "vpcId", "availabilityZones" and "privateSubnetIds", or try pgwarden with its own demo database: npm run synth -- -c demo=true.',
    });
  }
  issues.push(...crossChecks(input, fleet));
  if (issues.length > 0) throw new ConfigError(subject, issues);

  const document = (rawFleet ?? {}) as Partial<FleetDocument>;
  return {
    fleetDocument: {
      targets: document.targets ?? [],
      defaults: document.defaults ?? {},
      ...(document.discovery ? { discovery: document.discovery } : {}),
    },
    fleetInput: input.fleet ?? { targets: [], defaults: {} },
    ...(input.network ? { network: input.network } : {}),
    notifications: input.notifications,
    cadenceMs: input.schedules.cadence,
    sweepEveryMinutes: input.schedules.sweepEvery / 60_000,
    escalateAfterMs: input.escalation.escalateAfter,
    recheckEveryMs: input.escalation.recheckEvery,
    maxDurationMs: input.escalation.maxDuration,
    probeFailingMinutes: input.alarms.probeFailingMinutes,
    access: input.access,
    ...(input.dashboardName ? { dashboardName: input.dashboardName } : {}),
    logRetentionDays: input.logRetentionDays,
    stateMachineLogsIncludeData: input.stateMachineLogsIncludeData,
  };
}

/** Rules that span fields: what the schema of one field cannot see. */
function crossChecks(input: ConfigInput, fleet: Fleet): Issue[] {
  const issues: Issue[] = [];
  fleet.targets.forEach((target, i) => {
    if (target.connection.auth.kind === 'iam' && !target.connection.user)
      issues.push({
        path: `${ROOT}.fleet.targets[${i}].user`,
        received: 'nothing',
        problem: 'is required with IAM authentication (the token is signed for one database user)',
        fix: 'Set "user" here or in "fleet.defaults", e.g. "pgwarden_monitor".',
      });
  });
  const defaults = input.fleet?.defaults;
  if (input.fleet?.discovery && defaults?.auth?.iam && !defaults.user && input.access.iamDbUsers.length === 0)
    issues.push({
      path: `${ROOT}.fleet.defaults.user`,
      received: 'nothing',
      problem: 'is required when discovered databases use IAM authentication',
      fix: 'Set "fleet.defaults.user", or list the users your pgwarden:user tags name in "access.iamDbUsers".',
    });
  const tls = defaults?.tls ?? 'verify-full';
  if (input.fleet?.discovery && input.access.secretArns.length > 0 && tls !== 'verify-full')
    issues.push({
      path: `${ROOT}.fleet.defaults.tls`,
      received: JSON.stringify(tls),
      problem:
        'must be verify-full when discovery tags may name secrets (access.secretArns): pgwarden sends a secret to an endpoint it did not configure only when its certificate proves the name',
      fix: 'Remove "tls" from fleet.defaults (verify-full is the default).',
    });
  const { escalateAfter, maxDuration, recheckEvery } = input.escalation;
  issues.push(
    ...runbookClockIssues(
      { escalateAfterMs: escalateAfter, recheckEveryMs: recheckEvery, maxDurationMs: maxDuration },
      {
        escalateAfter: `${ROOT}.escalation.escalateAfter`,
        recheckEvery: `${ROOT}.escalation.recheckEvery`,
        maxDuration: `${ROOT}.escalation.maxDuration`,
      },
      (ms) => JSON.stringify(durationText(ms)),
    ),
  );
  return issues;
}

export interface LoadConfigOptions {
  /** Path of the JSON file (relative paths resolve against the working directory). */
  readonly file: string;
  /** @default false */
  readonly demo?: boolean;
}

/**
 * Reads and validates the configuration file. A missing file is an error unless in demo mode, where
 * the file is optional; a file that is not JSON is reported with the parser's message.
 */
export function loadConfig(options: LoadConfigOptions): PgWardenConfig {
  const demo = options.demo ?? false;
  const subject = `pgwarden configuration (${options.file})`;
  if (!existsSync(options.file)) {
    if (demo) return parseConfig({}, { subject, demo });
    throw new ConfigError(subject, [
      {
        path: options.file,
        received: 'nothing',
        problem: 'does not exist',
        fix: `Copy ${EXAMPLE_CONFIG_FILE} to ${DEFAULT_CONFIG_FILE} and describe your databases and VPC, or try pgwarden with its own demo database: npm run synth -- -c demo=true.`,
      },
    ]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(options.file, 'utf8'));
  } catch (error) {
    throw new ConfigError(subject, [
      {
        path: options.file,
        received: 'text that is not JSON',
        problem: `cannot be parsed (${(error as Error).message})`,
        fix: 'Fix the JSON syntax; the example file shows the expected shape.',
      },
    ]);
  }
  return parseConfig(raw, { subject, demo });
}

export { durationText };

/** The longest value each CloudFormation pseudo parameter can take. */
const PSEUDO_PARAMETER_BYTES: Record<string, number> = {
  'AWS::Region': 14,
  'AWS::AccountId': 12,
  'AWS::Partition': 10,
  'AWS::URLSuffix': 16,
  'AWS::StackName': 128,
};
/** A reference to a resource: a function name, a state machine or topic ARN. */
const REF_BYTES = 160;
/** An attribute: an ARN, an endpoint address. */
const ATTRIBUTE_BYTES = 200;

/** The longest a resolved CloudFormation value can become once deployed, generously. */
function deployedBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + deployedBytes(v), 0);
  if (value && typeof value === 'object') {
    const node = value as Record<string, unknown>;
    if (Array.isArray(node['Fn::Join'])) {
      const [delimiter, parts] = node['Fn::Join'] as [string, unknown[]];
      return (
        parts.reduce((sum: number, part) => sum + deployedBytes(part), 0) +
        delimiter.length * (parts.length - 1)
      );
    }
    if (typeof node.Ref === 'string') return PSEUDO_PARAMETER_BYTES[node.Ref] ?? REF_BYTES;
    if ('Fn::GetAtt' in node) return ATTRIBUTE_BYTES;
  }
  return ATTRIBUTE_BYTES;
}

/**
 * The size Lambda counts for an environment: names plus values, where a value only known at deploy
 * time counts at the longest it can become.
 */
export function environmentBytes(scope: IConstruct, env: Readonly<Record<string, string>>): number {
  const stack = Stack.of(scope);
  let total = 0;
  for (const [key, value] of Object.entries(env))
    total += Buffer.byteLength(key) + deployedBytes(stack.resolve(value));
  return total;
}

/**
 * Fails the synth when a function's environment would exceed Lambda's 4 KB limit. Only the fleet
 * grows with the configuration, so the error names it and recommends tag discovery.
 */
export function assertEnvironmentFits(
  scope: IConstruct,
  functionName: string,
  env: Readonly<Record<string, string>>,
  targetCount: number,
): void {
  const bytes = environmentBytes(scope, env);
  if (bytes <= LAMBDA_ENVIRONMENT_LIMIT_BYTES) return;
  throw new ConfigError('pgwarden configuration', [
    {
      path: `${ROOT}.fleet.targets`,
      received: `${targetCount} target(s), about ${bytes} bytes of environment for the ${functionName} function`,
      problem: `exceeds Lambda's limit of ${LAMBDA_ENVIRONMENT_LIMIT_BYTES} bytes for a function's environment variables`,
      fix: 'For a large fleet, tag the databases pgwarden:monitor=true and turn on "fleet.discovery" instead of listing them; move settings the targets share into "fleet.defaults".',
    },
  ]);
}
