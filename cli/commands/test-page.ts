import type { Topic } from '../../functions/runbook/messages.ts';
import { printable, printableDeep } from '../../shared/printable.ts';
import { type CommandSpec, FlagReader, parseCommandArgs } from '../args.ts';
import { oneMode, readStackFlags } from '../doctor/flags.ts';
import type { TestPageResult } from '../doctor/test-page.ts';
import { colours, plain, type Style } from '../format.ts';
import { EXIT, type ExitCode, type Io } from '../io.ts';
import { homeFolder } from '../local/home.ts';

export const testPageCommand: CommandSpec = {
  name: 'test-page',
  summary:
    'Send a clearly marked test page through the deployed topic (or the local outbox) to prove it reaches a person.',
  usage:
    'pgwarden test-page --stack <name> [--region <region>] [--topic pages|notifications] [--json] | [--local] [--home <dir>]',
  flags: {
    stack: { type: 'string', value: 'name', describe: 'publish through this deployed stack’s topic' },
    region: { type: 'string', value: 'region', describe: "the stack's region (default: your AWS profile's)" },
    topic: { type: 'string', value: 'pages|notifications', describe: 'which topic (default pages)' },
    local: {
      type: 'boolean',
      describe: 'publish through the local system `npm start` runs here (the default with no --stack)',
    },
    home: { type: 'string', value: 'dir', describe: "the local system's folder (default .pgwarden)" },
    json: { type: 'boolean', describe: 'print the result as one JSON object' },
    help: { type: 'boolean', describe: 'show this help' },
  },
};

const TOPICS: readonly Topic[] = ['pages', 'notifications'];

function readTopic(reader: FlagReader): Topic {
  const raw = reader.string('topic');
  if (raw === undefined) return 'pages';
  if ((TOPICS as readonly string[]).includes(raw)) return raw as Topic;
  reader.issues.push({
    path: '--topic',
    received: JSON.stringify(raw),
    problem: 'is not a pgwarden topic',
    fix: 'Use --topic pages (on-call) or --topic notifications (everyone).',
  });
  return 'pages';
}

function renderResult(raw: TestPageResult, style: Style): string {
  // Endpoints and ARNs come from AWS, the subject from the stack's name: shown printable.
  const result = printableDeep(raw);
  const lines = [
    `Published a TEST ${result.topic === 'pages' ? 'page' : 'notification'} to ${result.topicArn}: message id ${result.messageId}`,
    `Subject: ${result.subject}`,
  ];
  if (result.receivers.length)
    lines.push(
      style.ok(
        `It should reach ${result.receivers.length} confirmed subscription(s): ${result.receivers.join(', ')}`,
      ),
    );
  else if (result.unknown.length === 0) lines.push(style.bad('No confirmed subscription will receive it.'));
  if (result.unknown.length)
    lines.push(
      style.warn(
        `${result.unknown.length} subscription(s) have a filter policy pgwarden cannot judge, so may not receive it: ${result.unknown.join(', ')}`,
      ),
    );
  if (result.filteredOut.length)
    lines.push(
      style.warn(
        `Filtered out by their filter policy (add "test" to pgwarden.kind in it to receive tests): ${result.filteredOut.join(', ')}`,
      ),
    );
  if (result.pending.length)
    lines.push(
      style.warn(
        `Waiting for confirmation, so they receive nothing until they click the link AWS emailed: ${result.pending.join(', ')}`,
      ),
    );
  if (result.ok) lines.push('Ask them to confirm it arrived.');
  return `${lines.join('\n')}\n`;
}

export async function runTestPage(argv: string[], io: Io): Promise<ExitCode> {
  const reader = new FlagReader(testPageCommand, parseCommandArgs(testPageCommand, argv));
  const { stack, region } = readStackFlags(reader);
  const local = reader.boolean('local');
  oneMode(reader, { '--stack': stack !== undefined, '--local': local });
  const topic = readTopic(reader);
  if (reader.string('home') !== undefined && stack !== undefined)
    reader.issues.push({
      path: '--home',
      received: JSON.stringify(reader.string('home')),
      problem: 'applies only to the local system',
      fix: 'Leave --home out with --stack.',
    });
  const json = reader.boolean('json');
  reader.done();
  const style = io.isTty && !json ? colours : plain;

  if (stack !== undefined) {
    const { AwsSetupError, createAwsClients } = await import('../doctor/aws.ts');
    const { sendTestPage, TestPageError } = await import('../doctor/test-page.ts');
    let result: TestPageResult;
    try {
      result = await sendTestPage(stack, topic, await createAwsClients(region));
    } catch (error) {
      if (!(error instanceof TestPageError || error instanceof AwsSetupError)) throw error;
      if (json) io.out(`${JSON.stringify({ ok: false, topic, error: error.message })}\n`);
      else io.err(`pgwarden test-page: ${error.message}\n`);
      return EXIT.fault;
    }
    io.out(json ? `${JSON.stringify(result)}\n` : renderResult(result, style));
    return result.ok ? EXIT.ok : EXIT.fault;
  }

  const home = homeFolder(reader.string('home'), io.env);
  const { localTestPageRequest } = await import('../doctor/local.ts');
  const answer = await localTestPageRequest(home, topic);
  if ('status' in answer) {
    const failure = { ok: false, topic, error: answer.summary, fix: answer.fix };
    if (json) io.out(`${JSON.stringify(failure)}\n`);
    else io.err(`pgwarden test-page: ${answer.summary}. ${answer.fix ?? ''}\n`);
    return EXIT.fault;
  }
  if (json) io.out(`${JSON.stringify({ ok: true, topic, ...answer })}\n`);
  else
    io.out(
      `Published a TEST ${topic === 'pages' ? 'page' : 'notification'} through the local system in ${home}: message id ${answer.messageId}\nSubject: ${printable(answer.subject)}\nWritten to ${answer.file} and shown in the terminal running npm start.\n`,
    );
  return EXIT.ok;
}
