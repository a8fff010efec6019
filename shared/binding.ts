/**
 * Binding an invocation to the deployed configuration. Whoever may invoke the probe, remediate or
 * runbook function (or start the state machine) writes the payload, so a payload names a target; it
 * does not describe one. A configured target is taken from the configuration whole (host, port, TLS,
 * credential, policy); the payload's copy is ignored. A target found by tag discovery cannot be looked
 * up again where the SQL functions run (the VPC has no route to the RDS API), so the payload's
 * connection is accepted only inside the discovery scope: an RDS endpoint of the functions' own
 * region, reached with the TLS mode and thresholds of `fleet.defaults`, with a credential that is not
 * bound to another target. A secret then only ever goes to a host its configuration names, or to an
 * RDS endpoint that proved its name under `verify-full`; an IAM token is signed for the one host and
 * port it is sent to. A payload's policy can only narrow the configured one.
 */
import type { ConnectionSpec } from './connection.ts';
import { type Issue, ValidationError } from './errors.ts';
import type { Discovery, Fleet } from './fleet.ts';
import type { DefaultsInput, RdsRef, RemediationPolicy, Target, TargetInput } from './target.ts';
import { toTarget } from './target.ts';

/** What the functions know of the deployment: the fleet from their environment, and their region. */
export interface TargetCatalog {
  /** Configured targets, defaults applied. */
  readonly targets: readonly Target[];
  /** What discovered targets inherit. */
  readonly defaults: DefaultsInput;
  readonly discovery?: Discovery;
  /** The region the functions run in (AWS_REGION): discovered endpoints must be in it. */
  readonly region?: string;
}

export function catalogFromFleet(fleet: Fleet, region: string | undefined): TargetCatalog {
  return {
    targets: fleet.targets,
    defaults: fleet.defaults,
    ...(fleet.discovery ? { discovery: fleet.discovery } : {}),
    ...(region ? { region } : {}),
  };
}

/** The fields in which a payload's connection differs from the configured one (for the log). */
export function connectionDifferences(configured: ConnectionSpec, requested: ConnectionSpec): string[] {
  const auth = (c: ConnectionSpec) =>
    c.auth.kind === 'secret'
      ? `secret:${c.auth.secretId}`
      : c.auth.kind === 'iam'
        ? `iam:${c.auth.region}`
        : c.auth.kind;
  const fields: Array<[string, (c: ConnectionSpec) => unknown]> = [
    ['host', (c) => c.host],
    ['port', (c) => c.port],
    ['database', (c) => c.database],
    ['user', (c) => c.user],
    ['auth', auth],
    ['tls', (c) => `${c.tls.mode}:${c.tls.caFile ?? ''}`],
  ];
  return fields.filter(([, get]) => get(configured) !== get(requested)).map(([name]) => name);
}

/** What a payload says about its target. */
export interface RequestedTarget {
  targetId: string;
  connection?: ConnectionSpec;
  rds?: RdsRef;
}

