/**
 * Vitest global setup: builds the CLI's bundled entry when it is missing or older than its sources, so
 * the CLI tests run the entry `npm ci` ships (they insist on it with PGWARDEN_ENTRY=bundle).
 */
import { fileURLToPath } from 'node:url';
import { buildCli } from '../../cli/build.mjs';
import { bundleState } from '../../cli/launcher.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export default async function setup(): Promise<void> {
  if (bundleState(ROOT).kind !== 'fresh') await buildCli();
}
