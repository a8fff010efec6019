/**
 * Structural guards over a synthesized template: rules AWS enforces only at deploy or at 3 a.m.,
 * checked by walking the template's own graph. Each guard returns its findings and how much it
 * checked, and throws when it finds nothing to check at all, so a guard can never pass by matching
 * nothing.
 */
import type { Json } from './synth.ts';

export interface GuardResult {
  /** One line per problem, naming the resource. */
  findings: string[];
  /** How many things the guard checked (alarm-topic pairs, roles, resources). */
  checked: number;
}

type Resources = Record<string, Json>;

const CLOUDWATCH = 'cloudwatch.amazonaws.com';

/**
 * A CloudFormation value as text, with pseudo parameters and references as `{Name}` placeholders:
 * enough to compare an ARN pattern with an ARN built from the same parts.
 */
export function render(value: Json): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object') {
    if (typeof value.Ref === 'string') return `{${value.Ref}}`;
    if (Array.isArray(value['Fn::GetAtt'])) return `{${value['Fn::GetAtt'].join('.')}}`;
    if (Array.isArray(value['Fn::Join'])) {
      const [delimiter, parts] = value['Fn::Join'] as [string, Json[]];
      return parts.map(render).join(delimiter);
    }
    if (value['Fn::Select'] !== undefined) return `{select:${JSON.stringify(value['Fn::Select'])}}`;
  }
  return `{${JSON.stringify(value)}}`;
}

