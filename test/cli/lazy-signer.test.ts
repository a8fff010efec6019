/**
 * The CLI loads the RDS signer (and the credential providers it brings) only when it signs an IAM
 * token: an on-call command against a database reached with a password never pays for it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `body` in a fresh Node process that records every module it resolves; returns the AWS ones. */
function awsModulesLoadedBy(body: string): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        if (specifier.startsWith('@aws-sdk/')) seen.add(specifier);
        return next(specifier, context);
      },
    });
    ${body}
    process.stdout.write(JSON.stringify([...seen].sort()));
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' },
  });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout.slice(child.stdout.lastIndexOf('[')));
}

describe('IAM token signing in the CLI', () => {
  it('does not load the RDS signer for a probe with a password', () => {
    const loaded = awsModulesLoadedBy(`
      const { main } = await import('./cli/main.ts');
      const io = { out: () => {}, err: () => {}, env: {}, isTty: false };
      await main(['probe', '--url', 'postgres://pgwarden:pw@127.0.0.1:9/postgres?sslmode=disable', '--json', '--connect-timeout', '200ms'], io);
    `);
    // No AWS module at all (the Secrets Manager client too waits for a secret); the next test shows the
    // recorder sees them when they load.
    expect(loaded).toEqual([]);
  });

  it('loads the RDS signer when it signs a token', () => {
    const loaded = awsModulesLoadedBy(`
      const { signRdsToken } = await import('./shared/iam-token.ts');
      await signRdsToken({ hostname: 'db.example.com', port: 5432, username: 'pgwarden', region: 'eu-west-1' });
    `);
    expect(loaded).toContain('@aws-sdk/rds-signer');
  });
});
