/**
 * pgwarden benchmarks: probe cost against check_postgres, detection latency, time to remediate, Lambda
 * packages and cold starts, one monitor run over 100 targets, the monthly cost per database, what a
 * hostile server costs a probe, whether healthy but busy databases stay quiet, and how fast the command
 * line starts.
 * Prints progress and a summary table, and writes bench/results.md. Not part of `npm test`.
 *
 *   npm run bench                                   # everything (about 10 minutes)
 *   npm run bench -- --quick                        # fewer trials: a smoke run
 *   npm run bench -- --only probe,cost              # some sections
 *   npm run bench -- --only detection,quiet         # real faults detected, healthy loads quiet
 *   npm run bench -- --out /tmp/results.md --seed 7
 */
import { writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { bundles } from './bundles.ts';
import { cli } from './cli.ts';
import { cost } from './cost.ts';
import { detection } from './detection.ts';
import { hostile } from './hostile.ts';
import { probeCost } from './probe-cost.ts';
import { quiet } from './quiet.ts';
import { remediation } from './remediation.ts';
import { scale } from './scale.ts';
import {
  type BenchOptions,
  type Measured,
  machine,
  progress,
  ROOT,
  SECTIONS,
  type SectionId,
  type SectionResult,
  type SummaryRow,
  table,
  teardownAll,
  versions,
} from './support.ts';

const USAGE =
  'usage: npm run bench -- [--only probe,detection,remediation,bundles,scale,cost,hostile,quiet,cli] [--quick] [--seed N] [--out FILE]\n';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  if (at >= 0) return process.argv[at + 1];
  const inline = process.argv.find((a) => a.startsWith(`--${name}=`));
  return inline?.slice(name.length + 3);
}

function parseArgs(): { only: SectionId[]; options: BenchOptions; out: string } {
  const known = new Set(['--only', '--quick', '--seed', '--out', '--help']);
  for (const arg of process.argv.slice(2)) {
    const flag = arg.split('=')[0] as string;
    if (arg.startsWith('--') && !known.has(flag)) {
      process.stderr.write(`unknown option ${arg}\n${USAGE}`);
      process.exit(2);
    }
  }
  if (process.argv.includes('--help')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const onlyText = option('only');
  const only = onlyText ? onlyText.split(',').map((s) => s.trim()) : [...SECTIONS];
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0 || only.length === 0) {
    process.stderr.write(`unknown section(s) ${unknown.join(', ')}\n${USAGE}`);
    process.exit(2);
  }
  const seedText = option('seed');
  const seed = seedText === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  if (!Number.isInteger(seed)) {
    process.stderr.write(`--seed must be an integer\n${USAGE}`);
    process.exit(2);
  }
  const outText = option('out') ?? 'bench/results.md';
  const out = isAbsolute(outText) ? outText : join(process.cwd(), outText);
  return { only: only as SectionId[], options: { quick: process.argv.includes('--quick'), seed }, out };
}

const RUNNERS: Record<SectionId, (options: BenchOptions, measured: Measured) => Promise<SectionResult>> = {
  probe: probeCost,
  detection,
  remediation,
  bundles,
  scale,
  cost,
  hostile,
  quiet,
  cli,
};

