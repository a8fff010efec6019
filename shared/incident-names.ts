/**
 * The names of incident executions: `pgw-<target>-<yyyymmdd>-<n>`, continued as `...-part<n>`. Kept
 * apart from shared/incidents.ts, which opens incidents through the Step Functions API, so code that
 * only needs a name (the runbook's continuation) does not import the calls it never makes.
 */

export function incidentPrefix(targetId: string): string {
  return `pgw-${targetId}-`;
}

/** What follows a target's prefix in an execution name: the day and number, or a timestamp; then the part. */
const INCIDENT_SUFFIX = /^(\d{8}-\d+|\d{13,})(-part\d+)?$/;
const PART = /-part(\d+)$/;

/** The name of the execution carrying part `part` of an incident; part 1 is named after the incident. */
export function continuationName(incidentId: string, part: number): string {
  return part <= 1 ? incidentId : `${incidentId}-part${part}`;
}

/** The incident an execution carries: its name without the part. */
export function incidentIdOf(executionName: string): string {
  return executionName.replace(PART, '');
}

/** Which part of its incident an execution carries (1 for the execution that opened it). */
export function partOf(executionName: string): number {
  const match = PART.exec(executionName);
  return match ? Number(match[1]) : 1;
}

/**
 * Whether an execution carries one of `targetId`'s incidents: its prefix, then nothing but an incident
 * suffix (target "orders" does not own "pgw-orders-eu-20261126-1").
 */
export function isIncidentOf(executionName: string, targetId: string): boolean {
  const prefix = incidentPrefix(targetId);
  return executionName.startsWith(prefix) && INCIDENT_SUFFIX.test(executionName.slice(prefix.length));
}

/** Execution ARN from the state machine ARN and an execution name. */
export function executionArnFor(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}
