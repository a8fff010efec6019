import { assess } from '../../shared/health.ts';
import { PROBE_TIMEOUTS, probe } from '../../shared/probe/snapshot.ts';
import { DEFAULT_THRESHOLDS } from '../../shared/target.ts';
import { type CommandSpec, FlagReader, parseCommandArgs } from '../args.ts';
import { colours, plain, renderProbe } from '../format.ts';
import { EXIT, type ExitCode, type Io } from '../io.ts';
import { resolveRuntimeDeps } from '../runtime.ts';

export const probeCommand: CommandSpec = {
  name: 'probe',
  summary: 'Probe a database once: connect with hard timeouts, take the health snapshot, judge it.',
  usage:
    'pgwarden probe --url <postgres-url> [--json] [--connect-timeout <dur>] [--long-query-after <dur>] [--lock-wait-after <dur>]',
  flags: {
    url: {
      type: 'string',
      value: 'postgres-url',
      describe: 'database to probe (default: $DATABASE_URL; password from $PGPASSWORD)',
    },
    json: { type: 'boolean', describe: 'print one JSON object' },
    'connect-timeout': {
      type: 'string',
      value: 'dur',
      describe: 'give up connecting after this long (default 3s)',
    },
    'statement-timeout': {
      type: 'string',
      value: 'dur',
      describe: 'server-side limit for the snapshot (default 2s)',
    },
    'long-query-after': {
      type: 'string',
      value: 'dur',
      describe: 'a query running longer is long-running (default 5m)',
    },
    'lock-wait-after': {
      type: 'string',
      value: 'dur',
      describe: 'a session waiting on a lock this long makes its lock chain a finding (default 1m)',
    },
    help: { type: 'boolean', describe: 'show this help' },
  },
};

export async function runProbe(argv: string[], io: Io): Promise<ExitCode> {
  const reader = new FlagReader(probeCommand, parseCommandArgs(probeCommand, argv));
  const spec = reader.database(io.env);
  // The probe function's timeouts by default; by hand, on-call may wait longer for a slow server.
  const connectTimeoutMs = reader.duration('connect-timeout', PROBE_TIMEOUTS.connectTimeoutMs, {
    minMs: 50,
    maxMs: 120_000,
  });
  const statementTimeoutMs = reader.duration('statement-timeout', PROBE_TIMEOUTS.statementTimeoutMs, {
    minMs: 50,
    maxMs: 120_000,
  });
  const longQueryMs = reader.duration('long-query-after', DEFAULT_THRESHOLDS.longQuerySeconds * 1_000, {
    minMs: 100,
  });
  const lockWaitMs = reader.duration('lock-wait-after', DEFAULT_THRESHOLDS.lockWaitSeconds * 1_000, {
    minMs: 100,
  });
  reader.done();
  if (!spec) return EXIT.usage;

  const deps = resolveRuntimeDeps(io);
  const result = await probe(
    spec,
    { connectTimeoutMs, statementTimeoutMs, longQueryThresholdSeconds: longQueryMs / 1_000 },
    deps,
  );
  const thresholds = {
    ...DEFAULT_THRESHOLDS,
    longQuerySeconds: longQueryMs / 1_000,
    lockWaitSeconds: lockWaitMs / 1_000,
  };
  const assessment = assess(result, thresholds);
  if (reader.boolean('json')) {
    io.out(`${JSON.stringify({ ...result, healthy: assessment.healthy, findings: assessment.findings })}\n`);
  } else {
    io.out(renderProbe(result, assessment, io.isTty ? colours : plain));
  }
  return assessment.healthy ? EXIT.ok : EXIT.fault;
}
