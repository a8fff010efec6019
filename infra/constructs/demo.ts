import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import type { TargetInput } from '../../shared/target.ts';

/** The port the demo database listens on. */
export const DEMO_PORT = 5432;

/**
 * A database to try pgwarden on, in a VPC of its own: two Availability Zones, isolated subnets and no
 * NAT (so nothing costs by the hour but the instance and the Secrets Manager endpoint), a PostgreSQL 17
 * db.t4g.micro with IAM authentication, encrypted storage and a master password RDS keeps in Secrets
 * Manager. Everything is destroyed with the stack: there is no data worth keeping.
 */
export class Demo extends Construct {
  /** The demo VPC: two Availability Zones, isolated subnets, no NAT. */
  public readonly vpc: ec2.Vpc;
  /** Where the in-VPC functions run. */
  public readonly subnets: ec2.SubnetSelection;
  /** The demo PostgreSQL instance. */
  public readonly database: rds.DatabaseInstance;
  /** The instance's security group; the functions get an ingress rule to it. */
  public readonly databaseSecurityGroup: ec2.SecurityGroup;
  /** The master user's secret, managed and rotated by RDS. */
  public readonly secretArn: string;
  /** The demo database as a fleet target, as the configuration file would name it. */
  public readonly target: TargetInput;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    Validations.of(this.vpc).acknowledge({
      id: 'AwsSolutions-VPC7',
      reason:
        'Demo VPC with isolated subnets only (no internet route, no NAT); flow logs would add cost to a throwaway environment.',
    });
    this.subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

    this.databaseSecurityGroup = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
      vpc: this.vpc,
      description: 'pgwarden demo database',
      allowAllOutbound: false,
    });
    this.database = new rds.DatabaseInstance(this, 'Database', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      vpc: this.vpc,
      vpcSubnets: this.subnets,
      securityGroups: [this.databaseSecurityGroup],
      port: DEMO_PORT,
      allocatedStorage: 20,
      storageType: rds.StorageType.GP3,
      storageEncrypted: true,
      iamAuthentication: true,
      manageMasterUserPassword: true,
      credentials: rds.Credentials.fromUsername('postgres'),
      multiAz: false,
      backupRetention: Duration.days(1),
      deleteAutomatedBackups: true,
      deletionProtection: false,
      removalPolicy: RemovalPolicy.DESTROY,
      cloudwatchLogsExports: ['postgresql'],
    });
    Validations.of(this.database).acknowledge(
      {
        id: 'AwsSolutions-RDS3',
        reason:
          'Demo database: a single Availability Zone keeps it cheap; pgwarden itself is what is on show.',
      },
      {
        id: 'AwsSolutions-RDS10',
        reason: 'Demo database: deletion protection off so `cdk destroy` removes it.',
      },
      {
        id: 'AwsSolutions-RDS11',
        reason:
          'Demo database: the default port keeps the example config and the probe’s defaults aligned; it is reachable only from the pgwarden functions’ security group.',
      },
    );

    const cfn = this.database.node.defaultChild as rds.CfnDBInstance;
    this.secretArn = cfn.attrMasterUserSecretSecretArn;
    this.target = {
      id: 'demo',
      host: this.database.dbInstanceEndpointAddress,
      port: DEMO_PORT,
      database: 'postgres',
      auth: { secretArn: this.secretArn },
      tls: 'verify-full',
      rds: { instanceId: this.database.instanceIdentifier },
    };
  }
}
