/**
 * The floor rules (.dependency-cruiser.cjs, `npm run deps`): the repository keeps them, and each
 * rule catches the import it forbids. The second half feeds the same configuration a small tree with
 * one violation per rule, next to imports the rules allow, and expects exactly those violations.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruiser.mjs');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

/** Runs dependency-cruiser with the repository's configuration over `dirs` of `cwd`. */
async function cruise(cwd: string, dirs: string[]): Promise<Violation[]> {
  // It exits non-zero when it finds violations; the JSON report is on stdout either way.
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [DEPCRUISE, '--config', CONFIG, '--output-type', 'json', ...dirs],
    { cwd, maxBuffer: 64 * 1024 * 1024 },
  ).catch((error: { stdout?: string; stderr?: string }) => ({
    stdout: error.stdout ?? '',
    stderr: error.stderr ?? '',
  }));
  if (!stdout.trim()) throw new Error(`dependency-cruiser wrote no report: ${stderr}`);
  return JSON.parse(stdout).summary.violations as Violation[];
}

describe('dependency rules', () => {
  it('hold for the repository', async () => {
    const violations = await cruise(ROOT, ['shared', 'functions', 'cli', 'infra', 'test', 'bench']);
    expect(violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`)).toEqual([]);
  });

  describe('on a tree that breaks each of them once', () => {
    const tree = mkdtempSync(join(tmpdir(), 'pgwarden-floors-'));
    afterAll(() => rmSync(tree, { recursive: true, force: true }));

    const files: Record<string, string> = {
      'package.json': JSON.stringify({
        name: 'floors',
        type: 'module',
        dependencies: { pg: '*' },
        devDependencies: { esbuild: '*' },
      }),
      'tsconfig.json': JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          allowImportingTsExtensions: true,
          noEmit: true,
        },
      }),
      // Allowed: the one door imports pg; a handler imports its core and shared/.
      'shared/db.ts': "import pg from 'pg';\nexport const door = pg;\n",
      'shared/x.ts':
        "import { y } from './y.ts';\nimport { gone } from './missing.ts';\nexport const x = [y, gone];\n",
      'shared/y.ts': "import { x } from './x.ts';\nexport const y = x;\n",
      'shared/up.ts': "import { other } from '../functions/b/core.ts';\nexport const up = other;\n",
      'shared/lonely.ts': 'export const lonely = 1;\n',
      'functions/a/handler.ts':
        "import { door } from '../../shared/db.ts';\nimport { up } from '../../shared/up.ts';\nimport { core } from './core.ts';\nimport { main } from '../../cli/main.ts';\nexport const handler = [door, up, core, main];\n",
      'functions/a/core.ts': "import { other } from '../b/core.ts';\nexport const core = other;\n",
      'functions/b/handler.ts': "import { other } from './core.ts';\nexport const handler = other;\n",
      'functions/b/core.ts': "import pg from 'pg';\nexport const other = pg;\n",
      // Allowed: the CLI runs a function's core.
      'cli/bin.mjs': "import { main } from './main.ts';\nmain;\n",
      'cli/main.ts':
        "import { core } from '../functions/a/core.ts';\nimport { app } from '../infra/app.ts';\nimport { helper } from '../test/helpers/helper.ts';\nimport { build } from 'esbuild';\nexport const main = [core, app, helper, build];\n",
      // Allowed: infra uses devDependencies; tests import anything.
      'infra/app.ts': "import { build } from 'esbuild';\nexport const app = build;\n",
      'test/helpers/helper.ts': "import { y } from '../../shared/y.ts';\nexport const helper = y;\n",
      'test/a.test.ts':
        "import { helper } from './helpers/helper.ts';\nimport { x } from '../shared/x.ts';\nimport { handler } from '../functions/b/handler.ts';\nexport const t = [helper, x, handler];\n",
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(tree, path)), { recursive: true });
      writeFileSync(join(tree, path), text);
    }
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'), 'dir');

    it('report exactly the forbidden imports, each under its rule', async () => {
      const violations = await cruise(tree, ['shared', 'functions', 'cli', 'infra', 'test']);
      // A package resolves through the tree's node_modules link: name it by the package alone.
      const found = violations.map(
        (v) =>
          `${v.rule.name}: ${v.from} -> ${v.to.replace(/^.*node_modules\/([^/]+)\/.*$/, 'node_modules/$1')}`,
      );
      expect(found.sort()).toEqual(
        [
          'shared-is-the-ground-floor: shared/up.ts -> functions/b/core.ts',
          'no-function-imports-another: functions/a/core.ts -> functions/b/core.ts',
          'functions-import-no-cli-or-infra: functions/a/handler.ts -> cli/main.ts',
          'cli-imports-no-infra: cli/main.ts -> infra/app.ts',
          'product-imports-no-test-code: cli/main.ts -> test/helpers/helper.ts',
          'one-door-to-postgres: functions/b/core.ts -> node_modules/pg',
          'runtime-code-needs-no-dev-dependency: cli/main.ts -> node_modules/esbuild',
          'no-circular: shared/x.ts -> shared/y.ts',
          'no-orphans: shared/lonely.ts -> shared/lonely.ts',
          'no-unresolvable: shared/x.ts -> ./missing.ts',
        ].sort(),
      );
    });
  });
});
