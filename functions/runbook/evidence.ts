/**
 * Evidence for the page, gathered the way the humans in the incident write-ups gathered it by hand:
 * the RDS status, recent RDS events, crash and fatal lines from the database log, and the last hour of
 * the instance's own metrics. Every source is optional: what cannot be read is listed as a gap.
 */
import { type CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBLogFilesCommand,
  DescribeEventsCommand,
  DownloadDBLogFilePortionCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { describeError } from '../../shared/errors.ts';
import { redact } from '../../shared/redact.ts';
import type { Target } from '../../shared/target.ts';
import type { Evidence } from './incident.ts';
import type { InstanceStatus } from './nodes.ts';

export interface AwsDeps {
  rds: Pick<RDSClient, 'send'>;
  cloudwatch: Pick<CloudWatchClient, 'send'>;
  signal?: AbortSignal;
}

const LOOKBACK_MS = 60 * 60_000;
const LOG_PATTERN =
  /FATAL|PANIC|terminating connection because of crash|out of memory|was terminated by signal|could not (open|write|extend) file|No space left on device/i;
const MAX_LOG_LINES = 15;
const MAX_EVENTS = 10;

const opts = (deps: AwsDeps) => (deps.signal ? { abortSignal: deps.signal } : {});

/** Status of the target's RDS instance or cluster; undefined when the target names none. */
export async function describeStatus(target: Target, deps: AwsDeps): Promise<InstanceStatus | undefined> {
  const rds = target.rds;
  if (!rds) return undefined;
  if (rds.clusterId) {
    const out = await deps.rds.send(
      new DescribeDBClustersCommand({ DBClusterIdentifier: rds.clusterId }),
      opts(deps),
    );
    const cluster = out.DBClusters?.[0];
    const readers = (cluster?.DBClusterMembers ?? []).filter((m) => m.IsClusterWriter === false).length;
    return { id: rds.clusterId, kind: 'cluster', status: cluster?.Status ?? 'unknown', readers };
  }
  const id = rds.instanceId as string;
  const out = await deps.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }), opts(deps));
  return { id, kind: 'instance', status: out.DBInstances?.[0]?.DBInstanceStatus ?? 'unknown' };
}

/** The instance that holds the logs and instance metrics: the instance itself, or a cluster's writer. */
async function logInstance(target: Target, deps: AwsDeps): Promise<string | undefined> {
  if (target.rds?.instanceId) return target.rds.instanceId;
  if (!target.rds?.clusterId) return undefined;
  const out = await deps.rds.send(
    new DescribeDBClustersCommand({ DBClusterIdentifier: target.rds.clusterId }),
    opts(deps),
  );
  return out.DBClusters?.[0]?.DBClusterMembers?.find((m) => m.IsClusterWriter)?.DBInstanceIdentifier;
}

export async function gatherEvidence(target: Target, deps: AwsDeps, now: number): Promise<Evidence> {
  const evidence: Evidence = {
    gatheredAt: new Date(now).toISOString(),
    events: [],
    logLines: [],
    metrics: [],
    gaps: [],
  };
  if (!target.rds) {
    evidence.gaps.push('not an RDS target: no RDS status, events, logs or instance metrics');
    return evidence;
  }
  const attempt = async (what: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      evidence.gaps.push(`${what}: ${redact(describeError(error))}`);
    }
  };
  await attempt('RDS status', async () => {
    const status = await describeStatus(target, deps);
    if (status) evidence.instance = status;
  });
  await attempt('RDS events', async () => {
    const sourceType = target.rds?.clusterId ? 'db-cluster' : 'db-instance';
    const out = await deps.rds.send(
      new DescribeEventsCommand({
        SourceIdentifier: target.rds?.clusterId ?? target.rds?.instanceId,
        SourceType: sourceType,
        StartTime: new Date(now - LOOKBACK_MS),
        EndTime: new Date(now),
      }),
      opts(deps),
    );
    evidence.events = (out.Events ?? []).slice(-MAX_EVENTS).map((e) => ({
      at: e.Date?.toISOString() ?? '',
      source: e.SourceIdentifier ?? '',
      message: redact(e.Message ?? ''),
    }));
  });
  const instanceId = await logInstance(target, deps).catch((error) => {
    evidence.gaps.push(`writer instance: ${describeError(error)}`);
    return undefined;
  });
  if (instanceId) {
    await attempt('database log', async () => {
      const files = await deps.rds.send(
        new DescribeDBLogFilesCommand({
          DBInstanceIdentifier: instanceId,
          FileLastWritten: now - LOOKBACK_MS,
        }),
        opts(deps),
      );
      const latest = (files.DescribeDBLogFiles ?? []).sort(
        (a, b) => (b.LastWritten ?? 0) - (a.LastWritten ?? 0),
      )[0];
      if (!latest?.LogFileName) {
        evidence.gaps.push('database log: no log file written in the last hour');
        return;
      }
      const portion = await deps.rds.send(
        new DownloadDBLogFilePortionCommand({
          DBInstanceIdentifier: instanceId,
          LogFileName: latest.LogFileName,
          NumberOfLines: 2_000,
        }),
        opts(deps),
      );
      evidence.logLines = collapse(
        (portion.LogFileData ?? '').split('\n').filter((line) => LOG_PATTERN.test(line)),
      )
        .slice(-MAX_LOG_LINES)
        .map((line) => redact(line.length > 300 ? `${line.slice(0, 297)}...` : line));
    });
    await attempt('instance metrics', async () => {
      const queries = [
        { name: 'CPUUtilization', stat: 'Maximum', unit: 'Percent' },
        { name: 'FreeableMemory', stat: 'Minimum', unit: 'Bytes' },
        { name: 'FreeStorageSpace', stat: 'Minimum', unit: 'Bytes' },
        { name: 'DatabaseConnections', stat: 'Maximum', unit: 'Count' },
      ];
      const out = await deps.cloudwatch.send(
        new GetMetricDataCommand({
          StartTime: new Date(now - LOOKBACK_MS),
          EndTime: new Date(now),
          MetricDataQueries: queries.map((q, i) => ({
            Id: `m${i}`,
            MetricStat: {
              Metric: {
                Namespace: 'AWS/RDS',
                MetricName: q.name,
                Dimensions: [{ Name: 'DBInstanceIdentifier', Value: instanceId }],
              },
              Period: LOOKBACK_MS / 1_000,
              Stat: q.stat,
            },
          })),
        }),
        opts(deps),
      );
      evidence.metrics = queries.map((q, i) => {
        const values = out.MetricDataResults?.find((r) => r.Id === `m${i}`)?.Values ?? [];
        return {
          name: q.name,
          stat: q.stat,
          unit: q.unit,
          value: values.length ? (values[0] as number) : null,
        };
      });
    });
  }
  return evidence;
}

/** The message of a log line without its timestamp, client and pid prefix. */
function messageOf(line: string): string {
  const at = line.search(/(LOG|WARNING|ERROR|FATAL|PANIC):\s/);
  return at >= 0 ? line.slice(at) : line;
}

/** Folds runs of the same message (a burst of terminated sessions) into one line with a count. */
export function collapse(lines: readonly string[]): string[] {
  const out: Array<{ line: string; message: string; count: number }> = [];
  for (const line of lines) {
    const message = messageOf(line);
    const last = out[out.length - 1];
    if (last && last.message === message) last.count += 1;
    else out.push({ line, message, count: 1 });
  }
  return out.map((e) => (e.count > 1 ? `${e.line} (x${e.count})` : e.line));
}