const TITLES: Record<SectionId, string> = {
  probe: '1. Probe cost on the database',
  detection: '2. Detection latency',
  remediation: '3. Time to remediate',
  bundles: '4. Lambda packages and cold start',
  scale: '5. Scale: 100 targets in one monitor',
  cost: '6. Cost per monitored database',
  hostile: '7. A hostile server',
  quiet: '8. Quiet under a healthy, busy load',
  cli: '9. The command line starts fast',
};

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function printSummary(rows: ReadonlyArray<SummaryRow & { section: string }>): void {
  const cells = rows.map((r) => [
    r.figure,
    r.target,
    r.measured,
    r.pass === undefined ? '' : r.pass ? 'pass' : 'MISS',
  ]);
  const headers = ['figure', 'target', 'measured', ''];
  const widths = headers.map((h, i) =>
    Math.min(70, Math.max(h.length, ...cells.map((c) => c[i]?.length ?? 0))),
  );
  const line = (c: readonly string[]) => c.map((x, i) => pad(x, widths[i] as number)).join('  ');
  process.stdout.write(`\n${line(headers)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const c of cells) process.stdout.write(`${line(c)}\n`);
  process.stdout.write('\n');
}

function resultsMarkdown(
  results: SectionResult[],
  failures: Array<{ id: SectionId; error: string }>,
  context: { only: SectionId[]; options: BenchOptions; startedAt: Date; durationMs: number },
): string {
  const partial = context.only.length < SECTIONS.length;
  const lines: string[] = [
    '# pgwarden benchmarks',
    '',
    `Written by \`npm run bench\` on ${context.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC ` +
      `in ${Math.round(context.durationMs / 60_000)} min${context.options.quick ? ', with `--quick` (fewer trials)' : ''}` +
      `${partial ? `, sections ${context.only.join(', ')} only` : ''}; random offsets from seed ${context.options.seed}. ` +
      'Run it again with `npm run bench` (about 10 minutes; `--quick` for a smoke run, `--only <sections>` for some).',
    '',
    'Absolute times depend on the machine and its neighbours (this is a shared 2-core machine): every comparison runs both sides in the same run, ' +
      'against the same server, and reports their ratio; timing targets are judged on medians and p95s over repeated trials.',
    '',
    '## Summary',
    '',
    ...table(
      ['', 'figure', 'target', 'measured', 'result'],
      results.flatMap((r) =>
        r.rows.map((row) => [
          r.title.split('.')[0] as string,
          row.figure,
          row.target,
          row.measured,
          row.pass === undefined ? '—' : row.pass ? 'pass' : '**miss**',
        ]),
      ),
    ),
    '',
  ];
  if (failures.length > 0) {
    lines.push('Sections that did not complete:', '');
    for (const f of failures) lines.push(`- ${TITLES[f.id]}: ${f.error}`);
    lines.push('');
  }
  lines.push('## Machine and versions', '');
  lines.push(...table(['', ''], Object.entries({ ...machine(), ...versions() })));
  lines.push('');
  for (const r of results) lines.push(`## ${r.title}`, '', ...r.detail, '');
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

async function main(): Promise<number> {
  const { only, options, out } = parseArgs();
  const startedAt = new Date();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stdout.write(`\n${signal}: stopping every server and child process\n`);
    void teardownAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  process.stdout.write(
    `pgwarden benchmarks: ${only.join(', ')}${options.quick ? ' (quick)' : ''}, seed ${options.seed}\n`,
  );
  const measured: Measured = {};
  const results: SectionResult[] = [];
  const failures: Array<{ id: SectionId; error: string }> = [];
  for (const id of SECTIONS) {
    if (!only.includes(id)) continue;
    progress(id, 'start');
    const started = Date.now();
    try {
      results.push(await RUNNERS[id](options, measured));
      progress(id, `done in ${Math.round((Date.now() - started) / 1_000)} s`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push({ id, error: message });
      progress(id, `FAILED: ${message}`);
      if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    } finally {
      await teardownAll();
    }
  }

  const rows = results.flatMap((r) => r.rows.map((row) => ({ ...row, section: r.id })));
  printSummary(rows);
  const markdown = resultsMarkdown(results, failures, {
    only,
    options,
    startedAt,
    durationMs: Date.now() - startedAt.getTime(),
  });
  await writeFile(out, markdown);
  process.stdout.write(`wrote ${relative(ROOT, out) || out}\n`);
  return failures.length > 0 ? 1 : 0;
}

main()
  .then((code) => teardownAll().then(() => process.exit(code)))
  .catch(async (error) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await teardownAll();
    process.exit(1);
  });
