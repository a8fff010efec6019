/** The pgwarden command line: the on-call's tool against any database, and local mode. */
import { describeError, UsageError } from '../shared/errors.ts';
import { type CommandSpec, helpText } from './args.ts';
import { EXIT, type ExitCode, type Io, processIo } from './io.ts';

interface Command {
  spec: CommandSpec;
  run(argv: string[], io: Io): Promise<ExitCode>;
}

/**
 * Each command is loaded when it runs, with only the modules it needs: a probe on-call starts in a hurry
 * must not wait for the AWS SDK, the local workflow engine or the embedded PostgreSQL.
 */
const commands: Record<string, () => Promise<Command>> = {
  probe: async () => {
    const { probeCommand, runProbe } = await import('./commands/probe.ts');
    return { spec: probeCommand, run: runProbe };
  },
  sweep: async () => {
    const { sweepCommand, runSweep } = await import('./commands/sweep.ts');
    return { spec: sweepCommand, run: runSweep };
  },
  runbook: async () => {
    const { runbookCommand, runRunbook } = await import('./commands/runbook.ts');
    return { spec: runbookCommand, run: (argv, io) => runRunbook(argv, io) };
  },
  drill: async () => {
    const { drillCommand, runDrill } = await import('./commands/drill.ts');
    return { spec: drillCommand, run: runDrill };
  },
  start: async () => {
    const { startCommand, runStart } = await import('./commands/start.ts');
    return { spec: startCommand, run: runStart };
  },
  doctor: async () => {
    const { doctorCommand, runDoctor } = await import('./commands/doctor.ts');
    return { spec: doctorCommand, run: runDoctor };
  },
  'test-page': async () => {
    const { testPageCommand, runTestPage } = await import('./commands/test-page.ts');
    return { spec: testPageCommand, run: runTestPage };
  },
};

async function overview(): Promise<string> {
  const lines = ['pgwarden: health checks and safe remediation for PostgreSQL', '', 'Commands:'];
  const loaded = await Promise.all(Object.values(commands).map((load) => load()));
  for (const [i, name] of Object.keys(commands).entries())
    lines.push(`  ${name.padEnd(10)}${loaded[i]?.spec.summary}`);
  lines.push(
    '',
    'Run `pgwarden <command> --help` for its flags. Exit codes: 0 healthy/resolved, 1 fault found, 2 usage error.',
  );
  return `${lines.join('\n')}\n`;
}

export async function main(argv: string[], io: Io = processIo()): Promise<ExitCode> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(await overview());
    return name ? EXIT.ok : EXIT.usage;
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    io.err(`pgwarden: "${name}" is not a command. Commands: ${Object.keys(commands).join(', ')}.\n`);
    return EXIT.usage;
  }
  try {
    const command = await load();
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(helpText(command.spec));
      return EXIT.ok;
    }
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
