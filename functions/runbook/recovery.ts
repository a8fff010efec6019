/**
 * The two AWS actions the runbook may take on a database that RDS reports healthy but PostgreSQL does
 * not serve: reboot an instance (`remediation.allowReboot`) or fail a cluster over to a reader
 * (`remediation.allowFailover`). Both are opt-in, at most once per incident, announced before they
 * are sent, and never taken while RDS reports anything but `available`.
 *
 * Only failures where the database host itself answered count: a refused connection (nothing listens
 * on the port), or PostgreSQL saying it is starting up, shutting down, or dropping the connection. A
 * timeout may be the network between pgwarden and the database (a security group, a route) while the
 * applications are served: rebooting for it could take down a healthy database, so it never does.
 */
import { formatDuration } from '../../shared/duration.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import type { InstanceStatus, NodeOutcome, Recovery, RecoveryKind } from '../../shared/runbook/record.ts';
import type { Target } from '../../shared/target.ts';

/** How long PostgreSQL must have refused connections before the runbook acts: the runbook's response time. */
export const RECOVER_AFTER_SECONDS = 600;

/** How the runbook names an action in messages. */
export const RECOVERY_WORDS: Record<
  RecoveryKind,
  { verb: string; doing: string; done: string; option: string }
> = {
  reboot_instance: {
    verb: 'reboot',
    doing: 'rebooting',
    done: 'rebooted',
    option: 'remediation.allowReboot',
  },
  failover_cluster: {
    verb: 'fail over',
    doing: 'failing over',
    done: 'failed over',
    option: 'remediation.allowFailover',
  },
};

/**
 * Whether PostgreSQL does not accept connections while RDS reports the instance or cluster
 * `available`, and how it says so; undefined when that is not the case, or cannot be told.
 */
export function notAccepting(probe: ProbeResult, instance: InstanceStatus | undefined): string | undefined {
  if (probe.ok || instance?.status !== 'available') return undefined;
  const { category, errno, sqlstate } = probe.failure;
  switch (category) {
    case 'unreachable':
      return errno === 'ECONNREFUSED'
        ? 'PostgreSQL refuses connections (nothing listens on its port)'
        : undefined;
    case 'starting_up':
      return `PostgreSQL answers that it is not accepting connections yet (${sqlstate ?? '57P03'})`;
    case 'shutting_down':
      return `PostgreSQL answers that it is shutting down (${sqlstate ?? '57P01'})`;
    case 'connection_lost':
      return 'PostgreSQL drops every connection';
    default:
      return undefined;
  }
}

/** The action the target opted into for this kind of RDS resource, if any. */
export function recoveryFor(target: Target, instance: InstanceStatus): RecoveryKind | undefined {
  if (instance.kind === 'instance' && target.rds?.instanceId && target.remediation.allowReboot)
    return 'reboot_instance';
  if (instance.kind === 'cluster' && target.rds?.clusterId && target.remediation.allowFailover)
    return 'failover_cluster';
  return undefined;
}

const clock = (iso: string) => iso.slice(11, 19);

/**
 * The accepting-connections node's verdict for a database RDS reports available and PostgreSQL does
 * not serve, when the target opted into an action; undefined otherwise (the node judges as it always
 * has).
 */
export function recoveryOutcome(input: {
  target: Target;
  instance: InstanceStatus;
  /** What `notAccepting` said. */
  down: string;
  /** For how long it has been so, in this incident. */
  seconds: number;
  /** The incident's reboot or failover, if it had one. */
  recovery?: Recovery | undefined;
}): NodeOutcome | undefined {
  const { target, instance, down, seconds, recovery } = input;
  const kind = recoveryFor(target, instance);
  if (!kind) return undefined;
  const words = RECOVERY_WORDS[kind];
  const where = `RDS ${instance.kind} ${instance.id}`;
  const fault = (detail: string, decision: NodeOutcome['decision'] = 'unresolved'): NodeOutcome => ({
    result: 'fault',
    detail,
    decision,
  });
  if (recovery) {
    const done = RECOVERY_WORDS[recovery.kind];
    return fault(
      recovery.requestedAt
        ? `${down} while ${where} is available, after pgwarden ${done.done} it at ${clock(recovery.requestedAt)}: it needs a human (once per incident)`
        : `${down} while ${where} is available; the ${done.verb} announced at ${clock(recovery.announcedAt)} was not done (see what was tried): it needs a human`,
    );
  }
  if (kind === 'failover_cluster' && !(instance.readers && instance.readers > 0))
    return fault(`${down} while ${where} is available; it has no reader to fail over to: it needs a human`);
  const lasting = `${down}${seconds >= 1 ? ` for ${formatDuration(seconds * 1_000)}` : ''} while ${where} is available`;
  if (seconds < RECOVER_AFTER_SECONDS)
    return {
      result: 'waiting',
      detail: `${lasting}: pgwarden will ${words.verb} it if that lasts ${formatDuration(RECOVER_AFTER_SECONDS * 1_000)} (${words.option})`,
      decision: 'wait',
    };
  return fault(`${lasting}: ${words.doing} it (${words.option} is on)`, kind);
}
