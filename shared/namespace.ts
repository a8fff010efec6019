/**
 * pgwarden's CloudWatch namespace: a contract (dashboards, alarms and IAM conditions name it). A module
 * of its own so that naming it does not bring in the code that publishes metrics.
 */
export const NAMESPACE = 'PgWarden';
