// @ts-check
/**
 * What `pgwarden` does before any of its own code runs. Plain JavaScript, so that any Node.js can run it:
 *
 * 1. On a Node.js older than pgwarden needs, it brings the project's own: the `node` npm package pinned in
 *    .ci/node (the one CI installs), installed there once, and runs pgwarden with it.
 * 2. It runs the bundled entry (dist/cli, built by `npm ci`) while every file the bundle was built from is
 *    unchanged, and the TypeScript sources otherwise: the sources are the truth, the bundle only a faster
 *    copy of them, so a stale bundle is bypassed (with a one-line note), never trusted.
 *    `PGWARDEN_ENTRY=bundle` insists on the bundle (the CLI tests use it), `PGWARDEN_ENTRY=sources`
 *    on the sources.
 *
 * Built-in modules come from `process.getBuiltinModule` where it exists: importing them as ES modules
 * costs a probe more time than its database does.
 */

/** The oldest Node.js that runs pgwarden in-process (type stripping arrived in 22.6). */
export const MINIMUM_NODE = '22.6.0';
/** The bundle's manifest, in dist/cli. */
export const MANIFEST = 'manifest.json';

const ROOT_URL = new URL('../', import.meta.url);

/** @type {(id: string) => any} */
const builtin = process.getBuiltinModule
  ? (id) => process.getBuiltinModule(id)
  : (await import('node:module')).createRequire(import.meta.url);

/** @returns {typeof import('node:fs')} */
const fs = () => builtin('node:fs');
/** @returns {typeof import('node:path')} */
const path = () => builtin('node:path');
const rootDir = () => /** @type {typeof import('node:url')} */ (builtin('node:url')).fileURLToPath(ROOT_URL);

/**
 * Whether this Node.js version runs pgwarden in-process.
 * @param {string} version e.g. process.versions.node
 */
export function runsPgwarden(version) {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [minMajor = 0, minMinor = 0] = MINIMUM_NODE.split('.').map(Number);
  return major > minMajor || (major === minMajor && minor >= minMinor);
}

/**
 * @typedef {{ kind: 'fresh' } | { kind: 'missing' | 'stale', reason: string }} BundleState
 */

/**
 * Whether dist/cli under `root` holds a bundle built from the files as they are now: every file its
 * manifest lists has the size and modification time it had at the build. A checkout, an edit or a
 * reinstalled dependency changes the time, so the bundle no longer counts.
 * @param {string} root the repository root
 * @returns {BundleState}
 */
export function bundleState(root) {
  const { readFileSync, statSync } = fs();
  const { join } = path();
  /** @type {{ files?: Record<string, [number, number]> }} */
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(root, 'dist', 'cli', MANIFEST), 'utf8'));
  } catch {
    return { kind: 'missing', reason: 'dist/cli is not built (npm run build builds it)' };
  }
  const files = Object.entries(manifest.files ?? {});
  if (files.length === 0) return { kind: 'missing', reason: `dist/cli/${MANIFEST} lists no files` };
  for (const [file, [size, mtimeMs]] of files) {
    const stat = statSync(join(root, file), { throwIfNoEntry: false });
    if (!stat || stat.size !== size || stat.mtimeMs !== mtimeMs)
      return {
        kind: 'stale',
        reason: `${file} changed since the bundle was built (npm run build rebuilds it)`,
      };
  }
  return { kind: 'fresh' };
}

/**
 * The entry to run: `PGWARDEN_ENTRY` if set, else the bundle when fresh, else the sources.
 * @param {string} root
 * @param {string | undefined} requested
 * @returns {{ entry: 'bundle' | 'sources', note?: string } | { error: string }}
 */
export function chooseEntry(root, requested) {
  if (requested === 'sources') return { entry: 'sources' };
  if (requested !== undefined && requested !== '' && requested !== 'bundle')
    return {
      error: `PGWARDEN_ENTRY: "${requested}" is not an entry. Use bundle or sources, or leave it unset.`,
    };
  const state = bundleState(root);
  if (state.kind === 'fresh') return { entry: 'bundle' };
  if (requested === 'bundle')
    return { error: `PGWARDEN_ENTRY=bundle: the bundled entry is ${state.kind}: ${state.reason}.` };
  // A missing bundle is a choice (an install without scripts); a stale one is worth a word.
  return state.kind === 'stale'
    ? { entry: 'sources', note: `pgwarden: running from the sources: ${state.reason}.` }
    : { entry: 'sources' };
}

/**
 * The project's own Node.js binary, if installed.
 * @param {string} root
 */
export function projectNode(root) {
  const { existsSync } = fs();
  const { join } = path();
  const bin = join(root, '.ci', 'node', 'node_modules', 'node', 'bin');
  return [join(bin, 'node'), join(bin, 'node.exe')].find((file) => existsSync(file));
}

/**
 * Installs the pinned Node.js into .ci/node (once; a concurrent start waits for it) and returns its path.
 * @param {string} root
 * @param {string} version the Node.js running now
 * @returns {string}
 */
