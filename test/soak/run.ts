/**
 * Soak: the monitor and the sweep run against a real PostgreSQL for a bounded time while faults are
 * injected and released at random. Checks that every fault is detected and cleared, that connections
 * come back to their baseline after each one, and that the process leaks neither handles nor memory.
 *
 *   npm run soak                    # 3 minutes
 *   npm run soak -- --minutes 1 --seed 42
 *
 * Exits 1 when a check fails. Prints a table per fault, then the figures.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { seededRandom, sleep } from '../../bench/support.ts';
import { startEmbeddedPostgres } from '../../cli/local/embedded.ts';
import {
  buildLockChain,
  exhaustSlots,
  type FaultHandle,
  type FaultTarget,
  holdIdleInTransaction,
  runLongQuery,
} from '../../cli/local/faults.ts';
import { type MonitorState, runMonitor } from '../../functions/monitor/monitor.ts';
import { DEFAULT_MONITOR_SETTINGS } from '../../functions/monitor/settings.ts';
import { newTrackerState, observe, type Status } from '../../functions/monitor/tracker.ts';
import { systemClock } from '../../shared/clock.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { MetricSink, Sample } from '../../shared/metrics.ts';
import { type ProbeResult, probe } from '../../shared/probe/snapshot.ts';
import { remediate } from '../../shared/remediation/remediator.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../../shared/target.ts';
import { createMonitorRole } from '../helpers/postgres.ts';

// ---- options -------------------------------------------------------------------------------------

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const minutes = Number(option('minutes') ?? 3);
const seed = Number(option('seed') ?? Math.floor(Math.random() * 2 ** 31));
if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 120 || !Number.isInteger(seed)) {
  process.stderr.write('usage: node test/soak/run.ts [--minutes N (0-120, default 3)] [--seed N]\n');
  process.exit(2);
}

/** How long a fault may take to show as a non-healthy verdict. */
const DETECT_WITHIN_MS = 15_000;
/** How long, after its release, a fault may take to clear (a healthy verdict again). */
const CLEAR_WITHIN_MS = 20_000;
/** How long connections may take to return to the baseline after a fault cleared. */
const BASELINE_WITHIN_MS = 15_000;
const HANDLE_TOLERANCE = 5;
const HEAP_TOLERANCE_MB = 25;
const RSS_TOLERANCE_MB = 100;

const rand = seededRandom(seed);
const between = (min: number, max: number) => min + Math.floor(rand() * (max - min));

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memory() {
  gc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapMb: heapUsed / 2 ** 20, rssMb: rss / 2 ** 20 };
}

/** Active handles at rest: the least seen over a few samples, so an in-flight probe does not count. */
async function handles(): Promise<number> {
  let least = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    least = Math.min(least, process.getActiveResourcesInfo().length);
    await sleep(100);
  }
  return least;
}

// ---- the system under soak -----------------------------------------------------------------------

const unexpected: string[] = [];
process.on('unhandledRejection', (reason) => unexpected.push(`unhandled rejection: ${String(reason)}`));
process.on('uncaughtException', (error) => unexpected.push(`uncaught exception: ${error.stack ?? error}`));

const started = Date.now();
const deadline = started + minutes * 60_000;
process.stdout.write(`pgwarden soak: ${minutes} minute(s), seed ${seed}\n`);

const server = await startEmbeddedPostgres({
  fast: true,
  maxConnections: 40,
  settings: { reserved_connections: 3 },
});
let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  process.stdout.write('\ninterrupted; cleaning up\n');
});

const monitorRole = await createMonitorRole(server);
await server.admin(`CREATE ROLE soak_app LOGIN PASSWORD 'soak-app-pw'`);
const app: FaultTarget = {
  spec: server.spec({ user: 'soak_app', password: 'soak-app-pw' }),
  credentials: { user: 'soak_app', password: 'soak-app-pw' },
};

