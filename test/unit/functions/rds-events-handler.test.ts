import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { ListExecutionsCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lambdaContext } from '../../helpers/lambda.ts';

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook';
const fixture = (name: string) =>
  JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/rds-events', name), 'utf8'));
type Handler = (event: unknown, context: unknown) => Promise<unknown>;

describe('rds-events function handler', () => {
  const sfn = mockClient(SFNClient);
  const cloudwatch = mockClient(CloudWatchClient);
  let handler: Handler;

  beforeAll(async () => {
    vi.resetModules();
    vi.stubEnv('PGWARDEN_STATE_MACHINE_ARN', STATE_MACHINE);
    vi.stubEnv(
      'PGWARDEN_TARGETS',
      JSON.stringify([
        {
          id: 'orders-prod',
          host: 'orders-prod.abc.eu-west-1.rds.amazonaws.com',
          database: 'orders',
          user: 'pgwarden_monitor',
          auth: { iam: true, region: 'eu-west-1' },
          rds: { instanceId: 'orders-prod' },
        },
      ]),
    );
    vi.stubEnv('PGWARDEN_ESCALATE_AFTER', '30m');
    handler = ((await import('../../../functions/rds-events/handler.ts')) as unknown as { handler: Handler })
      .handler;
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  it('starts the runbook for a shutdown event and records the event metric', async () => {
    sfn.reset();
    cloudwatch.reset();
    sfn.on(ListExecutionsCommand).resolves({ executions: [] });
    sfn.on(StartExecutionCommand).resolves({
      executionArn: `${STATE_MACHINE.replace('stateMachine', 'execution')}:x`,
      startDate: new Date(),
    });
    cloudwatch.on(PutMetricDataCommand).resolves({});
    const result = await handler(fixture('instance-0004.json'), lambdaContext('pgwarden-rds-events'));
    expect(result).toMatchObject({ action: 'opened', targetId: 'orders-prod', kind: 'shutdown' });
    const start = sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input;
    expect(start?.stateMachineArn).toBe(STATE_MACHINE);
    const input = JSON.parse(start?.input ?? '{}');
    expect(input.settings.escalateAfterSeconds).toBe(1_800);
    expect(input.trigger).toMatchObject({
      kind: 'rds-event',
      eventId: 'RDS-EVENT-0004',
      eventKind: 'shutdown',
    });
    const metrics = cloudwatch
      .commandCalls(PutMetricDataCommand)
      .flatMap((c) => c.args[0].input.MetricData ?? []);
    expect(metrics.map((m) => m.MetricName).sort()).toEqual(['IncidentsOpened', 'RdsEvents']);
  });

  it('rejects a malformed event with a ValidationError and starts nothing', async () => {
    sfn.reset();
    const error = await handler(
      { source: 'aws.rds', 'detail-type': 'RDS DB Instance Event', time: '2026-11-20T03:14:07Z', detail: {} },
      lambdaContext('pgwarden-rds-events'),
    ).catch((e: Error) => e);
    expect((error as Error).name).toBe('ValidationError');
    expect((error as Error).message).toContain('detail.EventID: is required');
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });
});
