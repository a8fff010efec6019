import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { actionText } from '../../functions/runbook/messages.ts';
import { type Clock, systemClock } from '../../shared/clock.ts';
import { printable } from '../../shared/printable.ts';
import type { IncidentRecord, Step } from '../../shared/runbook/record.ts';
import { RUNBOOK_CLOCK, runbookSettingsOf } from '../../shared/runbook/settings.ts';
import type { RunbookInput } from '../../shared/runbook/types.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../../shared/target.ts';
import { type CommandSpec, FlagReader, parseCommandArgs } from '../args.ts';
import { colours, outcomeLabel, plain, reportedMessages } from '../format.ts';
import { EXIT, type ExitCode, type Io } from '../io.ts';
import { LocalCloudWatch, LocalRds, LocalSecretsManager, LocalSns } from '../local/aws.ts';
import { outcomeOf } from '../local/system.ts';
import { createLocalWorkflow, currentPart, LOCAL_STATE_MACHINE, waitForIncident } from '../local/workflow.ts';
import {
  CLOCK_FLAGS,
  REMEDIATION_FLAGS,
  RUNBOOK_ACTION_FLAGS,
  readClock,
  readLockWait,
  readRemediation,
} from '../policy-flags.ts';
import { resolveRuntimeDeps } from '../runtime.ts';
import { onInterrupt } from '../signals.ts';

export const runbookCommand: CommandSpec = {
  name: 'runbook',
  summary: 'Run the incident runbook against a database now and print the incident report.',
  usage:
    'pgwarden runbook --url <url> [--escalate-after <dur>] [--recheck-every <dur>] [--max-duration <dur>] [remediation flags as sweep] [--json]',
  flags: {
    url: {
      type: 'string',
      value: 'postgres-url',
      describe: 'database to run the runbook on (default: $DATABASE_URL; password from $PGPASSWORD)',
    },
    ...CLOCK_FLAGS,
    ...REMEDIATION_FLAGS,
    ...RUNBOOK_ACTION_FLAGS,
    json: { type: 'boolean', describe: 'print one JSON object' },
    help: { type: 'boolean', describe: 'show this help' },
  },
};

const SECRET_ID = 'local/pgwarden-cli';

export interface RunbookReport {
  incidentId: string;
  outcome: 'resolved' | 'escalated' | 'unresolved';
  steps: Array<{ node: Step['node']; result: Step['result']; detail: string; at: string; cycle: number }>;
  actions: IncidentRecord['actions'];
  pages: Array<{ topic: 'pages' | 'notifications'; subject: string; message: string }>;
  startedAt: string;
  endedAt: string;
}

export async function runRunbook(argv: string[], io: Io, clock: Clock = systemClock): Promise<ExitCode> {
  const reader = new FlagReader(runbookCommand, parseCommandArgs(runbookCommand, argv));
  const spec = reader.database(io.env);
  // The deployed escalation; by hand, a closer re-check and a shorter watch.
  const timing = readClock(reader, {
    escalateAfterMs: RUNBOOK_CLOCK.escalateAfter.defaultMs,
    recheckMs: 30_000,
    maxDurationMs: 30 * 60_000,
  });
  const remediation = readRemediation(reader, DEFAULT_REMEDIATION);
  const lockWaitSeconds = readLockWait(reader, DEFAULT_THRESHOLDS.lockWaitSeconds);
  reader.done();
  if (!spec) return EXIT.usage;

  const { logger } = resolveRuntimeDeps(io);
  // The password stays out of the workflow's payloads, as in AWS: a (local) secret holds it.
  const secrets = new LocalSecretsManager();
  const password = spec.auth.kind === 'password' ? spec.auth.password : undefined;
  secrets.put(SECRET_ID, { username: spec.user ?? 'postgres', ...(password ? { password } : {}) });
  const target: Target = {
    id: 'cli',
    connection: { ...spec, auth: password ? { kind: 'secret', secretId: SECRET_ID } : { kind: 'none' } },
    thresholds: { ...DEFAULT_THRESHOLDS, lockWaitSeconds },
    remediation,
  };
  const sns = new LocalSns(clock);
  const steps: RunbookReport['steps'] = [];
  const style = io.isTty && !reader.boolean('json') ? colours : plain;
  const sfn = createLocalWorkflow({
    clock,
    logger,
    catalog: { targets: [target], defaults: {} },
    secrets,
    sns,
    rds: new LocalRds(clock),
    cloudwatch: new LocalCloudWatch(),
    waits: 'real',
    wrap: (fn, call) =>
      fn !== 'runbook'
        ? call
        : async (payload) => {
            const record = (await call(payload)) as IncidentRecord;
            if ((payload as { action?: string }).action === 'node') {
              const step = record.steps[record.steps.length - 1];
              if (step) {
                steps.push({ ...step, cycle: record.cycle });
                if (!reader.boolean('json'))
                  io.out(
                    `${step.at.slice(11, 19)} ${mark(step.result, style)} ${step.node}: ${printable(step.detail)}\n`,
                  );
              }
            }
            return record;
          },
  });
  const startedAt = new Date(clock.now()).toISOString();
  const incidentId = `pgw-cli-${startedAt.replace(/[-:.TZ]/g, '').slice(0, 14)}`;
  const input: RunbookInput = {
    incidentId,
    requestId: incidentId,
    target,
    trigger: { kind: 'manual', summary: 'runbook run by hand from the command line', observedAt: startedAt },
    settings: runbookSettingsOf({
      escalateAfterMs: timing.escalateAfterMs,
      recheckEveryMs: timing.recheckMs,
      maxDurationMs: timing.maxDurationMs,
    }),
  };
  const removeInterrupt = onInterrupt(async () => {
    const { StopExecutionCommand } = await import('@aws-sdk/client-sfn');
    const execution = currentPart(sfn, incidentId);
    if (execution) await sfn.send(new StopExecutionCommand({ executionArn: execution.executionArn }));
  });
  await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: LOCAL_STATE_MACHINE,
      name: incidentId,
      input: JSON.stringify(input),
    }),
  );
  // A long incident goes on in further executions: the last one says how it ended.
  const parts = await waitForIncident(sfn, incidentId);
  const execution = parts[parts.length - 1] as (typeof parts)[number];
  removeInterrupt();
  const record = execution.output as IncidentRecord | undefined;
  const report: RunbookReport = {
    incidentId,
    outcome: outcomeOf(record),
    steps,
    actions: record?.actions ?? [],
    pages: reportedMessages(sns.published),
    startedAt,
    endedAt: new Date(clock.now()).toISOString(),
  };
  if (reader.boolean('json')) io.out(`${JSON.stringify(report)}\n`);
  else {
    const verdict = outcomeLabel(report.outcome, style);
    const lines = [
      '',
      `incident ${incidentId}: ${verdict}${execution.status === 'FAILED' ? ` (the runbook failed: ${printable(String(execution.error))})` : ''}`,
      'actions:',
      ...(report.actions.length ? report.actions.map((a) => `  ${printable(actionText(a))}`) : ['  none']),
      'messages:',
      ...report.pages.map((p) => `  [${p.topic}] ${p.subject}`),
    ];
    io.out(`${lines.join('\n')}\n`);
  }
  return report.outcome === 'resolved' ? EXIT.ok : EXIT.fault;
}

function mark(result: Step['result'], style: typeof plain): string {
  if (result === 'ok') return style.ok('ok   ');
  if (result === 'fault') return style.bad('FAULT');
  if (result === 'waiting') return style.warn('WAIT ');
  return style.dim('skip ');
}