/** IAM's `*` and `?` wildcards, matched over the rendered text. */
function wildcard(pattern: string, text: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${regex}$`, 's').test(text);
}

const list = (value: Json): Json[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** Whether a statement's Action covers `action` (IAM actions are case-insensitive). */
function allowsAction(statement: Json, action: string): boolean {
  return list(statement.Action).some((a) => wildcard(String(a).toLowerCase(), action.toLowerCase()));
}

function hasServicePrincipal(statement: Json, service: string): boolean {
  const principal = statement.Principal;
  if (principal === '*' || principal?.AWS === '*') return true;
  return list(principal?.Service).includes(service);
}

/**
 * Evaluates a statement's Condition against a request context: true when every condition holds.
 * A key the request does not carry fails the condition (IfExists is not used here), and an operator
 * this evaluator does not know counts as failing, so an Allow it cannot prove is never assumed.
 */
function conditionsHold(condition: Json, context: Record<string, string>): boolean {
  for (const [operator, tests] of Object.entries((condition ?? {}) as Record<string, Record<string, Json>>)) {
    for (const [key, expected] of Object.entries(tests)) {
      const actual = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
      if (actual === undefined) return false;
      const values = list(expected).map(render);
      const matches = (() => {
        switch (operator) {
          case 'StringEquals':
          case 'ArnEquals':
          case 'Bool':
            return values.some((v) => v === actual);
          case 'StringLike':
          case 'ArnLike':
            return values.some((v) => wildcard(v, actual));
          default:
            return false;
        }
      })();
      if (!matches) return false;
    }
  }
  return true;
}

/** The request CloudWatch makes when an alarm acts: its confused-deputy keys, over TLS. */
function alarmRequest(alarmArn: string): Record<string, string> {
  return {
    'aws:SourceArn': alarmArn,
    'aws:SourceAccount': '{AWS::AccountId}',
    'aws:SecureTransport': 'true',
  };
}

/**
 * Whether a policy lets CloudWatch do `actions` for this alarm: an Allow for the CloudWatch principal
 * whose conditions the alarm's request satisfies, and no Deny that applies to it.
 */
function policyAllows(
  statements: Json[],
  actions: readonly string[],
  request: Record<string, string>,
  resource: (statement: Json) => boolean,
): string | undefined {
  for (const action of actions) {
    const denied = statements.find(
      (s) =>
        s.Effect === 'Deny' &&
        hasServicePrincipal(s, CLOUDWATCH) &&
        allowsAction(s, action) &&
        (s.Condition === undefined || conditionsHold(s.Condition, request)),
    );
    if (denied) return `${action} is denied by statement ${denied.Sid ?? JSON.stringify(denied)}`;
    const allowed = statements.some(
      (s) =>
        s.Effect === 'Allow' &&
        list(s.Principal?.Service).includes(CLOUDWATCH) &&
        allowsAction(s, action) &&
        resource(s) &&
        conditionsHold(s.Condition, request),
    );
    if (!allowed) return `nothing allows ${CLOUDWATCH} to ${action} for this alarm`;
  }
  return undefined;
}

function alarmArn(alarm: Json): string | undefined {
  const name = alarm.Properties?.AlarmName;
  if (name === undefined) return undefined;
  return `arn:{AWS::Partition}:cloudwatch:{AWS::Region}:{AWS::AccountId}:alarm:${render(name)}`;
}

/**
 * Every action of every alarm that targets an SNS topic of the template: the topic's policy lets
 * CloudWatch publish for that alarm, and the topic's key lets CloudWatch encrypt for it.
 */
export function alarmsCanPublish(template: Json): GuardResult {
  const resources = template.Resources as Resources;
  const findings: string[] = [];
  let checked = 0;
  for (const [alarmId, alarm] of Object.entries(resources)) {
    if (alarm.Type !== 'AWS::CloudWatch::Alarm') continue;
    const props = alarm.Properties ?? {};
    const actions = [
      ...list(props.AlarmActions),
      ...list(props.OKActions),
      ...list(props.InsufficientDataActions),
    ];
    for (const action of actions) {
      const topicId = action?.Ref;
      if (typeof topicId !== 'string' || resources[topicId]?.Type !== 'AWS::SNS::Topic') continue;
      checked += 1;
      const arn = alarmArn(alarm);
      if (!arn) {
        findings.push(
          `${alarmId}: its name is generated, so no aws:SourceArn pattern can be shown to cover it`,
        );
        continue;
      }
      const request = alarmRequest(arn);
      const topicStatements = Object.values(resources)
        .filter(
          (r) =>
            r.Type === 'AWS::SNS::TopicPolicy' &&
            list(r.Properties.Topics).some((t: Json) => t?.Ref === topicId),
        )
        .flatMap((r) => list(r.Properties.PolicyDocument?.Statement));
      if (topicStatements.length === 0) {
        // Without a topic policy SNS's default policy applies, which lets only the account publish.
        findings.push(`${alarmId} -> ${topicId}: the topic has no policy that lets CloudWatch publish`);
      } else {
        const problem = policyAllows(topicStatements, ['sns:Publish'], request, (s) =>
          list(s.Resource).some((r) => r === '*' || r?.Ref === topicId),
        );
        if (problem) findings.push(`${alarmId} -> ${topicId}: topic policy: ${problem}`);
      }
      const keyRef = resources[topicId].Properties?.KmsMasterKeyId;
      if (keyRef === undefined) continue;
      const keyId = keyRef?.['Fn::GetAtt']?.[0] ?? keyRef?.Ref;
      const key = resources[keyId];
      if (key?.Type !== 'AWS::KMS::Key') {
        findings.push(
          `${alarmId} -> ${topicId}: the topic's key ${render(keyRef)} is not in the template to check`,
        );
        continue;
      }
      const problem = policyAllows(
        list(key.Properties.KeyPolicy?.Statement),
        ['kms:GenerateDataKey', 'kms:Decrypt'],
        request,
        (s) => list(s.Resource).includes('*'),
      );
      if (problem) findings.push(`${alarmId} -> ${topicId} -> ${keyId}: key policy: ${problem}`);
    }
  }
  if (checked === 0) throw new Error('alarmsCanPublish: no alarm of the template publishes to an SNS topic');
  return { findings, checked };
}

