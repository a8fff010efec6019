/**
 * Section 4: the Lambda packages as `cdk synth` builds them (local esbuild, minified, the AWS SDK left
 * to the runtime), and each bundle's cold init in a fresh Node process with the environment the
 * function is deployed with.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  type BenchOptions,
  kb,
  type Measured,
  median,
  ms,
  onTeardown,
  progress,
  ROOT,
  run,
  type SectionResult,
  type SummaryRow,
  table,
} from './support.ts';

const SECTION = 'bundles';
const SIZE_TARGET = 150 * 1_024;
const INIT_TARGET_MS = 150;
const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation template JSON.
type Json = any;

interface Bundle {
  name: string;
  logicalId: string;
  memoryMb: number;
  dir: string;
  bytes: number;
  gzipBytes: number;
  mapBytes: number;
  env: Record<string, string>;
}

/** A stand-in value for what CloudFormation resolves at deploy time, by the referenced resource's type. */
function stand(template: Json, logicalId: string, attribute?: string): string {
  if (logicalId === 'AWS::Region') return REGION;
  if (logicalId === 'AWS::AccountId') return ACCOUNT;
  if (logicalId === 'AWS::Partition') return 'aws';
  if (logicalId === 'AWS::URLSuffix') return 'amazonaws.com';
  const type: string = template.Resources?.[logicalId]?.Type ?? '';
  const name = logicalId.replace(/[^A-Za-z0-9]/g, '').slice(0, 40);
  if (attribute === 'Endpoint.Address')
    return `${name.toLowerCase()}.abcdefghijkl.${REGION}.rds.amazonaws.com`;
  if (attribute === 'Endpoint.Port') return '5432';
  if (attribute?.endsWith('SecretArn'))
    return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name.toLowerCase()}-AbCdEf`;
  if (attribute === 'Arn') return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
  switch (type) {
    case 'AWS::SNS::Topic':
      return `arn:aws:sns:${REGION}:${ACCOUNT}:${name}`;
    case 'AWS::StepFunctions::StateMachine':
      return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${name}`;
    case 'AWS::RDS::DBInstance':
    case 'AWS::RDS::DBCluster':
      return `db-${name.toLowerCase()}`.slice(0, 60);
    default:
      return name;
  }
}

function resolve(template: Json, value: Json): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object') {
    if ('Ref' in value) return stand(template, value.Ref);
    if ('Fn::GetAtt' in value) {
      const [id, attribute] = value['Fn::GetAtt'];
      return stand(template, id, attribute);
    }
    if ('Fn::Join' in value) {
      const [separator, parts] = value['Fn::Join'];
      return (parts as Json[]).map((p) => resolve(template, p)).join(separator);
    }
    if ('Fn::Sub' in value) {
      const text = Array.isArray(value['Fn::Sub']) ? value['Fn::Sub'][0] : value['Fn::Sub'];
      return String(text).replace(/\$\{([^}]+)\}/g, (_: string, ref: string) => {
        const [id, attribute] = ref.split('.', 2) as [string, string | undefined];
        return stand(template, id, attribute);
      });
    }
  }
  throw new Error(`cannot stand in for ${JSON.stringify(value)}`);
}

async function synth(out: string): Promise<{ template: Json; wallMs: number }> {
  const cdk = join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');
  const result = await run(process.execPath, [cdk, 'synth', '-c', 'demo=true', '-o', out, '--quiet'], {
    cwd: ROOT,
    env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: '1' },
    timeoutMs: 300_000,
  });
  if (result.code !== 0) throw new Error(`cdk synth failed: ${result.stderr.slice(-2_000)}`);
  return {
    template: JSON.parse(await readFile(join(out, 'PgWarden.template.json'), 'utf8')),
    wallMs: result.wallMs,
  };
}

function functionName(logicalId: string): string {
  const match = /^Functions(.+?)Function[0-9A-F]{8}$/.exec(logicalId);
  const raw = match?.[1] ?? logicalId;
  return raw.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();
}

