/**
 * The floor rules of the house (STYLE.md, rule 11), checked on every CI run: `npm run deps`.
 *
 *   shared/     the library: imports nothing above it
 *   functions/  one folder per Lambda function: imports shared/, never another function
 *   cli/        the on-call CLI and local mode (cli/local/): may import functions' cores and shared/
 *   infra/      the CDK app
 *   test/, bench/  may import anything; nothing in the product imports them
 *
 * Type-only imports count (tsPreCompilationDeps): a type cycle is still a cycle for a reader.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'shared-is-the-ground-floor',
      comment: 'shared/ is the library: it imports nothing from functions/, cli/, infra/, test/ or bench/.',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(functions|cli|infra|test|bench)/' },
    },
    {
      name: 'no-function-imports-another',
      comment: 'A function imports nothing from another function: what two share belongs in shared/.',
      severity: 'error',
      from: { path: '^functions/([^/]+)/' },
      to: { path: '^functions/', pathNot: '^functions/$1/' },
    },
    {
      name: 'functions-import-no-cli-or-infra',
      comment: 'A function runs in Lambda: it imports nothing from the CLI, local mode or the CDK app.',
      severity: 'error',
      from: { path: '^functions/' },
      to: { path: '^(cli|infra)/' },
    },
    {
      name: 'cli-imports-no-infra',
      comment: 'The CLI and local mode run the functions and the library, never the CDK app.',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: '^infra/' },
    },
    {
      name: 'product-imports-no-test-code',
      comment:
        'Helpers only tests and benchmarks use live under test/ (or bench/); the product never imports them.',
      severity: 'error',
      from: { path: '^(shared|functions|cli|infra)/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'one-door-to-postgres',
      comment: 'shared/db.ts is the only module that imports pg (STYLE.md, rule 3).',
      severity: 'error',
      from: { path: '^(shared|functions|cli|infra)/', pathNot: '^shared/(db\\.ts|pg-client\\.d\\.ts)$' },
      to: { path: '(^|/)node_modules/pg/' },
    },
    {
      name: 'runtime-code-needs-no-dev-dependency',
      comment:
        'Lambda bundles and the CLI load only dependencies; a devDependency is for infra/, test/ and bench/, ' +
        'and for cli/build.mjs, which builds the CLI with esbuild at npm ci and is never loaded when it runs.',
      severity: 'error',
      from: { path: '^(shared|functions|cli)/', pathNot: '^cli/build\\.mjs$' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports is dead code, unless it is an entry point.',
      severity: 'error',
      from: {
        orphan: true,
        pathNot: [
          '\\.d\\.ts$',
          '^cli/bin\\.mjs$',
          '^infra/app\\.ts$',
          '^functions/[^/]+/handler\\.ts$',
          '^bench/run\\.ts$',
          '^test/.*\\.test\\.ts$',
          '^test/soak/run\\.ts$',
        ],
      },
      to: {},
    },
    {
      name: 'no-unresolvable',
      comment: 'Every import resolves to a file or an installed package.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mjs', '.js', '.cjs', '.json', '.d.ts'],
    },
  },
};