/** The property that holds each resource type's physical name. */
export const NAME_PROPERTY: Readonly<Record<string, string>> = {
  'AWS::CloudWatch::Alarm': 'AlarmName',
  'AWS::CloudWatch::Dashboard': 'DashboardName',
  'AWS::DynamoDB::Table': 'TableName',
  'AWS::EC2::SecurityGroup': 'GroupName',
  'AWS::EC2::VPC': '',
  'AWS::Events::Rule': 'Name',
  'AWS::IAM::Role': 'RoleName',
  'AWS::KMS::Alias': 'AliasName',
  'AWS::KMS::Key': '',
  'AWS::Lambda::Function': 'FunctionName',
  'AWS::Logs::LogGroup': 'LogGroupName',
  'AWS::RDS::DBInstance': 'DBInstanceIdentifier',
  'AWS::RDS::DBSubnetGroup': 'DBSubnetGroupName',
  'AWS::SNS::Topic': 'TopicName',
  'AWS::SecretsManager::Secret': 'Name',
  'AWS::StepFunctions::StateMachine': 'StateMachineName',
};

/** A name CloudFormation will ask for again after the stack is deleted and created anew. */
function fixedName(value: Json): boolean {
  return !JSON.stringify(value).includes('"AWS::StackId"');
}

/**
 * Nothing the stack keeps after `cdk destroy` has a name the next deploy would ask for again: a
 * retained resource is either named by CloudFormation or named with the stack's creation id.
 */
export function retainedNamesAreFresh(template: Json): GuardResult {
  const findings: string[] = [];
  let checked = 0;
  for (const [id, resource] of Object.entries(template.Resources as Resources)) {
    if (!['Retain', 'RetainExceptOnCreate'].includes(resource.DeletionPolicy)) continue;
    checked += 1;
    const property = NAME_PROPERTY[resource.Type];
    if (property === undefined) {
      findings.push(`${id}: retained ${resource.Type}, whose name property this guard does not know`);
      continue;
    }
    const name = property ? resource.Properties?.[property] : undefined;
    if (name !== undefined && fixedName(name))
      findings.push(`${id}: retained ${resource.Type} with the fixed ${property} ${render(name)}`);
  }
  if (checked === 0) throw new Error('retainedNamesAreFresh: the template retains nothing');
  return { findings, checked };
}

/** Every physical name a template sets, rendered with the stack's own name in place. */
export function physicalNames(template: Json, stackName: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const [id, resource] of Object.entries(template.Resources as Resources)) {
    const property = NAME_PROPERTY[resource.Type];
    const value = property ? resource.Properties?.[property] : undefined;
    // A name with the stack's creation id is unique to that stack.
    if (value === undefined || JSON.stringify(value).includes('"AWS::StackId"')) continue;
    names.set(`${resource.Type} ${render(value).replaceAll('{AWS::StackName}', stackName)}`, id);
  }
  return names;
}

/**
 * Two stacks of the same configuration under different names set no physical name in common, so
 * they can live in one account and region.
 */
export function stacksDoNotCollide(
  first: { template: Json; stackName: string },
  second: { template: Json; stackName: string },
): GuardResult {
  const a = physicalNames(first.template, first.stackName);
  const b = physicalNames(second.template, second.stackName);
  if (a.size === 0) throw new Error('stacksDoNotCollide: the template names nothing');
  const findings = [...a.keys()].filter((name) => b.has(name)).map((name) => `both stacks create ${name}`);
  return { findings, checked: a.size };
}

/** A function of the template with the code it runs. */
export interface FunctionCode {
  /** Short name, e.g. "monitor". */
  readonly name: string;
  /** Logical id of its execution role. */
  readonly roleId: string;
  /** The IAM actions its code sends (test/infra/sdk-calls.ts). */
  readonly sends: readonly string[];
  /** Actions whose need depends on the configuration: sent only when `needed` is true. */
  readonly conditional?: Readonly<Record<string, boolean>>;
}

