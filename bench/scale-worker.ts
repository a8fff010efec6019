/**
 * One monitor run over many targets, in a process of its own so its memory is its own. Started by
 * bench/scale.ts with BENCH_SCALE (JSON) in the environment; prints one JSON line with the figures.
 */
import { type MonitorState, runMonitor } from '../functions/monitor/monitor.ts';
import { DEFAULT_MONITOR_SETTINGS } from '../functions/monitor/settings.ts';
import { systemClock } from '../shared/clock.ts';
import { silentLogger } from '../shared/logger.ts';
import { MemorySink } from '../shared/metrics.ts';
import { probe } from '../shared/probe/snapshot.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../shared/target.ts';

export interface ScaleInput {
  host: string;
  port: number;
  user: string;
  password: string;
  databases: string[];
  concurrency: number;
  cadenceMs: number;
  cycles: number;
}

export interface ScaleOutput {
  targets: number;
  concurrency: number;
  /** Per scheduled cycle: from the tick to the last target's result of that cycle. */
  cycles: Array<{ wallMs: number; ok: number; failed: number }>;
  probeWallMs: number[];
  probes: number;
  rssBeforeMb: number;
  peakRssMb: number;
  peakHeapMb: number;
  maxRssMb: number;
  datums: number;
  putMetricDataCalls: number;
}

const input = JSON.parse(process.env.BENCH_SCALE ?? '') as ScaleInput;
const targets: Target[] = input.databases.map((database) => ({
  id: database.replaceAll('_', '-'),
  connection: {
    host: input.host,
    port: input.port,
    database,
    user: input.user,
    auth: { kind: 'password', password: input.password },
    tls: { mode: 'disable' },
  },
  thresholds: DEFAULT_THRESHOLDS,
  remediation: DEFAULT_REMEDIATION,
}));

const mb = (bytes: number) => bytes / 2 ** 20;
let peakRss = process.memoryUsage().rss;
let peakHeap = process.memoryUsage().heapUsed;
const rssBefore = peakRss;
const sampler = setInterval(() => {
  const usage = process.memoryUsage();
  peakRss = Math.max(peakRss, usage.rss);
  peakHeap = Math.max(peakHeap, usage.heapUsed);
}, 20);

const results = new Map<string, number[]>();
const probeWall: number[] = [];
const sink = new MemorySink();
const controller = new AbortController();
const state: MonitorState = new Map();
const startedAt = Date.now();
await runMonitor(
  targets,
  { ...DEFAULT_MONITOR_SETTINGS, cadenceMs: input.cadenceMs, concurrency: input.concurrency },
  {
    probe: async (target, signal) => {
      const started = performance.now();
      const result = await probe(
        target.connection,
        { label: target.id, connectTimeoutMs: 3_000, statementTimeoutMs: 2_000 },
        { logger: silentLogger, signal },
      );
      probeWall.push(performance.now() - started);
      return result;
    },
    openIncident: async () => {
      throw new Error('no incident expected in the scale run');
    },
    metrics: sink,
    clock: systemClock,
    logger: silentLogger,
    onResult: (target, result) => {
      const list = results.get(target.id) ?? [];
      list.push(result.ok ? Date.now() : -Date.now());
      results.set(target.id, list);
    },
  },
  state,
  // Half a cadence past the last tick: exactly `cycles` ticks, whatever the start-up jitter.
  startedAt + (input.cycles - 1) * input.cadenceMs + input.cadenceMs / 2,
  controller.signal,
);
clearInterval(sampler);
const flushed = await sink.flush();

const cycles: ScaleOutput['cycles'] = [];
for (let k = 0; k < input.cycles; k++) {
  const tick = startedAt + k * input.cadenceMs;
  let last = tick;
  let ok = 0;
  let failed = 0;
  for (const list of results.values()) {
    const at = list[k];
    if (at === undefined) continue;
    if (at > 0) ok += 1;
    else failed += 1;
    last = Math.max(last, Math.abs(at));
  }
  cycles.push({ wallMs: last - tick, ok, failed });
}
const output: ScaleOutput = {
  targets: targets.length,
  concurrency: input.concurrency,
  cycles,
  probeWallMs: probeWall,
  probes: probeWall.length,
  rssBeforeMb: mb(rssBefore),
  peakRssMb: mb(peakRss),
  peakHeapMb: mb(peakHeap),
  maxRssMb: process.resourceUsage().maxRSS / 1_024,
  datums: flushed.sent,
  putMetricDataCalls: flushed.calls,
};
process.stdout.write(`${JSON.stringify(output)}\n`);
