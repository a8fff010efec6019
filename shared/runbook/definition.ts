/**
 * The incident runbook as an Amazon States Language definition: the decision tree of the connection
 * runbook, one Task state per node, remediation through the guarded remediate function, a verify
 * loop, one page after the escalation time and a resolution notice. CDK deploys it (with the function
 * ARNs substituted for the placeholders) and local mode runs the very same document.
 *
 * Time is never read from `$$.Execution.StartTime`: the runbook function decides every wait and records
 * when it wakes, from its own (injectable) clock.
 */

/** Names substituted with the functions' ARNs (CloudFormation `DefinitionSubstitutions`). */
export const RUNBOOK_PLACEHOLDERS = {
  probe: 'ProbeFunctionArn',
  remediate: 'RemediateFunctionArn',
  runbook: 'RunbookFunctionArn',
} as const;

/** The decision-tree nodes, in order. Their names are part of the CLI's JSON contract. */
export const RUNBOOK_NODES = [
  'running',
  'accepting_connections',
  'network',
  'pool',
  'auth',
  'queries',
] as const;
export type RunbookNode = (typeof RUNBOOK_NODES)[number];

/** The remediation each remediate state asks for. */
export const REMEDIATION_STATES = {
  RemediatePool: ['idle', 'idle_in_transaction'],
  RemediateBlockers: ['blockers'],
  RemediateIdleInTransaction: ['idle_in_transaction'],
  CancelQueries: ['cancel_queries'],
} as const;

type State = Record<string, unknown>;

const placeholder = (name: string) => `\${${name}}`;

/**
 * Transient failures worth retrying with backoff: throttling, Lambda service hiccups, timeouts. The
 * throttling names are each service's own: `ThrottlingException` (Step Functions, CloudWatch JSON),
 * `Throttling` (RDS, CloudWatch query), `ThrottledException` (SNS Publish, which pages go through),
 * `TooManyRequestsException` (Lambda).
 */
const RETRY = [
  {
    ErrorEquals: [
      'Lambda.ServiceException',
      'Lambda.AWSLambdaException',
      'Lambda.SdkClientException',
      'Lambda.TooManyRequestsException',
      'Lambda.Unknown',
      'Sandbox.Timedout',
      'States.Timeout',
      'ThrottlingException',
      'Throttling',
      'ThrottledException',
      'TooManyRequestsException',
      'ServiceUnavailable',
      'InternalFailure',
      'InvocationError',
    ],
    IntervalSeconds: 2,
    MaxAttempts: 5,
    BackoffRate: 2,
    MaxDelaySeconds: 30,
    JitterStrategy: 'FULL',
  },
];

const CATCH_ALL = (next: string) => [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: next }];

function runbookTask(
  action: string,
  next: string,
  extra: Record<string, unknown> = {},
  catchTo = 'RunbookFailed',
): State {
  return {
    Type: 'Task',
    // The function's ARN as the resource: its return value is the task result, stored whole.
    Resource: placeholder(RUNBOOK_PLACEHOLDERS.runbook),
    Parameters: { action, ...extra, 'state.$': '$', 'executionArn.$': '$$.Execution.Id' },
    ResultPath: '$.incident',
    TimeoutSeconds: 90,
    Retry: RETRY,
    Catch: CATCH_ALL(catchTo),
    Next: next,
  };
}

function remediateTask(actions: readonly string[]): State {
  return {
    Type: 'Task',
    Resource: placeholder(RUNBOOK_PLACEHOLDERS.remediate),
    Parameters: {
      'targetId.$': '$.target.id',
      'connection.$': '$.target.connection',
      'policy.$': '$.target.remediation',
      actions: [...actions],
      'pressure.$': '$.incident.pressure',
      'incidentId.$': '$.incidentId',
    },
    ResultPath: '$.remediation',
    TimeoutSeconds: 90,
    Retry: RETRY,
    // A failed remediation is recorded and the incident goes on; it never loses the incident.
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.remediation', Next: 'RecordRemediation' }],
    Next: 'RecordRemediation',
  };
}

function probeTask(
  next: string,
  mode: 'health' | 'integrity',
  resultPath: string,
  catchTo: string,
  catchPath = '$.error',
): State {
  return {
    Type: 'Task',
    Resource: placeholder(RUNBOOK_PLACEHOLDERS.probe),
    Parameters: {
      'targetId.$': '$.target.id',
      'connection.$': '$.target.connection',
      'longQueryThresholdSeconds.$': '$.target.thresholds.longQuerySeconds',
      mode,
    },
    ResultPath: resultPath,
    TimeoutSeconds: 60,
    Retry: RETRY,
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: catchPath, Next: catchTo }],
    Next: next,
  };
}

