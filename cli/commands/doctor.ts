import { describeConnection } from '../../shared/connection.ts';
import { type CommandSpec, FlagReader, parseCommandArgs } from '../args.ts';
import { oneMode, readStackFlags } from '../doctor/flags.ts';
import { type Check, doctorReport, exitCodeOf, fail, renderReport } from '../doctor/report.ts';
import { colours, plain } from '../format.ts';
import { EXIT, type ExitCode, type Io } from '../io.ts';
import { homeFolder } from '../local/home.ts';
import { resolveRuntimeDeps } from '../runtime.ts';

export const doctorCommand: CommandSpec = {
  name: 'doctor',
  summary:
    'Check now that pgwarden will work during an incident: a database role and server, a deployed stack, or the local system.',
  usage:
    'pgwarden doctor --url <postgres-url> | --stack <name> [--region <region>] | [--local] [--home <dir>]  [--json]',
  flags: {
    url: {
      type: 'string',
      value: 'postgres-url',
      describe: 'check this database as the role pgwarden will use (password from $PGPASSWORD)',
    },
    stack: {
      type: 'string',
      value: 'name',
      describe: 'check this deployed stack with your AWS credentials (PgWarden unless you chose another)',
    },
    region: { type: 'string', value: 'region', describe: "the stack's region (default: your AWS profile's)" },
    local: {
      type: 'boolean',
      describe:
        'check the local system `npm start` runs in this directory (the default with no --url or --stack)',
    },
    home: { type: 'string', value: 'dir', describe: "the local system's folder (default .pgwarden)" },
    json: { type: 'boolean', describe: 'print { ok, checks: [{ id, status, summary, fix }] }' },
    help: { type: 'boolean', describe: 'show this help' },
  },
};

export async function runDoctor(argv: string[], io: Io): Promise<ExitCode> {
  const reader = new FlagReader(doctorCommand, parseCommandArgs(doctorCommand, argv));
  const url = reader.string('url');
  const { stack, region } = readStackFlags(reader);
  const local = reader.boolean('local');
  oneMode(reader, { '--url': url !== undefined, '--stack': stack !== undefined, '--local': local });
  if (reader.string('home') !== undefined && (url !== undefined || stack !== undefined))
    reader.issues.push({
      path: '--home',
      received: JSON.stringify(reader.string('home')),
      problem: 'applies only to the local system',
      fix: 'Leave --home out with --url or --stack.',
    });
  const spec = url !== undefined ? reader.database(io.env) : undefined;
  const json = reader.boolean('json');
  reader.done();
  if (url !== undefined && !spec) return EXIT.usage;

  let title: string;
  let checks: Check[];
  if (spec) {
    title = `pgwarden doctor: ${describeConnection(spec)}`;
    const { databaseChecks } = await import('../doctor/database.ts');
    checks = await databaseChecks(spec, resolveRuntimeDeps(io));
  } else if (stack !== undefined) {
    const { AwsSetupError, createAwsClients } = await import('../doctor/aws.ts');
    const { stackChecks } = await import('../doctor/stack.ts');
    try {
      const clients = await createAwsClients(region);
      title = `pgwarden doctor: stack ${stack} in ${clients.region}`;
      checks = await stackChecks(stack, clients);
    } catch (error) {
      if (!(error instanceof AwsSetupError)) throw error;
      title = `pgwarden doctor: stack ${stack}`;
      checks = [
        fail('stack', error.message, 'Pass --region, or configure a default region (aws configure).'),
      ];
    }
  } else {
    const home = homeFolder(reader.string('home'), io.env);
    title = `pgwarden doctor: the local system in ${home}`;
    const { localDoctor } = await import('../doctor/local.ts');
    checks = await localDoctor(home);
  }
  const report = doctorReport(checks);
  if (json) io.out(`${JSON.stringify(report)}\n`);
  else io.out(renderReport(title, report, io.isTty ? colours : plain));
  return exitCodeOf(report);
}
