import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import {
  CloudWatchSink,
  emfRecord,
  METRICS,
  type Sample,
  samplesFromProbe,
  toDatums,
} from '../../shared/metrics.ts';
import type { ProbeFailure } from '../../shared/probe/snapshot.ts';

const minute = Date.parse('2026-11-26T10:00:00Z');

function samples(targets: number, perMinute: number): Sample[] {
  const out: Sample[] = [];
  for (let t = 0; t < targets; t++) {
    for (let i = 0; i < perMinute; i++) {
      for (const name of ['Connections', 'ConnectLatency', 'ProbeSuccess'] as const) {
        out.push({
          name,
          value: name === 'ProbeSuccess' ? 1 : i % 3,
          target: `t${t}`,
          timestamp: minute + i * 10_000,
        });
      }
    }
  }
  return out;
}

describe('metric batching', () => {
  it('folds the samples of one metric, target and minute into one datum with Values and Counts', () => {
    const datums = toDatums(samples(1, 6));
    expect(datums).toHaveLength(3);
    const connections = datums.find((d) => d.MetricName === 'Connections');
    expect(connections).toMatchObject({
      Unit: 'Count',
      Dimensions: [{ Name: 'Target', Value: 't0' }],
      Values: [0, 1, 2],
      Counts: [2, 2, 2],
    });
    expect(connections?.Timestamp?.getTime()).toBe(minute);
  });

  it('sends 600 targets x 3 metrics x 6 samples in 2 PutMetricData calls', async () => {
    const cloudwatch = mockClient(CloudWatchClient);
    cloudwatch.on(PutMetricDataCommand).resolves({});
    const sink = new CloudWatchSink(new CloudWatchClient({}), 'PgWarden');
    sink.add(samples(600, 6));
    const result = await sink.flush();
    expect(result).toEqual({ sent: 1_800, calls: 2, failed: 0 });
    const calls = cloudwatch.commandCalls(PutMetricDataCommand);
    expect(calls).toHaveLength(2);
    expect(calls.every((c) => c.args[0].input.Namespace === 'PgWarden')).toBe(true);
    expect(calls.map((c) => c.args[0].input.MetricData?.length)).toEqual([1_000, 800]);
  });

  it('reports a failed call instead of throwing, and keeps going', async () => {
    const cloudwatch = mockClient(CloudWatchClient);
    cloudwatch.on(PutMetricDataCommand).rejectsOnce(new Error('Throttling')).resolves({});
    const errors: string[] = [];
    const sink = new CloudWatchSink(new CloudWatchClient({}), 'PgWarden', (e) =>
      errors.push((e as Error).message),
    );
    sink.add(samples(600, 6));
    expect(await sink.flush()).toEqual({ sent: 800, calls: 2, failed: 1_000 });
    expect(errors).toEqual(['Throttling']);
  });

  it('derives only success and connect latency from a failed probe', () => {
    const failure: ProbeFailure = {
      ok: false,
      target: 'db',
      checkedAt: new Date(minute).toISOString(),
      latencyMs: { connect: 3_000, query: null },
      failure: { category: 'timeout', message: 'timeout expired', retryable: true, phase: 'connect' },
    };
    expect(samplesFromProbe(failure, 'db', 0).map((s) => [s.name, s.value])).toEqual([
      ['ProbeSuccess', 0],
      ['ConnectLatency', 3_000],
    ]);
  });

  it('writes an embedded-metric-format record CloudWatch can parse', () => {
    const record = JSON.parse(emfRecord([{ name: 'SessionsTerminated', value: 4 }], 'orders', minute));
    expect(record).toEqual({
      _aws: {
        Timestamp: minute,
        CloudWatchMetrics: [
          {
            Namespace: 'PgWarden',
            Dimensions: [['Target']],
            Metrics: [{ Name: 'SessionsTerminated', Unit: 'Count' }],
          },
        ],
      },
      Target: 'orders',
      SessionsTerminated: 4,
    });
  });

  it('documents a unit and a meaning for every metric', () => {
    for (const [name, spec] of Object.entries(METRICS)) {
      expect(spec.meaning.length, name).toBeGreaterThan(10);
    }
  });
});
