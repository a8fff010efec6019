/**
 * The incident workflow on this machine: the same state-machine definition CDK deploys, run by the
 * local Step Functions, its Lambda tasks bound to the same function cores, the AWS calls answered by
 * the local services. With virtual waits every Wait lasts no time and the runbook's clock jumps to
 * the moment it was waiting for, so a twenty-minute escalation plays out in milliseconds.
 */
import { PublishCommand, type PublishCommandInput, type SNSClient } from '@aws-sdk/client-sns';
import { runProbe } from '../../functions/probe/probe.ts';
import { probeSettings } from '../../functions/probe/settings.ts';
import { runRemediate } from '../../functions/remediate/remediate.ts';
import { remediateSettings } from '../../functions/remediate/settings.ts';
import { type RunbookDeps, runRunbook } from '../../functions/runbook/runbook.ts';
import type { TargetCatalog } from '../../shared/binding.ts';
import type { Clock } from '../../shared/clock.ts';
import { incidentIdOf } from '../../shared/incidents.ts';
import type { Logger } from '../../shared/logger.ts';
import { RUNBOOK_PLACEHOLDERS, runbookDefinition, SNS_PUBLISH } from '../../shared/runbook/definition.ts';
import { type LocalExecution, LocalStepFunctions, type LocalStepFunctionsOptions } from './step-functions.ts';

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'local-1';

