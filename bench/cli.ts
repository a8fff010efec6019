/**
 * Section 9: how fast the command line starts. `pgwarden probe --json` as a fresh process, the way
 * on-call runs it, beside `psql -c 'select 1'` and check_postgres's seven actions against the same server
 * with the same role and password; `node -e 0` shows what any Node.js program pays before its first line.
 * Every process is timed and its peak memory read by the same small wrapper (wait4's rusage), in rounds
 * that run each command once in a rotating order, so a busy neighbour slows them all alike.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildCli } from '../cli/build.mjs';
import { bundleState } from '../cli/launcher.mjs';
import { CHECK_POSTGRES_ACTIONS, checkPostgresInvocation, nagiosStatus } from './check-postgres.ts';
import {
  type BenchOptions,
  createRoles,
  findCheckPostgres,
  median,
  ms,
  percentile,
  progress,
  ROOT,
  ratio,
  run,
  type SectionResult,
  type SummaryRow,
  startBenchServer,
  table,
} from './support.ts';

const SECTION = 'cli';
const BIN = join(ROOT, 'cli', 'bin.mjs');
const WALL_RATIO_TARGET = 1.5;
const RSS_TARGET_MB = 60;
const CHECK_POSTGRES_TARGET = 10;

/**
 * Runs one command and prints its wall time, peak RSS (of it and the children it waited for) and
 * output as JSON. Python's wait4 rusage is the one portable way to read a finished child's peak memory.
 */
const MEASURE_PY = `
import json, os, resource, subprocess, sys, time
spec = json.loads(sys.argv[1])
env = dict(os.environ)
env.update(spec['env'])
started = time.perf_counter()
p = subprocess.run(spec['argv'], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=spec['timeoutS'])
wall = (time.perf_counter() - started) * 1000
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({'wallMs': wall, 'maxRssKb': rss / 1024 if sys.platform == 'darwin' else rss, 'code': p.returncode,
  'stdout': p.stdout.decode(errors='replace')[-4000:], 'stderr': p.stderr.decode(errors='replace')[-2000:]}))
`;

interface Sample {
  wallMs: number;
  /** NaN when no wrapper could read it. */
  maxRssMb: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

function pythonAvailable(): boolean {
  return spawnSync('python3', ['-c', 'import resource'], { timeout: 10_000 }).status === 0;
}

/** One fresh process: wall time and peak RSS through the Python wrapper, or wall time alone without it. */
async function measure(
  python: boolean,
  argv: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<Sample> {
  if (!python) {
    const [command, ...args] = argv as [string, ...string[]];
    const result = await run(command, args, { env: { ...process.env, ...env }, timeoutMs });
    return { ...result, maxRssMb: Number.NaN };
  }
  const result = await run(
    'python3',
    ['-c', MEASURE_PY, JSON.stringify({ argv, env, timeoutS: timeoutMs / 1_000 })],
    {
      timeoutMs: timeoutMs + 10_000,
    },
  );
  if (result.code !== 0) throw new Error(`measuring ${argv.join(' ')}: ${result.stderr.trim()}`);
  const out = JSON.parse(result.stdout) as Omit<Sample, 'maxRssMb'> & { maxRssKb: number };
  return { ...out, maxRssMb: out.maxRssKb / 1_024 };
}

/** psql from the newest PostgreSQL client installed (Debian's `psql` on the PATH is a Perl wrapper). */
function findPsql(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'psql')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin', 'psql');
  }
  const bindir = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (bindir.status === 0 && existsSync(join(bindir.stdout.trim(), 'psql')))
    return join(bindir.stdout.trim(), 'psql');
  return spawnSync('psql', ['--version']).status === 0 ? 'psql' : undefined;
}

interface Variant {
  id: string;
  label: string;
  argv: string[];
  env: Record<string, string>;
  /** Exit codes that count as a run that did its work. */
  okCodes: number[];
  samples: Sample[];
}

const stats = (samples: readonly Sample[]) => {
  const wall = samples.map((s) => s.wallMs);
  const rss = samples.map((s) => s.maxRssMb);
  return {
    p50: median(wall),
    p95: percentile(wall, 95),
    min: Math.min(...wall),
    rssMedian: median(rss),
    rssMax: Math.max(...rss),
  };
};

