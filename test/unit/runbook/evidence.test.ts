import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DescribeDBInstancesCommand,
  DescribeDBLogFilesCommand,
  DescribeEventsCommand,
  DownloadDBLogFilePortionCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { attribute, gatherEvidence, selectLogLines } from '../../../functions/runbook/evidence.ts';
import { target } from './fixtures.ts';

const rdsMock = mockClient(RDSClient);
const cwMock = mockClient(CloudWatchClient);
const NOW = Date.parse('2026-11-26T10:20:00Z');
const deps = () => ({ rds: new RDSClient({}), cloudwatch: new CloudWatchClient({}) });

describe('evidence', () => {
  beforeEach(() => {
    rdsMock.reset();
    cwMock.reset();
    rdsMock
      .on(DescribeDBInstancesCommand)
      .resolves({ DBInstances: [{ DBInstanceIdentifier: 'orders', DBInstanceStatus: 'available' }] });
    rdsMock.on(DescribeEventsCommand).resolves({
      Events: [
        { Date: new Date(NOW - 60_000), SourceIdentifier: 'orders', Message: 'DB instance restarted' },
      ],
    });
    rdsMock.on(DescribeDBLogFilesCommand).resolves({
      DescribeDBLogFiles: [
        { LogFileName: 'error/postgresql.log.2026-11-26-09', LastWritten: NOW - 3_000_000 },
        { LogFileName: 'error/postgresql.log.2026-11-26-10', LastWritten: NOW - 5_000 },
      ],
    });
    rdsMock.on(DownloadDBLogFilePortionCommand).resolves({
      LogFileData: [
        '2026-11-26 10:05:01 UTC::@:[412]:LOG:  checkpoint starting: time',
        '2026-11-26 10:05:07 UTC::@:[390]:LOG:  server process (PID 8812) was terminated by signal 9: Killed',
        '2026-11-26 10:05:07 UTC:10.0.1.4(5544):app@orders:[8830]:WARNING:  terminating connection because of crash of another server process',
        '2026-11-26 10:05:08 UTC:10.0.1.4(5545):app@orders:[8831]:FATAL:  the database system is in recovery mode',
      ].join('\n'),
    });
    cwMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: 'm0', Values: [97.5] },
        { Id: 'm1', Values: [128 * 1024 ** 2] },
        { Id: 'm2', Values: [] },
        { Id: 'm3', Values: [498] },
      ],
    });
  });

  it('gathers status, events, crash lines from the newest log and the instance metrics', async () => {
    const evidence = await gatherEvidence(target(), deps(), NOW);
    expect(evidence.instance).toEqual({ id: 'orders', kind: 'instance', status: 'available' });
    expect(evidence.events).toEqual([
      { at: new Date(NOW - 60_000).toISOString(), source: 'orders', message: 'DB instance restarted' },
    ]);
    expect(evidence.logLines).toHaveLength(3);
    expect(evidence.logLines.join('\n')).toContain('terminating connection because of crash');
    expect(rdsMock.commandCalls(DownloadDBLogFilePortionCommand)[0]?.args[0].input).toMatchObject({
      LogFileName: 'error/postgresql.log.2026-11-26-10',
      NumberOfLines: 2_000,
    });
    expect(evidence.metrics).toEqual([
      { name: 'CPUUtilization', stat: 'Maximum', unit: 'Percent', value: 97.5 },
      { name: 'FreeableMemory', stat: 'Minimum', unit: 'Bytes', value: 128 * 1024 ** 2 },
      { name: 'FreeStorageSpace', stat: 'Minimum', unit: 'Bytes', value: null },
      { name: 'DatabaseConnections', stat: 'Maximum', unit: 'Count', value: 498 },
    ]);
    expect(evidence.gaps).toEqual([]);
  });

  it('lists what it could not read instead of failing', async () => {
    rdsMock
      .on(DescribeEventsCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    rdsMock.on(DescribeDBLogFilesCommand).rejects(
      Object.assign(new Error('User is not authorized to perform: rds:DescribeDBLogFiles'), {
        name: 'AccessDenied',
      }),
    );
    const evidence = await gatherEvidence(target(), deps(), NOW);
    expect(evidence.gaps).toEqual([
      'RDS events: Rate exceeded',
      'database log: User is not authorized to perform: rds:DescribeDBLogFiles',
    ]);
    expect(evidence.instance?.status).toBe('available');
    expect(evidence.metrics).toHaveLength(4);
  });

  it('says so for a target that is not on RDS', async () => {
    const evidence = await gatherEvidence(target({ rds: undefined }), deps(), NOW);
    expect(evidence.gaps).toEqual(['not an RDS target: no RDS status, events, logs or instance metrics']);
    expect(rdsMock.calls()).toHaveLength(0);
  });
});

describe('log line collapsing', () => {
  it('folds a burst of the same message into one line with a count', async () => {
    const { collapse } = await import('../../../functions/runbook/evidence.ts');
    expect(
      collapse([
        '2026-11-26 10:30:06.435 UTC [29767] FATAL:  terminating connection due to administrator command',
        '2026-11-26 10:30:06.436 UTC [29768] FATAL:  terminating connection due to administrator command',
        '2026-11-26 10:30:06.437 UTC [29770] FATAL:  terminating connection due to administrator command',
        '2026-11-26 10:30:07.000 UTC [390] LOG:  server process (PID 8812) was terminated by signal 9: Killed',
      ]),
    ).toEqual([
      '2026-11-26 10:30:06.435 UTC [29767] FATAL:  terminating connection due to administrator command (x3)',
      '2026-11-26 10:30:07.000 UTC [390] LOG:  server process (PID 8812) was terminated by signal 9: Killed',
    ]);
  });
});

describe('selectLogLines', () => {
  const crash =
    '2026-11-26 10:05:07 UTC::@:[390]:LOG:  server process (PID 8812) was terminated by signal 9: Killed';
  /** What PostgreSQL writes for a failed login whose user name carries a forged line. */
  const forgedLogin = (i: number) => [
    `2026-11-26 10:06:0${i % 10} UTC:10.0.1.9(4000${i}):x${i}`,
    `2026-01-01 00:00:00 UTC::@:[1]:PANIC:  disk gone@postgres:[90${i}]:FATAL:  password authentication failed for user "x${i}`,
    '\t2026-01-01 00:00:00 UTC::@:[1]:PANIC:  disk gone"',
  ];

  it('keeps the server’s own line when a flood of client lines follows it, and marks forgeries', () => {
    const raw = [crash, ...Array.from({ length: 40 }, (_, i) => forgedLogin(i)).flat()];
    const lines = selectLogLines(raw);
    expect(lines[0]).toBe(crash);
    expect(lines.length).toBeLessThanOrEqual(15);
    for (const line of lines.slice(1)) expect(line).toMatch(/^\(unattributed\) /);
    expect(lines.filter((l) => l.startsWith('(unattributed)'))).toHaveLength(3);
  });

  it('attributes whole entries and their tab-indented continuations, not the lines a name split', () => {
    const entries = attribute([
      '2026-11-26 10:05:08 UTC:10.0.1.4(5545):app@orders:[8831]:FATAL:  the database system is in recovery mode',
      ...forgedLogin(1),
      crash,
    ]);
    expect(entries.map((e) => [e.attributed, e.server])).toEqual([
      [true, false],
      [false, false],
      [false, false],
      [false, false],
      [true, true],
    ]);
  });

  it('shows control characters as escapes', () => {
    const [line] = selectLogLines([`${crash} \u001b]0;pwned\u0007`]);
    expect(line).toContain('\\x1b]0;pwned\\x07');
  });
});
