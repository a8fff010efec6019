import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/constructs/pgwarden-function.ts';
import { CLI_CONTEXT, type Json } from './synth.ts';

const out = mkdtempSync(join(tmpdir(), 'pgwarden-synth-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/**
 * Bundles above this size would mean the AWS SDK was bundled instead of left to the runtime (the
 * largest, probe and remediate, carry node-postgres: about 140 KB; `npm run bench` reports each).
 */
const MAX_BUNDLE_BYTES = 250_000;

describe('npm run synth', () => {
  it('synthesizes the demo offline with the local esbuild and produces one ESM bundle per function', () => {
    const result = spawnSync('npm', ['run', 'synth', '--', '-c', 'demo=true', '-o', out], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        // The Node that runs the tests also runs the CDK app (it needs type stripping).
        PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
        // No credentials: synth must not need an AWS account.
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: '',
      },
      timeout: 120_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(join(out, 'PgWarden.template.json'))).toBe(true);

    const template = JSON.parse(readFileSync(join(out, 'PgWarden.template.json'), 'utf8'));

    // The template synthesized with bundling skipped (what cfn-lint checks) is this one but for the
    // functions' asset keys and paths.
    const unbundledDir = join(out, 'unbundled');
    const unbundled = spawnSync(process.execPath, ['infra/app.ts'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        CDK_OUTDIR: unbundledDir,
        CDK_CONTEXT_JSON: JSON.stringify({ ...CLI_CONTEXT, 'aws:cdk:bundling-stacks': [], demo: true }),
      },
    });
    expect(unbundled.status, unbundled.stderr).toBe(0);
    const withoutAssetKeys = (t: Json) =>
      JSON.parse(
        JSON.stringify(t)
          .replace(/"[0-9a-f]{64}\.zip"/g, '"<asset>.zip"')
          .replace(/"aws:asset:path":"[^"]*"/g, '"aws:asset:path":"<asset>"'),
      );
    expect(
      withoutAssetKeys(JSON.parse(readFileSync(join(unbundledDir, 'PgWarden.template.json'), 'utf8'))),
    ).toEqual(withoutAssetKeys(template));
    const keys = Object.values(template.Resources as Record<string, Json>)
      .filter((r) => r.Type === 'AWS::Lambda::Function')
      .map((r) => (r.Properties.Code.S3Key as string).replace(/\.zip$/, ''));
    expect(keys).toHaveLength(6);
    for (const key of keys) {
      const dir = join(out, `asset.${key}`);
      const files = readdirSync(dir);
      expect(files).toContain('index.mjs');
      expect(files).toContain('index.mjs.map');
      const bundle = readFileSync(join(dir, 'index.mjs'), 'utf8');
      expect(bundle.startsWith("import { createRequire } from 'module';")).toBe(true);
      // The service clients come from the Lambda runtime, not the bundle.
      expect(bundle).toMatch(/from"@aws-sdk\/client-[a-z-]+"/);
      expect(statSync(join(dir, 'index.mjs')).size).toBeLessThan(MAX_BUNDLE_BYTES);
    }
  }, 120_000);
});
