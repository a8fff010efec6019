/**
 * The incident runbook as an Amazon States Language definition: the decision tree of the connection
 * runbook, one Task state per node, remediation through the guarded remediate function, a verify
 * loop, one page after the escalation time and a resolution notice. CDK deploys it (with the function
 * ARNs substituted for the placeholders) and local mode runs the very same document.
 *
 * Time is never read from `$$.Execution.StartTime`: the runbook function decides every wait and records
 * when it wakes, from its own (injectable) clock.
 *
 * Messages go out exactly once: the runbook function only composes them (a task free of side effects,
 * safe to retry), and the state machine publishes them through the `sns:publish` integration, retrying
 * only the errors with which SNS refused the message. A task that publishes and then times out would
 * publish again on its retry; a refusal cannot have been delivered.
 */

/** Names substituted with the functions' ARNs (CloudFormation `DefinitionSubstitutions`). */
export const RUNBOOK_PLACEHOLDERS = {
  probe: 'ProbeFunctionArn',
  remediate: 'RemediateFunctionArn',
  runbook: 'RunbookFunctionArn',
} as const;

/** The verification loop: every cycle starts with this state... */
export const LOOP_HEAD = 'ProbeDatabase';
/** ...and ends with this wait, the definition's only way back. */
export const LOOP_WAIT = 'WaitToRecheck';

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

/** Step Functions' optimized SNS integration: the state machine itself calls Publish. */
export const SNS_PUBLISH = 'arn:aws:states:::sns:publish';

/**
 * The messages the runbook function composes into `incident.outbox`, one slot per publishing state.
 * The function fills a slot with the Publish input; the state that publishes it replaces it with the
 * receipt, so a message is not carried for the rest of the incident.
 */
export const OUTBOX_SLOTS = [
  'opened',
  'announcement',
  'page',
  'resolved',
  'resolvedOnCall',
  'final',
  'failed',
] as const;
export type OutboxSlot = (typeof OUTBOX_SLOTS)[number];

/**
 * The errors with which SNS answers that it did not take a message (throttling, its own internal error,
 * throttling by the topic's KMS key): publishing again cannot deliver it twice. The optimized
 * integration names a service's errors `SNS.<exception>`. Anything else (a timeout, a dropped
 * connection) may have followed a delivery and is never retried.
 */
export const NOT_PUBLISHED = [
  'SNS.ThrottledException',
  'SNS.InternalErrorException',
  'SNS.KMSThrottlingException',
] as const;

type State = Record<string, unknown>;

const placeholder = (name: string) => `\${${name}}`;

/**
 * Transient failures of a function task worth retrying with backoff: throttling, Lambda service
 * hiccups, timeouts. Every function task is safe to run twice (none publishes; a destructive action
 * re-checks the state it acts on). The throttling names are each service's own:
 * `ThrottlingException` (Step Functions, CloudWatch JSON), `Throttling` (RDS, CloudWatch query),
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
      // A function's own deadline (shared/lambda.ts stops it a second before Lambda would), or an SDK call's.
      'TimeoutError',
      'ThrottlingException',
      'Throttling',
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

/**
 * Ends the execution successfully with the incident record as its output. A Pass state: cfn-lint's
 * schema refuses OutputPath on a Succeed state, which the States Language allows.
 */
const END_WITH_RECORD: State = { Type: 'Pass', OutputPath: '$.incident', End: true };

/** Publishes the message composed in `incident.outbox.<slot>`. */
function publishTask(slot: OutboxSlot, next: string, catchTo: string): State {
  const message = `$.incident.outbox.${slot}`;
  return {
    Type: 'Task',
    Resource: SNS_PUBLISH,
    Parameters: {
      'TopicArn.$': `${message}.TopicArn`,
      'Subject.$': `${message}.Subject`,
      'Message.$': `${message}.Message`,
      'MessageStructure.$': `${message}.MessageStructure`,
      'MessageAttributes.$': `${message}.MessageAttributes`,
    },
    ResultSelector: { 'MessageId.$': '$.MessageId' },
    ResultPath: message,
    TimeoutSeconds: 60,
    Retry: [
      {
        ErrorEquals: [...NOT_PUBLISHED],
        IntervalSeconds: 2,
        MaxAttempts: 5,
        BackoffRate: 2,
        MaxDelaySeconds: 30,
        JitterStrategy: 'FULL',
      },
    ],
    Catch: CATCH_ALL(catchTo),
    Next: next,
  };
}