const mbText = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} MB` : 'n/a');

export async function cli(options: BenchOptions): Promise<SectionResult> {
  const rounds = options.quick ? 10 : 30;
  const checkRounds = options.quick ? 3 : 10;
  const python = pythonAvailable();
  const psql = findPsql();
  const checkPostgres = findCheckPostgres();
  if (!psql) throw new Error('psql is not installed (apt-get install -y postgresql-client)');

  const state = bundleState(ROOT);
  if (state.kind !== 'fresh') {
    progress(SECTION, `building the bundled entry (${state.reason})`);
    await buildCli();
  }
  progress(SECTION, 'starting PostgreSQL and the monitor role');
  const server = await startBenchServer();
  try {
    const roles = await createRoles(server);
    const { user, password } = roles.monitor;
    const url = `postgres://${user}@127.0.0.1:${server.port}/postgres?sslmode=disable`;
    const auth = { PGPASSWORD: password, PGSSLMODE: 'disable', PGWARDEN_ENTRY: '' };
    const variants: Variant[] = [
      {
        id: 'psql',
        label: "`psql -X -c 'select 1'`",
        argv: [
          psql,
          '-X',
          '-h',
          '127.0.0.1',
          '-p',
          String(server.port),
          '-U',
          user,
          '-d',
          'postgres',
          '-c',
          'select 1',
        ],
        env: auth,
        okCodes: [0],
        samples: [],
      },
      {
        id: 'node',
        label: '`node -e 0` (Node.js alone)',
        argv: [process.execPath, '-e', '0'],
        env: {},
        okCodes: [0],
        samples: [],
      },
      {
        id: 'probe',
        label: '`pgwarden probe --json`',
        argv: [process.execPath, BIN, 'probe', '--url', url, '--json'],
        env: { ...auth, PGWARDEN_ENTRY: 'bundle' },
        okCodes: [0, 1],
        samples: [],
      },
      {
        id: 'probe-sources',
        label: '`pgwarden probe --json` from the TypeScript sources (`PGWARDEN_ENTRY=sources`)',
        argv: [process.execPath, BIN, 'probe', '--url', url, '--json'],
        env: { ...auth, PGWARDEN_ENTRY: 'sources' },
        okCodes: [0, 1],
        samples: [],
      },
      {
        id: 'sweep',
        label: '`pgwarden sweep --dry-run --json`',
        argv: [process.execPath, BIN, 'sweep', '--url', url, '--dry-run', '--json'],
        env: { ...auth, PGWARDEN_ENTRY: 'bundle' },
        okCodes: [0],
        samples: [],
      },
      {
        id: 'help',
        label: '`pgwarden probe --help` (no database)',
        argv: [process.execPath, BIN, 'probe', '--help'],
        env: { PGWARDEN_ENTRY: 'bundle' },
        okCodes: [0],
        samples: [],
      },
    ];
    // One untimed run each: page cache, V8's compile cache beside the bundle, the server's catalogs.
    for (const v of variants) await measure(python, v.argv, v.env);
    progress(
      SECTION,
      `${rounds} rounds of ${variants.length} commands${python ? '' : ' (no python3: wall time only)'}`,
    );
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(round + i) % variants.length] as Variant;
        const sample = await measure(python, v.argv, v.env);
        if (!v.okCodes.includes(sample.code ?? -1))
          throw new Error(
            `${v.argv.join(' ')} exited ${sample.code}: ${sample.stderr.trim() || sample.stdout.trim()}`,
          );
        v.samples.push(sample);
      }
    }
    const probeRun = JSON.parse(variants[2]?.samples[0]?.stdout ?? '{}') as { ok?: boolean };
    if (!probeRun.ok)
      throw new Error(`pgwarden probe did not reach the server: ${variants[2]?.samples[0]?.stdout}`);

    const checkRoundsDone: Array<{ wallMs: number; maxRssMb: number; statuses: string[] }> = [];
    if (checkPostgres) {
      progress(
        SECTION,
        `check_postgres: ${checkRounds} rounds of its ${CHECK_POSTGRES_ACTIONS.length} actions`,
      );
      const connection = { host: '127.0.0.1', port: server.port, user, password, database: 'postgres' };
      for (let round = 0; round < checkRounds; round++) {
        let wallMs = 0;
        let maxRssMb = 0;
        const statuses: string[] = [];
        for (const action of CHECK_POSTGRES_ACTIONS) {
          const invocation = checkPostgresInvocation(connection, action);
          const sample = await measure(python, [checkPostgres.command, ...invocation.args], invocation.env);
          wallMs += sample.wallMs;
          maxRssMb = Math.max(maxRssMb, sample.maxRssMb);
          statuses.push(`${action.action} ${nagiosStatus(sample.stdout || sample.stderr)}`);
        }
        checkRoundsDone.push({ wallMs, maxRssMb, statuses });
      }
    }
    return report(variants, {
      rounds,
      python,
      psql,
      checkPostgres: checkPostgres ? { version: checkPostgres.version, rounds: checkRoundsDone } : undefined,
    });
  } finally {
    await server.release();
  }
}

