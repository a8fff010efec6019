/**
 * Section 7: what a hostile server costs a probe. A fake PostgreSQL (the one the reliability tests
 * use) declares a 2 GB error message, streams rows, or streams notices, in plaintext and over TLS; a
 * probe runs against it in a process of its own, and its peak RSS is compared with a probe the
 * server simply refuses. Before the read limits, each of these drove the probe past 1 GB within the
 * connect timeout.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type FakeConnection,
  flood,
  messages,
  startFakePostgres,
  welcome,
} from '../test/helpers/fake-postgres.ts';
import type { HostileOutput } from './hostile-worker.ts';
import { type BenchOptions, mb, median, ms, progress, type SectionResult, table } from './support.ts';

const SECTION = 'hostile';
const WORKER = fileURLToPath(new URL('./hostile-worker.ts', import.meta.url));
/** A probe may grow this much over one the server refuses at once. */
const BUDGET_MB = 32;

const SCENARIOS: Record<string, (c: FakeConnection) => Promise<void>> = {
  'refuses the login (baseline)': async (c) => {
    await c.send('E', messages.fields({ severity: 'FATAL', code: '28P01', message: 'no' }));
  },
  'declares a 2 GB error message': async (c) => {
    await c.sendRaw(Buffer.concat([Buffer.from('E'), Buffer.from([0x7f, 0xff, 0xff, 0xf0])]));
    const chunk = Buffer.alloc(1 << 20, 0x41);
    while (await c.sendRaw(chunk));
  },
  'streams rows': async (c) => {
    await welcome(c);
    await c.untilSync();
    await c.send('1');
    await c.send('2');
    await c.send('T', messages.rowDescription());
    await flood(c, 'D', messages.dataRow('x'.repeat(1_000)));
  },
  'streams notices': async (c) => {
    await c.send('R', messages.authOk());
    await flood(c, 'N', messages.fields({ severity: 'NOTICE', code: '00000', message: 'y'.repeat(1_000) }));
  },
};

function runWorker(port: number, tls: 'disable' | 'require'): Promise<HostileOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER], {
      env: { ...process.env, BENCH_HOSTILE: JSON.stringify({ port, tls }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as HostileOutput);
      } catch {
        reject(new Error(`hostile worker exited ${code} without a result: ${out}`));
      }
    });
  });
}

interface Measurement {
  scenario: string;
  tls: 'disable' | 'require';
  maxRssMb: number;
  ms: number;
  sentBytes: number;
  category: string | null;
}

export async function hostile(options: BenchOptions): Promise<SectionResult> {
  const trials = options.quick ? 1 : 3;
  const results: Measurement[] = [];
  for (const tls of ['disable', 'require'] as const) {
    for (const [scenario, script] of Object.entries(SCENARIOS)) {
      const runs: Measurement[] = [];
      for (let i = 0; i < trials; i++) {
        const fake = await startFakePostgres({ tls: tls === 'require' ? 'accept' : 'refuse', script });
        try {
          const out = await runWorker(fake.port, tls);
          runs.push({
            scenario,
            tls,
            maxRssMb: out.maxRssMb,
            ms: out.ms,
            sentBytes: fake.bytesSent,
            category: out.category,
          });
        } finally {
          await fake.close();
        }
      }
      const m: Measurement = {
        scenario,
        tls,
        maxRssMb: median(runs.map((r) => r.maxRssMb)),
        ms: median(runs.map((r) => r.ms)),
        sentBytes: median(runs.map((r) => r.sentBytes)),
        category: runs[0]?.category ?? null,
      };
      results.push(m);
      progress(
        SECTION,
        `${tls === 'require' ? 'TLS' : 'plaintext'}, ${scenario}: peak RSS ${m.maxRssMb.toFixed(0)} MB, ${ms(m.ms, 0)}`,
      );
    }
  }
  const baseline = (tls: string) =>
    results.find((r) => r.tls === tls && r.scenario.includes('baseline'))?.maxRssMb ?? 0;
  const hostileRuns = results.filter((r) => !r.scenario.includes('baseline'));
  const rows = hostileRuns.map((r) => ({
    figure: `Hostile server (${r.tls === 'require' ? 'TLS' : 'plaintext'}) ${r.scenario}: probe peak RSS, time to a classified failure`,
    target: `≤ baseline + ${BUDGET_MB} MB`,
    measured: `${r.maxRssMb.toFixed(0)} MB (baseline ${baseline(r.tls).toFixed(0)} MB), ${ms(r.ms, 0)}`,
    pass: r.maxRssMb <= baseline(r.tls) + BUDGET_MB && r.category === 'unknown',
  }));
  const detail = [
    'A fake PostgreSQL speaking the wire protocol (`test/helpers/fake-postgres.ts`) plays a hostile server; one probe runs against it in a Node ' +
      "process of its own, and the figure is that process's peak RSS (`resourceUsage().maxRSS`). The baseline is the same probe against a server that " +
      `refuses the login at once. Median of ${trials} run(s) each. A probe reads at most 1 MiB per message, 4 MiB in all, 1,000 rows and 100 notices; ` +
      'what the server sent counts everything it wrote before the probe hung up (kernel buffers included).',
    '',
    ...table(
      ['transport', 'server', 'peak RSS', 'time', 'server sent', 'classified as'],
      results.map((r) => [
        r.tls === 'require' ? 'TLS' : 'plaintext',
        r.scenario,
        `${r.maxRssMb.toFixed(0)} MB`,
        ms(r.ms, 0),
        mb(r.sentBytes),
        r.category ?? 'ok',
      ]),
    ),
  ];
  return { id: 'hostile', title: '7. A hostile server', rows, detail };
}