const target: Target = {
  id: 'soak',
  connection: server.spec({ user: monitorRole.user, password: monitorRole.password }),
  thresholds: { ...DEFAULT_THRESHOLDS, idleInTransactionSeconds: 3, longQuerySeconds: 3 },
  remediation: {
    ...DEFAULT_REMEDIATION,
    idleAfterSeconds: 60,
    idleInTransactionAfterSeconds: 60,
    pressure: { utilizationPct: 95, idleAfterSeconds: 5 },
    maxPerRun: 100,
  },
};

/** Every verdict the monitor reached, by the same pure judgement it uses, in order. */
const verdicts: Array<{ at: number; status: Status }> = [];
const shadow = newTrackerState();
const latencies: number[] = [];
let probes = 0;
let probeFailures = 0;
let incidents = 0;
let samples = 0;

const sink: MetricSink = {
  add: (batch: readonly Sample[]) => {
    samples += batch.length;
  },
  flush: async () => ({ sent: 0, calls: 0, failed: 0 }),
};

const abort = new AbortController();
const monitorState: MonitorState = new Map();

async function monitorLoop(): Promise<void> {
  while (!abort.signal.aborted) {
    await runMonitor(
      [target],
      { ...DEFAULT_MONITOR_SETTINGS, cadenceMs: 1_000, confirmDelayMs: 200, concurrency: 1 },
      {
        probe: async (t): Promise<ProbeResult> => {
          const result = await probe(
            t.connection,
            { label: t.id, connectTimeoutMs: 1_000, statementTimeoutMs: 2_000, longQueryThresholdSeconds: 3 },
            { logger: silentLogger },
          );
          probes += 1;
          if (result.ok) latencies.push(result.latencyMs.connect + result.latencyMs.query);
          else probeFailures += 1;
          verdicts.push({ at: Date.now(), status: observe(shadow, result, t.thresholds).status });
          return result;
        },
        openIncident: async (t) => {
          incidents += 1;
          return { outcome: 'opened', incidentId: `pgw-${t.id}-soak-${incidents}`, executionArn: 'local' };
        },
        metrics: sink,
        clock: systemClock,
        logger: silentLogger,
      },
      monitorState,
      Date.now() + 10_000,
      abort.signal,
    );
    await sink.flush();
  }
}

let sweeps = 0;
let sweepFailures = 0;
let terminatedBySweep = 0;

async function sweepLoop(): Promise<void> {
  while (!abort.signal.aborted) {
    await systemClock.sleep(5_000, abort.signal).catch(() => undefined);
    if (abort.signal.aborted) break;
    const result = await remediate(
      target.connection,
      {
        targetId: target.id,
        policy: target.remediation,
        actions: ['idle', 'idle_in_transaction'],
        connectTimeoutMs: 1_000,
        statementTimeoutMs: 3_000,
      },
      { logger: silentLogger },
    );
    sweeps += 1;
    if (result.ok) terminatedBySweep += result.terminated.length;
    else sweepFailures += 1;
  }
}

async function clientConnections(): Promise<number> {
  const rows = await server.admin<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
  );
  return rows[0]?.n ?? 0;
}

