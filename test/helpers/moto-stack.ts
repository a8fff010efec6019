/**
 * A deployed pgwarden stack in the AWS emulator: the template `cdk synth` writes for a configuration,
 * created by moto's CloudFormation (topics, roles and their policies, the six functions with their real
 * environments, log groups, the state machine), plus what moto's CloudFormation cannot create, made
 * with the same properties through the service APIs: the topics' subscriptions and the alarms.
 *
 * EMULATOR GAPS handled here, by name: moto's CloudFormation skips AWS::SNS::Subscription and
 * AWS::CloudWatch::Alarm (created below from the template's own properties), cannot fetch the bundled
 * function code from the CDK asset bucket (each function gets a one-line inline body: the doctor reads
 * configurations, it never invokes them), and has no VPC to place the in-VPC functions in (their
 * VpcConfig is dropped). Other resource types the doctor does not read are left out.
 */
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStacksCommand,
  ListStackResourcesCommand,
} from '@aws-sdk/client-cloudformation';
import {
  CloudWatchClient,
  PutMetricAlarmCommand,
  type PutMetricAlarmCommandInput,
} from '@aws-sdk/client-cloudwatch';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import type { Json } from '../infra/synth.ts';
import type { Moto } from './moto.ts';

export const MOTO_ACCOUNT = '123456789012';

/** The resource types moto's CloudFormation creates and the doctor reads (or that they refer to). */
const CREATED_BY_CLOUDFORMATION = new Set([
  'AWS::KMS::Key',
  'AWS::SNS::Topic',
  'AWS::Logs::LogGroup',
  'AWS::IAM::Role',
  'AWS::IAM::Policy',
  'AWS::Lambda::Function',
  'AWS::DynamoDB::Table',
  'AWS::StepFunctions::StateMachine',
]);

export interface MotoStack {
  stackName: string;
  region: string;
  /** Physical ids by logical id. */
  physical: Record<string, string>;
  outputs: Record<string, string>;
}

function refersTo(value: unknown, dropped: ReadonlySet<string>): boolean {
  const text = JSON.stringify(value);
  return [...dropped].some((id) => text.includes(`"${id}"`));
}

/** Deploys `template` (a synthesized pgwarden stack) as `stackName` in the emulator. */
export async function deployToMoto(
  moto: Moto,
  template: Json,
  options: { stackName?: string; region?: string } = {},
): Promise<MotoStack> {
  const stackName = options.stackName ?? 'PgWarden';
  const region = options.region ?? 'eu-west-1';
  const t = structuredClone(template);
  delete t.Parameters;
  delete t.Rules;
  const dropped = new Set<string>();
  for (const [id, r] of Object.entries<Json>(t.Resources))
    if (!CREATED_BY_CLOUDFORMATION.has(r.Type)) dropped.add(id);
  for (const [id, r] of Object.entries<Json>(t.Resources)) {
    if (dropped.has(id)) {
      delete t.Resources[id];
      continue;
    }
    delete r.DependsOn;
    if (r.Type === 'AWS::Lambda::Function') {
      r.Properties.Code = { ZipFile: 'exports.handler = async () => ({});' };
      delete r.Properties.VpcConfig;
    }
  }
  for (const [key, output] of Object.entries<Json>(t.Outputs ?? {}))
    if (refersTo(output, dropped)) delete t.Outputs[key];

  const cloudformation = new CloudFormationClient(moto.config(region));
  await cloudformation.send(
    new CreateStackCommand({
      StackName: stackName,
      TemplateBody: JSON.stringify(t),
      Capabilities: ['CAPABILITY_IAM'],
    }),
  );
  const listed = await cloudformation.send(new ListStackResourcesCommand({ StackName: stackName }));
  const physical: Record<string, string> = Object.fromEntries(
    (listed.StackResourceSummaries ?? []).map((r) => [r.LogicalResourceId, r.PhysicalResourceId]),
  );

  const resolve = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(resolve);
    if (!value || typeof value !== 'object') return value;
    if ('Ref' in value) {
      const ref = value.Ref as string;
      if (ref === 'AWS::StackName') return stackName;
      if (ref === 'AWS::Region') return region;
      if (ref === 'AWS::AccountId') return MOTO_ACCOUNT;
      if (ref === 'AWS::Partition') return 'aws';
      if (ref === 'AWS::URLSuffix') return 'amazonaws.com';
      return physical[ref] ?? ref;
    }
    if ('Fn::Join' in value) {
      const [separator, parts] = value['Fn::Join'] as [string, Json[]];
      return parts.map(resolve).join(separator);
    }
    if ('Fn::GetAtt' in value) {
      const [id] = value['Fn::GetAtt'] as [string, string];
      return physical[id] ?? id;
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  };

  const sns = new SNSClient(moto.config(region));
  for (const r of Object.values<Json>(template.Resources).filter(
    (r) => r.Type === 'AWS::SNS::Subscription',
  )) {
    const p = resolve(r.Properties);
    await sns.send(
      new SubscribeCommand({ TopicArn: p.TopicArn, Protocol: p.Protocol, Endpoint: p.Endpoint }),
    );
  }
  const cloudwatch = new CloudWatchClient(moto.config(region));
  for (const r of Object.values<Json>(template.Resources).filter(
    (r) => r.Type === 'AWS::CloudWatch::Alarm',
  )) {
    const p = resolve(r.Properties) as PutMetricAlarmCommandInput;
    await cloudwatch.send(new PutMetricAlarmCommand(p));
  }
  const described = await cloudformation.send(new DescribeStacksCommand({ StackName: stackName }));
  const outputs = Object.fromEntries(
    (described.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey as string, o.OutputValue as string]),
  );
  return { stackName, region, physical, outputs };
}
