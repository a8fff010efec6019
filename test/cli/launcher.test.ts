import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../../cli/build.mjs';
import { bundleState, chooseEntry, MINIMUM_NODE, runsPgwarden } from '../../cli/launcher.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PINNED = JSON.parse(readFileSync(join(ROOT, '.ci/node/package.json'), 'utf8')).dependencies.node;

/**
 * A copy of the repository's code in a temporary folder (node_modules linked), so the tests can change
 * sources, bundles and .ci/node without touching the real ones.
 */
function copyOfRepository(): string {
  const root = mkdtempSync(join(tmpdir(), 'pgwarden-launcher-'));
  for (const entry of ['cli', 'shared', 'functions', 'package.json'])
    cpSync(join(ROOT, entry), join(root, entry), { recursive: true });
  mkdirSync(join(root, '.ci', 'node'), { recursive: true });
  cpSync(join(ROOT, '.ci/node/package.json'), join(root, '.ci/node/package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  return root;
}

function pgwarden(root: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(root, 'cli/bin.mjs'), ...args], {
    env: { ...process.env, PGWARDEN_ENTRY: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('launcher: which Node.js runs pgwarden', () => {
  it(`runs in-process from Node.js ${MINIMUM_NODE}, and brings its own for anything older`, () => {
    expect(runsPgwarden('24.21.0')).toBe(true);
    expect(runsPgwarden('23.0.0')).toBe(true);
    expect(runsPgwarden('22.6.0')).toBe(true);
    expect(runsPgwarden('22.5.1')).toBe(false);
    expect(runsPgwarden('20.20.2')).toBe(false);
    expect(runsPgwarden('18.0.0')).toBe(false);
  });
});

describe('launcher: bundle or sources', () => {
  let root: string;
  beforeAll(async () => {
    root = copyOfRepository();
    await buildCli({ root });
  }, 60_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('runs the bundle while every file it was built from is unchanged', () => {
    expect(bundleState(root)).toEqual({ kind: 'fresh' });
    expect(chooseEntry(root, undefined)).toEqual({ entry: 'bundle' });
    const run = pgwarden(root, ['probe', '--help'], { PGWARDEN_ENTRY: 'bundle' });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: pgwarden probe --url <postgres-url>');
    expect(run.stderr).toBe('');
  });

  it('runs the changed sources with a note once a source changes, and rebuilding makes the bundle current', async () => {
    const file = join(root, 'cli/commands/probe.ts');
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, original.replace('Probe a database once:', 'Probe a database just once:'));
    try {
      expect(bundleState(root)).toEqual({
        kind: 'stale',
        reason: expect.stringContaining('cli/commands/probe.ts'),
      });
      const fallback = pgwarden(root, ['probe', '--help']);
      expect(fallback.status).toBe(0);
      expect(fallback.stdout).toContain('Probe a database just once:');
      expect(fallback.stderr).toBe(
        'pgwarden: running from the sources: cli/commands/probe.ts changed since the bundle was built (npm run build rebuilds it).\n',
      );
      const insisted = pgwarden(root, ['probe', '--help'], { PGWARDEN_ENTRY: 'bundle' });
      expect(insisted.status).toBe(2);
      expect(insisted.stdout).toBe('');
      expect(insisted.stderr).toContain(
        'PGWARDEN_ENTRY=bundle: the bundled entry is stale: cli/commands/probe.ts',
      );

      await buildCli({ root });
      const rebuilt = pgwarden(root, ['probe', '--help'], { PGWARDEN_ENTRY: 'bundle' });
      expect(rebuilt.status).toBe(0);
      expect(rebuilt.stdout).toContain('Probe a database just once:');
    } finally {
      writeFileSync(file, original);
      await buildCli({ root });
    }
  }, 60_000);

  it('notices a file put back with its old contents but a new time, and one that is gone', () => {
    const file = join(root, 'shared/printable.ts');
    writeFileSync(file, readFileSync(file));
    expect(bundleState(root)).toMatchObject({
      kind: 'stale',
      reason: expect.stringContaining('shared/printable.ts'),
    });
    rmSync(file);
    expect(bundleState(root)).toMatchObject({
      kind: 'stale',
      reason: expect.stringContaining('shared/printable.ts'),
    });
  });

  it('runs the sources without a bundle, and refuses an unknown PGWARDEN_ENTRY', () => {
    const empty = mkdtempSync(join(tmpdir(), 'pgwarden-nobundle-'));
    try {
      expect(bundleState(empty)).toMatchObject({ kind: 'missing' });
      expect(chooseEntry(empty, undefined)).toEqual({ entry: 'sources' });
      expect(chooseEntry(empty, 'bundle')).toEqual({
        error: expect.stringContaining('PGWARDEN_ENTRY=bundle: the bundled entry is missing'),
      });
      expect(chooseEntry(empty, 'sources')).toEqual({ entry: 'sources' });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
    const unknown = pgwarden(ROOT, ['probe', '--help'], { PGWARDEN_ENTRY: 'fast' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe(
      'pgwarden: PGWARDEN_ENTRY: "fast" is not an entry. Use bundle or sources, or leave it unset.\n',
    );
  });
});

describe('launcher: on a Node.js older than pgwarden needs', () => {
  let root: string;
  let bin: string;
  beforeAll(() => {
    root = copyOfRepository();
    bin = mkdtempSync(join(tmpdir(), 'pgwarden-fake-npm-'));
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(bin, { recursive: true, force: true });
  });

  /**
   * A stand-in for npm that "installs" the node package: its binary is a script that records its use and
   * runs this Node.js. `fail` makes it exit 1 after printing what npm prints on a network error.
   */
  function fakeNpm(options: { fail?: boolean } = {}): string {
    const calls = join(bin, 'npm-calls');
    const used = join(bin, 'node-used');
    writeFileSync(
      join(bin, 'npm'),
      [
        '#!/bin/sh',
        `echo "$PWD $*" >> "${calls}"`,
        'echo "added 2 packages in 3s"',
        options.fail
          ? 'echo "npm error code ECONNREFUSED" >&2; exit 1'
          : [
              'mkdir -p node_modules/node/bin',
              `printf '#!/bin/sh\\necho "$0" >> "${used}"\\nexec "${process.execPath}" "$@"\\n' > node_modules/node/bin/node`,
              'chmod +x node_modules/node/bin/node',
            ].join('\n'),
      ].join('\n'),
    );
    chmodSync(join(bin, 'npm'), 0o755);
    return calls;
  }

  /** Starts pgwarden as Node.js 20 would: the launcher judges the version it is given. */
  function asOldNode(args: string[]): SpawnSyncReturns<string> {
    const script = `import(${JSON.stringify(join(root, 'cli/launcher.mjs'))}).then((l) => l.launch(${JSON.stringify(args)}, { nodeVersion: '20.20.2' }))`;
    const env: Record<string, string | undefined> = {
      ...process.env,
      PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH}`,
      PGWARDEN_ENTRY: '',
      PGPASSWORD: '',
      DATABASE_URL: '',
    };
    delete env.npm_execpath;
    return spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
  }

  it('says why and stops when Node.js cannot be installed, with npm’s own words', () => {
    const calls = fakeNpm({ fail: true });
    const run = asOldNode(['probe', '--help']);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      `pgwarden: Node.js 20.20.2 is older than ${MINIMUM_NODE}; installing Node.js ${PINNED} into .ci/node (once)\n`,
    );
    expect(run.stderr).toContain('npm error code ECONNREFUSED');
    expect(run.stderr).toContain(
      `pgwarden: could not install Node.js ${PINNED} into .ci/node (npm install exited 1): install Node.js ${MINIMUM_NODE} or newer and try again\n`,
    );
    expect(readFileSync(calls, 'utf8')).toBe(
      `${join(root, '.ci/node')} install --no-audit --no-fund --no-package-lock\n`,
    );
    rmSync(calls);
  });

  it('installs the pinned Node.js into .ci/node once, says so in one line, and runs pgwarden with it', () => {
    const calls = fakeNpm();
    const first = asOldNode([
      'probe',
      '--json',
      '--url',
      'postgres://pgwarden@127.0.0.1:1/postgres?sslmode=disable',
    ]);
    expect(first.status).toBe(1);
    expect(first.stderr).toBe(
      `pgwarden: Node.js 20.20.2 is older than ${MINIMUM_NODE}; installing Node.js ${PINNED} into .ci/node (once)\n`,
    );
    // npm's output stays off stdout: it is the JSON's.
    expect(JSON.parse(first.stdout)).toMatchObject({ ok: false, failure: { category: 'unreachable' } });
    const used = join(bin, 'node-used');
    expect(readFileSync(used, 'utf8')).toBe(`${join(root, '.ci/node/node_modules/node/bin/node')}\n`);

    const second = asOldNode(['probe', '--help']);
    expect(second.status).toBe(0);
    expect(second.stderr).toBe('');
    expect(second.stdout).toContain('Usage: pgwarden probe');
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readFileSync(used, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('passes a signal sent to it on to the Node.js it started, and exits as that one does', async () => {
    const script = [
      `const { runInstead } = await import(${JSON.stringify(join(ROOT, 'cli/launcher.mjs'))});`,
      `runInstead(process.execPath, ['-e', ${JSON.stringify(
        "process.on('SIGTERM', () => process.exit(7)); process.stdout.write('ready\\n'); setInterval(() => {}, 1000);",
      )}]);`,
    ].join('\n');
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve) =>
      parent.stdout.on('data', (d: Buffer) => d.includes('ready') && resolve()),
    );
    parent.kill('SIGTERM');
    const code = await new Promise((resolve) => parent.on('close', (c) => resolve(c)));
    expect(code).toBe(7);
  });
});
