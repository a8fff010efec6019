/**
 * Section 5: one monitor invocation probing 100 targets (100 databases on one server) at the default
 * cadence: the wall time of each cycle and the memory of the process, at two concurrency limits.
 */
import { DEFAULT_MONITOR_SETTINGS } from '../functions/monitor/settings.ts';
import type { ScaleInput, ScaleOutput } from './scale-worker.ts';
import {
  type BenchOptions,
  createRoles,
  type Measured,
  median,
  ms,
  percentile,
  progress,
  ROOT,
  run,
  type SectionResult,
  type SummaryRow,
  seconds,
  startBenchServer,
  table,
} from './support.ts';

const SECTION = 'scale';
const TARGETS = 100;

export async function scale(options: BenchOptions, measured: Measured): Promise<SectionResult> {
  const cadenceMs = DEFAULT_MONITOR_SETTINGS.cadenceMs;
  const cycles = options.quick ? 2 : 4;
  const concurrencies = [DEFAULT_MONITOR_SETTINGS.concurrency, 25];
  progress(SECTION, `starting PostgreSQL and creating ${TARGETS} databases`);
  const server = await startBenchServer({ maxConnections: 200, settings: { reserved_connections: 3 } });
  const outputs: ScaleOutput[] = [];
  try {
    const roles = await createRoles(server);
    const databases = Array.from({ length: TARGETS }, (_, i) => `t${String(i + 1).padStart(3, '0')}`);
    for (const name of databases) await server.admin(`CREATE DATABASE ${name}`);
    for (const concurrency of concurrencies) {
      progress(
        SECTION,
        `monitor over ${TARGETS} targets, concurrency ${concurrency}, ${cycles} cycles of ${seconds(cadenceMs, 0)}`,
      );
      const input: ScaleInput = {
        host: server.host,
        port: server.port,
        user: roles.monitor.user,
        password: roles.monitor.password,
        databases,
        concurrency,
        cadenceMs,
        cycles,
      };
      const result = await run(process.execPath, ['bench/scale-worker.ts'], {
        cwd: ROOT,
        env: { ...process.env, BENCH_SCALE: JSON.stringify(input) },
        timeoutMs: cycles * cadenceMs + 120_000,
      });
      if (result.code !== 0) throw new Error(`scale worker failed: ${result.stderr.slice(-2_000)}`);
      const output = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as ScaleOutput;
      outputs.push(output);
      progress(
        SECTION,
        `concurrency ${concurrency}: cycle median ${seconds(median(output.cycles.map((c) => c.wallMs)), 2)}, peak RSS ${output.maxRssMb.toFixed(0)} MB`,
      );
    }
  } finally {
    await server.release();
  }
  const first = outputs[0];
  if (first)
    measured.batching = {
      targets: first.targets,
      datums: first.datums,
      calls: first.putMetricDataCalls,
      runMs: cycles * cadenceMs,
      peakRssMb: first.maxRssMb,
    };
  return report(outputs, { cadenceMs, cycles });
}

function report(outputs: ScaleOutput[], extra: { cadenceMs: number; cycles: number }): SectionResult {
  const rows: SummaryRow[] = outputs.map((o) => {
    const walls = o.cycles.map((c) => c.wallMs);
    const worst = Math.max(...walls);
    const failed = o.cycles.reduce((n, c) => n + c.failed, 0);
    return {
      figure: `Scale: ${o.targets} targets, concurrency ${o.concurrency}: cycle wall time (median / max), peak RSS`,
      target:
        o.concurrency === DEFAULT_MONITOR_SETTINGS.concurrency
          ? `< ${seconds(extra.cadenceMs, 0)} cycle`
          : '—',
      measured: `${seconds(median(walls), 2)} / ${seconds(worst, 2)}, ${o.maxRssMb.toFixed(0)} MB${failed > 0 ? `, ${failed} failed probes` : ''}`,
      ...(o.concurrency === DEFAULT_MONITOR_SETTINGS.concurrency
        ? { pass: worst < extra.cadenceMs && failed === 0 }
        : {}),
    };
  });
  const detail: string[] = [
    `The production monitor core (\`runMonitor\`, default cadence ${seconds(extra.cadenceMs, 0)}) over ${TARGETS} targets — ${TARGETS} databases ` +
      '(`CREATE DATABASE t001 … t100`) on one embedded server, each probed with its own fresh connection — for ' +
      `${extra.cycles} cycles, in a Node process of its own. A cycle's wall time runs from its scheduled tick to the result of the last of the ${TARGETS} ` +
      "probes of that cycle. Memory: the process's peak RSS (`resourceUsage().maxRSS`) and heap, sampled every 20 ms. Here the monitor process runs the " +
      'probes itself (pg, TLS off); deployed, it invokes the probe function through the Lambda API and holds no database connection, so this is an upper bound ' +
      'for its memory. The server and the monitor share the same 2 cores.',
    '',
    ...table(
      [
        'concurrency',
        'probes',
        'cycle wall median',
        'cycle wall max',
        'probe wall p50',
        'probe wall p95',
        'RSS before',
        'peak RSS',
        'peak heap',
        'datums / PutMetricData calls',
      ],
      outputs.map((o) => {
        const walls = o.cycles.map((c) => c.wallMs);
        return [
          String(o.concurrency),
          String(o.probes),
          ms(median(walls), 0),
          ms(Math.max(...walls), 0),
          ms(percentile(o.probeWallMs, 50)),
          ms(percentile(o.probeWallMs, 95)),
          `${o.rssBeforeMb.toFixed(0)} MB`,
          `${o.maxRssMb.toFixed(0)} MB`,
          `${o.peakHeapMb.toFixed(0)} MB`,
          `${o.datums} / ${o.putMetricDataCalls}`,
        ];
      }),
    ),
    '',
    `A cycle takes about (targets ÷ concurrency) × probe time: with ${TARGETS} targets at concurrency ${DEFAULT_MONITOR_SETTINGS.concurrency} that is ` +
      `${TARGETS / DEFAULT_MONITOR_SETTINGS.concurrency} rounds of one probe each. Deployed, each probe is a Lambda invocation of the probe function inside the VPC ` +
      '(a warm invoke adds a few ms to the connect and the statement); the monitor function has 512 MB and reserves one concurrent execution, and the ' +
      'probe function needs as many concurrent executions as the concurrency setting.',
  ];
  return { id: 'scale', title: '5. Scale: 100 targets in one monitor', rows, detail };
}
