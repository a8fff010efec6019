/**
 * Custom metrics: one namespace, one `Target` dimension, names that are a contract with the dashboard
 * and the alarms. Samples are buffered and sent with as few PutMetricData calls as the API allows
 * (1,000 datums per call, repeated samples folded into Values/Counts). Functions inside the VPC cannot
 * reach the CloudWatch API without an endpoint, so they emit the embedded metric format on stdout
 * instead, which CloudWatch Logs turns into the same metrics.
 */

import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { type MetricDatum, PutMetricDataCommand, type StandardUnit } from '@aws-sdk/client-cloudwatch';
import { NAMESPACE } from './namespace.ts';
import type { HealthSnapshot, ProbeResult } from './probe/snapshot.ts';

export { NAMESPACE };
export const TARGET_DIMENSION = 'Target';

/** Every metric pgwarden publishes, with its unit and meaning (the README table is generated from the same facts). */
export const METRICS = {
  ProbeSuccess: { unit: 'None', meaning: '1 when the probe got a snapshot, 0 when it failed' },
  ConnectLatency: { unit: 'Milliseconds', meaning: 'time to connect and authenticate' },
  QueryLatency: { unit: 'Milliseconds', meaning: 'time of the health-snapshot statement' },
  Connections: { unit: 'Count', meaning: 'client sessions (all states)' },
  ConnectionsActive: { unit: 'Count', meaning: 'sessions running a statement' },
  ConnectionsIdle: { unit: 'Count', meaning: 'idle sessions' },
  ConnectionsIdleInTransaction: { unit: 'Count', meaning: 'sessions idle inside an open transaction' },
  MaxConnections: { unit: 'Count', meaning: 'slots usable by applications (max_connections minus reserved)' },
  ConnectionUtilization: { unit: 'Percent', meaning: 'Connections as a share of usable slots' },
  LongRunningQueries: { unit: 'Count', meaning: 'queries running longer than the long-query threshold' },
  BlockedSessions: { unit: 'Count', meaning: 'sessions waiting on a lock held by another session' },
  OldestTransactionAge: { unit: 'Seconds', meaning: 'age of the oldest open transaction' },
  WraparoundPercent: { unit: 'Percent', meaning: 'max age(datfrozenxid) as a share of 2^31' },
  ServerRestarts: { unit: 'Count', meaning: 'restarts seen (postmaster restart, failover or crash-restart)' },
  SessionsTerminated: { unit: 'Count', meaning: 'sessions terminated or queries canceled by remediation' },
  IncidentsOpened: { unit: 'Count', meaning: 'runbook executions started' },
  IncidentStartFailures: {
    unit: 'Count',
    meaning:
      'incidents that could not be opened (Step Functions refused or failed); pages, since nobody follows the outage',
  },
  RdsEvents: { unit: 'Count', meaning: 'RDS events received for the target' },
  MonitorHeartbeat: {
    unit: 'Count',
    meaning: 'monitor cycles completed (no Target dimension); missing data means the monitor is down',
  },
} as const satisfies Record<string, { unit: StandardUnit; meaning: string }>;

export type MetricName = keyof typeof METRICS;

/** One value of one metric at one time. */
export interface Sample {
  name: MetricName;
  value: number;
  /** Target id, or undefined for deployment-wide metrics. */
  target?: string;
  timestamp: number;
}

/** Where samples go: CloudWatch in Lambda, a file in local mode, an array in tests. */
export interface MetricSink {
  add(samples: readonly Sample[]): void;
  /** Sends everything buffered. Never throws for a delivery failure; returns what could not be sent. */
  flush(signal?: AbortSignal): Promise<{ sent: number; calls: number; failed: number }>;
}

/** The samples one probe result yields. */
export function samplesFromProbe(result: ProbeResult, target: string, restarts: number): Sample[] {
  const timestamp = Date.parse(result.checkedAt);
  const sample = (name: MetricName, value: number): Sample => ({ name, value, target, timestamp });
  const out = [sample('ProbeSuccess', result.ok ? 1 : 0), sample('ConnectLatency', result.latencyMs.connect)];
  if (!result.ok) return out;
  const s: HealthSnapshot = result;
  out.push(
    sample('QueryLatency', s.latencyMs.query),
    sample('Connections', s.connections.total),
    sample('ConnectionsActive', s.connections.active),
    sample('ConnectionsIdle', s.connections.idle),
    sample('ConnectionsIdleInTransaction', s.connections.idleInTransaction),
    sample('MaxConnections', s.connections.usable),
    sample('ConnectionUtilization', s.connections.utilizationPct),
    sample('LongRunningQueries', s.longRunningQueries),
    sample('BlockedSessions', s.blockedSessions),
    sample('OldestTransactionAge', s.oldestTransactionAgeSeconds),
    sample('WraparoundPercent', s.wraparoundPct),
    sample('ServerRestarts', restarts),
  );
  return out;
}