function installProjectNode(root, version) {
  const { mkdirSync, rmSync, existsSync, readFileSync } = fs();
  const { join } = path();
  const { spawnSync } = builtin('node:child_process');
  const folder = join(root, '.ci', 'node');
  if (!existsSync(join(folder, 'package.json')))
    throw new Error(
      `${folder}/package.json is missing: install Node.js ${MINIMUM_NODE} or newer and try again`,
    );
  const pinned = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')).dependencies?.node ?? '24';
  const lock = join(folder, '.installing');
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'EEXIST') throw error;
      if (Date.now() > deadline)
        throw new Error(`${lock} has been held for 10 minutes: remove it and try again`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
      const installed = projectNode(root);
      if (installed) return installed;
    }
  }
  try {
    const already = projectNode(root);
    if (already) return already;
    process.stderr.write(
      `pgwarden: Node.js ${version} is older than ${MINIMUM_NODE}; installing Node.js ${pinned} into .ci/node (once)\n`,
    );
    // npm's own output goes to the terminal only if it fails: stdout may be a JSON consumer's.
    const npm = process.env.npm_execpath;
    const args = ['install', '--no-audit', '--no-fund', '--no-package-lock'];
    const result =
      npm && /\.[cm]?js$/.test(npm)
        ? spawnSync(process.execPath, [npm, ...args], { cwd: folder, encoding: 'utf8' })
        : spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, {
            cwd: folder,
            encoding: 'utf8',
            shell: process.platform === 'win32',
          });
    const installed = projectNode(root);
    if (result.status !== 0 || !installed) {
      process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`);
      throw new Error(
        `could not install Node.js ${pinned} into .ci/node (npm install exited ${result.status ?? result.error?.message}): install Node.js ${MINIMUM_NODE} or newer and try again`,
      );
    }
    return installed;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Runs `args` with `node` in a child process that stands in for this one: same stdio, its exit code, and
 * the signals this process receives passed on. SIGINT from a terminal reaches the whole process group,
 * the child included, so it is passed on only when stdin is not a terminal (a signal sent to this pid).
 * @param {string} node
 * @param {string[]} args
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {Promise<never>}
 */
export function runInstead(node, args, env = process.env) {
  const { spawn } = builtin('node:child_process');
  const child = spawn(node, args, { stdio: 'inherit', env });
  /** @type {NodeJS.Signals[]} */
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals)
    process.on(signal, () => {
      if (signal !== 'SIGINT' || !process.stdin.isTTY) child.kill(signal);
    });
  return new Promise(() => {
    child.on('error', (/** @type {Error} */ error) => {
      process.stderr.write(`pgwarden: could not start ${node}: ${error.message}\n`);
      process.exit(1);
    });
    child.on('exit', (/** @type {number | null} */ code, /** @type {NodeJS.Signals | null} */ signal) => {
      if (signal) {
        for (const s of signals) process.removeAllListeners(s);
        process.kill(process.pid, signal);
      }
      process.exit(code ?? 1);
    });
  });
}

/**
 * Exits with `code` once what was written to stdout and stderr is flushed: libraries' exit hooks must not
 * replace the exit code.
 * @param {number} code
 * @returns {never}
 */
function exitAfterOutput(code) {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  return /** @type {never} */ (undefined);
}

/**
 * The `pgwarden` command.
 * @param {string[]} argv the arguments after the command name
 * @param {{ nodeVersion?: string }} [options] the Node.js version to judge (tests pass an old one)
 */
export async function launch(argv, options = {}) {
  const root = rootDir();
  const self = path().join(root, 'cli', 'bin.mjs');
  const version = options.nodeVersion ?? process.versions.node;
  if (!runsPgwarden(version)) {
    let node;
    try {
      node = projectNode(root);
      if (node && node === process.execPath)
        throw new Error(`${node} is Node.js ${version} itself: install Node.js ${MINIMUM_NODE} or newer`);
      node ??= installProjectNode(root, version);
    } catch (error) {
      process.stderr.write(`pgwarden: ${error instanceof Error ? error.message : String(error)}\n`);
      return exitAfterOutput(2);
    }
    return runInstead(node, [self, ...argv]);
  }
  const choice = chooseEntry(root, process.env.PGWARDEN_ENTRY);
  if ('error' in choice) {
    process.stderr.write(`pgwarden: ${choice.error}\n`);
    return exitAfterOutput(2);
  }
  if (choice.note) process.stderr.write(`${choice.note}\n`);
  /** @type {{ main(argv: string[]): Promise<number> }} */
  let entry;
  if (choice.entry === 'bundle') {
    if (process.env.PGWARDEN_DEBUG) process.setSourceMapsEnabled(true);
    // V8's compiled code for the bundle, kept beside it (a shared temporary folder would let another user
    // plant code): a start skips most of its compiling. The build clears it with the bundle.
    builtin('node:module').enableCompileCache?.(path().join(root, 'dist', 'cli', '.cache'));
    entry = await import(new URL('dist/cli/main.js', ROOT_URL).href);
  } else {
    // Type stripping is on by default from Node 22.18 and 23.6; 22.6 to 22.17 need the flag.
    if (!process.features.typescript && !process.execArgv.includes('--experimental-strip-types'))
      return runInstead(
        process.execPath,
        ['--experimental-strip-types', '--no-warnings=ExperimentalWarning', self, ...argv],
        { ...process.env, PGWARDEN_ENTRY: 'sources' },
      );
    entry = await import(new URL('cli/main.ts', ROOT_URL).href);
  }
  return exitAfterOutput(await entry.main(argv));
}
