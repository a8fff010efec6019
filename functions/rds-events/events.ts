/**
 * What RDS events mean for pgwarden. Matching is on the event id (never the message, which varies);
 * the ids come from the RDS event reference. Delivery is best effort (late, out of order, or never),
 * so probes stay the primary signal and these only add context and speed.
 */

export type EventKind =
  | 'failover'
  | 'restart'
  | 'shutdown'
  | 'recovery'
  | 'storage'
  | 'stopped'
  | 'started'
  | 'incompatible'
  | 'parameter_change';

export interface EventMeaning {
  kind: EventKind;
  /** Whether the event should open (or join) an incident; the rest are recorded as a metric. */
  opensIncident: boolean;
  /** Short description for the incident notification. */
  description: string;
}

const m = (kind: EventKind, opensIncident: boolean, description: string): EventMeaning => ({
  kind,
  opensIncident,
  description,
});

/** Event id (without the RDS-EVENT- prefix) → meaning. */
export const RDS_EVENTS: Readonly<Record<string, EventMeaning>> = {
  // Multi-AZ instance failover
  '0013': m('failover', true, 'Multi-AZ failover started'),
  '0015': m('failover', false, 'Multi-AZ failover complete (DNS may take a moment)'),
  '0049': m('failover', false, 'Multi-AZ failover completed'),
  '0034': m('failover', true, 'failover was needed but not attempted'),
  '0065': m('failover', false, 'recovered from a partial failover'),
  // DB cluster (Aurora, Multi-AZ cluster) failover
  '0069': m('failover', true, 'cluster failover failed'),
  '0070': m('failover', true, 'cluster failover restarted (promoting the previous primary again)'),
  '0071': m('failover', false, 'cluster failover finished'),
  '0072': m('failover', true, 'cluster failover started within the Availability Zone'),
  '0073': m('failover', true, 'cluster failover started across Availability Zones'),
  // Restart and shutdown
  '0004': m('shutdown', true, 'the DB instance shut down'),
  '0006': m('restart', true, 'the DB instance restarted'),
  // Recovery
  '0020': m('recovery', true, 'recovery of the DB instance started'),
  '0021': m('recovery', false, 'recovery of the DB instance complete'),
  '0052': m('recovery', true, 'Multi-AZ instance recovery started'),
  '0053': m('recovery', false, 'Multi-AZ instance recovery completed'),
  // Storage
  '0007': m('storage', true, 'allocated storage has been consumed'),
  '0089': m('storage', true, 'more than 90% of allocated storage is used'),
  '0221': m('storage', true, 'storage-full threshold reached: the database was shut down'),
  '0222': m('storage', true, 'free storage is low'),
  '0227': m('storage', true, 'Aurora cluster storage is running low'),
  // Stopped and started
  '0087': m('stopped', true, 'the DB instance was stopped'),
  '0088': m('started', false, 'the DB instance was started'),
  '0154': m('started', false, 'the DB instance is being started after the maximum time stopped'),
  '0150': m('stopped', true, 'the DB cluster was stopped'),
  '0151': m('started', false, 'the DB cluster was started'),
  '0152': m('stopped', false, 'the DB cluster failed to stop'),
  '0153': m('started', false, 'the DB cluster is being started after the maximum time stopped'),
  // Incompatible state
  '0031': m('incompatible', true, 'the DB instance is in an incompatible state (configuration or storage)'),
  '0035': m('incompatible', true, 'the DB instance has invalid parameters'),
  '0036': m('incompatible', true, 'the DB instance is in an incompatible network'),
  // Parameter group changes
  '0011': m('parameter_change', false, 'the DB parameter group changed'),
  '0092': m('parameter_change', false, 'the DB parameter group is being updated'),
};

/** `RDS-EVENT-0004` → meaning, or undefined for an id pgwarden does not act on. */
export function meaningOf(eventId: string): EventMeaning | undefined {
  const match = /^RDS-EVENT-(\d{4})$/.exec(eventId);
  return match ? RDS_EVENTS[match[1] as string] : undefined;
}

/** `SourceIdentifier` arrives with and without an `rds:` prefix. */
export function sourceIdentifier(raw: string): string {
  return raw.replace(/^rds:/, '');
}
