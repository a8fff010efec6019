/** The pgwarden command line: the on-call's tool against any database, and local mode. */
import { describeError, UsageError } from '../shared/errors.ts';
import { type CommandSpec, helpText } from './args.ts';
import { doctorCommand, runDoctor } from './commands/doctor.ts';
import { drillCommand, runDrill } from './commands/drill.ts';
import { probeCommand, runProbe } from './commands/probe.ts';
import { runbookCommand, runRunbook } from './commands/runbook.ts';
import { runStart, startCommand } from './commands/start.ts';
import { runSweep, sweepCommand } from './commands/sweep.ts';
import { runTestPage, testPageCommand } from './commands/test-page.ts';
import { EXIT, type ExitCode, type Io, processIo } from './io.ts';

interface Command {
  spec: CommandSpec;
  run(argv: string[], io: Io): Promise<ExitCode>;
}

const commands: Record<string, Command> = {
  probe: { spec: probeCommand, run: runProbe },
  sweep: { spec: sweepCommand, run: runSweep },
  runbook: { spec: runbookCommand, run: (argv, io) => runRunbook(argv, io) },
  drill: { spec: drillCommand, run: runDrill },
  start: { spec: startCommand, run: runStart },
  doctor: { spec: doctorCommand, run: runDoctor },
  'test-page': { spec: testPageCommand, run: runTestPage },
};

function overview(): string {
  const lines = ['pgwarden: health checks and safe remediation for PostgreSQL', '', 'Commands:'];
  for (const [name, command] of Object.entries(commands))
    lines.push(`  ${name.padEnd(10)}${command.spec.summary}`);
  lines.push(
    '',
    'Run `pgwarden <command> --help` for its flags. Exit codes: 0 healthy/resolved, 1 fault found, 2 usage error.',
  );
  return `${lines.join('\n')}\n`;
}

export async function main(argv: string[], io: Io = processIo()): Promise<ExitCode> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(overview());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = commands[name];
  if (!command) {
    io.err(`pgwarden: "${name}" is not a command. Commands: ${Object.keys(commands).join(', ')}.\n`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(helpText(command.spec));
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`pgwarden ${name}: ${error.message}\n`);
      return EXIT.usage;
    }
    io.err(`pgwarden ${name}: ${describeError(error)}\n`);
    if (io.env.PGWARDEN_DEBUG && error instanceof Error && error.stack) io.err(`${error.stack}\n`);
    return EXIT.fault;
  }
}