export interface BoundTarget {
  target: Target;
  /** `configured`: taken from the configuration; `discovered`: a payload endpoint inside the discovery scope. */
  source: 'configured' | 'discovered';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * An instance, cluster, reader or custom endpoint as RDS names them, in `region`:
 * `<name>.<id>.<region>.rds.amazonaws.com` (`.com.cn` in China).
 */
export function isRdsEndpoint(host: string, region: string): boolean {
  const pattern = new RegExp(
    `^[a-z][a-z0-9-]{0,62}\\.(cluster-(ro-|custom-)?)?[a-z0-9]{1,63}\\.${escapeRegExp(region)}\\.rds\\.amazonaws\\.com(\\.cn)?$`,
  );
  return pattern.test(host.toLowerCase());
}

/**
 * The target an invocation acts on. Throws a ValidationError naming the field when the payload names
 * a target that is neither configured nor inside the discovery scope.
 */
export function bindTarget(catalog: TargetCatalog, requested: RequestedTarget, subject: string): BoundTarget {
  const configured = catalog.targets.find((t) => t.id === requested.targetId);
  if (configured) return { target: configured, source: 'configured' };
  const refuse = (issues: Issue[]): never => {
    throw new ValidationError(subject, issues);
  };
  if (!catalog.discovery)
    refuse([
      {
        path: 'targetId',
        received: JSON.stringify(requested.targetId),
        problem: 'is not a configured target, and discovery is off',
        fix: `Name one of the configured targets: ${catalog.targets.map((t) => t.id).join(', ') || '(none)'}.`,
      },
    ]);
  const connection = requested.connection;
  if (!connection)
    return refuse([
      {
        path: 'connection',
        received: 'nothing',
        problem: `is required for ${requested.targetId}, which is not a configured target (a discovered one)`,
        fix: 'Send the connection the monitor discovered.',
      },
    ]);
  const issues: Issue[] = [];
  const region = catalog.region;
  if (!region || !isRdsEndpoint(connection.host, region))
    issues.push({
      path: 'connection.host',
      received: JSON.stringify(connection.host),
      problem: `is not an RDS endpoint in ${region ?? 'this region'}: a target that is not configured is reached only at an endpoint discovery can find`,
      fix: 'Add the database to fleet.targets, or tag its RDS instance or cluster for discovery.',
    });
  // What discovery would have built from this endpoint and its tags: the defaults, with the tags'
  // database, user and secret. The payload's TLS mode, CA file and region are never used.
  const secretId = connection.auth.kind === 'secret' ? connection.auth.secretId : undefined;
  const input: TargetInput = {
    id: requested.targetId,
    host: connection.host,
    port: connection.port,
    database: connection.database,
    ...(connection.user ? { user: connection.user } : {}),
    ...(secretId ? { auth: { secretArn: secretId } } : {}),
    // Only which instance or cluster it is: the region IAM tokens are signed for is the configuration's.
    ...(requested.rds?.instanceId || requested.rds?.clusterId
      ? {
          rds: {
            ...(requested.rds.instanceId ? { instanceId: requested.rds.instanceId } : {}),
            ...(requested.rds.clusterId ? { clusterId: requested.rds.clusterId } : {}),
          },
        }
      : {}),
  };
  if (!secretId && !catalog.defaults.auth)
    issues.push({
      path: 'connection.auth',
      received: JSON.stringify(connection.auth.kind),
      problem: 'names no secret, and fleet.defaults has no auth for discovered databases',
      fix: 'Set fleet.defaults.auth.',
    });
  if (issues.length > 0) refuse(issues);
  const target = toTarget(input, catalog.defaults);
  const auth = target.connection.auth;
  if (auth.kind === 'secret') {
    const owner = catalog.targets.find(
      (t) => t.connection.auth.kind === 'secret' && t.connection.auth.secretId === auth.secretId,
    );
    if (owner && auth.secretId !== catalog.defaults.auth?.secretArn)
      issues.push({
        path: 'connection.auth.secretId',
        received: JSON.stringify(auth.secretId),
        problem: `is bound by configuration to target ${owner.id} (${owner.connection.host}:${owner.connection.port}), not to ${connection.host}`,
        fix: 'Give discovered databases a secret of their own (fleet.defaults.auth or the pgwarden:secret-arn tag).',
      });
    if (target.connection.tls.mode !== 'verify-full')
      issues.push({
        path: 'connection.tls',
        received: JSON.stringify(target.connection.tls.mode),
        problem:
          'is not verify-full: a secret goes to a discovered endpoint only when TLS proves the endpoint is the one named',
        fix: 'Set fleet.defaults.tls to "verify-full" (the default).',
      });
  }
  if (issues.length > 0) refuse(issues);
  return { target, source: 'discovered' };
}

/**
 * The configured policy, narrowed by a payload's: a payload may turn dry-run on, raise thresholds,
 * lower the cap, protect more, and switch things off; it can never do more than the configuration
 * allows.
 */
export function narrowPolicy(
  configured: RemediationPolicy,
  requested?: RemediationPolicy,
): RemediationPolicy {
  if (!requested) return configured;
  const cancel =
    configured.cancelQueriesAfterSeconds === null || requested.cancelQueriesAfterSeconds === null
      ? null
      : Math.max(configured.cancelQueriesAfterSeconds, requested.cancelQueriesAfterSeconds);
  const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])];
  return {
    dryRun: configured.dryRun || requested.dryRun,
    idleAfterSeconds: Math.max(configured.idleAfterSeconds, requested.idleAfterSeconds),
    idleInTransactionAfterSeconds: Math.max(
      configured.idleInTransactionAfterSeconds,
      requested.idleInTransactionAfterSeconds,
    ),
    cancelQueriesAfterSeconds: cancel,
    terminateBlockers: configured.terminateBlockers && requested.terminateBlockers,
    blockerIdleSeconds: Math.max(configured.blockerIdleSeconds, requested.blockerIdleSeconds),
    maxPerRun: Math.min(configured.maxPerRun, requested.maxPerRun),
    protectUsers: union(configured.protectUsers, requested.protectUsers),
    protectApplications: union(configured.protectApplications, requested.protectApplications),
    pressure: {
      utilizationPct: Math.max(configured.pressure.utilizationPct, requested.pressure.utilizationPct),
      idleAfterSeconds: Math.max(configured.pressure.idleAfterSeconds, requested.pressure.idleAfterSeconds),
    },
    includeQueryText: configured.includeQueryText && requested.includeQueryText,
    allowStartInstance: configured.allowStartInstance && requested.allowStartInstance,
    allowReboot: configured.allowReboot && requested.allowReboot,
    allowFailover: configured.allowFailover && requested.allowFailover,
  };
}
