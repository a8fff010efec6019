import { actionText } from '../../functions/runbook/messages.ts';
import { createConsoleLogger, logLevelFrom } from '../../shared/logger.ts';
import { printable } from '../../shared/printable.ts';
import { type CommandSpec, FlagReader, parseCommandArgs } from '../args.ts';
import { colours, outcomeLabel, plain, reportedMessages, type Style } from '../format.ts';
import { EXIT, type ExitCode, type Io } from '../io.ts';
import { createRenderer, describeEvent } from '../live.ts';
import { requestDrill } from '../local/control.ts';
import { DRILL_LIMITS, DRILL_SUMMARY, DRILLS } from '../local/drills.ts';
import { preparePrivateDir } from '../local/home.ts';
import { type DrillReport, LocalSystem } from '../local/system.ts';
import { describeSettings, LOCAL_FLAGS, readDrill, readLocalSettings } from '../local-flags.ts';
import { onInterrupt } from '../signals.ts';

export const drillCommand: CommandSpec = {
  name: 'drill',
  summary:
    'Inject a fault into the local database and follow detection, remediation, resolution or escalation.',
  usage: `pgwarden drill <${DRILLS.join('|')}> [--for <dur>] [--timeout <dur>] [--escalate-after <dur>] [--json] [flags]`,
  positionals: ['fault'],
  flags: {
    ...LOCAL_FLAGS,
    for: {
      type: 'string',
      value: 'dur',
      describe: 'how long the fault lasts (default: per fault; some end by remediation)',
    },
    timeout: {
      type: 'string',
      value: 'dur',
      describe: 'stop following the incident after this long (default 5m)',
    },
    json: { type: 'boolean', describe: 'print the report as one JSON object' },
    help: { type: 'boolean', describe: 'show this help' },
  },
};

/** The drill report in the shape of the runbook report. */
export function drillJson(report: DrillReport) {
  return {
    drill: report.drill,
    detail: report.detail,
    incidentId: report.incidentId ?? null,
    outcome: report.outcome,
    status: report.status ?? null,
    found: report.record?.found ?? [],
    actions: report.record?.actions ?? [],
    timeline: report.record?.timeline ?? [],
    pages: reportedMessages(report.published),
  };
}

export function printDrillReport(io: Io, report: DrillReport, style: Style): void {
  const verdict = outcomeLabel(report.outcome, style);
  const lines = [
    '',
    `drill ${report.drill}: ${printable(report.detail)}`,
    `outcome: ${verdict}${report.incidentId ? ` (incident ${report.incidentId}, ${report.status})` : ' (no incident was opened)'}`,
  ];
  if (report.record) {
    lines.push('found:', ...report.record.found.map((f) => `  - ${printable(f)}`));
    lines.push(
      'done:',
      ...(report.record.actions.length
        ? report.record.actions.map((a) => `  - ${printable(actionText(a))}`)
        : ['  - nothing']),
    );
  }
  lines.push(
    `messages: ${report.published.map((m) => `${m.topic === 'pgwarden-pages' ? 'PAGE' : 'notification'} "${printable(m.subject)}"`).join('; ') || 'none'}`,
  );
  io.out(`${lines.join('\n')}\n`);
}

export async function runDrill(argv: string[], io: Io): Promise<ExitCode> {
  const args = parseCommandArgs(drillCommand, argv);
  const reader = new FlagReader(drillCommand, args);
  const drill = readDrill(reader, args.positionals[0], '<fault>');
  if (args.positionals[0] === undefined) {
    reader.issues.push({
      path: '<fault>',
      received: 'nothing',
      problem: 'is required',
      fix: `Name a fault: ${DRILLS.map((d) => `${d} (${DRILL_SUMMARY[d]})`).join('; ')}.`,
    });
  }
  const logger = createConsoleLogger({ level: logLevelFrom(io.env), write: (line) => io.err(`${line}\n`) });
  const settings = readLocalSettings(reader, io.env, logger);
  const forMs =
    reader.string('for') !== undefined
      ? reader.duration('for', 0, { minMs: DRILL_LIMITS.minMs, maxMs: DRILL_LIMITS.maxForMs })
      : undefined;
  const timeoutMs = reader.duration('timeout', 5 * 60_000, {
    minMs: DRILL_LIMITS.minMs,
    maxMs: DRILL_LIMITS.maxTimeoutMs,
  });
  const json = reader.boolean('json');
  reader.done();
  if (!drill) return EXIT.usage;
  const style = io.isTty && !json ? colours : plain;
  const request = { drill, ...(forMs !== undefined ? { forMs } : {}), timeoutMs };

  // A system already running here (npm start) takes the drill; otherwise run one just for it. Either
  // way the folder must be this user's own: its socket is trusted with the report.
  await preparePrivateDir(settings.home);
  let report = await requestDrill(settings.home, request, (message) => {
    if (json || message.type !== 'event') return;
    const line = describeEvent(message.event, style);
    if (line) io.out(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  });
  if (!report) {
    if (!json) io.out(`no local pgwarden is running in ${settings.home}; starting one for this drill\n`);
    const system = await LocalSystem.start(settings);
    const renderer = json
      ? undefined
      : createRenderer(io, system.live, style, {
          live: false,
          header: `pgwarden local mode: ${describeSettings(settings)}`,
        });
    if (renderer) {
      system.on((event) => renderer.handle(event));
      renderer.handle({
        type: 'ready',
        target: system.target.id,
        database: system.live.database,
        embedded: !settings.databaseUrl,
      });
    }
    const removeInterrupt = onInterrupt(async () => {
      await system.stop();
      process.exit(130);
    });
    try {
      const deadline = Date.now() + 30_000;
      while (!system.live.last && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      report = await system.drill(drill, request);
    } finally {
      renderer?.close();
      await system.stop();
      removeInterrupt();
    }
  }
  if (json) io.out(`${JSON.stringify(drillJson(report))}\n`);
  else printDrillReport(io, report, style);
  return report.outcome === 'resolved' ? EXIT.ok : EXIT.fault;
}
