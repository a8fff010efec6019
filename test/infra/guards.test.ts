import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../infra/config.ts';
import { PgWardenStack } from '../../infra/pgwarden-stack.ts';
import {
  alarmsCanPublish,
  eventPatternsAreAccepted,
  type FunctionCode,
  permissionsMatchCode,
  render,
  retainedNamesAreFresh,
  stacksDoNotCollide,
  stateMachineActions,
  stateMachinePermissions,
} from './guards.ts';
import { importGraph, sdkCalls } from './sdk-calls.ts';
import { DISCOVERY_CONFIG, exampleConfig, type Json } from './synth.ts';

interface Synthesized {
  stack: PgWardenStack;
  template: Json;
}

function synthesize(raw: unknown, options: { demo?: boolean; stackName?: string } = {}): Synthesized {
  const demo = options.demo ?? false;
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PgWardenStack(app, options.stackName ?? 'PgWarden', {
    config: parseConfig(raw, { demo }),
    demo,
  });
  return { stack, template: Template.fromStack(stack).toJSON() };
}

const CASES: Array<[string, () => Synthesized]> = [
  ['the example configuration', () => synthesize(exampleConfig())],
  ['demo mode', () => synthesize({}, { demo: true })],
  ['a discovery configuration', () => synthesize(DISCOVERY_CONFIG)],
];

/**
 * When a function needs each action whose need depends on the configuration: the discovery lookups,
 * the evidence and start calls per linked RDS resource, the secrets of secret authentication.
 */
function conditionalActions(
  stack: PgWardenStack,
  raw: Json,
  demo: boolean,
): Record<string, Record<string, boolean>> {
  const discovery = !demo && raw.fleet?.discovery !== undefined;
  const targets = stack.targets;
  const instances = targets.some((t) => t.rds?.instanceId);
  const clusters = targets.some((t) => t.rds?.clusterId);
  const startsDiscovered = discovery && raw.fleet?.defaults?.remediation?.allowStartInstance === true;
  const rebootsDiscovered = discovery && raw.fleet?.defaults?.remediation?.allowReboot === true;
  const failsOverDiscovered = discovery && raw.fleet?.defaults?.remediation?.allowFailover === true;
  const secretAuth =
    targets.some((t) => t.connection.auth.kind === 'secret') ||
    (raw.access?.secretArns?.length ?? 0) > 0 ||
    (discovery && raw.fleet?.defaults?.auth?.secretArn !== undefined);
  const lookups = { 'rds:DescribeDBInstances': discovery, 'rds:DescribeDBClusters': discovery };
  const evidence = instances || clusters || discovery;
  return {
    monitor: lookups,
    sweep: lookups,
    'rds-events': { 'rds:DescribeDBInstances': discovery || clusters, 'rds:DescribeDBClusters': discovery },
    runbook: {
      'rds:StartDBInstance':
        targets.some((t) => t.rds?.instanceId && t.remediation.allowStartInstance) || startsDiscovered,
      'rds:StartDBCluster':
        targets.some((t) => t.rds?.clusterId && t.remediation.allowStartInstance) || startsDiscovered,
      'rds:RebootDBInstance':
        targets.some((t) => t.rds?.instanceId && t.remediation.allowReboot) || rebootsDiscovered,
      'rds:FailoverDBCluster':
        targets.some((t) => t.rds?.clusterId && t.remediation.allowFailover) || failsOverDiscovered,
      'rds:DescribeDBInstances': evidence,
      'rds:DescribeDBLogFiles': evidence,
      'rds:DownloadDBLogFilePortion': evidence,
      'rds:DescribeDBClusters': clusters || discovery,
    },
    probe: { 'secretsmanager:GetSecretValue': secretAuth },
    remediate: { 'secretsmanager:GetSecretValue': secretAuth },
  };
}

function functionsOf(
  { stack }: Synthesized,
  raw: Json,
  demo = false,
): Array<FunctionCode & { functionId: string; graph: string[] }> {
  const conditional = conditionalActions(stack, raw, demo);
  return stack.functions.all.map(({ name, fn }) => ({
    name,
    functionId: stack.getLogicalId(fn.function.node.defaultChild as never),
    roleId: stack.getLogicalId(fn.role.node.defaultChild as never),
    sends: sdkCalls(fn.entry).map((c) => c.action),
    graph: importGraph(fn.entry),
    ...(conditional[name] ? { conditional: conditional[name] } : {}),
  }));
}

const RAW: Record<string, [Json, boolean]> = {
  'the example configuration': [exampleConfig(), false],
  'demo mode': [{}, true],
  'a discovery configuration': [DISCOVERY_CONFIG, false],
};

