import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { grantsOf, logicalId, synth } from './synth.ts';

// Demo mode with no configuration file at all.
const { template } = synth({}, { demo: true });
const database = logicalId(template, 'AWS::RDS::DBInstance', 'DemoDatabase');
const functionGroup = logicalId(template, 'AWS::EC2::SecurityGroup', 'NetworkFunctionSecurityGroup');

describe('demo mode', () => {
  it('creates a two-zone VPC with isolated subnets and no NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::Subnet', 2);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
  });

  it('creates a PostgreSQL 17 db.t4g.micro with IAM authentication, encryption and an RDS-managed secret', () => {
    template.hasResource('AWS::RDS::DBInstance', {
      Properties: {
        Engine: 'postgres',
        EngineVersion: Match.stringLikeRegexp('^17'),
        DBInstanceClass: 'db.t4g.micro',
        EnableIAMDatabaseAuthentication: true,
        StorageEncrypted: true,
        ManageMasterUserPassword: true,
        DeletionProtection: false,
        MultiAZ: false,
      },
      DeletionPolicy: 'Delete',
    });
  });

  it('opens the database to the pgwarden functions only', () => {
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 5432,
      ToPort: 5432,
      SourceSecurityGroupId: { 'Fn::GetAtt': [functionGroup, 'GroupId'] },
      GroupId: {
        'Fn::GetAtt': [
          logicalId(template, 'AWS::EC2::SecurityGroup', 'DemoDatabaseSecurityGroup'),
          'GroupId',
        ],
      },
    });
  });

  it('creates a Secrets Manager interface endpoint so the probe can read the secret without NAT', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.secretsmanager']] },
    });
  });

  it('monitors the demo database by its endpoint, its secret and its instance id', () => {
    const monitor = logicalId(template, 'AWS::Lambda::Function', 'FunctionsMonitorFunction');
    const env = template.findResources('AWS::Lambda::Function')[monitor]?.Properties.Environment.Variables;
    const targets = JSON.stringify(env.PGWARDEN_TARGETS);
    expect(targets).toContain('\\"id\\":\\"demo\\"');
    expect(targets).toContain(`"Fn::GetAtt":["${database}","Endpoint.Address"]`);
    expect(targets).toContain(`"Fn::GetAtt":["${database}","MasterUserSecret.SecretArn"]`);
    expect(targets).toContain(`{"Ref":"${database}"}`);
  });

  it('lets the probe read the demo secret and nothing else', () => {
    expect(grantsOf(template, 'FunctionsProbeRole', 'secretsmanager:GetSecretValue')).toEqual([
      { 'Fn::GetAtt': [database, 'MasterUserSecret.SecretArn'] },
    ]);
  });

  it('destroys everything it created with the stack', () => {
    for (const group of Object.values(template.findResources('AWS::Logs::LogGroup')))
      expect(group.DeletionPolicy).toBe('Delete');
    template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete' });
  });

  it('receives the demo instance’s RDS events', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({
        source: ['aws.rds'],
        detail: { SourceIdentifier: Match.arrayWith([{ Ref: database }]) },
      }),
    });
  });
});
