import { printable } from '../../shared/printable.ts';
import { remediate } from '../../shared/remediation/remediator.ts';
import { DEFAULT_REMEDIATION } from '../../shared/target.ts';
import { type CommandSpec, FlagReader, parseCommandArgs } from '../args.ts';
import { EXIT, type ExitCode, type Io } from '../io.ts';
import { REMEDIATION_FLAGS, readRemediation } from '../policy-flags.ts';
import { resolveRuntimeDeps } from '../runtime.ts';

export const sweepCommand: CommandSpec = {
  name: 'sweep',
  summary: 'Terminate idle and idle-in-transaction sessions past their thresholds, under the guardrails.',
  usage:
    'pgwarden sweep --url <url> [--idle-after <dur>] [--idle-in-transaction-after <dur>] [--protect-user <name>]... [--protect-app <name>]... [--max <n>] [--dry-run] [--json]',
  flags: {
    url: {
      type: 'string',
      value: 'postgres-url',
      describe: 'database to sweep (default: $DATABASE_URL; password from $PGPASSWORD)',
    },
    ...REMEDIATION_FLAGS,
    json: { type: 'boolean', describe: 'print one JSON object' },
    help: { type: 'boolean', describe: 'show this help' },
  },
};

export async function runSweep(argv: string[], io: Io): Promise<ExitCode> {
  const reader = new FlagReader(sweepCommand, parseCommandArgs(sweepCommand, argv));
  const spec = reader.database(io.env);
  const policy = readRemediation(reader, DEFAULT_REMEDIATION);
  reader.done();
  if (!spec) return EXIT.usage;

  const result = await remediate(
    spec,
    { targetId: 'cli', policy, actions: ['idle', 'idle_in_transaction'] },
    resolveRuntimeDeps(io),
  );
  const terminated = result.terminated.map((t) => ({
    pid: t.pid,
    user: t.user,
    application: t.application,
    state: t.state,
    idleSeconds: t.idleSeconds,
    reason: t.reason,
  }));
  const skipped = result.skipped.map((s) => ({ pid: s.pid, reason: s.reason }));
  if (reader.boolean('json')) {
    io.out(
      `${JSON.stringify({ dryRun: result.dryRun, terminated, skipped, ...(result.ok ? {} : { failure: result.failure }) })}\n`,
    );
  } else {
    const verb = result.dryRun ? 'would terminate' : 'terminated';
    const lines = [
      result.ok
        ? `${result.dryRun ? 'DRY RUN: ' : ''}${verb} ${terminated.length} session(s), left ${Object.values(result.skipCounts).reduce((a, b) => a + b, 0)} alone (idle > ${policy.idleAfterSeconds}s, idle in transaction > ${policy.idleInTransactionAfterSeconds}s, at most ${policy.maxPerRun})`
        : `could not sweep: ${result.failure.category}: ${printable(result.failure.message)}`,
      // Role and application names are whatever their creators and clients chose.
      ...terminated.map(
        (t) =>
          `  ${verb.padEnd(15)} pid ${t.pid}  ${printable(t.user ?? '-')}  ${printable(t.application || '-')}  ${printable(t.state ?? '-')}  idle ${t.idleSeconds}s  (${t.reason})`,
      ),
      ...skipped.map((s) => `  ${'left alone'.padEnd(15)} pid ${s.pid}  (${s.reason})`),
    ];
    io.out(`${lines.join('\n')}\n`);
  }
  return result.ok ? EXIT.ok : EXIT.fault;
}