/** What the Lambda service and runtime do with the function's own role, not its code. */
function platformActions(fn: Json, sends: readonly string[], graph: readonly string[]): Map<string, string> {
  const actions = new Map<string, string>([
    ['logs:CreateLogStream', 'the runtime writes the function log'],
    ['logs:PutLogEvents', 'the runtime writes the function log'],
  ]);
  if (fn.Properties?.TracingConfig)
    for (const a of ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'])
      actions.set(a, 'the runtime sends X-Ray segments');
  if (fn.Properties?.VpcConfig)
    for (const a of [
      'ec2:CreateNetworkInterface',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeSubnets',
      'ec2:DeleteNetworkInterface',
      'ec2:AssignPrivateIpAddresses',
      'ec2:UnassignPrivateIpAddresses',
    ])
      actions.set(a, 'Lambda manages the VPC function network interfaces with its role');
  if (sends.includes('sns:Publish'))
    for (const a of ['kms:Decrypt', 'kms:GenerateDataKey*'])
      actions.set(a, 'SNS encrypts a message to a KMS-encrypted topic with the publisher’s key permissions');
  if (sends.includes('secretsmanager:GetSecretValue'))
    actions.set('kms:Decrypt', 'Secrets Manager decrypts a secret under a customer key for its reader');
  if (graph.includes('shared/iam-token.ts'))
    actions.set('rds-db:connect', 'shared/iam-token.ts signs the token');
  return actions;
}

/** The Allow statements attached to a role: its inline policies and the AWS::IAM::Policy resources. */
function roleStatements(resources: Resources, roleId: string): Json[] {
  const role = resources[roleId];
  const inline = list(role?.Properties?.Policies).flatMap((p: Json) => list(p.PolicyDocument?.Statement));
  const attached = Object.values(resources)
    .filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' && list(r.Properties.Roles).some((ref: Json) => ref?.Ref === roleId),
    )
    .flatMap((r) => list(r.Properties.PolicyDocument?.Statement));
  return [...inline, ...attached].filter((s) => s.Effect === 'Allow');
}

/**
 * Every action a function's code sends is allowed on its role, and every action its role allows is
 * sent by its code or used by the Lambda platform on its behalf. A statement whose condition ties
 * kms:Decrypt to Secrets Manager is the only way that decrypt is allowed.
 */
export function permissionsMatchCode(
  template: Json,
  functions: ReadonlyArray<FunctionCode & { readonly functionId: string; readonly graph: readonly string[] }>,
): GuardResult {
  const resources = template.Resources as Resources;
  const findings: string[] = [];
  for (const fn of functions) {
    const statements = roleStatements(resources, fn.roleId);
    if (resources[fn.roleId]?.Properties?.ManagedPolicyArns)
      findings.push(`${fn.name}: its role has managed policies, whose actions no code is shown to need`);
    const platform = platformActions(resources[fn.functionId], fn.sends, fn.graph);
    const allowed = new Set(statements.flatMap((s) => list(s.Action).map(String)));
    for (const action of allowed) {
      if (fn.sends.includes(action) || platform.has(action)) continue;
      findings.push(`${fn.name}: its role allows ${action}, which nothing in its code sends`);
    }
    for (const action of new Set(fn.sends)) {
      if (fn.conditional?.[action] === false) continue;
      if (!statements.some((s) => allowsAction(s, action)))
        findings.push(`${fn.name}: its code sends ${action}, which its role does not allow`);
    }
  }
  if (functions.length === 0) throw new Error('permissionsMatchCode: no function to check');
  return { findings, checked: functions.length };
}

