/**
 * Every function's environment, as the synthesized template deploys it, read back with the parser its
 * handler runs at cold start: what the CDK app writes is what the functions accept.
 */
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { monitorEnvironment, monitorSettings } from '../../functions/monitor/settings.ts';
import { probeEnvironment, probeSettings } from '../../functions/probe/settings.ts';
import { rdsEventsEnvironment } from '../../functions/rds-events/settings.ts';
import { remediateEnvironment, remediateSettings } from '../../functions/remediate/settings.ts';
import { runbookEnvironment } from '../../functions/runbook/settings.ts';
import { sweepEnvironment, sweepSettings } from '../../functions/sweep/settings.ts';
import { DEFAULT_RUNBOOK_SETTINGS } from '../../shared/runbook/types.ts';
import { DISCOVERY_CONFIG, exampleConfig, type Json, synth } from './synth.ts';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';

/** Each function's cold-start parser, by the name the functions construct gives it. */
const PARSERS: Record<string, (env: Record<string, string>) => unknown> = {
  monitor: monitorEnvironment,
  probe: probeEnvironment,
  remediate: remediateEnvironment,
  sweep: sweepEnvironment,
  'rds-events': rdsEventsEnvironment,
  runbook: runbookEnvironment,
};

/** A value CloudFormation resolves at deploy time, stood in for by what it resolves to. */
function stand(template: Json, ref: string, attribute?: string): string {
  if (ref === 'AWS::Region') return REGION;
  if (ref === 'AWS::AccountId') return ACCOUNT;
  if (ref === 'AWS::Partition') return 'aws';
  if (ref === 'AWS::URLSuffix') return 'amazonaws.com';
  const type: string = template.Resources?.[ref]?.Type ?? '';
  const name = ref.replace(/[^A-Za-z0-9]/g, '').slice(0, 40);
  if (attribute === 'Endpoint.Address')
    return `${name.toLowerCase()}.abcdefghijkl.${REGION}.rds.amazonaws.com`;
  if (attribute === 'Endpoint.Port') return '5432';
  if (type === 'AWS::SNS::Topic') return `arn:aws:sns:${REGION}:${ACCOUNT}:${name}`;
  if (type === 'AWS::StepFunctions::StateMachine')
    return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${name}`;
  if (type === 'AWS::SecretsManager::Secret' || type === 'AWS::SecretsManager::SecretTargetAttachment')
    return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name.toLowerCase()}-AbCdEf`;
  if (type === 'AWS::RDS::DBInstance' || type === 'AWS::RDS::DBCluster') return `db-${name.toLowerCase()}`;
  return name;
}

function resolve(template: Json, value: Json): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object') {
    if ('Ref' in value) return stand(template, value.Ref);
    if ('Fn::GetAtt' in value) {
      const [id, attribute] = value['Fn::GetAtt'];
      return stand(template, id, attribute);
    }
    if ('Fn::Join' in value) {
      const [separator, parts] = value['Fn::Join'];
      return (parts as Json[]).map((part) => resolve(template, part)).join(separator);
    }
  }
  throw new Error(`cannot stand in for ${JSON.stringify(value)}`);
}

const CONFIGS: Array<{ name: string; raw: () => Json; demo: boolean }> = [
  { name: 'the example configuration', raw: exampleConfig, demo: false },
  { name: 'demo mode', raw: () => ({}), demo: true },
  { name: 'tag discovery', raw: () => structuredClone(DISCOVERY_CONFIG), demo: false },
];

describe('function environments', () => {
  for (const config of CONFIGS) {
    it(`parses every synthesized environment with its handler's own parser: ${config.name}`, () => {
      const { stack, template } = synth(config.raw(), { demo: config.demo });
      const json = template.toJSON();
      const functions = stack.functions.all;
      expect(functions.map((f) => f.name).sort()).toEqual(Object.keys(PARSERS).sort());
      for (const { name, fn } of functions) {
        const logicalId = stack.getLogicalId(fn.function.node.defaultChild as CfnFunction);
        const variables: Record<string, Json> = json.Resources[logicalId].Properties.Environment.Variables;
        const env = Object.fromEntries(
          Object.entries(variables).map(([key, value]) => [key, resolve(json, value)]),
        );
        const parse = PARSERS[name] as (env: Record<string, string>) => unknown;
        expect(() => parse({ ...env, AWS_REGION: REGION }), name).not.toThrow();
      }
    });
  }

  it('deploys each tunable at its default, and the handlers read back exactly that', () => {
    const { stack, template } = synth(exampleConfig());
    const json = template.toJSON();
    const envOf = (fn: (typeof stack.functions.all)[number]['fn']) => {
      const id = stack.getLogicalId(fn.function.node.defaultChild as CfnFunction);
      const variables: Record<string, Json> = json.Resources[id].Properties.Environment.Variables;
      return {
        AWS_REGION: REGION,
        ...Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, resolve(json, v)])),
      };
    };
    expect(probeEnvironment(envOf(stack.functions.probe))).toMatchObject(probeSettings.defaults);
    expect(remediateEnvironment(envOf(stack.functions.remediate))).toMatchObject(remediateSettings.defaults);
    expect(sweepEnvironment(envOf(stack.functions.sweep))).toMatchObject(sweepSettings.defaults);
    expect(monitorEnvironment(envOf(stack.functions.monitor))).toMatchObject({
      ...monitorSettings.defaults,
      runbook: {
        escalateAfterSeconds: DEFAULT_RUNBOOK_SETTINGS.escalateAfterSeconds,
        recheckSeconds: DEFAULT_RUNBOOK_SETTINGS.recheckSeconds,
        maxDurationSeconds: DEFAULT_RUNBOOK_SETTINGS.maxDurationSeconds,
      },
    });
  });
});