describe.each(CASES)('deploy guards on %s', (label, build) => {
  const synthesized = build();
  const { template } = synthesized;
  const [raw, demo] = RAW[label] as [Json, boolean];

  it("lets every alarm action's topic, and the topic's key, take CloudWatch's publish for that alarm", () => {
    const result = alarmsCanPublish(template);
    expect(result.findings).toEqual([]);
    expect(result.checked).toBeGreaterThan(10);
  });

  it('gives every function exactly the permissions its code sends (and the platform uses)', () => {
    const result = permissionsMatchCode(template, functionsOf(synthesized, raw, demo));
    expect(result.findings).toEqual([]);
    expect(result.checked).toBe(6);
  });

  it("gives the state machine's role exactly what its states call", () => {
    const result = stateMachinePermissions(template);
    expect(result.findings).toEqual([]);
  });

  it('has only event patterns EventBridge accepts', () => {
    expect(eventPatternsAreAccepted(template).findings).toEqual([]);
  });

  it('names nothing it retains with a name the next deploy after a destroy would ask for again', () => {
    // A demo keeps nothing after `cdk destroy`; a real deployment keeps its logs and the topics' key.
    if (demo) {
      expect(() => retainedNamesAreFresh(template)).toThrow(/retains nothing/);
      return;
    }
    const result = retainedNamesAreFresh(template);
    expect(result.findings).toEqual([]);
    expect(result.checked).toBeGreaterThan(0);
  });
});

describe('a fleet with no RDS links', () => {
  it('has no RDS event rule rather than one filtering on an empty list of databases', () => {
    const { template } = synthesize({
      ...DISCOVERY_CONFIG,
      fleet: {
        defaults: { user: 'pgwarden_monitor', auth: { iam: true } },
        targets: [{ id: 'orders', host: 'orders.example', database: 'orders' }],
      },
    });
    expect(eventPatternsAreAccepted(template).findings).toEqual([]);
    const patterns = Object.values(template.Resources as Record<string, Json>)
      .filter((r) => r.Type === 'AWS::Events::Rule' && r.Properties.EventPattern)
      .map((r) => r.Properties.EventPattern.source);
    expect(patterns).toEqual([['aws.cloudwatch']]);
  });
});

describe('two stacks in one account', () => {
  it('share no physical name: staging deploys beside production', () => {
    const production = synthesize(exampleConfig(), { stackName: 'PgWarden' });
    const staging = synthesize(exampleConfig(), { stackName: 'PgWarden-staging' });
    const result = stacksDoNotCollide(
      { template: production.template, stackName: 'PgWarden' },
      { template: staging.template, stackName: 'PgWarden-staging' },
    );
    expect(result.findings).toEqual([]);
    expect(result.checked).toBeGreaterThan(10);
  });
});