/** PutMetricData accepts at most this many datums per call. */
export const MAX_DATUMS_PER_CALL = 1_000;
/** ...and at most this many distinct values in one datum. */
const MAX_VALUES_PER_DATUM = 150;

/**
 * Folds samples into datums: one per metric, target and minute, its repeated values as Values/Counts.
 * At a 10 s cadence that is six samples in one datum.
 */
export function toDatums(samples: readonly Sample[]): MetricDatum[] {
  const groups = new Map<
    string,
    { name: MetricName; target?: string; minute: number; counts: Map<number, number> }
  >();
  for (const s of samples) {
    if (!Number.isFinite(s.value)) continue;
    const minute = Math.floor(s.timestamp / 60_000) * 60_000;
    const key = `${s.name}|${s.target ?? ''}|${minute}`;
    let group = groups.get(key);
    if (!group) {
      group = { name: s.name, ...(s.target ? { target: s.target } : {}), minute, counts: new Map() };
      groups.set(key, group);
    }
    group.counts.set(s.value, (group.counts.get(s.value) ?? 0) + 1);
  }
  const datums: MetricDatum[] = [];
  for (const group of groups.values()) {
    const entries = [...group.counts.entries()];
    for (let i = 0; i < entries.length; i += MAX_VALUES_PER_DATUM) {
      const slice = entries.slice(i, i + MAX_VALUES_PER_DATUM);
      datums.push({
        MetricName: group.name,
        Unit: METRICS[group.name].unit,
        Timestamp: new Date(group.minute),
        ...(group.target ? { Dimensions: [{ Name: TARGET_DIMENSION, Value: group.target }] } : {}),
        Values: slice.map(([value]) => value),
        Counts: slice.map(([, count]) => count),
      });
    }
  }
  return datums;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Buffers samples and sends them to CloudWatch in as few calls as possible. */
export class CloudWatchSink implements MetricSink {
  private buffer: Sample[] = [];
  private readonly client: Pick<CloudWatchClient, 'send'>;
  private readonly namespace: string;
  private readonly onError: (error: unknown, datums: number) => void;

  constructor(
    client: Pick<CloudWatchClient, 'send'>,
    namespace = NAMESPACE,
    onError: (error: unknown, datums: number) => void = () => undefined,
  ) {
    this.client = client;
    this.namespace = namespace;
    this.onError = onError;
  }

  add(samples: readonly Sample[]): void {
    this.buffer.push(...samples);
  }

  async flush(signal?: AbortSignal) {
    const samples = this.buffer;
    this.buffer = [];
    const batches = chunk(toDatums(samples), MAX_DATUMS_PER_CALL);
    let sent = 0;
    let failed = 0;
    for (const MetricData of batches) {
      try {
        await this.client.send(
          new PutMetricDataCommand({ Namespace: this.namespace, MetricData }),
          signal ? { abortSignal: signal } : {},
        );
        sent += MetricData.length;
      } catch (error) {
        failed += MetricData.length;
        this.onError(error, MetricData.length);
      }
    }
    return { sent, calls: batches.length, failed };
  }
}

/** Keeps samples in memory; tests and local mode read them back. */
export class MemorySink implements MetricSink {
  readonly samples: Sample[] = [];
  private pending: Sample[] = [];

  add(samples: readonly Sample[]): void {
    this.samples.push(...samples);
    this.pending.push(...samples);
  }

  async flush() {
    const datums = toDatums(this.pending);
    this.pending = [];
    const batches = chunk(datums, MAX_DATUMS_PER_CALL);
    return { sent: datums.length, calls: batches.length, failed: 0 };
  }
}

/**
 * One embedded-metric-format record (a log line CloudWatch turns into metrics), for functions that
 * cannot reach the CloudWatch API.
 */
export function emfRecord(
  samples: ReadonlyArray<{ name: MetricName; value: number }>,
  target: string | undefined,
  timestamp: number,
  namespace = NAMESPACE,
): string {
  const record: Record<string, unknown> = {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [target ? [TARGET_DIMENSION] : []],
          Metrics: samples.map((s) => ({ Name: s.name, Unit: METRICS[s.name].unit })),
        },
      ],
    },
    ...(target ? { [TARGET_DIMENSION]: target } : {}),
  };
  for (const s of samples) record[s.name] = s.value;
  return JSON.stringify(record);
}
