import { fileURLToPath } from 'node:url';
import { type Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The repository root: bundling resolves handlers, tsconfig and the lock file from here. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * ESM bundles that contain CommonJS dependencies (pg) call `require` for Node built-ins; ESM has no
 * `require`, so the bundle recreates it.
 */
const REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/** The Lambda runtime's CA bundle, which includes the RDS CAs; Node 20+ no longer loads it by itself. */
export const LAMBDA_CA_BUNDLE = '/var/runtime/ca-cert.pem';

/** Where a function runs when it must reach a database. */
export interface FunctionNetwork {
  /** The VPC the databases are reachable from. */
  readonly vpc: ec2.IVpc;
  /** Private subnets with a route to the databases (and to the AWS APIs the function calls). */
  readonly subnets: ec2.SubnetSelection;
  /** The security groups the databases admit. */
  readonly securityGroups: readonly ec2.ISecurityGroup[];
}

/** One function's code, limits and environment; the rest are the house defaults. */
export interface PgWardenFunctionProps {
  /** The handler file, relative to the repository root, e.g. `functions/probe/handler.ts`. */
  readonly entry: string;
  /** Shown in the Lambda console. */
  readonly description: string;
  /** Every wait inside the function is bounded below this. */
  readonly timeout: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** Function-specific variables, added to the common ones. @default none */
  readonly environment?: Readonly<Record<string, string>>;
  /** Runs the function inside a VPC. @default - outside any VPC */
  readonly network?: FunctionNetwork;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to the log group when the stack is deleted. @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** @default - unreserved */
  readonly reservedConcurrentExecutions?: number;
  /**
   * X-Ray tracing. PASS_THROUGH traces only invocations whose caller was traced.
   * @default lambda.Tracing.ACTIVE
   */
  readonly tracing?: lambda.Tracing;
}

/**
 * One pgwarden Lambda function with the house defaults: Node.js 24 on arm64, an ESM bundle built by
 * the local esbuild with the AWS SDK clients left to the runtime, source maps, X-Ray tracing, its own log
 * group with a retention, and its own role that can write only to that log group.
 */
export class PgWardenFunction extends Construct implements iam.IGrantable {
  /** The Lambda function. */
  public readonly function: NodejsFunction;
  /** The execution role; grants to the function land here. */
  public readonly role: iam.Role;
  /** Where the function logs. */
  public readonly logGroup: logs.LogGroup;
  /** The handler file, relative to the repository root (what the function's code is bundled from). */
  public readonly entry: string;
  /** The execution role, for `grant*` calls that take the function itself. */
  public readonly grantPrincipal: iam.IPrincipal;
  private readonly env: Record<string, string>;

  constructor(scope: Construct, id: string, props: PgWardenFunctionProps) {
    super(scope, id);
    this.entry = props.entry;
    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // A role of its own instead of AWSLambdaBasicExecutionRole, which may create and write any log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `pgwarden: ${props.description}`,
    });
    this.logGroup.grantWrite(this.role);
    this.grantPrincipal = this.role;

    const inVpc = props.network !== undefined;
    if (inVpc) {
      // What AWSLambdaVPCAccessExecutionRole grants for the function's network interfaces, without its logs:*.
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ManageVpcNetworkInterfaces',
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
    }
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: inVpc
        ? 'X-Ray PutTraceSegments/PutTelemetryRecords and the EC2 network-interface actions Lambda performs for a VPC function support no resource-level permissions; Lambda validates them against "*".'
        : 'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions.',
    });

    this.env = {
      NODE_OPTIONS: '--enable-source-maps',
      POWERTOOLS_SERVICE_NAME: 'pgwarden',
      // Lambda's Node.js 20+ runtimes do not load the runtime CA bundle, which holds the RDS CAs that
      // sslmode=verify-full needs; only the functions that speak SQL connect to a database.
      ...(inVpc ? { NODE_EXTRA_CA_CERTS: LAMBDA_CA_BUNDLE } : {}),
      ...props.environment,
    };

    this.function = new NodejsFunction(this, 'Function', {
      entry: `${REPO_ROOT}${props.entry}`,
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      description: `pgwarden: ${props.description}`,
      timeout: props.timeout,
      memorySize: props.memorySize ?? 256,
      role: this.role,
      logGroup: this.logGroup,
      tracing: props.tracing ?? lambda.Tracing.ACTIVE,
      environment: { ...this.env },
      ...(props.reservedConcurrentExecutions !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions }
        : {}),
      ...(props.network
        ? {
            vpc: props.network.vpc,
            vpcSubnets: props.network.subnets,
            securityGroups: [...props.network.securityGroups],
          }
        : {}),
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        minify: true,
        sourceMap: true,
        // Stack traces keep file and line; leaving the sources out keeps the deployment package small.
        sourcesContent: false,
        mainFields: ['module', 'main'],
        banner: REQUIRE_BANNER,
        // The Node.js runtime ships the AWS SDK v3 (the service clients, their credential chain and the
        // RDS signer), so it stays out of the bundle. The RDS signer is imported when the first IAM
        // token is signed, not at cold start; the credential chain only outside Lambda, where
        // credentials are not in the environment.
        externalModules: ['@aws-sdk/*'],
        forceDockerBundling: false,
      },
    });
    // Lambda checks the role's network-interface permissions when it creates a VPC function, so the
    // policy must exist first, and must outlive the function when the stack is deleted.
    this.function.node.addDependency(this.role);
  }

  /** The environment the function is deployed with (for the 4 KB check). */
  public get environment(): Readonly<Record<string, string>> {
    return this.env;
  }

  /** Adds a variable to the function's environment. */
  public addEnvironment(key: string, value: string): void {
    this.env[key] = value;
    this.function.addEnvironment(key, value);
  }
}
