/**
 * Tag-based discovery: every PostgreSQL instance or cluster tagged `pgwarden:monitor=true` (by
 * default) becomes a target. Optional tags refine it: `pgwarden:id`, `pgwarden:database`,
 * `pgwarden:user`, `pgwarden:secret-arn`. A mis-tagged resource is skipped with a warning; it never
 * stops the others from being watched.
 */
import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  type RDSClient,
  type Tag,
} from '@aws-sdk/client-rds';
import type { Discovery } from './fleet.ts';
import type { Logger } from './logger.ts';
import { type DefaultsInput, TARGET_ID, type Target, targetInput, toTarget } from './target.ts';
import { safeParse } from './validate.ts';

export interface DiscoveryDeps {
  rds: Pick<RDSClient, 'send'>;
  logger: Logger;
  signal?: AbortSignal;
}

const POSTGRES_ENGINES = new Set(['postgres', 'aurora-postgresql']);

function tagMap(tags: Tag[] | undefined): Map<string, string> {
  return new Map((tags ?? []).filter((t) => t.Key).map((t) => [t.Key as string, t.Value ?? '']));
}

/** A target id from an RDS identifier: lowercase, dashes, at most 40 characters. */
export function targetIdFor(identifier: string): string {
  return identifier
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 40)
    .replace(/-+$/, '');
}

interface Candidate {
  kind: 'instance' | 'cluster';
  identifier: string;
  host: string | undefined;
  port: number | undefined;
  dbName: string | undefined;
  tags: Map<string, string>;
}

export async function discoverTargets(
  discovery: Discovery,
  defaults: DefaultsInput,
  deps: DiscoveryDeps,
): Promise<Target[]> {
  const options = deps.signal ? { abortSignal: deps.signal } : {};
  const candidates: Candidate[] = [];
  const clustered = new Set<string>();

  let marker: string | undefined;
  do {
    const page = await deps.rds.send(
      new DescribeDBClustersCommand({ ...(marker ? { Marker: marker } : {}) }),
      options,
    );
    for (const c of page.DBClusters ?? []) {
      if (!c.DBClusterIdentifier || !POSTGRES_ENGINES.has(c.Engine ?? '')) continue;
      const tags = tagMap(c.TagList);
      if (tags.get(discovery.tagKey) !== discovery.tagValue) continue;
      for (const member of c.DBClusterMembers ?? [])
        if (member.DBInstanceIdentifier) clustered.add(member.DBInstanceIdentifier);
      candidates.push({
        kind: 'cluster',
        identifier: c.DBClusterIdentifier,
        host: c.Endpoint,
        port: c.Port,
        dbName: c.DatabaseName,
        tags,
      });
    }
    marker = page.Marker;
  } while (marker);

  do {
    const page = await deps.rds.send(
      new DescribeDBInstancesCommand({ ...(marker ? { Marker: marker } : {}) }),
      options,
    );
    for (const i of page.DBInstances ?? []) {
      if (!i.DBInstanceIdentifier || !POSTGRES_ENGINES.has(i.Engine ?? '')) continue;
      // A member of a monitored cluster is reached through the cluster's writer endpoint.
      if (clustered.has(i.DBInstanceIdentifier)) continue;
      const tags = tagMap(i.TagList);
      if (tags.get(discovery.tagKey) !== discovery.tagValue) continue;
      candidates.push({
        kind: 'instance',
        identifier: i.DBInstanceIdentifier,
        host: i.Endpoint?.Address,
        port: i.Endpoint?.Port,
        dbName: i.DBName,
        tags,
      });
    }
    marker = page.Marker;
  } while (marker);

  const targets: Target[] = [];
  for (const c of candidates) {
    if (!c.host) {
      deps.logger.info('discovered database has no endpoint yet; skipping this round', {
        identifier: c.identifier,
      });
      continue;
    }
    const secretArn = c.tags.get('pgwarden:secret-arn');
    const raw = {
      id: c.tags.get('pgwarden:id') ?? targetIdFor(c.identifier),
      host: c.host,
      port: c.port ?? 5432,
      database: c.tags.get('pgwarden:database') ?? defaults.database ?? c.dbName ?? 'postgres',
      ...((c.tags.get('pgwarden:user') ?? defaults.user)
        ? { user: c.tags.get('pgwarden:user') ?? defaults.user }
        : {}),
      ...(secretArn ? { auth: { secretArn } } : {}),
      rds: c.kind === 'cluster' ? { clusterId: c.identifier } : { instanceId: c.identifier },
    };
    const parsed = safeParse(targetInput, raw, c.identifier);
    if (!parsed.ok || !TARGET_ID.test(raw.id)) {
      deps.logger.warn('discovered database has unusable tags; skipping it', {
        identifier: c.identifier,
        issues: parsed.ok
          ? [`id "${raw.id}" is not a valid target id`]
          : parsed.issues.map((i) => `${i.path}: ${i.problem}`),
      });
      continue;
    }
    targets.push(toTarget(parsed.value, defaults));
  }
  return targets;
}

/**
 * The targets to watch now: the static list plus, when discovery is on, what the tags say (refreshed
 * every `ttlMs`). A static target wins over a discovered one with the same id. A failed discovery
 * keeps the last good list.
 */
export function targetSource(
  fleet: { targets: Target[]; defaults: DefaultsInput; discovery?: Discovery },
  deps: DiscoveryDeps & { now: () => number },
  ttlMs = 5 * 60_000,
): () => Promise<Target[]> {
  let cache: { at: number; targets: Target[] } | undefined;
  return async () => {
    if (!fleet.discovery) return fleet.targets;
    if (!cache || deps.now() - cache.at > ttlMs) {
      try {
        cache = { at: deps.now(), targets: await discoverTargets(fleet.discovery, fleet.defaults, deps) };
      } catch (error) {
        deps.logger.error('discovery failed; using the last known targets', {
          error: (error as Error).message,
        });
        cache ??= { at: deps.now(), targets: [] };
      }
    }
    const ids = new Set(fleet.targets.map((t) => t.id));
    return [...fleet.targets, ...cache.targets.filter((t) => !ids.has(t.id))];
  };
}