async function collect(template: Json, out: string): Promise<Bundle[]> {
  const bundles: Bundle[] = [];
  for (const [logicalId, resource] of Object.entries<Json>(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    if (!String(resource.Properties?.Description ?? '').startsWith('pgwarden:')) continue;
    const assetPath = resource.Metadata?.['aws:asset:path'];
    if (!assetPath) throw new Error(`${logicalId} has no bundled asset (was bundling skipped?)`);
    const dir = join(out, assetPath);
    const code = await readFile(join(dir, 'index.mjs'));
    const map = await stat(join(dir, 'index.mjs.map')).catch(() => undefined);
    const variables: Record<string, Json> = resource.Properties?.Environment?.Variables ?? {};
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(variables)) env[key] = resolve(template, value);
    bundles.push({
      name: functionName(logicalId),
      logicalId,
      memoryMb: resource.Properties?.MemorySize ?? 128,
      dir,
      bytes: code.length,
      gzipBytes: gzipSync(code, { level: 9 }).length,
      mapBytes: map?.size ?? 0,
      env,
    });
  }
  const order = ['monitor', 'probe', 'remediate', 'sweep', 'rds-events', 'runbook'];
  return bundles.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
}

const INIT_SCRIPT = `
const started = performance.now();
const module = await import('./index.mjs');
const imported = performance.now();
if (typeof module.handler !== 'function') throw new Error('the bundle exports no handler');
process.stdout.write(JSON.stringify({ bootMs: started, initMs: imported - started }));
`;

