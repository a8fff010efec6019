/**
 * List prices the cost model uses: US East (N. Virginia), on demand, without free tiers, as published
 * at the time of writing. Check the sources before relying on them.
 */

export interface Price {
  usd: number;
  unit: string;
  /** The price as the source states it. */
  display: string;
  source: string;
}

export const PRICES = {
  lambdaArmGbSecond: {
    usd: 0.0000133334,
    unit: 'GB-second, arm64 (first 7.5 billion GB-s a month)',
    display: '$0.0000133334 per GB-second (arm64)',
    source: 'https://aws.amazon.com/lambda/pricing/',
  },
  lambdaRequest: {
    usd: 0.2 / 1e6,
    unit: 'request',
    display: '$0.20 per million requests',
    source: 'https://aws.amazon.com/lambda/pricing/',
  },
  customMetric: {
    usd: 0.3,
    unit: 'custom metric-month (first 10,000 metrics; prorated by the hour a metric is published)',
    display: '$0.30 per custom metric a month (first 10,000)',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
  },
  metricApiRequest: {
    usd: 0.01 / 1_000,
    unit: 'PutMetricData request',
    display: '$0.01 per 1,000 PutMetricData requests',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
  },
  alarmMetric: {
    usd: 0.1,
    unit: 'standard-resolution alarm metric-month',
    display: '$0.10 per standard-resolution alarm metric a month',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
  },
  dashboard: {
    usd: 3,
    unit: 'dashboard-month (3 dashboards of up to 50 metrics are free)',
    display: '$3.00 per dashboard a month',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
  },
  logIngestGb: {
    usd: 0.5,
    unit: 'GB of logs ingested (standard class)',
    display: '$0.50 per GB of logs ingested',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
  },
  dynamodbWriteRequest: {
    usd: 0.625 / 1e6,
    unit: 'write request unit, on-demand',
    display: '$0.625 per million write request units (on-demand)',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
  },
  stateTransition: {
    usd: 0.025 / 1_000,
    unit: 'Standard workflow state transition',
    display: '$0.025 per 1,000 state transitions (Standard workflows)',
    source: 'https://aws.amazon.com/step-functions/pricing/',
  },
  snsPublish: {
    usd: 0.5 / 1e6,
    unit: 'SNS publish request',
    display: '$0.50 per million SNS publishes',
    source: 'https://aws.amazon.com/sns/pricing/',
  },
  snsEmail: {
    usd: 2 / 1e5,
    unit: 'email notification',
    display: '$2.00 per 100,000 email notifications',
    source: 'https://aws.amazon.com/sns/pricing/',
  },
  xrayTrace: {
    usd: 5 / 1e6,
    unit: 'trace recorded (first 100,000 a month free)',
    display: '$5.00 per million traces recorded',
    source: 'https://aws.amazon.com/xray/pricing/',
  },
  devOpsGuruGroupB: {
    usd: 0.0042,
    unit: 'resource-hour, resource price group B (Amazon RDS is charged per vCPU of the analysed instance)',
    display: '$0.0042 per resource-hour in price group B; Amazon RDS instances are charged per vCPU',
    source: 'https://aws.amazon.com/devops-guru/pricing/',
  },
  datadogDbm: {
    usd: 70,
    unit: 'database host-month, Database Monitoring, billed annually',
    display: '$70 per database host a month, billed annually',
    source: 'https://www.datadoghq.com/pricing/?product=database-monitoring',
  },
} satisfies Record<string, Price>;

export const HOURS_PER_MONTH = 730;
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3_600;
