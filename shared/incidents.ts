/**
 * Opening an incident exactly once per outage. Several probes, an RDS event and an alarm may all fire
 * for the same outage, concurrently. Execution names are deterministic per target and day
 * (`pgw-<target>-<yyyymmdd>-<n>`), Step Functions refuses a second execution with a taken name, and a
 * trigger that finds a running execution for its target joins it instead of starting another.
 */

import { randomUUID } from 'node:crypto';
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { Clock } from './clock.ts';
import { describeError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { RunbookInput, RunbookSettings, Trigger } from './runbook/types.ts';
import type { Target } from './target.ts';

export interface IncidentDeps {
  sfn: Pick<SFNClient, 'send'>;
  stateMachineArn: string;
  clock: Clock;
  logger: Logger;
  signal?: AbortSignal;
}

export type OpenOutcome =
  | { outcome: 'opened'; incidentId: string; executionArn: string }
  | { outcome: 'joined'; incidentId: string; executionArn: string }
  | { outcome: 'stale'; incidentId: string; reason: string };

/** Most incidents one target may open in a day before names fall back to a timestamp. */
const MAX_PER_DAY = 50;

export function incidentPrefix(targetId: string): string {
  return `pgw-${targetId}-`;
}

function day(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10).replaceAll('-', '');
}

/** Execution ARN from the state machine ARN and an execution name. */
export function executionArnFor(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

function isAlreadyExists(error: unknown): boolean {
  return (error as { name?: string })?.name === 'ExecutionAlreadyExists';
}

/**
 * Starts the runbook for `target`, or joins the incident already running for it. A trigger observed
 * before the target's last incident ended is stale (a late RDS event for a resolved outage) and opens
 * nothing.
 */
export async function openIncident(
  deps: IncidentDeps,
  target: Target,
  trigger: Trigger,
  settings: RunbookSettings,
): Promise<OpenOutcome> {
  const { sfn, stateMachineArn, logger } = deps;
  const options = deps.signal ? { abortSignal: deps.signal } : {};
  const prefix = incidentPrefix(target.id);

  const running = await sfn.send(
    new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', maxResults: 1000 }),
    options,
  );
  const open = running.executions?.find((e) => e.name?.startsWith(prefix));
  if (open?.name && open.executionArn) {
    logger.info('incident already open; joining it', {
      targetId: target.id,
      incidentId: open.name,
      trigger: trigger.kind,
    });
    return { outcome: 'joined', incidentId: open.name, executionArn: open.executionArn };
  }

  const recent = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 100 }), options);
  const mine = (recent.executions ?? []).filter((e) => e.name?.startsWith(prefix));
  const last = mine[0];
  const observed = Date.parse(trigger.observedAt);
  if (last?.stopDate && last.name && Number.isFinite(observed) && last.stopDate.getTime() > observed) {
    const reason = `observed at ${trigger.observedAt}, before incident ${last.name} ended at ${last.stopDate.toISOString()}`;
    logger.info('stale trigger; no new incident', { targetId: target.id, reason });
    return { outcome: 'stale', incidentId: last.name, reason };
  }

  const today = `${prefix}${day(deps.clock.now())}-`;
  let n = mine.filter((e) => e.name?.startsWith(today)).length + 1;
  for (let attempt = 0; attempt < MAX_PER_DAY; attempt++, n++) {
    const name = n <= MAX_PER_DAY ? `${today}${n}` : `${prefix}${deps.clock.now()}`;
    const input: RunbookInput = { incidentId: name, requestId: randomUUID(), target, trigger, settings };
    try {
      const out = await sfn.send(
        new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
        options,
      );
      logger.info('incident opened', {
        targetId: target.id,
        incidentId: name,
        trigger: trigger.kind,
        summary: trigger.summary,
      });
      return {
        outcome: 'opened',
        incidentId: name,
        executionArn: out.executionArn ?? executionArnFor(stateMachineArn, name),
      };
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      const executionArn = executionArnFor(stateMachineArn, name);
      const existing = await sfn.send(new DescribeExecutionCommand({ executionArn }), options);
      if (existing.status === 'RUNNING') {
        logger.info('incident opened concurrently by another trigger; joining it', {
          targetId: target.id,
          incidentId: name,
        });
        return { outcome: 'joined', incidentId: name, executionArn };
      }
      logger.debug('execution name taken by a closed incident; trying the next', {
        name,
        error: describeError(error),
      });
    }
  }
  throw new Error(`could not find a free execution name for ${target.id} after ${MAX_PER_DAY} attempts`);
}
