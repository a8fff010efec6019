/**
 * Every log line pgwarden writes, from the CLI and local mode or from a Lambda function, goes through
 * the same redaction, applied to the values before they are serialised: a line stays one valid JSON
 * object whatever the values hold, and no secret reaches it in any form, escaped or not.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { coreLogger, createLambdaLogger, lambdaHandler } from '../../shared/lambda.ts';
import { createConsoleLogger } from '../../shared/logger.ts';
import { registerSecret } from '../../shared/redact.ts';
import { captureOutput, lambdaContext } from '../helpers/lambda.ts';

/** A password with JSON syntax in it: its escaped form differs from the raw one. */
const QUOTED_SECRET = 'pw","level":"x\\9a1';
const PLAIN_SECRET = 'PGW-log-secret-5e1f';

/** Values that have broken or leaked through a redact-after-serialise logger. */
const HOSTILE_VALUES = {
  quoted: `password=q7x"r9z`,
  escaped: `token=t4k\\`,
  registered: `the secret is ${QUOTED_SECRET}`,
  plain: `and ${PLAIN_SECRET}`,
  url: 'postgres://app:hunter2-pw@db.example.com/app',
  malformed: 'postgresql:app:hunter2-pw@db.example.com/app',
  json: '{"password":"hunter2-pw"}',
  control: 'line one\nline two\u001b[31m',
};

const LEAKS = [
  QUOTED_SECRET,
  JSON.stringify(QUOTED_SECRET).slice(1, -1),
  PLAIN_SECRET,
  'hunter2-pw',
  'q7x',
  'r9z',
  't4k',
];

function expectSafeLines(text: string): void {
  const lines = text.split('\n').filter((line) => line.trim().startsWith('{'));
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    expect(() => JSON.parse(line), line).not.toThrow();
    const values = JSON.stringify(Object.values(JSON.parse(line) as Record<string, unknown>));
    for (const leak of LEAKS) expect(values, `leaked ${leak}`).not.toContain(leak);
  }
}

describe('log lines', () => {
  registerSecret(QUOTED_SECRET);
  registerSecret(PLAIN_SECRET);
  let output: ReturnType<typeof captureOutput> | undefined;
  afterEach(() => output?.restore());

  it('writes each CLI and local-mode log line as valid JSON with every secret masked', () => {
    const lines: string[] = [];
    const logger = createConsoleLogger({ level: 'debug', write: (line) => lines.push(line) });
    logger.info('hostile values', HOSTILE_VALUES);
    logger.error(`message with ${PLAIN_SECRET} and password=q7x"r9z`, {
      nested: { deeper: [HOSTILE_VALUES] },
    });
    expect(lines).toHaveLength(2);
    expectSafeLines(lines.join('\n'));
  });

  it('redacts every line a Lambda function logs, through Powertools, the same way', async () => {
    const logger = createLambdaLogger('probe');
    const handler = lambdaHandler(logger, async (_event, { log }) => {
      log.info('hostile values', HOSTILE_VALUES);
      coreLogger(logger).warn(`message with ${PLAIN_SECRET}`, { nested: [HOSTILE_VALUES] });
      logger.error('an error', new Error(`connect to postgres://app:hunter2-pw@db failed: ${QUOTED_SECRET}`));
      return { ok: true };
    });
    output = captureOutput();
    await handler({}, lambdaContext('probe'));
    const text = output.text();
    output.restore();
    expectSafeLines(text);
    expect(text).toContain('hostile values');
  });

  it('redacts the line Lambda logs when an invocation fails', async () => {
    const logger = createLambdaLogger('remediate');
    const handler = lambdaHandler(logger, async () => {
      throw new Error(`could not reach postgresql:app:hunter2-pw@db (${PLAIN_SECRET})`);
    });
    output = captureOutput();
    const failure = await handler({}, lambdaContext('remediate')).catch((error: Error) => error);
    const text = output.text();
    output.restore();
    expectSafeLines(text);
    expect(String(failure)).not.toContain('hunter2-pw');
  });
});
