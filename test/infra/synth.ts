/**
 * Synthesizes the pgwarden stack for template assertions: bundling skipped (no esbuild), the same
 * configuration parser the app uses, and cdk-nag's AWS Solutions pack run against the tree.
 */
import { readFileSync } from 'node:fs';
import { App, type PolicyViolation } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig } from '../../infra/config.ts';
import { REPO_ROOT } from '../../infra/constructs/pgwarden-function.ts';
import { PgWardenStack } from '../../infra/pgwarden-stack.ts';

/** CloudFormation template JSON and configuration documents, which tests index into freely. */
// biome-ignore lint/suspicious/noExplicitAny: template JSON has no static type; assertions check its shape.
export type Json = any;

/** The committed example configuration, as a fresh object each call (tests modify it). */
export function exampleConfig(): Json {
  return JSON.parse(readFileSync(`${REPO_ROOT}pgwarden.config.example.json`, 'utf8'));
}

/** Watches every tagged database, logging in with IAM; the fleet defaults may start stopped ones. */
export const DISCOVERY_CONFIG = {
  fleet: {
    defaults: { user: 'pgwarden_monitor', auth: { iam: true }, remediation: { allowStartInstance: true } },
    discovery: { tagKey: 'pgwarden:monitor', tagValue: 'true' },
  },
  network: {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a'],
    privateSubnetIds: ['subnet-0123456789abcdef0'],
  },
  access: { secretArns: ['arn:aws:secretsmanager:us-east-1:123456789012:secret:pgwarden/tagged-AbCdEf'] },
};

/** The example configuration plus tag discovery, secrets, customer keys and every remediation opt-in. */
export function everyOptInConfig(): Json {
  const config = exampleConfig();
  config.fleet.discovery = {};
  config.fleet.defaults.auth = { secretArn: 'pgwarden/discovered' };
  config.fleet.defaults.remediation = { allowStartInstance: true, allowReboot: true, allowFailover: true };
  config.fleet.targets[0].remediation = { allowStartInstance: true, allowReboot: true };
  config.access = {
    secretArns: ['arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/tagged'],
    kmsKeyArns: ['arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
    iamDbUsers: ['reporting_monitor'],
  };
  return config;
}

/**
 * The context `cdk synth` gives the app besides the user's: resource metadata and version reporting,
 * so a template synthesized without the CLI is the one the CLI would deploy.
 */
export const CLI_CONTEXT = {
  'aws:cdk:enable-path-metadata': true,
  'aws:cdk:enable-asset-metadata': true,
  'aws:cdk:version-reporting': true,
};

export interface Synthesized {
  app: App;
  stack: PgWardenStack;
  template: Template;
}

/** Builds the stack from a raw configuration object, without bundling the functions. */
export function synth(raw: unknown, options: { demo?: boolean } = {}): Synthesized {
  const demo = options.demo ?? false;
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PgWardenStack(app, 'PgWarden', { config: parseConfig(raw, { demo }), demo });
  return { app, stack, template: Template.fromStack(stack) };
}

/** cdk-nag AWS Solutions findings that no acknowledgement covers, as "rule at path" lines. */
export function unacknowledgedFindings(app: App): string[] {
  const report = new AwsSolutionsChecks().validateScope(app);
  return report.violations.flatMap((v: PolicyViolation) =>
    v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath}`),
  );
}

/** The logical id of the only resource of `type` whose id contains `fragment`. */
export function logicalId(template: Template, type: string, fragment: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.includes(fragment));
  if (ids.length !== 1)
    throw new Error(`expected one ${type} matching ${fragment}, found ${ids.join(', ') || 'none'}`);
  return ids[0] as string;
}

/** Every IAM statement attached to the role whose logical id contains `roleFragment`. */
export function statementsOf(template: Template, roleFragment: string): Json[] {
  const roleId = logicalId(template, 'AWS::IAM::Role', roleFragment);
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
    (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId),
  );
  return policies.flatMap((p) => p.Properties.PolicyDocument.Statement as Json[]);
}

/** Statements that allow `action`, with their resources as a list. */
export function grantsOf(template: Template, roleFragment: string, action: string): unknown[] {
  return statementsOf(template, roleFragment)
    .filter((s) => s.Effect === 'Allow' && ([] as string[]).concat(s.Action).includes(action))
    .flatMap((s) => ([] as unknown[]).concat(s.Resource));
}
