/**
 * Opening an incident exactly once per outage. Several probes, an RDS event and an alarm may all fire
 * for the same outage, concurrently. Execution names are deterministic per target and day
 * (`pgw-<target>-<yyyymmdd>-<n>`), Step Functions refuses a second execution with a taken name, and a
 * trigger that finds a running execution for its target joins it instead of starting another.
 *
 * A long incident runs in several executions: the runbook continues it in `<incident>-part<n>`
 * (see shared/runbook/history.ts). Every part is the same incident: a trigger joins whichever part
 * runs, and the day's numbering counts incidents, not parts.
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
import {
  continuationName,
  executionArnFor,
  incidentIdOf,
  incidentPrefix,
  isIncidentOf,
  partOf,
} from './incident-names.ts';
import type { Logger } from './logger.ts';
import type { RunbookInput, RunbookSettings, Trigger } from './runbook/types.ts';
import type { Target } from './target.ts';

export { continuationName, executionArnFor, incidentIdOf, incidentPrefix, isIncidentOf, partOf };

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

function day(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10).replaceAll('-', '');
}

function isAlreadyExists(error: unknown): boolean {
  return (error as { name?: string })?.name === 'ExecutionAlreadyExists';
}

interface ExecutionSeen {
  name?: string | undefined;
  executionArn?: string | undefined;
  status?: string | undefined;
  stopDate?: Date | undefined;
}

/** Hand-overs followed at most, past what ListExecutions shows (it lags by seconds, parts are minutes apart). */
const MAX_HANDOVERS_FOLLOWED = 3;

/**
 * The execution that carries the incident `last` belonged to, now. ListExecutions is eventually
 * consistent: just after a hand-over it may show the part that ended and not yet the part that
 * continues it, so the next parts are asked for by name (DescribeExecution).
 */
async function latestPart(
  deps: IncidentDeps,
  last: ExecutionSeen,
  options: { abortSignal?: AbortSignal },
): Promise<ExecutionSeen> {
  let current = last;
  for (let hop = 0; hop < MAX_HANDOVERS_FOLLOWED && current.name && current.status === 'SUCCEEDED'; hop++) {
    const name = continuationName(incidentIdOf(current.name), partOf(current.name) + 1);
    const executionArn = executionArnFor(deps.stateMachineArn, name);
    try {
      const next = await deps.sfn.send(new DescribeExecutionCommand({ executionArn }), options);
      current = { name, executionArn, status: next.status, stopDate: next.stopDate };
    } catch (error) {
      if ((error as { name?: string })?.name === 'ExecutionDoesNotExist') break;
      throw error;
    }
  }
  return current;
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
  const joined = (execution: ExecutionSeen): OpenOutcome => {
    const incidentId = incidentIdOf(execution.name as string);
    logger.info('incident already open; joining it', {
      targetId: target.id,
      incidentId,
      execution: execution.name,
      trigger: trigger.kind,
    });
    return { outcome: 'joined', incidentId, executionArn: execution.executionArn as string };
  };
  const open = running.executions?.find((e) => e.name && isIncidentOf(e.name, target.id));
  if (open?.name && open.executionArn) return joined(open);

  const recent = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 100 }), options);
  const mine = (recent.executions ?? []).filter((e) => e.name && isIncidentOf(e.name, target.id));
  const last = mine[0] ? await latestPart(deps, mine[0], options) : undefined;
  if (last?.status === 'RUNNING' && last.name && last.executionArn) return joined(last);
  const observed = Date.parse(trigger.observedAt);
  if (last?.stopDate && last.name && Number.isFinite(observed) && last.stopDate.getTime() > observed) {
    const incidentId = incidentIdOf(last.name);
    const reason = `observed at ${trigger.observedAt}, before incident ${incidentId} ended at ${last.stopDate.toISOString()}`;
    logger.info('stale trigger; no new incident', { targetId: target.id, reason });
    return { outcome: 'stale', incidentId, reason };
  }

  const today = `${prefix}${day(deps.clock.now())}-`;
  const incidentsToday = new Set(
    mine.map((e) => incidentIdOf(e.name as string)).filter((id) => id.startsWith(today)),
  );
  let n = incidentsToday.size + 1;
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