/** The environment Lambda gives a Node.js function at cold start, plus the function's own. */
function lambdaEnv(bundle: Bundle): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    AWS_LAMBDA_FUNCTION_NAME: `PgWarden-${bundle.logicalId}`,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(bundle.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    ...bundle.env,
  };
  // The runtime's CA bundle exists only in Lambda; Node would warn and carry on without it.
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export async function bundles(options: BenchOptions, _measured: Measured): Promise<SectionResult> {
  const runs = options.quick ? 3 : 10;
  const work = await mkdtemp(join(tmpdir(), 'pgwarden-bench-synth-'));
  const cleanup = onTeardown(() => rm(work, { recursive: true, force: true }));
  try {
    progress(SECTION, 'cdk synth -c demo=true (bundling every function with esbuild)');
    const out = join(work, 'cdk.out');
    const { template, wallMs: synthMs } = await synth(out);
    const found = await collect(template, out);
    progress(SECTION, `${found.length} bundles: ${found.map((b) => `${b.name} ${kb(b.bytes)}`).join(', ')}`);

    // Each bundle alone in a directory, next to a node_modules that stands in for the runtime's SDK.
    const init = join(work, 'init');
    await mkdir(init);
    await symlink(join(ROOT, 'node_modules'), join(init, 'node_modules'), 'dir');
    for (const bundle of found) {
      const dir = join(init, bundle.name);
      await mkdir(dir);
      await copyFile(join(bundle.dir, 'index.mjs'), join(dir, 'index.mjs'));
      await copyFile(join(bundle.dir, 'index.mjs.map'), join(dir, 'index.mjs.map')).catch(() => undefined);
      await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    }

    const inits = new Map<string, number[]>(found.map((b) => [b.name, []]));
    const walls = new Map<string, number[]>(found.map((b) => [b.name, []]));
    const baseline: number[] = [];
    progress(
      SECTION,
      `cold init: ${runs} fresh processes per bundle, interleaved, and an empty \`node -e ''\``,
    );
    for (let i = 0; i < runs; i++) {
      const empty = await run(process.execPath, ['-e', ''], { cwd: init, env: { PATH: process.env.PATH } });
      baseline.push(empty.wallMs);
      for (const bundle of found) {
        const env = lambdaEnv(bundle);
        const nodeOptions = (env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
        delete env.NODE_OPTIONS;
        const result = await run(
          process.execPath,
          [...nodeOptions, '--input-type=module', '-e', INIT_SCRIPT],
          {
            cwd: join(init, bundle.name),
            env,
            timeoutMs: 30_000,
          },
        );
        if (result.code !== 0)
          throw new Error(
            `${bundle.name}: cold init failed: ${result.stderr.trim().split('\n').slice(-5).join(' | ')}`,
          );
        const { initMs } = JSON.parse(result.stdout) as { initMs: number };
        inits.get(bundle.name)?.push(initMs);
        walls.get(bundle.name)?.push(result.wallMs);
      }
    }
    return report(found, inits, walls, baseline, { runs, synthMs });
  } finally {
    await cleanup();
  }
}

function report(
  found: Bundle[],
  inits: Map<string, number[]>,
  walls: Map<string, number[]>,
  baseline: number[],
  extra: { runs: number; synthMs: number },
): SectionResult {
  const largest = found.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const initMedians = found.map((b) => ({ name: b.name, ms: median(inits.get(b.name) ?? []) }));
  const slowest = initMedians.reduce((a, b) => (b.ms > a.ms ? b : a));
  const rows: SummaryRow[] = [
    {
      figure: `Lambda bundle size, largest of ${found.length} (${largest.name}), minified, SDK external`,
      target: '≤ 150 KB',
      measured: kb(largest.bytes),
      pass: largest.bytes <= SIZE_TARGET,
    },
    {
      figure: `Cold init of a bundle in a fresh Node process, slowest (${slowest.name}), median of ${extra.runs}`,
      target: '≤ 150 ms',
      measured: ms(slowest.ms),
      pass: slowest.ms <= INIT_TARGET_MS,
    },
  ];
  const detail: string[] = [
    `\`cdk synth -c demo=true -o <tmp>\` (${ms(extra.synthMs, 0)} wall, bundling on: the local esbuild, ESM, minified, \`@aws-sdk/*\` external, source maps without sources). ` +
      'Sizes are of each `index.mjs`; the gzip column approximates the deployment zip without the source map.',
    '',
    `Cold init: each bundle is copied alone into a directory next to a \`node_modules\` link (the SDK the Lambda runtime provides, resolved from this repository's), ` +
      `and imported by a fresh \`node\` process with the environment it is deployed with — the synthesized template's variables, CloudFormation references replaced by ` +
      `plausible values — plus the variables Lambda sets (AWS_REGION and the rest) and the function's \`NODE_OPTIONS\` (\`--enable-source-maps\`). ` +
      'Importing runs everything a cold start runs before the first event: the bundle evaluates, the environment and the fleet are parsed and validated, SDK clients are built. ' +
      `${extra.runs} processes per bundle, interleaved with the others and with an empty \`node -e ''\`; medians. This machine is not a Lambda sandbox (whose arm64 CPU share ` +
      'scales with memory), so the figures are relative to the empty start measured beside them.',
    '',
    ...table(
      [
        'function',
        'memory',
        'index.mjs',
        'gzip',
        'source map',
        'cold init (import) median',
        'min',
        'max',
        'process wall median',
      ],
      found.map((b) => {
        const i = inits.get(b.name) ?? [];
        return [
          b.name,
          `${b.memoryMb} MB`,
          kb(b.bytes),
          kb(b.gzipBytes),
          kb(b.mapBytes),
          ms(median(i)),
          ms(Math.min(...i)),
          ms(Math.max(...i)),
          ms(median(walls.get(b.name) ?? [])),
        ];
      }),
    ),
    '',
    `An empty \`node -e ''\` takes ${ms(median(baseline))} (median of ${baseline.length}) from spawn to exit on this machine: ` +
      "a bundle's process wall time is that baseline plus its cold init plus exit.",
  ];
  return { id: 'bundles', title: '4. Lambda packages and cold start', rows, detail };
}
