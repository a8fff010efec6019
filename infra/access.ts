/**
 * What the fleet lets pgwarden touch, as IAM resources: the secrets and database users the SQL
 * functions log in with, the RDS instances and clusters the runbook reads, and the destructive
 * actions each target opted into. Derived from the configuration at synth, so every grant names the
 * resources it applies to wherever the configuration names them.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { Target } from '../shared/target.ts';
import type { AccessConfig } from './config.ts';

/** A full secret ARN ends with "-" and six random characters Secrets Manager appends to the name. */
const COMPLETE_SECRET_ARN = /-[A-Za-z0-9]{6}$/;

/** What the fleet lets pgwarden touch, as the IAM resources each grant names. */
export interface FleetAccess {
  /** Secrets the SQL functions may read (GetSecretValue). */
  readonly secretArns: readonly string[];
  /** Customer-managed keys those secrets are encrypted with. */
  readonly kmsKeyArns: readonly string[];
  /** `rds-db:connect` resources: one per region and database user that IAM authentication uses. */
  readonly dbUserArns: readonly string[];
  /** Instances the runbook may describe and read logs from. */
  readonly instanceArns: readonly string[];
  /** Clusters the runbook may describe. */
  readonly clusterArns: readonly string[];
  /** Some instance is only known at run time (discovery, or the members of a cluster). */
  readonly unknownInstances: boolean;
  /** Some cluster is only known at run time (discovery). */
  readonly unknownClusters: boolean;
  /** Instances whose targets opted into starting them (`remediation.allowStartInstance`). */
  readonly startInstanceArns: readonly string[];
  /** Clusters whose targets opted into starting them (`remediation.allowStartInstance`). */
  readonly startClusterArns: readonly string[];
  /** Instances whose targets opted into a reboot (`remediation.allowReboot`). */
  readonly rebootInstanceArns: readonly string[];
  /** Clusters whose targets opted into a failover (`remediation.allowFailover`). */
  readonly failoverClusterArns: readonly string[];
  /** Discovered targets' opt-ins apply to resources carrying the discovery tag. */
  readonly taggedOptIns: { readonly start: boolean; readonly reboot: boolean; readonly failover: boolean };
}

/** What `fleetAccess` derives the grants from. */
export interface FleetAccessOptions {
  /** Static targets, with defaults applied. */
  readonly targets: readonly Target[];
  /** Discovery settings, with the defaults discovered targets inherit. @default - discovery off */
  readonly discovery?: {
    readonly defaults: Target;
  };
  /** The configuration's `access` section: extra secrets, keys and IAM database users. */
  readonly access: AccessConfig;
}

/**
 * The ARN of a secret given by ARN or by name. A name is looked up in the functions' own region (that
 * is where their Secrets Manager client asks); partial ARNs and names get the wildcard for the six
 * random characters Secrets Manager appends.
 */
export function secretResourceArn(scope: IConstruct, secretId: string): string {
  const stack = Stack.of(scope);
  if (secretId.startsWith('arn:'))
    return COMPLETE_SECRET_ARN.test(secretId) ? secretId : `${secretId}-??????`;
  if (stack.resolve(secretId) !== secretId) return secretId;
  return stack.formatArn({
    service: 'secretsmanager',
    resource: 'secret',
    resourceName: `${secretId}-??????`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

function rdsArn(scope: IConstruct, kind: 'db' | 'cluster', id: string, region?: string): string {
  return Stack.of(scope).formatArn({
    service: 'rds',
    resource: kind,
    resourceName: id,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    ...(region ? { region } : {}),
  });
}

function dbUserArn(scope: IConstruct, region: string, user: string): string {
  // The DbiResourceId in the ARN is assigned by RDS and cannot be known at synth; the user name can.
  return Stack.of(scope).formatArn({
    service: 'rds-db',
    resource: 'dbuser',
    resourceName: `*/${user}`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    region,
  });
}

/** The grants the fleet implies. */
export function fleetAccess(scope: IConstruct, options: FleetAccessOptions): FleetAccess {
  const region = Stack.of(scope).region;
  const secretArns = new Set<string>();
  const dbUserArns = new Set<string>();
  const instanceArns = new Set<string>();
  const clusterArns = new Set<string>();
  const startInstanceArns = new Set<string>();
  const startClusterArns = new Set<string>();
  const rebootInstanceArns = new Set<string>();
  const failoverClusterArns = new Set<string>();

  const credentialsOf = (target: Target) => {
    const { auth, user } = target.connection;
    if (auth.kind === 'secret') secretArns.add(secretResourceArn(scope, auth.secretId));
    if (auth.kind === 'iam' && user) dbUserArns.add(dbUserArn(scope, auth.region, user));
  };

  let clustered = false;
  for (const target of options.targets) {
    credentialsOf(target);
    const rds = target.rds;
    if (!rds) continue;
    const { remediation } = target;
    if (rds.instanceId) {
      const arn = rdsArn(scope, 'db', rds.instanceId, rds.region);
      instanceArns.add(arn);
      if (remediation.allowStartInstance) startInstanceArns.add(arn);
      if (remediation.allowReboot) rebootInstanceArns.add(arn);
    }
    if (rds.clusterId) {
      clustered = true;
      const arn = rdsArn(scope, 'cluster', rds.clusterId, rds.region);
      clusterArns.add(arn);
      if (remediation.allowStartInstance) startClusterArns.add(arn);
      if (remediation.allowFailover) failoverClusterArns.add(arn);
    }
  }

  const discovered = options.discovery?.defaults;
  if (discovered) credentialsOf(discovered);
  for (const arn of options.access.secretArns) secretArns.add(secretResourceArn(scope, arn));
  if (discovered?.connection.auth.kind === 'iam' || options.access.iamDbUsers.length > 0) {
    const userRegion =
      discovered?.connection.auth.kind === 'iam' ? discovered.connection.auth.region : region;
    for (const user of options.access.iamDbUsers) dbUserArns.add(dbUserArn(scope, userRegion, user));
  }

  return {
    secretArns: [...secretArns],
    kmsKeyArns: [...options.access.kmsKeyArns],
    dbUserArns: [...dbUserArns],
    instanceArns: [...instanceArns],
    clusterArns: [...clusterArns],
    unknownInstances: discovered !== undefined || clustered,
    unknownClusters: discovered !== undefined,
    startInstanceArns: [...startInstanceArns],
    startClusterArns: [...startClusterArns],
    rebootInstanceArns: [...rebootInstanceArns],
    failoverClusterArns: [...failoverClusterArns],
    taggedOptIns: {
      start: discovered?.remediation.allowStartInstance ?? false,
      reboot: discovered?.remediation.allowReboot ?? false,
      failover: discovered?.remediation.allowFailover ?? false,
    },
  };
}

/** ARNs matching every instance or cluster of the account in the stack's region. */
export function allRdsArns(scope: IConstruct, kind: 'db' | 'cluster'): string {
  return rdsArn(scope, kind, '*');
}