const NODE_STATES: Record<RunbookNode, string> = {
  running: 'CheckRunning',
  accepting_connections: 'CheckAcceptingConnections',
  network: 'CheckNetwork',
  pool: 'CheckPool',
  auth: 'CheckAuth',
  queries: 'CheckQueries',
};

const pascal = (s: string) => s.replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());

function decisionChoice(choices: Record<string, string>, fallback: string): State {
  return {
    Type: 'Choice',
    Choices: Object.entries(choices).map(([decision, next]) => ({
      Variable: '$.incident.decision',
      StringEquals: decision,
      Next: next,
    })),
    Default: fallback,
  };
}

/** The whole state machine. */
export function runbookDefinition(): Record<string, unknown> {
  const states: Record<string, State> = {};

  states.OpenIncident = runbookTask('open', 'ProbeDatabase');
  states.ProbeDatabase = probeTask('CheckRunning', 'health', '$.probe', 'RunbookFailed');

  // The decision tree: one node per state, each recorded by the runbook function.
  const afterNode: Record<RunbookNode, Record<string, string>> = {
    running: { continue: NODE_STATES.accepting_connections, start_instance: 'StartInstance' },
    accepting_connections: { continue: NODE_STATES.network },
    network: { continue: NODE_STATES.pool },
    pool: { continue: NODE_STATES.auth, remediate_pool: 'RemediatePool' },
    auth: { continue: NODE_STATES.queries },
    queries: {
      healthy: 'CheckIntegrity',
      remediate_blockers: 'RemediateBlockers',
      remediate_idle_in_transaction: 'RemediateIdleInTransaction',
      cancel_queries: 'CancelQueries',
    },
  };
  for (const node of Object.keys(NODE_STATES) as RunbookNode[]) {
    const name = NODE_STATES[node];
    states[name] = runbookTask('node', `After${pascal(node)}`, { node });
    states[`After${pascal(node)}`] = decisionChoice(afterNode[node], 'EvaluateIncident');
  }

  for (const [name, actions] of Object.entries(REMEDIATION_STATES)) states[name] = remediateTask(actions);
  // After acting, the clock still runs: the same escalation decision as a plain re-check.
  states.RecordRemediation = runbookTask('record', 'AfterEvaluation');
  states.StartInstance = runbookTask('start_instance', 'AfterEvaluation');

  // Still unhealthy: page once when the escalation time has passed, give up at the maximum duration.
  states.EvaluateIncident = runbookTask('evaluate', 'AfterEvaluation');
  states.AfterEvaluation = decisionChoice({ page: 'GatherEvidence', final: 'FinalNotice' }, 'WaitToRecheck');
  // Evidence that cannot be gathered must not hold the page back.
  states.GatherEvidence = runbookTask('evidence', 'PageOnCall', {}, 'PageOnCall');
  states.PageOnCall = runbookTask('page', 'WaitToRecheck');
  states.WaitToRecheck = { Type: 'Wait', SecondsPath: '$.incident.waitSeconds', Next: 'ProbeDatabase' };

  // Healthy again: integrity summary, resolution notice.
  states.CheckIntegrity = probeTask(
    'ResolveIncident',
    'integrity',
    '$.integrity',
    'ResolveIncident',
    '$.integrity',
  );
  states.ResolveIncident = runbookTask('resolve', 'IncidentResolved');
  states.IncidentResolved = { Type: 'Succeed', OutputPath: '$.incident' };

  states.FinalNotice = runbookTask('final', 'IncidentUnresolved');
  states.IncidentUnresolved = { Type: 'Succeed', OutputPath: '$.incident' };

  // The worst case: the runbook itself failed. Somebody is told, and the execution fails visibly.
  states.RunbookFailed = {
    Type: 'Task',
    Resource: placeholder(RUNBOOK_PLACEHOLDERS.runbook),
    Parameters: { action: 'failed', 'state.$': '$', 'executionArn.$': '$$.Execution.Id' },
    ResultPath: null,
    TimeoutSeconds: 90,
    Retry: RETRY,
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: null, Next: 'RunbookCrashed' }],
    Next: 'RunbookCrashed',
  };
  states.RunbookCrashed = {
    Type: 'Fail',
    Error: 'RunbookFailed',
    Cause: 'The incident runbook failed; on-call was told.',
  };

  return {
    Comment:
      'pgwarden incident runbook: decision tree, guarded remediation, verify loop, escalation after the configured time',
    StartAt: 'OpenIncident',
    States: states,
  };
}