describe('the guards themselves', () => {
  const { template } = synthesize(exampleConfig());
  const copy = (): Json => structuredClone(template);
  const find = (t: Json, type: string, fragment: string): [string, Json] => {
    const entry = Object.entries(t.Resources as Record<string, Json>).find(
      ([id, r]) => r.Type === type && id.includes(fragment),
    );
    if (!entry) throw new Error(`no ${type} ${fragment}`);
    return entry;
  };

  it('find an alarm whose topic policy holds only the TLS deny (the enforceSSL-only policy)', () => {
    const broken = copy();
    const [, policy] = find(broken, 'AWS::SNS::TopicPolicy', 'Pages');
    policy.Properties.PolicyDocument.Statement = policy.Properties.PolicyDocument.Statement.filter(
      (s: Json) => s.Effect === 'Deny',
    );
    const { findings } = alarmsCanPublish(broken);
    expect(findings.length).toBeGreaterThan(0);
    expect(findings[0]).toMatch(
      /TopicsPages.*topic policy: nothing allows cloudwatch.amazonaws.com to sns:Publish/,
    );
  });

  it('find a key that lets CloudWatch encrypt only under a condition CloudWatch does not send', () => {
    const broken = copy();
    const [, key] = find(broken, 'AWS::KMS::Key', 'TopicsKey');
    for (const s of key.Properties.KeyPolicy.Statement)
      if (s.Principal?.Service === 'cloudwatch.amazonaws.com')
        s.Condition = { StringEquals: { 'kms:ViaService': 'sns.eu-west-1.amazonaws.com' } };
    expect(
      alarmsCanPublish(broken).findings.some((f) =>
        /key policy: nothing allows .* kms:GenerateDataKey/.test(f),
      ),
    ).toBe(true);
  });

  it("find an alarm whose name is outside the stack's pattern, or generated", () => {
    const broken = copy();
    const [, alarm] = find(broken, 'AWS::CloudWatch::Alarm', 'Heartbeat');
    alarm.Properties.AlarmName = 'pgwarden-monitor-heartbeat-missing';
    expect(alarmsCanPublish(broken).findings.join('\n')).toContain('nothing allows cloudwatch.amazonaws.com');
    delete alarm.Properties.AlarmName;
    expect(alarmsCanPublish(broken).findings.join('\n')).toContain('its name is generated');
  });

  it('find a permission without a sender and a sent command without a permission', () => {
    const broken = copy();
    const fns = functionsOf({ stack: synthesize(exampleConfig()).stack, template: broken }, exampleConfig());
    const runbook = fns.find((f) => f.name === 'runbook') as (typeof fns)[number];
    broken.Resources[`${runbook.roleId}Extra`] = {
      Type: 'AWS::IAM::Policy',
      Properties: {
        Roles: [{ Ref: runbook.roleId }],
        PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'rds:DeleteDBInstance', Resource: '*' }] },
      },
    };
    const sending = fns.map((f) =>
      f.name === 'monitor' ? { ...f, sends: [...f.sends, 'sqs:SendMessage'] } : f,
    );
    const { findings } = permissionsMatchCode(broken, sending);
    expect(findings).toContain(
      'runbook: its role allows rds:DeleteDBInstance, which nothing in its code sends',
    );
    expect(findings).toContain('monitor: its code sends sqs:SendMessage, which its role does not allow');
  });

  it('find a state machine role that lacks an integration, and one that allows more', () => {
    const broken = copy();
    const [machineId, machine] = find(broken, 'AWS::StepFunctions::StateMachine', 'Runbook');
    const definition = JSON.parse(render(machine.Properties.DefinitionString));
    const first = Object.keys(definition.States)[0] as string;
    definition.States[first] = { Type: 'Task', Resource: 'arn:aws:states:::sqs:sendMessage', End: true };
    machine.Properties.DefinitionString = JSON.stringify(definition);
    expect(stateMachineActions(machine)).toContain('sqs:SendMessage');
    const roleId = machine.Properties.RoleArn['Fn::GetAtt'][0];
    broken.Resources[`${roleId}Extra`] = {
      Type: 'AWS::IAM::Policy',
      Properties: {
        Roles: [{ Ref: roleId }],
        PolicyDocument: {
          Statement: [{ Effect: 'Allow', Action: 'lambda:UpdateFunctionCode', Resource: '*' }],
        },
      },
    };
    const { findings } = stateMachinePermissions(broken);
    expect(findings).toContain(`${machineId}: a state calls sqs:SendMessage, which its role does not allow`);
    expect(findings).toContain(
      `${machineId}: its role allows lambda:UpdateFunctionCode, which none of its states calls`,
    );
  });

  it('find a retained log group with a fixed name, and two stacks with one alarm name', () => {
    const broken = copy();
    const [, group] = find(broken, 'AWS::Logs::LogGroup', 'Runbook');
    group.Properties.LogGroupName = '/aws/vendedlogs/states/PgWarden-runbook';
    expect(retainedNamesAreFresh(broken).findings).toEqual([
      expect.stringMatching(
        /retained AWS::Logs::LogGroup with the fixed LogGroupName \/aws\/vendedlogs\/states\/PgWarden-runbook/,
      ),
    ]);
    const staging = synthesize(exampleConfig(), { stackName: 'Staging' }).template;
    const [, alarm] = find(staging, 'AWS::CloudWatch::Alarm', 'Heartbeat');
    alarm.Properties.AlarmName = 'PgWarden/monitor-heartbeat-missing';
    expect(
      stacksDoNotCollide({ template, stackName: 'PgWarden' }, { template: staging, stackName: 'Staging' })
        .findings,
    ).toEqual(['both stacks create AWS::CloudWatch::Alarm PgWarden/monitor-heartbeat-missing']);
  });

  it('find an event pattern with an empty list', () => {
    const broken = copy();
    const [id, rule] = find(broken, 'AWS::Events::Rule', 'RdsEvents');
    rule.Properties.EventPattern.detail.SourceIdentifier = [];
    expect(eventPatternsAreAccepted(broken).findings).toEqual([
      `${id}: the event pattern has an empty list at detail.SourceIdentifier`,
    ]);
  });

  it('refuse to pass on a template that gives them nothing to check', () => {
    const empty = { Resources: {} };
    expect(() => alarmsCanPublish(empty)).toThrow(/no alarm/);
    expect(() => retainedNamesAreFresh(empty)).toThrow(/retains nothing/);
    expect(() => stateMachinePermissions(empty)).toThrow(/no state machine/);
    expect(() => permissionsMatchCode(empty, [])).toThrow(/no function/);
    expect(() => eventPatternsAreAccepted(empty)).toThrow(/no event pattern/);
  });
});
