import type { Server } from 'node:net';
import { UsageError } from '../../shared/errors.ts';
import { createConsoleLogger, logLevelFrom } from '../../shared/logger.ts';
import { type CommandSpec, FlagReader, parseCommandArgs } from '../args.ts';
import { localSystemChecks, localTestPage } from '../doctor/local-system.ts';
import { colours, plain } from '../format.ts';
import { EXIT, type ExitCode, type Io } from '../io.ts';
import { createRenderer } from '../live.ts';
import { serveControl } from '../local/control.ts';
import { DRILL_LIMITS, DRILLS } from '../local/drills.ts';
import { type DrillReport, LocalSystem } from '../local/system.ts';
import { describeSettings, LOCAL_FLAGS, readDrill, readLocalSettings } from '../local-flags.ts';
import { onInterrupt } from '../signals.ts';
import { printDrillReport } from './drill.ts';

export const startCommand: CommandSpec = {
  name: 'start',
  summary: 'Run pgwarden on this machine: PostgreSQL, monitor, sweep and runbook, live in the terminal.',
  usage:
    'pgwarden start [--url <postgres-url>] [--drill <fault> [--drill-for <dur>] [--exit-after-drill]] [--escalate-after <dur>] [flags]',
  flags: {
    ...LOCAL_FLAGS,
    drill: {
      type: 'string',
      value: 'fault',
      describe: `inject a fault once the system is up: ${DRILLS.join(', ')}`,
    },
    'drill-for': { type: 'string', value: 'dur', describe: 'how long the drill lasts (default: per fault)' },
    'exit-after-drill': {
      type: 'boolean',
      describe: 'stop when the drill has played out; exit code from its outcome',
    },
    plain: { type: 'boolean', describe: 'print one line per event instead of the live table' },
    help: { type: 'boolean', describe: 'show this help' },
  },
};

export async function runStart(argv: string[], io: Io): Promise<ExitCode> {
  const reader = new FlagReader(startCommand, parseCommandArgs(startCommand, argv));
  const logger = createConsoleLogger({ level: logLevelFrom(io.env), write: (line) => io.err(`${line}\n`) });
  const settings = readLocalSettings(reader, io.env, logger);
  const drill = readDrill(reader, reader.string('drill'), '--drill');
  const drillFor =
    reader.string('drill-for') !== undefined
      ? reader.duration('drill-for', 0, { minMs: DRILL_LIMITS.minMs, maxMs: DRILL_LIMITS.maxForMs })
      : undefined;
  const exitAfterDrill = reader.boolean('exit-after-drill');
  if (exitAfterDrill && !drill) {
    reader.issues.push({
      path: '--exit-after-drill',
      received: 'true',
      problem: 'needs --drill',
      fix: 'Add --drill <fault>, or leave it out to run until Ctrl-C.',
    });
  }
  reader.done();

  const style = io.isTty ? colours : plain;
  const header = `pgwarden local mode: ${describeSettings(settings)}`;
  io.out(`starting ${settings.databaseUrl ? 'against the given database' : 'an embedded PostgreSQL'}...\n`);
  const system = await LocalSystem.start(settings);
  const renderer = createRenderer(io, system.live, style, {
    live: io.isTty && !reader.boolean('plain'),
    header,
  });
  const unsubscribe = system.on((event) => renderer.handle(event));
  renderer.handle({
    type: 'ready',
    target: system.target.id,
    database: system.live.database,
    embedded: !settings.databaseUrl,
  });
  io.out(`outbox: ${system.outbox}\nmetrics: ${system.metricsFile}\n`);

  let control: Server | undefined;
  try {
    control = await serveControl(system, settings.home, {
      doctor: () => localSystemChecks(system),
      testPage: (topic) => localTestPage(system, topic),
    });
  } catch (error) {
    io.err(
      `control socket unavailable (${(error as Error).message}); drills from another terminal will start their own system\n`,
    );
  }

  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      io.out('\nstopping...\n');
      unsubscribe();
      renderer.close();
      control?.close();
      await system.stop();
      io.out('stopped: monitor, sweep and runbook ended, embedded PostgreSQL shut down.\n');
      resolveStopped();
    })();
    return stopping;
  };
  const removeInterrupt = onInterrupt(stop);

  let code: ExitCode = EXIT.ok;
  if (drill) {
    await waitForFirstProbe(system, 30_000);
    let report: DrillReport | undefined;
    try {
      report = await system.drill(drill, drillFor !== undefined ? { forMs: drillFor } : {});
    } catch (error) {
      io.err(`drill ${drill} could not run: ${(error as Error).message}\n`);
      if (exitAfterDrill) code = EXIT.fault;
    }
    if (report) {
      printDrillReport(io, report, style);
      if (exitAfterDrill) code = report.outcome === 'resolved' ? EXIT.ok : EXIT.fault;
    }
    if (exitAfterDrill) await stop();
  }
  await stopped;
  removeInterrupt();
  return code;
}

async function waitForFirstProbe(system: LocalSystem, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!system.live.last && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  if (!system.live.last)
    throw new UsageError('local mode', [
      {
        path: 'database',
        received: system.live.database,
        problem: 'never answered a probe',
        fix: 'Check --url / DATABASE_URL.',
      },
    ]);
}
