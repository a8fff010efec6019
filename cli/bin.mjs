#!/usr/bin/env node
// Launches the TypeScript CLI on Node's built-in type stripping: on by default from Node 22.18 and
// 23.6; Node 22.6–22.17 need the flag, so the launcher re-executes itself with it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 6)) {
  process.stderr.write(
    `pgwarden needs Node.js 22.6 or newer (this is ${process.versions.node}). Install Node 24 and try again.\n`,
  );
  process.exit(2);
}
if (!process.features.typescript) {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(
    process.execPath,
    ['--experimental-strip-types', '--no-warnings=ExperimentalWarning', self, ...process.argv.slice(2)],
    {
      stdio: 'inherit',
    },
  );
  process.exit(child.status ?? 1);
}
const { main } = await import('./main.ts');
const code = await main(process.argv.slice(2));
// Exit explicitly once the output is written: libraries' exit hooks must not replace the exit code.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