/** Composes the notice that the runbook failed (into `incident.outbox.failed`), whatever the state. */
function failureTask(extra: Record<string, unknown> = {}): State {
  return {
    Type: 'Task',
    Resource: placeholder(RUNBOOK_PLACEHOLDERS.runbook),
    Parameters: { action: 'failed', ...extra, 'state.$': '$', 'executionArn.$': '$$.Execution.Id' },
    ResultPath: '$.incident',
    TimeoutSeconds: 90,
    Retry: RETRY,
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: null, Next: 'RunbookCrashed' }],
    Next: 'PublishFailure',
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

  // A fresh incident announces itself; a continued one (see shared/runbook/history.ts) goes on waiting.
  states.OpenIncident = runbookTask('open', 'AfterOpen');
  states.AfterOpen = decisionChoice({ resume: LOOP_WAIT }, 'PublishOpened');
  states.PublishOpened = publishTask('opened', LOOP_HEAD, 'RunbookFailed');
  states[LOOP_HEAD] = probeTask('CheckRunning', 'health', '$.probe', 'RunbookFailed');

  // The decision tree: one node per state, each recorded by the runbook function.
  const afterNode: Record<RunbookNode, Record<string, string>> = {
    running: { continue: NODE_STATES.accepting_connections, start_instance: 'StartInstance' },
    accepting_connections: {
      continue: NODE_STATES.network,
      reboot_instance: 'AnnounceRecovery',
      failover_cluster: 'AnnounceRecovery',
    },
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
  // A reboot or failover (opt-in, once per incident) is announced first, then sent.
  states.AnnounceRecovery = runbookTask('announce', 'PublishAnnouncement');
  states.PublishAnnouncement = publishTask('announcement', 'RecoverDatabase', 'RunbookFailed');
  states.RecoverDatabase = runbookTask('recover', 'AfterEvaluation');

  // Still unhealthy: page once when the escalation time has passed, give up at the maximum duration.
  states.EvaluateIncident = runbookTask('evaluate', 'AfterEvaluation');
  states.AfterEvaluation = decisionChoice(
    { page: 'GatherEvidence', final: 'FinalNotice', continue_as_new: 'ContinueAsNew' },
    LOOP_WAIT,
  );
  // Evidence that cannot be gathered must not hold the page back.
  states.GatherEvidence = runbookTask('evidence', 'ComposePage', {}, 'ComposePage');
  states.ComposePage = runbookTask('page', 'PageOnCall');
  states.PageOnCall = publishTask('page', LOOP_WAIT, 'PageNotSent');
  // SNS refused the page, or the call failed: on-call was not told, so the failure notice pages.
  states.PageNotSent = failureTask({ pageNotSent: true });
  states[LOOP_WAIT] = { Type: 'Wait', SecondsPath: '$.incident.waitSeconds', Next: LOOP_HEAD };

  // A long incident goes on in a new execution, carrying its record, before this one's history is full.
  states.ContinueAsNew = runbookTask('continue', 'IncidentContinued', {
    'stateMachineArn.$': '$$.StateMachine.Id',
  });
  states.IncidentContinued = END_WITH_RECORD;

  // Healthy again: integrity summary, resolution notice.
  states.CheckIntegrity = probeTask(
    'ResolveIncident',
    'integrity',
    '$.integrity',
    'ResolveIncident',
    '$.integrity',
  );
  states.ResolveIncident = runbookTask('resolve', 'PublishResolution');
  states.PublishResolution = publishTask('resolved', 'ResolvedAfterPage', 'RunbookFailed');
  // On-call, once paged, hears of the resolution too.
  states.ResolvedAfterPage = {
    Type: 'Choice',
    Choices: [{ Variable: '$.incident.paged', BooleanEquals: true, Next: 'PublishResolutionToOnCall' }],
    Default: 'IncidentResolved',
  };
  states.PublishResolutionToOnCall = publishTask('resolvedOnCall', 'IncidentResolved', 'RunbookFailed');
  states.IncidentResolved = END_WITH_RECORD;

  states.FinalNotice = runbookTask('final', 'PublishFinalNotice');
  states.PublishFinalNotice = publishTask('final', 'IncidentUnresolved', 'RunbookFailed');
  states.IncidentUnresolved = END_WITH_RECORD;

  // The worst case: the runbook itself failed. Somebody is told, and the execution fails visibly.
  states.RunbookFailed = failureTask();
  states.PublishFailure = publishTask('failed', 'RunbookCrashed', 'RunbookCrashed');
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
