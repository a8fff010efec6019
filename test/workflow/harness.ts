/**
 * Runs the incident workflow locally for a test: the definition CDK synthesizes for deployment, the real function cores against a
 * real PostgreSQL, AWS faked at the SDK boundary by the local services, and a manual clock that jumps
 * to every wake-up time so twenty minutes pass in milliseconds.
 */

import { LocalCloudWatch, LocalRds, LocalSecretsManager, LocalSns } from '../../cli/local/aws.ts';
import type { LocalExecution, LocalStepFunctions } from '../../cli/local/step-functions.ts';
import {
  createLocalWorkflow,
  LOCAL_FUNCTIONS,
  LOCAL_STATE_MACHINE,
  type LocalWorkflowOptions,
  waitForIncident,
} from '../../cli/local/workflow.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { RunbookInput, RunbookSettings, Trigger } from '../../shared/runbook/types.ts';
import {
  DEFAULT_REMEDIATION,
  DEFAULT_THRESHOLDS,
  type RemediationPolicy,
  type Target,
  type Thresholds,
} from '../../shared/target.ts';
import { ManualClock } from '../helpers/clock.ts';
import type { TestServer } from '../helpers/postgres.ts';
import { SYNTHESIZED_FUNCTION_ARNS, synthesizedRunbookDefinition } from '../infra/definition.ts';

export const SECRET_ID = 'arn:aws:secretsmanager:local-1:000000000000:secret:pgwarden-monitor';

let deployed: Record<string, unknown> | undefined;

/**
 * The state machine definition as CDK synthesizes it for deployment, its function ARNs bound to the
 * local function cores. Synthesized once per test file.
 */
export function deployedDefinition(): Record<string, unknown> {
  if (!deployed) {
    let text = JSON.stringify(synthesizedRunbookDefinition());
    for (const [role, arn] of Object.entries(SYNTHESIZED_FUNCTION_ARNS)) {
      text = text.replaceAll(arn, LOCAL_FUNCTIONS[role as keyof typeof LOCAL_FUNCTIONS]);
    }
    deployed = JSON.parse(text) as Record<string, unknown>;
  }
  return deployed;
}
export const MINUTE = 60_000;

export interface Scenario {
  server: TestServer;
  /** Credentials the monitor uses (the secret's content). */
  credentials: { username: string; password: string };
  remediation?: Partial<RemediationPolicy>;
  thresholds?: Partial<Thresholds>;
  settings?: Partial<RunbookSettings>;
  trigger?: Partial<Trigger>;
  /** Things that happen at a given number of minutes after the incident opened. */
  at?: Array<{ minute: number; run: () => Promise<void> }>;
  wrap?: LocalWorkflowOptions['wrap'];
  definition?: Record<string, unknown>;
  /** The execution name, which is the incident id. @default "pgw-local-db-test-1" */
  incidentId?: string;
  /** Called with the local Step Functions, SNS and clock before the incident starts. */
  onWorkflow?: (workflow: { sfn: LocalStepFunctions; sns: LocalSns; clock: ManualClock }) => void;
  /** The RDS resource the target names. @default { instanceId: 'local-db' } */
  rdsResource?: Target['rds'];
  /** RDS at the SDK boundary. @default the local RDS, reporting the server available or stopped */
  rdsClient?: LocalWorkflowOptions['rds'];
}

export interface Outcome {
  /** The execution that ended the incident. */
  execution: LocalExecution;
  /** Every execution that carried the incident, in order (a long one is continued in new ones). */
  executions: LocalExecution[];
  published: LocalSns['published'];
  pages: LocalSns['published'];
  notifications: LocalSns['published'];
  openedAt: number;
  /** Minutes after opening at which each message was published. */
  minuteOf(message: LocalSns['published'][number]): number;
  output: Record<string, unknown>;
}

let runs = 0;

export async function runIncident(scenario: Scenario): Promise<Outcome> {
  const clock = new ManualClock(Date.now());
  const secrets = new LocalSecretsManager();
  // A secret of its own per run: resolved credentials are cached per secret for five minutes.
  runs += 1;
  const secretId = `${SECRET_ID}-${runs}`;
  secrets.put(secretId, scenario.credentials);
  const sns = new LocalSns(clock);
  const rds = new LocalRds(clock);
  rds.add({
    id: 'local-db',
    status: () => (scenario.server.running ? 'available' : 'stopped'),
    logLines: () => scenario.server.logLines(),
    start: () => scenario.server.start(),
  });
  const target: Target = {
    id: 'local-db',
    connection: {
      host: '127.0.0.1',
      port: scenario.server.port,
      database: 'postgres',
      auth: { kind: 'secret', secretId },
      tls: { mode: 'disable' },
    },
    rds: scenario.rdsResource ?? { instanceId: 'local-db' },
    thresholds: { ...DEFAULT_THRESHOLDS, ...scenario.thresholds },
    remediation: { ...DEFAULT_REMEDIATION, ...scenario.remediation },
  };
  const openedAt = clock.now();
  const pending = [...(scenario.at ?? [])].sort((a, b) => a.minute - b.minute);
  const sfn = createLocalWorkflow({
    definition: scenario.definition ?? deployedDefinition(),
    clock,
    logger: silentLogger,
    catalog: { targets: [target], defaults: {} },
    secrets,
    sns,
    rds: scenario.rdsClient ?? rds,
    cloudwatch: new LocalCloudWatch(),
    waits: 'virtual',
    probeConfig: { connectTimeoutMs: 1_000, statementTimeoutMs: 2_000 },
    ...(scenario.wrap ? { wrap: scenario.wrap } : {}),
    beforeRunbookTask: async (now) => {
      while (pending.length > 0 && now >= openedAt + (pending[0]?.minute ?? 0) * MINUTE)
        await pending.shift()?.run();
    },
  });
  scenario.onWorkflow?.({ sfn, sns, clock });
  const input: RunbookInput = {
    incidentId: scenario.incidentId ?? 'pgw-local-db-test-1',
    requestId: 'test',
    target,
    trigger: {
      kind: 'probe',
      summary: 'test trigger',
      observedAt: new Date(openedAt).toISOString(),
      ...scenario.trigger,
    },
    settings: {
      escalateAfterSeconds: 1_200,
      recheckSeconds: 60,
      maxDurationSeconds: 3 * 3_600,
      ...scenario.settings,
    },
  };
  await sfn.send(
    new (await import('@aws-sdk/client-sfn')).StartExecutionCommand({
      stateMachineArn: LOCAL_STATE_MACHINE,
      name: input.incidentId,
      input: JSON.stringify(input),
    }),
  );
  const executions = await waitForIncident(sfn, input.incidentId);
  const execution = executions[executions.length - 1] as LocalExecution;
  const published = sns.published;
  return {
    execution,
    executions,
    published,
    pages: published.filter((m) => m.topic === 'pgwarden-pages'),
    notifications: published.filter((m) => m.topic === 'pgwarden-notifications'),
    openedAt,
    minuteOf: (m) => (m.at - openedAt) / MINUTE,
    output: (execution.output ?? {}) as Record<string, unknown>,
  };
}