/** The IAM actions a state machine's own integrations need, from its definition. */
export function stateMachineActions(machine: Json): string[] {
  const definition = JSON.parse(render(machine.Properties.DefinitionString));
  const actions = new Set<string>();
  const visit = (states: Record<string, Json>) => {
    for (const state of Object.values(states)) {
      if (state.Type === 'Task') {
        const resource = String(state.Resource);
        const integration =
          /^arn:aws:states:::(aws-sdk:)?([a-z0-9-]+):([A-Za-z]+)(\.sync(:2)?|\.waitForTaskToken)?$/.exec(
            resource,
          );
        if (integration) {
          const [, , service, api = '', mode] = integration;
          const action = `${service}:${api.charAt(0).toUpperCase()}${api.slice(1)}`;
          actions.add(action === 'lambda:Invoke' ? 'lambda:InvokeFunction' : action);
          if (service === 'states' && mode?.startsWith('.sync'))
            for (const a of [
              'states:DescribeExecution',
              'states:StopExecution',
              'events:PutTargets',
              'events:PutRule',
              'events:DescribeRule',
            ])
              actions.add(a);
        } else {
          // A function ARN (or its ${...} substitution) as the Resource invokes that function.
          actions.add('lambda:InvokeFunction');
        }
      }
      for (const branch of list(state.Branches)) visit(branch.States);
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor) visit(processor.States);
    }
  };
  visit(definition.States);
  return [...actions];
}

/**
 * The state machine's role allows what its integrations call and what its logging and tracing need
 * (and, when it publishes to SNS, the topics' key, which SNS uses with the publisher's rights), and
 * nothing else; each integration is allowed.
 */
export function stateMachinePermissions(template: Json): GuardResult {
  const resources = template.Resources as Resources;
  const findings: string[] = [];
  let checked = 0;
  for (const [id, machine] of Object.entries(resources)) {
    if (machine.Type !== 'AWS::StepFunctions::StateMachine') continue;
    checked += 1;
    const roleId = machine.Properties.RoleArn?.['Fn::GetAtt']?.[0];
    const statements = roleStatements(resources, roleId);
    const sends = stateMachineActions(machine);
    const platform = new Set<string>();
    if (machine.Properties.LoggingConfiguration)
      for (const a of [
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
      ])
        platform.add(a);
    if (sends.includes('sns:Publish'))
      for (const a of ['kms:Decrypt', 'kms:GenerateDataKey*']) platform.add(a);
    if (machine.Properties.TracingConfiguration?.Enabled)
      for (const a of [
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
        'xray:GetSamplingRules',
        'xray:GetSamplingTargets',
      ])
        platform.add(a);
    for (const action of new Set(statements.flatMap((s) => list(s.Action).map(String))))
      if (!sends.includes(action) && !platform.has(action))
        findings.push(`${id}: its role allows ${action}, which none of its states calls`);
    for (const action of sends)
      if (!statements.some((s) => allowsAction(s, action)))
        findings.push(`${id}: a state calls ${action}, which its role does not allow`);
  }
  if (checked === 0) throw new Error('stateMachinePermissions: the template has no state machine');
  return { findings, checked };
}

/**
 * Every event pattern is one EventBridge accepts: no empty list anywhere (a rule filtering on "none of
 * these" is refused, and the deploy fails).
 */
export function eventPatternsAreAccepted(template: Json): GuardResult {
  const findings: string[] = [];
  let checked = 0;
  const visit = (id: string, path: string, node: Json) => {
    if (Array.isArray(node)) {
      if (node.length === 0)
        findings.push(`${id}: the event pattern has an empty list at ${path || '(root)'}`);
      for (const [i, item] of node.entries()) visit(id, `${path}[${i}]`, item);
    } else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) visit(id, path ? `${path}.${key}` : key, value);
    }
  };
  for (const [id, resource] of Object.entries(template.Resources as Resources)) {
    if (resource.Type !== 'AWS::Events::Rule' || resource.Properties?.EventPattern === undefined) continue;
    checked += 1;
    visit(id, '', resource.Properties.EventPattern);
  }
  if (checked === 0) throw new Error('eventPatternsAreAccepted: the template has no event pattern');
  return { findings, checked };
}
