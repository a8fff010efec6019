// @ts-check
// Preloaded with `node --import` by the startup tests: appends the URL of every module the process
// resolves (imported or required, built-in modules aside) to the file PGWARDEN_TEST_MODULE_LOG names.
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const log = process.env.PGWARDEN_TEST_MODULE_LOG;
if (!log) throw new Error('PGWARDEN_TEST_MODULE_LOG is not set');
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    if (!resolved.url.startsWith('node:')) appendFileSync(log, `${resolved.url}\n`);
    return resolved;
  },
});
