/**
 * What each function's code can send to AWS, read from the code itself: the handler's static import
 * graph (relative imports, type-only imports left out), and in every module of it each
 * `new <Name>Command(` of a class imported from an `@aws-sdk/client-*` package (statically, or with
 * `const { ... } = await import(...)` where it is loaded on first use), mapped to the IAM action it
 * needs. Whatever a function can send is in its graph, so its role must allow it; a
 * permission no module of the graph can use is a permission without a caller.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from '../../infra/constructs/pgwarden-function.ts';

/** The IAM service prefix of each SDK client package pgwarden uses. */
export const SERVICE_OF_PACKAGE: Readonly<Record<string, string>> = {
  '@aws-sdk/client-cloudwatch': 'cloudwatch',
  '@aws-sdk/client-dynamodb': 'dynamodb',
  '@aws-sdk/client-eventbridge': 'events',
  '@aws-sdk/client-lambda': 'lambda',
  '@aws-sdk/client-rds': 'rds',
  '@aws-sdk/client-secrets-manager': 'secretsmanager',
  '@aws-sdk/client-sfn': 'states',
  '@aws-sdk/client-sns': 'sns',
  '@aws-sdk/client-sqs': 'sqs',
};

/** Commands whose IAM action is not named after the command. */
const ACTION_OF_COMMAND: Readonly<Record<string, string>> = {
  'lambda:Invoke': 'lambda:InvokeFunction',
};

/** One call site: the IAM action, and where the code sends it. */
export interface SdkCall {
  readonly action: string;
  readonly module: string;
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?([\s\S]*?)\s+from\s+['"]([^'"]+)['"]/gm;
/** `const { A, B } = await import('pkg')`: a module loaded on first use. */
const DYNAMIC_IMPORT = /\b(?:const|let|var)\s*\{([^{}]*)\}\s*=\s*await\s+import\(\s*['"]([^'"]+)['"]\s*\)/g;
const SIDE_EFFECT_IMPORT = /^\s*import\s+['"]([^'"]+)['"]/gm;

interface Module {
  /** Relative imports of values (not only types). */
  imports: string[];
  /** Command class name to its package, for classes imported from SDK clients. */
  commands: Map<string, string>;
  /** Client class name to its package. */
  clients: Map<string, string>;
  source: string;
}

function parseModule(file: string): Module {
  const source = readFileSync(file, 'utf8');
  const imports: string[] = [];
  const commands = new Map<string, string>();
  const clients = new Map<string, string>();
  for (const match of source.matchAll(IMPORT)) {
    const [, , typeOnly, clause = '', from = ''] = match;
    if (typeOnly) continue;
    if (from.startsWith('.')) {
      // `import { type A, type B } from` imports nothing at run time.
      const braces = /\{([\s\S]*)\}/.exec(clause);
      const rest = clause
        .replace(/\{[\s\S]*\}/, '')
        .replace(/,/g, '')
        .trim();
      const onlyTypes =
        braces !== null &&
        rest === '' &&
        (braces[1] ?? '')
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean)
          .every((n) => n.startsWith('type '));
      if (!onlyTypes) imports.push(from);
    } else if (SERVICE_OF_PACKAGE[from]) {
      const names = /\{([\s\S]*)\}/.exec(clause)?.[1] ?? '';
      for (const raw of names.split(',')) {
        const name = raw.trim();
        if (!name || name.startsWith('type ')) continue;
        const local = name.split(/\s+as\s+/).pop() ?? name;
        if (local.endsWith('Command')) commands.set(local, from);
        if (local.endsWith('Client')) clients.set(local, from);
      }
    }
  }
  for (const [, names = '', from = ''] of source.matchAll(DYNAMIC_IMPORT)) {
    if (!SERVICE_OF_PACKAGE[from]) continue;
    for (const raw of names.split(',')) {
      const local = raw.split(':').pop()?.trim() ?? '';
      if (local.endsWith('Command')) commands.set(local, from);
      if (local.endsWith('Client')) clients.set(local, from);
    }
  }
  for (const match of source.matchAll(SIDE_EFFECT_IMPORT)) {
    const from = match[1] ?? '';
    if (from.startsWith('.')) imports.push(from);
  }
  return { imports, commands, clients, source };
}

function resolveImport(from: string, specifier: string): string {
  const target = resolve(dirname(from), specifier);
  for (const candidate of [target, `${target}.ts`, join(target, 'index.ts')])
    if (existsSync(candidate) && candidate.endsWith('.ts')) return candidate;
  throw new Error(`${relative(REPO_ROOT, from)} imports ${specifier}, which does not resolve to a .ts file`);
}

/** Every module of an entry's static import graph (repository-relative paths), the entry first. */
export function importGraph(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [resolve(REPO_ROOT, entry)];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const specifier of parseModule(file).imports) queue.push(resolveImport(file, specifier));
  }
  return [...seen].map((f) => relative(REPO_ROOT, f));
}

/**
 * The IAM actions the code reachable from `entry` sends, with the module of each call. A command is
 * only sent through a client of its service, and a function's clients are built in its graph (the
 * handler builds them at cold start): a module that holds a command of a service whose client the
 * function never builds (remediate imports shared/metrics.ts for its log-line format, not its sink)
 * sends nothing.
 */
export function sdkCalls(entry: string): SdkCall[] {
  const graph = importGraph(entry).map((module) => ({ module, ...parseModule(join(REPO_ROOT, module)) }));
  const built = new Set(
    graph.flatMap(({ clients, source }) =>
      [...clients].filter(([name]) => new RegExp(`new\\s+${name}\\s*\\(`).test(source)).map(([, pkg]) => pkg),
    ),
  );
  const calls: SdkCall[] = [];
  for (const { module, commands, source } of graph) {
    for (const [command, pkg] of commands) {
      if (!built.has(pkg)) continue;
      if (!new RegExp(`new\\s+${command}\\s*\\(`).test(source)) continue;
      const naive = `${SERVICE_OF_PACKAGE[pkg]}:${command.replace(/Command$/, '')}`;
      calls.push({ action: ACTION_OF_COMMAND[naive] ?? naive, module });
    }
  }
  return calls;
}
