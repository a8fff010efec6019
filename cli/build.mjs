// @ts-check
/**
 * Builds the CLI's bundled entry, dist/cli/main.js, from cli/main.ts with the project's pinned esbuild.
 * `npm ci` runs it (the `prepare` script); `npm run build` runs it by hand. dist/ is build output and is
 * never committed. Plain JavaScript: `npm ci` may run on a Node.js too old to strip types.
 *
 * Why a bundle: a fresh `pgwarden probe` from the TypeScript sources spends most of its time before it
 * connects, finding, reading and type-stripping each of its modules. The bundle is plain JavaScript, one
 * file per command (code splitting: a probe loads no code of local mode), with node-postgres inside it.
 * Every other package is left out and loaded from node_modules exactly as the sources load it.
 *
 * The build also writes dist/cli/manifest.json: the size and modification time of every file that went
 * into the bundle. The launcher (cli/launcher.mjs) runs the bundle only while all of them still match.
 *
 *   node cli/build.mjs           # build
 *   node cli/build.mjs --check   # exit 1 unless the bundle is there and matches its sources
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleState, MANIFEST } from './launcher.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** Packages bundled into the entry; every other dependency stays in node_modules. */
const BUNDLED_PACKAGES = new Set(['pg']);

/**
 * Built-in modules are taken with `process.getBuiltinModule` rather than imported as ES modules, which
 * would cost a module namespace each.
 * @type {import('esbuild').Plugin}
 */
const builtinsWithoutNamespaces = {
  name: 'builtins-without-namespaces',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'node-builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

/**
 * Builds dist/cli and its manifest; returns the manifest's path.
 * @param {{ root?: string }} [options] the repository to build (default: this one)
 */
export async function buildCli(options = {}) {
  const root = options.root ?? ROOT;
  const outDir = join(root, 'dist', 'cli');
  const { build } = await import('esbuild');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const external = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })
    .filter((name) => !BUNDLED_PACKAGES.has(name))
    .flatMap((name) => [name, `${name}/*`]);
  rmSync(outDir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { main: 'cli/main.ts' },
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    external,
    plugins: [builtinsWithoutNamespaces],
    // node-postgres is CommonJS and calls require() for built-in modules.
    banner: { js: "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);" },
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  // The build and the launcher shape the bundle too: a change to either makes it stale.
  const inputs = Object.keys(result.metafile.inputs)
    .filter((input) => !input.startsWith('node-builtin:'))
    .concat('cli/build.mjs', 'cli/launcher.mjs');
  /** @type {Record<string, [number, number]>} */
  const files = {};
  for (const input of inputs.sort()) {
    const stat = statSync(join(root, input));
    files[input] = [stat.size, stat.mtimeMs];
  }
  const manifest = join(outDir, MANIFEST);
  writeFileSync(manifest, `${JSON.stringify({ files }, null, 1)}\n`);
  return manifest;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const state = bundleState(ROOT);
    if (state.kind !== 'fresh') {
      process.stderr.write(`pgwarden build: the bundled entry is ${state.kind}: ${state.reason}\n`);
      process.exit(1);
    }
  } else {
    try {
      await import('esbuild');
    } catch {
      // An install without devDependencies: the launcher runs the sources, as it does without a bundle.
      process.stdout.write('pgwarden build: esbuild is not installed; the CLI will run from its sources\n');
      process.exit(0);
    }
    const manifest = await buildCli();
    process.stdout.write(`pgwarden build: ${relative(ROOT, manifest).replace(/[/\\][^/\\]*$/, '')}\n`);
  }
}
