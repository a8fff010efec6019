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
import { printable } from '../../shared/printable.ts';
import { redact } from '../../shared/redact.ts';
import type { Evidence, InstanceStatus } from '../../shared/runbook/record.ts';
import type { Target } from '../../shared/target.ts';

export interface AwsDeps {
  rds: Pick<RDSClient, 'send'>;
  cloudwatch: Pick<CloudWatchClient, 'send'>;
  signal?: AbortSignal;
}

const LOOKBACK_MS = 60 * 60_000;
const LOG_PATTERN =
  /FATAL|PANIC|terminating connection because of crash|out of memory|was terminated by signal|could not (open|write|extend) file|No space left on device/i;
const MAX_LOG_LINES = 15;
/** Lines pgwarden cannot attribute are shown only to fill the last few places. */
const MAX_UNATTRIBUTED_LINES = 3;
const MAX_LOG_LINE_CHARS = 300;
const MAX_EVENTS = 10;

/** The `log_line_prefix` of RDS and Aurora PostgreSQL (fixed there); local mode's server uses it too. */
export const RDS_LOG_LINE_PREFIX = '%t:%r:%u@%d:[%p]:';
const SEVERITY = 'LOG|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|STATEMENT|CONTEXT|NOTICE|INFO|DEBUG[1-5]?';
/** `%t`: the time, to the second, and its zone. */
const TIME = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})? [A-Za-z0-9+-]{1,6}`;
/** `%t:%r:`: the time, then the client's host(port), [local], or nothing for a server process. */
const ENTRY_START = new RegExp(String.raw`^${TIME}:(?:[^\s:()]{1,253}\(\d{1,5}\)|\[local\])?:`);
/** `:[%p]:SEVERITY:  `, which ends the prefix. */
const MARKER = new RegExp(String.raw`:\[\d{1,10}\]:(?:${SEVERITY}):  `, 'g');
/** A server process has no client, user or database: `%t::@:[%p]:`. */
const SERVER_PROCESS = new RegExp(String.raw`^${TIME}::@:\[\d{1,10}\]:(?:${SEVERITY}):  `);

interface LogEntry {
  text: string;
  /** Its shape and its neighbours' say the server wrote it as one entry (see `attribute`). */
  attributed: boolean;
  /** Written by a server process (the postmaster, a background process), not a client's session. */
  server: boolean;
}

/**
 * Which lines pgwarden can attribute. A client chooses its user and database names, which the prefix
 * repeats raw, so a newline in them starts a line that looks like the server's own. Such a line sits
 * inside a broken entry: the line before it is a prefix cut short, the one after the rest of the
 * prefix. A line counts as the server's when it has the prefix's shape with exactly one
 * `:[pid]:SEVERITY:` in it, and the lines around it are whole entries or tab-indented continuations
 * (PostgreSQL indents the continuation of a message with a tab). This catches forgeries made with one
 * name; one crafted with both names can still pass, which is why every line is quoted as written.
 */
export function attribute(raw: readonly string[]): LogEntry[] {
  const whole = (line: string) => ENTRY_START.test(line) && (line.match(MARKER)?.length ?? 0) === 1;
  const fits = (line: string | undefined) => line === undefined || line.startsWith('\t') || whole(line);
  return raw.map((text, i) => {
    const attributed =
      whole(text) &&
      fits(raw[i - 1]) &&
      (raw[i + 1] === undefined || raw[i + 1]?.startsWith('\t') || ENTRY_START.test(raw[i + 1] ?? ''));
    return { text, attributed, server: attributed && SERVER_PROCESS.test(text) };
  });
}

/**
 * The log lines worth quoting, in the order they were written: the server processes' own first (a
 * crash, a PANIC, a full disk), then the client sessions' attributed lines, then at most a few lines
 * pgwarden cannot attribute, marked so. A flood of lines any client can cause (failed logins) cannot
 * push the server's own out.
 */
export function selectLogLines(raw: readonly string[]): string[] {
  const entries = attribute(raw).filter((e) => LOG_PATTERN.test(e.text));
  const folded = collapseEntries(entries);
  const chosen = new Set<LogEntry>();
  const take = (group: LogEntry[], room: number) => {
    if (room > 0) for (const e of group.slice(-room)) chosen.add(e);
  };
  take(
    folded.filter((e) => e.server),
    MAX_LOG_LINES,
  );
  take(
    folded.filter((e) => e.attributed && !e.server),
    MAX_LOG_LINES - chosen.size,
  );
  take(
    folded.filter((e) => !e.attributed),
    Math.min(MAX_UNATTRIBUTED_LINES, MAX_LOG_LINES - chosen.size),
  );
  return folded
    .filter((e) => chosen.has(e))
    .map((e) => {
      const line = printable(redact(e.text), { maxLength: MAX_LOG_LINE_CHARS });
      return e.attributed ? line : `(unattributed) ${line}`;
    });
}

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
      message: printable(redact(e.Message ?? '')),
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
      evidence.logLines = selectLogLines((portion.LogFileData ?? '').split('\n'));
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
  return collapseEntries(lines.map((text) => ({ text, attributed: true, server: false }))).map((e) => e.text);
}

function collapseEntries(entries: readonly LogEntry[]): LogEntry[] {
  const out: Array<LogEntry & { message: string; count: number }> = [];
  for (const entry of entries) {
    const message = messageOf(entry.text);
    const last = out[out.length - 1];
    if (last && last.message === message && last.attributed === entry.attributed) last.count += 1;
    else out.push({ ...entry, message, count: 1 });
  }
  return out.map(({ message: _, count, ...e }) => (count > 1 ? { ...e, text: `${e.text} (x${count})` } : e));
}