export const LOCAL_FUNCTIONS = {
  probe: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:pgwarden-probe`,
  remediate: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:pgwarden-remediate`,
  runbook: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:pgwarden-runbook`,
} as const;

/** What a Task state calls: one of the three functions, or SNS through the state machine's integration. */
export type LocalResource = keyof typeof LOCAL_FUNCTIONS | 'sns';

export const LOCAL_TOPICS = {
  pages: `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:pgwarden-pages`,
  notifications: `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:pgwarden-notifications`,
} as const;

export const LOCAL_STATE_MACHINE = `arn:aws:states:local:${LOCAL_ACCOUNT}:stateMachine:pgwarden-runbook`;

/** Replaces the function placeholders (`${ProbeFunctionArn}`, ...) as CloudFormation does on deploy. */
export function substitute(
  definition: Record<string, unknown>,
  arns: Record<keyof typeof RUNBOOK_PLACEHOLDERS, string>,
): Record<string, unknown> {
  let text = JSON.stringify(definition);
  for (const [key, name] of Object.entries(RUNBOOK_PLACEHOLDERS)) {
    text = text.replaceAll(`\${${name}}`, arns[key as keyof typeof RUNBOOK_PLACEHOLDERS]);
  }
  return JSON.parse(text);
}

function taskNames(definition: Record<string, unknown>): string[] {
  return Object.entries(definition.States as Record<string, { Type: string }>)
    .filter(([, s]) => s.Type === 'Task')
    .map(([name]) => name);
}

function waitNames(definition: Record<string, unknown>): string[] {
  return Object.entries(definition.States as Record<string, { Type: string }>)
    .filter(([, s]) => s.Type === 'Wait')
    .map(([name]) => name);
}

export interface LocalWorkflowOptions {
  /** A definition whose Lambda resources are the LOCAL_FUNCTIONS ARNs. @default runbookDefinition() substituted */
  definition?: Record<string, unknown>;
  clock: Clock & { set?(epochMs: number): void };
  logger: Logger;
  /** The targets the functions know, as a deployment's environment gives them. */
  catalog: TargetCatalog;
  /** Secrets Manager (the local one holds the embedded server's password). */
  secrets: { send(command: unknown): Promise<unknown> };
  /** What the state machine's `sns:publish` states publish to. */
  sns: Pick<SNSClient, 'send'>;
  rds: RunbookDeps['rds'];
  cloudwatch: RunbookDeps['cloudwatch'];
  /** `virtual`: Waits take no time and the clock (which must have `set`) jumps to the wake-up time. */
  waits: 'real' | 'virtual';
  /** Called before every runbook task with the time it runs at (tests change the world here). */
  beforeRunbookTask?: (now: number, event: { action: string; node?: string }) => Promise<void>;
  /** Wraps each function core and the SNS integration (tests inject task failures). */
  wrap?: (
    fn: LocalResource,
    call: (payload: unknown) => Promise<unknown>,
  ) => (payload: unknown) => Promise<unknown>;
  probeConfig?: { connectTimeoutMs: number; statementTimeoutMs: number };
  onStateEntered?: LocalStepFunctionsOptions['onStateEntered'];
  stateMachineArn?: string;
}

export function createLocalWorkflow(options: LocalWorkflowOptions): LocalStepFunctions {
  const definition = options.definition ?? substitute(runbookDefinition(), LOCAL_FUNCTIONS);
  const { clock, logger } = options;
  const probeConfig = options.probeConfig ?? probeSettings.defaults;
  // The local services answer the same commands as the SDK clients they stand in for.
  const secrets = options.secrets as Parameters<typeof runProbe>[2]['secrets'];

  const { catalog } = options;
  const probe = (payload: unknown) =>
    runProbe(payload, { ...probeConfig, catalog }, { logger, secrets, clock });
  const remediate = (payload: unknown) =>
    runRemediate(
      payload,
      {
        connectTimeoutMs: probeConfig.connectTimeoutMs,
        statementTimeoutMs: remediateSettings.defaults.statementTimeoutMs,
        catalog,
      },
      { logger, secrets, clock },
    );
  const runbook = async (payload: unknown) => {
    const event = payload as { action: string; node?: string; state?: { incident?: { wakeAt?: string } } };
    const wakeAt = event.state?.incident?.wakeAt ? Date.parse(event.state.incident.wakeAt) : Number.NaN;
    if (options.waits === 'virtual' && clock.set && wakeAt > clock.now()) clock.set(wakeAt);
    await options.beforeRunbookTask?.(clock.now(), {
      action: event.action,
      ...(event.node ? { node: event.node } : {}),
    });
    return runRunbook(payload, {
      catalog,
      // The runbook continues a long incident in a new execution of this very state machine.
      sfn: { send: (command: unknown) => machine.send(command) } as RunbookDeps['sfn'],
      rds: options.rds,
      cloudwatch: options.cloudwatch,
      topics: LOCAL_TOPICS,
      clock,
      logger,
    });
  };
  const publish = async (parameters: unknown) => {
    try {
      const out = await options.sns.send(new PublishCommand(parameters as PublishCommandInput));
      return { MessageId: out.MessageId };
    } catch (error) {
      // As Step Functions names a service's errors in its optimized integrations: SNS.<exception>.
      if (error instanceof Error) error.name = `SNS.${error.name}`;
      throw error;
    }
  };
  const wrap = options.wrap ?? ((_: LocalResource, call: (payload: unknown) => Promise<unknown>) => call);
  const virtual = options.waits === 'virtual';
  const machine = new LocalStepFunctions({
    definition,
    stateMachineArn: options.stateMachineArn ?? LOCAL_STATE_MACHINE,
    functions: {
      [LOCAL_FUNCTIONS.probe]: wrap('probe', probe),
      [LOCAL_FUNCTIONS.remediate]: wrap('remediate', remediate),
      [LOCAL_FUNCTIONS.runbook]: wrap('runbook', runbook),
      [SNS_PUBLISH]: wrap('sns', publish),
    },
    clock,
    ...(virtual
      ? {
          waitTimeOverrides: Object.fromEntries(waitNames(definition).map((n) => [n, 0])),
          retryIntervalOverrides: Object.fromEntries(taskNames(definition).map((n) => [n, 0])),
        }
      : {}),
    ...(options.onStateEntered ? { onStateEntered: options.onStateEntered } : {}),
  });
  return machine;
}

/** The execution that carries `incidentId` now (or last did): its latest part. */
export function currentPart(sfn: LocalStepFunctions, incidentId: string): LocalExecution | undefined {
  let latest: LocalExecution | undefined;
  for (const execution of sfn.executions.values())
    if (incidentIdOf(execution.name) === incidentId) latest = execution;
  return latest;
}

/**
 * Waits for an incident to end, following it through the executions that continued it; returns
 * them in order, the one that ended the incident last.
 */
export async function waitForIncident(
  sfn: LocalStepFunctions,
  incidentId: string,
): Promise<LocalExecution[]> {
  const parts: LocalExecution[] = [];
  let name: string | undefined = incidentId;
  while (name !== undefined) {
    const execution = await sfn.wait(name);
    parts.push(execution);
    const next = (execution.output as { continuedAs?: unknown } | undefined)?.continuedAs;
    name = execution.status === 'SUCCEEDED' && typeof next === 'string' ? next : undefined;
  }
  return parts;
}