/** Connections other than pgwarden's own probe/sweep session, which may be in flight at any time. */
async function settledConnections(): Promise<number> {
  const rows = await server.admin<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
       AND application_name NOT IN ('pgwarden-probe', 'pgwarden-remediate')`,
  );
  return rows[0]?.n ?? 0;
}

async function within(ms: number, check: () => Promise<boolean> | boolean): Promise<number | undefined> {
  const from = Date.now();
  while (Date.now() - from < ms) {
    try {
      if (await check()) return Date.now() - from;
    } catch {
      // The server may be restarting; look again.
    }
    await sleep(100);
  }
  return undefined;
}

// ---- faults --------------------------------------------------------------------------------------

const nothing: FaultHandle = { pids: [], release: async () => undefined };

interface FaultKind {
  name: string;
  inject(): Promise<FaultHandle>;
  /** How long it stays after it was detected (stop: how long the server stays down). */
  holdMs: number;
}

const KINDS: FaultKind[] = [
  { name: 'idle flood', inject: () => exhaustSlots(app, { applicationName: 'soak:flood' }), holdMs: 8_000 },
  { name: 'idle in transaction', inject: () => holdIdleInTransaction(app, 'soak_tx'), holdMs: 2_000 },
  { name: 'lock chain', inject: () => buildLockChain(app, 2, 'soak_chain'), holdMs: 2_000 },
  { name: 'long query', inject: () => runLongQuery(app, 600), holdMs: 2_000 },
  {
    name: 'crash',
    inject: async () => {
      await server.crashBackend();
      return nothing;
    },
    holdMs: 0,
  },
  {
    name: 'stop, then start',
    inject: async () => {
      await server.stop();
      return { pids: [], release: () => server.start() };
    },
    holdMs: 4_000,
  },
];

interface FaultReport {
  name: string;
  detectedMs?: number;
  clearedMs?: number;
  baselineMs?: number;
  baseline: number;
  error?: string;
}

const reports: FaultReport[] = [];

async function runFault(kind: FaultKind): Promise<FaultReport> {
  const baseline = await settledConnections();
  const report: FaultReport = { name: kind.name, baseline };
  const injectedAt = Date.now();
  const firstVerdict = verdicts.length;
  let handle: FaultHandle | undefined;
  try {
    handle = await kind.inject();
    const detected = await within(DETECT_WITHIN_MS, () =>
      verdicts.slice(firstVerdict).some((v) => v.status !== 'healthy'),
    );
    if (detected !== undefined) report.detectedMs = Date.now() - injectedAt;
    await sleep(kind.holdMs);
  } catch (error) {
    report.error = String(error);
  } finally {
    await handle?.release().catch((error: unknown) => {
      report.error ??= `release: ${String(error)}`;
    });
  }
  const releasedAt = Date.now();
  const fromRelease = verdicts.length;
  const cleared = await within(CLEAR_WITHIN_MS, () =>
    verdicts.slice(fromRelease).some((v) => v.status === 'healthy'),
  );
  if (cleared !== undefined) report.clearedMs = Date.now() - releasedAt;
  const back = await within(BASELINE_WITHIN_MS, async () => (await settledConnections()) <= baseline);
  if (back !== undefined) report.baselineMs = back;
  return report;
}

// ---- the run -------------------------------------------------------------------------------------

const loops = Promise.all([monitorLoop(), sweepLoop()]);
await sleep(3_000);
const before = { ...memory(), handles: await handles(), connections: await settledConnections() };

let order: FaultKind[] = [];
while (!interrupted && Date.now() + 25_000 < deadline) {
  if (order.length === 0) order = [...KINDS].sort(() => rand() - 0.5);
  const kind = order.shift() as FaultKind;
  await sleep(between(3_000, 8_000));
  const report = await runFault(kind);
  reports.push(report);
  const seconds = (ms?: number) => (ms === undefined ? 'no' : `${(ms / 1_000).toFixed(1)}s`);
  process.stdout.write(
    `  ${kind.name}: detected ${seconds(report.detectedMs)}, cleared ${seconds(report.clearedMs)}, connections back ${seconds(report.baselineMs)}${report.error ? `, error ${report.error}` : ''}\n`,
  );
}
while (!interrupted && Date.now() < deadline) await sleep(250);

const after = { ...memory(), handles: await handles(), connections: await settledConnections() };
abort.abort();
await loops;
const ownSessions = await within(5_000, async () => (await clientConnections()) === 0);
await server.destroy();

// ---- results -------------------------------------------------------------------------------------

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}
const checks: Check[] = [];
const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

for (const r of reports) {
  check(
    `${r.name}: detected`,
    r.detectedMs !== undefined,
    r.detectedMs === undefined
      ? `not within ${DETECT_WITHIN_MS / 1_000}s`
      : `${(r.detectedMs / 1_000).toFixed(1)}s`,
  );
  check(
    `${r.name}: cleared`,
    r.clearedMs !== undefined,
    r.clearedMs === undefined
      ? `not within ${CLEAR_WITHIN_MS / 1_000}s of release`
      : `${(r.clearedMs / 1_000).toFixed(1)}s after release`,
  );
  check(
    `${r.name}: connections back to baseline (${r.baseline})`,
    r.baselineMs !== undefined,
    r.baselineMs === undefined ? 'no' : `${(r.baselineMs / 1_000).toFixed(1)}s`,
  );
  if (r.error) check(`${r.name}: injected and released`, false, r.error);
}
check('faults injected', reports.length > 0, `${reports.length}`);
check(
  'connections at the end',
  after.connections <= before.connections,
  `${before.connections} → ${after.connections}`,
);
check(
  'no pgwarden session left open',
  ownSessions !== undefined,
  ownSessions === undefined ? 'sessions remain' : 'none',
);
check(
  'active handles',
  after.handles <= before.handles + HANDLE_TOLERANCE,
  `${before.handles} → ${after.handles} (tolerance +${HANDLE_TOLERANCE})`,
);
check(
  'heap',
  after.heapMb <= before.heapMb + HEAP_TOLERANCE_MB,
  `${before.heapMb.toFixed(1)} → ${after.heapMb.toFixed(1)} MB (tolerance +${HEAP_TOLERANCE_MB})`,
);
check(
  'RSS',
  after.rssMb <= before.rssMb + RSS_TOLERANCE_MB,
  `${before.rssMb.toFixed(1)} → ${after.rssMb.toFixed(1)} MB (tolerance +${RSS_TOLERANCE_MB})`,
);
check(
  'no unhandled rejection or uncaught exception',
  unexpected.length === 0,
  unexpected.join('; ') || 'none',
);

const width = Math.max(...checks.map((c) => c.name.length));
process.stdout.write(`\n${'check'.padEnd(width)}  result  detail\n${'-'.repeat(width)}  ------  ------\n`);
for (const c of checks)
  process.stdout.write(`${c.name.padEnd(width)}  ${c.ok ? 'ok    ' : 'FAILED'}  ${c.detail}\n`);

const sorted = [...latencies].sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const detect = reports.flatMap((r) => (r.detectedMs === undefined ? [] : [r.detectedMs]));
const clear = reports.flatMap((r) => (r.clearedMs === undefined ? [] : [r.clearedMs]));
const figures: Array<[string, number, string]> = [
  ['duration', (Date.now() - started) / 1_000, 's'],
  ['faults', reports.length, ''],
  ['probes', probes, ''],
  ['probe_failures', probeFailures, ''],
  ['probe_latency_p50', pct(50), 'ms'],
  ['probe_latency_p99', pct(99), 'ms'],
  ['detect_max', detect.length ? Math.max(...detect) / 1_000 : 0, 's'],
  ['clear_max', clear.length ? Math.max(...clear) / 1_000 : 0, 's'],
  ['incidents_opened', incidents, ''],
  ['sweeps', sweeps, ''],
  ['sweep_failures', sweepFailures, ''],
  ['sessions_terminated', terminatedBySweep, ''],
  ['metric_samples', samples, ''],
  ['handles_before', before.handles, ''],
  ['handles_after', after.handles, ''],
  ['heap_before', before.heapMb, 'MB'],
  ['heap_after', after.heapMb, 'MB'],
  ['rss_before', before.rssMb, 'MB'],
  ['rss_after', after.rssMb, 'MB'],
];
process.stdout.write('\nfigures\n');
for (const [name, value, unit] of figures)
  process.stdout.write(
    `soak.${name.padEnd(22)} ${Number.isInteger(value) ? value : value.toFixed(1)}${unit ? ` ${unit}` : ''}\n`,
  );

const failed = checks.filter((c) => !c.ok);
process.stdout.write(
  `\n${failed.length === 0 ? 'soak passed' : `soak FAILED: ${failed.length} check(s)`} (seed ${seed})\n`,
);
process.exit(failed.length === 0 && !interrupted ? 0 : 1);