function report(
  variants: Variant[],
  context: {
    rounds: number;
    python: boolean;
    psql: string;
    checkPostgres:
      | { version: string; rounds: Array<{ wallMs: number; maxRssMb: number; statuses: string[] }> }
      | undefined;
  },
): SectionResult {
  const byId = (id: string) => stats((variants.find((v) => v.id === id) as Variant).samples);
  const psql = byId('psql');
  const node = byId('node');
  const probe = byId('probe');
  const sources = byId('probe-sources');
  const sweep = byId('sweep');
  const rows: SummaryRow[] = [
    {
      figure: "CLI: `pgwarden probe --json` as a fresh process vs `psql -c 'select 1'` (median wall)",
      target: `≤ ${WALL_RATIO_TARGET}×`,
      measured: `${ms(probe.p50)} vs ${ms(psql.p50)} (${ratio(probe.p50 / psql.p50)})`,
      pass: probe.p50 / psql.p50 <= WALL_RATIO_TARGET,
    },
    {
      figure: 'CLI: Node.js alone (`node -e 0`) vs psql, the floor of any Node.js program (median wall)',
      target: '—',
      measured: `${ms(node.p50)} (${ratio(node.p50 / psql.p50)})`,
    },
    {
      figure: 'CLI: `pgwarden probe --json` peak memory (largest of all runs)',
      target: `< ${RSS_TARGET_MB} MB`,
      measured: mbText(probe.rssMax),
      ...(Number.isFinite(probe.rssMax) ? { pass: probe.rssMax < RSS_TARGET_MB } : {}),
    },
  ];
  const cp = context.checkPostgres;
  const cpWall = cp ? median(cp.rounds.map((r) => r.wallMs)) : Number.NaN;
  if (cp)
    rows.push({
      figure: `CLI: \`pgwarden probe --json\` vs check_postgres's ${CHECK_POSTGRES_ACTIONS.length} actions as fresh processes (median wall)`,
      target: `≥ ${CHECK_POSTGRES_TARGET}× less`,
      measured: `${ms(probe.p50)} vs ${ms(cpWall, 0)} (${ratio(cpWall / probe.p50)} less)`,
      pass: cpWall / probe.p50 >= CHECK_POSTGRES_TARGET,
    });
  else
    rows.push({
      figure: "CLI: vs check_postgres's seven actions as fresh processes",
      target: `≥ ${CHECK_POSTGRES_TARGET}× less`,
      measured: 'skipped: check_postgres is not installed (apt-get install -y check-postgres)',
    });
  rows.push(
    {
      figure:
        'CLI: `pgwarden probe --json` from the TypeScript sources instead of the bundle (median wall, peak RSS)',
      target: '—',
      measured: `${ms(sources.p50)}, ${mbText(sources.rssMax)}`,
    },
    {
      figure: 'CLI: `pgwarden sweep --dry-run --json` (median wall, peak RSS)',
      target: '—',
      measured: `${ms(sweep.p50)}, ${mbText(sweep.rssMax)}`,
    },
  );

  const detail = [
    `One embedded PostgreSQL; every command connects over TCP to 127.0.0.1 as the monitor role the README documents, with its password in ` +
      '`PGPASSWORD` (SCRAM-SHA-256) and TLS off. Each command is a fresh process started by a small Python wrapper that times it and reads ' +
      `its peak RSS from wait4's rusage${context.python ? '' : ' (python3 was not found: wall time only)'}. After one untimed run each, ` +
      `${context.rounds} rounds run every command once, each round in a rotated order. \`pgwarden\` is \`node cli/bin.mjs\`, the bin ` +
      '`npm ci` installs, running the bundled entry it builds (`PGWARDEN_ENTRY=bundle`); the sources row runs the same bin on the TypeScript ' +
      `sources. psql is \`${context.psql}\`.`,
    '',
    ...table(
      ['command', 'wall p50', 'wall p95', 'wall min', 'peak RSS (median / max)'],
      variants.map((v) => {
        const s = stats(v.samples);
        return [v.label, ms(s.p50), ms(s.p95), ms(s.min), `${mbText(s.rssMedian)} / ${mbText(s.rssMax)}`];
      }),
    ),
    '',
    `A Node.js process costs ${ms(node.p50)} before it runs a line of pgwarden, ${ratio(node.p50 / psql.p50)} psql's whole run` +
      (node.p50 / psql.p50 > WALL_RATIO_TARGET
        ? `: on this machine no Node.js program reaches ${WALL_RATIO_TARGET}× psql. `
        : '. ') +
      `The probe adds ${ms(probe.p50 - node.p50)} to it: loading its modules (node-postgres with Node's crypto, net and dns), a SCRAM ` +
      'login whose key node-postgres derives with WebCrypto, and one statement whose plan reads more of the catalog than `select 1`.',
    '',
  ];
  if (cp) {
    detail.push(
      `check_postgres (${cp.version}) runs its ${CHECK_POSTGRES_ACTIONS.length} actions one after another, each a Perl process that runs psql, ` +
        `as Nagios runs them; ${cp.rounds.length} rounds, median ${ms(cpWall, 0)} per round (p95 ${ms(
          percentile(
            cp.rounds.map((r) => r.wallMs),
            95,
          ),
          0,
        )}), peak RSS ${mbText(Math.max(...cp.rounds.map((r) => r.maxRssMb)))}. Statuses: ${cp.rounds[0]?.statuses.join(', ')}.`,
      '',
    );
  } else {
    detail.push(
      'check_postgres was not found on the PATH, so the comparison with its seven actions was skipped. On Debian or Ubuntu: `apt-get install -y check-postgres`.',
      '',
    );
  }
  return { id: 'cli', title: '9. The command line starts fast', rows, detail };
}
