import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { FunctionNetwork } from './pgwarden-function.ts';

/** Where the databases are, and how the functions reach them. */
export interface NetworkProps {
  /** The VPC of the databases. */
  readonly vpc: ec2.IVpc;
  /** Subnets for the in-VPC functions: private, with a route to the databases. */
  readonly subnets: ec2.SubnetSelection;
  /** TCP ports the functions connect to. */
  readonly databasePorts: readonly number[];
  /**
   * Where database traffic may go when no database security group is named.
   * @default - anywhere (the subnets' routes still decide what is reachable)
   */
  readonly databaseCidr?: string;
  /** The databases' security groups: each gets an ingress rule from the functions. @default none */
  readonly databaseSecurityGroups?: readonly ec2.ISecurityGroup[];
  /** Further security groups attached to the functions. @default none */
  readonly extraSecurityGroups?: readonly ec2.ISecurityGroup[];
  /**
   * Whether the functions read Secrets Manager (secret auth). Without an endpoint created here they
   * are allowed HTTPS out, to reach an existing endpoint or a NAT gateway.
   * @default false
   */
  readonly readsSecrets?: boolean;
  /** Create a Secrets Manager interface endpoint in the subnets. @default false */
  readonly createSecretsManagerEndpoint?: boolean;
  /** Secrets the endpoint serves (its policy allows only reading these). @default - any secret */
  readonly secretArns?: readonly string[];
}

/**
 * Where the functions that speak SQL run: their security group (egress only to the databases and,
 * when secrets are used, to Secrets Manager), ingress rules on the databases' security groups, and
 * optionally a Secrets Manager interface endpoint for VPCs without NAT. RDS IAM authentication
 * needs no endpoint: the token is signed locally with the function's credentials.
 */
export class Network extends Construct {
  /** The security group of the probe and remediate functions. */
  public readonly functionSecurityGroup: ec2.SecurityGroup;
  /** The Secrets Manager endpoint, when created. */
  public readonly secretsManagerEndpoint?: ec2.InterfaceVpcEndpoint;
  /** Where the in-VPC functions run. */
  public readonly functionNetwork: FunctionNetwork;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: props.vpc,
      description: 'pgwarden probe and remediate functions',
      allowAllOutbound: false,
    });
    const sg = this.functionSecurityGroup;
    const ports = [...new Set(props.databasePorts)].sort((a, b) => a - b);

    const databaseGroups = props.databaseSecurityGroups ?? [];
    if (databaseGroups.length > 0) {
      for (const group of databaseGroups)
        for (const port of ports)
          sg.connections.allowTo(group, ec2.Port.tcp(port), `pgwarden to PostgreSQL on ${port}`);
    } else {
      const peer = props.databaseCidr ? ec2.Peer.ipv4(props.databaseCidr) : ec2.Peer.anyIpv4();
      for (const port of ports) sg.addEgressRule(peer, ec2.Port.tcp(port), `PostgreSQL on ${port}`);
    }

    if (props.createSecretsManagerEndpoint) {
      const endpointSecurityGroup = new ec2.SecurityGroup(this, 'SecretsManagerEndpointSecurityGroup', {
        vpc: props.vpc,
        description: 'pgwarden Secrets Manager endpoint',
        allowAllOutbound: false,
      });
      this.secretsManagerEndpoint = new ec2.InterfaceVpcEndpoint(this, 'SecretsManagerEndpoint', {
        vpc: props.vpc,
        service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        subnets: props.subnets,
        securityGroups: [endpointSecurityGroup],
        privateDnsEnabled: true,
        open: false,
      });
      this.secretsManagerEndpoint.connections.allowFrom(sg, ec2.Port.tcp(443), 'pgwarden reads its secrets');
      const secrets = props.secretArns ?? [];
      if (secrets.length > 0)
        this.secretsManagerEndpoint.addToPolicy(
          new iam.PolicyStatement({
            principals: [new iam.AnyPrincipal()],
            actions: ['secretsmanager:GetSecretValue'],
            resources: [...secrets],
          }),
        );
    } else if (props.readsSecrets) {
      // An endpoint created elsewhere or a NAT gateway: its address is not known here.
      sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to Secrets Manager');
    }

    this.functionNetwork = {
      vpc: props.vpc,
      subnets: props.subnets,
      securityGroups: [sg, ...(props.extraSecurityGroups ?? [])],
    };
  }
}
