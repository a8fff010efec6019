import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { RUNBOOK_PLACEHOLDERS, runbookDefinition } from '../../shared/runbook/definition.ts';
import { stackInstanceSuffix } from '../names.ts';

/** The functions the runbook's tasks invoke, and where its messages go. */
export interface RunbookProps {
  /** Connects to a target and takes its health snapshot. */
  readonly probe: lambda.IFunction;
  /** Terminates or cancels sessions under guardrails. */
  readonly remediate: lambda.IFunction;
  /** The runbook's logic: evidence, decisions, notifications, escalation. */
  readonly runbook: lambda.IFunction;
  /**
   * The topics the runbook's messages go to. The state machine publishes them itself (the runbook
   * function only composes them), so it may publish to these, and use their key.
   */
  readonly topics: readonly sns.ITopic[];
  /**
   * The Amazon States Language definition, with `${ProbeFunctionArn}`, `${RemediateFunctionArn}` and
   * `${RunbookFunctionArn}` placeholders for the three functions.
   * @default runbookDefinition() from shared/runbook/definition.ts
   */
  readonly definition?: Record<string, unknown>;
  /**
   * Log execution input and output. Off by default: incident payloads name target hosts and carry
   * evidence (query text of long-running sessions) that does not belong in a widely readable log.
   * @default false
   */
  readonly logExecutionData?: boolean;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * The incident runbook as a Standard Step Functions state machine: the same definition the workflow
 * tests and local mode run, with its three Lambda tasks bound to the deployed functions. Its role can
 * invoke exactly those three functions and publish to the runbook's topics.
 */
export class Runbook extends Construct {
  /** The state machine; an incident is one of its executions. */
  public readonly stateMachine: sfn.StateMachine;
  /** Where the state machine logs its executions. */
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RunbookProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      // The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's CloudWatch Logs
      // resource policy, which is limited in size. The group is retained, so its name carries this
      // creation of the stack: a stack deployed again after a destroy gets a new group instead of
      // failing on the old one's name.
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-runbook-${stackInstanceSuffix(this)}`,
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    const definition = props.definition ?? runbookDefinition();
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(JSON.stringify(definition)),
      definitionSubstitutions: {
        [RUNBOOK_PLACEHOLDERS.probe]: props.probe.functionArn,
        [RUNBOOK_PLACEHOLDERS.remediate]: props.remediate.functionArn,
        [RUNBOOK_PLACEHOLDERS.runbook]: props.runbook.functionArn,
      },
      tracingEnabled: true,
      logs: {
        destination: this.logGroup,
        level: sfn.LogLevel.ALL,
        includeExecutionData: props.logExecutionData ?? false,
      },
    });
    for (const fn of [props.probe, props.remediate, props.runbook]) fn.grantInvoke(this.stateMachine);
    for (const topic of props.topics) topic.grantPublish(this.stateMachine);

    const role = this.stateMachine.role;
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      reason:
        'Publishing to a KMS-encrypted topic needs the GenerateDataKey family on the topics’ own key, which is the only key named.',
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Step Functions log delivery (logs:CreateLogDelivery and related) and X-Ray tracing support no resource-level permissions.',
    });
    for (const fn of [props.probe, props.remediate, props.runbook]) {
      const logicalId = Stack.of(this).getLogicalId(fn.node.defaultChild as lambda.CfnFunction);
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>:*]`,
        reason:
          'Invoking a pgwarden function by any of its versions or aliases; the function itself is named.',
      });
    }
  }
}
