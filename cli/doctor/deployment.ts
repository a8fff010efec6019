/**
 * A deployed pgwarden stack as the caller's credentials see it: its status and outputs, its resources,
 * and the fleet it watches, read from the monitor function's environment (written by `cdk deploy` from
 * the configuration), never from a local file that may have changed since.
 */
import {
  DescribeStacksCommand,
  type DescribeStacksCommandOutput,
  ListStackResourcesCommand,
  type ListStackResourcesCommandOutput,
  type StackResourceSummary,
} from '@aws-sdk/client-cloudformation';
import {
  type FunctionConfiguration,
  GetFunctionConfigurationCommand,
  type GetFunctionConfigurationCommandOutput,
} from '@aws-sdk/client-lambda';
import { monitorEnvironment } from '../../functions/monitor/settings.ts';
import { sweepSettings } from '../../functions/sweep/settings.ts';
import { type AwsClients, awsErrorName, call } from './aws.ts';

/** Stack outputs pgwarden's stack declares (infra/pgwarden-stack.ts). */
export const OUTPUTS = {
  pagesTopic: 'PagesTopicArn',
  notificationsTopic: 'NotificationsTopicArn',
  dashboard: 'DashboardUrl',
} as const;

/**
 * Logical-id prefixes of the resources the doctor reads. Construct ids are a contract (renaming one
 * replaces the resource), so these stay valid across releases.
 */
export const LOGICAL_IDS = {
  monitorFunction: 'FunctionsMonitorFunction',
  monitorLogGroup: 'FunctionsMonitorLogGroup',
  sweepFunction: 'FunctionsSweepFunction',
} as const;

export interface Deployment {
  stackName: string;
  region: string;
  status: string;
  statusReason?: string;
  createdAt?: Date;
  updatedAt?: Date;
  outputs: Record<string, string>;
  resources: StackResourceSummary[];
}

/** The stack, or undefined when no stack of that name exists in the region. */
export async function describeDeployment(
  stackName: string,
  clients: AwsClients,
): Promise<Deployment | undefined> {
  let described: DescribeStacksCommandOutput;
  try {
    described = await call(clients.cloudformation, new DescribeStacksCommand({ StackName: stackName }));
  } catch (error) {
    // CloudFormation answers a missing stack with a ValidationError "Stack with id X does not exist".
    if (awsErrorName(error) === 'ValidationError' && /does not exist/i.test(String((error as Error).message)))
      return undefined;
    throw error;
  }
  const stack = described.Stacks?.[0];
  if (!stack) return undefined;
  const resources: StackResourceSummary[] = [];
  let token: string | undefined;
  do {
    const page: ListStackResourcesCommandOutput = await call(
      clients.cloudformation,
      new ListStackResourcesCommand({ StackName: stackName, ...(token ? { NextToken: token } : {}) }),
    );
    resources.push(...(page.StackResourceSummaries ?? []));
    token = page.NextToken;
  } while (token);
  return {
    stackName,
    region: clients.region,
    status: stack.StackStatus ?? 'UNKNOWN',
    ...(stack.StackStatusReason ? { statusReason: stack.StackStatusReason } : {}),
    ...(stack.CreationTime ? { createdAt: stack.CreationTime } : {}),
    ...(stack.LastUpdatedTime ? { updatedAt: stack.LastUpdatedTime } : {}),
    outputs: Object.fromEntries(
      (stack.Outputs ?? []).flatMap((o) =>
        o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [],
      ),
    ),
    resources,
  };
}

/** The physical id of the stack's resource whose logical id starts with `prefix`. */
export function physicalId(deployment: Deployment, prefix: string): string | undefined {
  return deployment.resources.find((r) => r.LogicalResourceId?.startsWith(prefix))?.PhysicalResourceId;
}

/** A function's configuration (environment, role) by name. */
export async function functionConfiguration(
  clients: AwsClients,
  functionName: string,
): Promise<FunctionConfiguration> {
  const out: GetFunctionConfigurationCommandOutput = await call(
    clients.lambda,
    new GetFunctionConfigurationCommand({ FunctionName: functionName }),
  );
  return out;
}

/**
 * The deployed monitor's settings and fleet, read from its environment by the parser its handler runs
 * at cold start: what fails here fails there. Lambda adds AWS_REGION to every function's environment.
 */
export function deployedMonitor(monitor: FunctionConfiguration, region: string) {
  return monitorEnvironment({ ...monitor.Environment?.Variables, AWS_REGION: region });
}

/** How many targets the deployed sweep remediates at once. */
export function deployedSweepConcurrency(sweep: FunctionConfiguration | undefined): number {
  if (!sweep) return sweepSettings.defaults.concurrency;
  try {
    return sweepSettings.parse(sweep.Environment?.Variables ?? {}).concurrency;
  } catch {
    return sweepSettings.defaults.concurrency;
  }
}
