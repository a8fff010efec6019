/**
 * A password typed into a URL that is not quite a URL is still a password. Whatever shape the URL
 * takes (`postgres:/user:pw@`, `postgresql:user:pw@`, no scheme at all), the error that refuses it,
 * the configuration error that quotes it and the log line that mentions it never show the password.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../infra/config.ts';
import { createConsoleLogger } from '../../shared/logger.ts';
import { redact } from '../../shared/redact.ts';
import { runCli } from '../helpers/cli.ts';

const PASSWORD = 'Sup3r-s3cret-pw';
const MALFORMED = [
  `postgres:/app_user:${PASSWORD}@db.example.com/app`,
  `postgresql:app_user:${PASSWORD}@db.example.com/app`,
  `app_user:${PASSWORD}@db.example.com/app`,
  `postgres:app_user:${PASSWORD}@db.example.com:5432/app?sslmode=disable`,
  `postgres//app_user:${PASSWORD}@db.example.com/app`,
];

describe('passwords in malformed URLs', () => {
  it.each(MALFORMED)('refuses %s on the command line without echoing the password', async (url) => {
    const run = await runCli(['probe', '--url', url]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--url');
    expect(`${run.stdout}${run.stderr}`).not.toContain(PASSWORD);
  });

  it('refuses a malformed DATABASE_URL without echoing the password', async () => {
    const run = await runCli(['probe'], { DATABASE_URL: MALFORMED[1] as string });
    expect(run.code).toBe(2);
    expect(`${run.stdout}${run.stderr}`).not.toContain(PASSWORD);
  });

  it('keeps the password out of a configuration error that quotes a malformed webhook URL', () => {
    let message = '';
    try {
      parseConfig({
        fleet: { targets: [{ id: 'a', host: 'a.db', database: 'app', auth: { iam: true } }] },
        network: {
          vpcId: 'vpc-0123456789abcdef0',
          availabilityZones: ['eu-west-1a'],
          privateSubnetIds: ['subnet-0123456789abcdef0'],
        },
        notifications: { pages: { httpsEndpoints: [`https:/hook:${PASSWORD}@hooks.example.com/x`] } },
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('httpsEndpoints');
    expect(message).not.toContain(PASSWORD);
  });

  it('masks the password of every URL shape in a log line, and keeps the user and host', () => {
    const lines: string[] = [];
    const logger = createConsoleLogger({ level: 'info', write: (line) => lines.push(line) });
    for (const url of MALFORMED) logger.info('connecting', { url, note: `dialling ${url} now` });
    const text = lines.join('\n');
    expect(text).not.toContain(PASSWORD);
    expect(text).toContain('app_user');
    expect(text).toContain('db.example.com');
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('leaves text without credentials alone', () => {
    const plain = [
      'postgres://app_user@db.example.com:5432/app',
      'connect ECONNREFUSED 127.0.0.1:5432',
      'oncall@example.com',
      'at 2026-01-01T10:00:00Z',
      'https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/executions',
      // RDS log lines (%t:%r:%u@%d:[%p]:) look like user:password@host to a careless pattern.
      '2026-11-26 10:05:07 UTC:10.0.1.4(5544):app@orders:[8830]:FATAL:  password authentication failed',
      '2026-11-26 10:05:07 UTC::@:[390]:LOG:  server process (PID 8812) was terminated by signal 9',
      '2026-11-26 10:05:07 UTC:[local]:app@orders:[8831]:LOG:  connection authorized',
    ];
    for (const text of plain) expect(redact(text)).toBe(text);
  });
});
