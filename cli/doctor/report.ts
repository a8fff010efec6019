/**
 * What `pgwarden doctor` reports: a list of checks, each `ok`, `warn` or `fail`, with what was found and,
 * for anything but `ok`, the exact SQL or setting that fixes it. The JSON shape
 * (`{ ok, checks: [{ id, status, summary, fix }] }`) and the check ids are a contract.
 */
import { printable } from '../../shared/printable.ts';
import type { Style } from '../format.ts';
import { EXIT, type ExitCode } from '../io.ts';

export const CHECK_STATUSES = ['ok', 'warn', 'fail'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export interface Check {
  /** Stable id: `role.signal_backends`, `topic.pages`, `probe.<target>`. */
  id: string;
  status: CheckStatus;
  /** What was found, in one line. */
  summary: string;
  /** What to run or set to fix it; null when the check is ok. */
  fix: string | null;
}

export interface DoctorReport {
  /** True when no check fails (warnings allowed). */
  ok: boolean;
  checks: Check[];
}

export const ok = (id: string, summary: string): Check => ({ id, status: 'ok', summary, fix: null });
export const warn = (id: string, summary: string, fix: string): Check => ({
  id,
  status: 'warn',
  summary,
  fix,
});
export const fail = (id: string, summary: string, fix: string): Check => ({
  id,
  status: 'fail',
  summary,
  fix,
});

/** The report of `checks`, every text made printable (servers, AWS and users wrote parts of it). */
export function doctorReport(checks: readonly Check[]): DoctorReport {
  const clean = checks.map((c) => ({
    id: c.id,
    status: c.status,
    summary: printable(c.summary),
    fix: c.fix === null ? null : printable(c.fix),
  }));
  return { ok: !clean.some((c) => c.status === 'fail'), checks: clean };
}

/** 0 when nothing fails, 1 when a check fails. */
export function exitCodeOf(report: DoctorReport): ExitCode {
  return report.ok ? EXIT.ok : EXIT.fault;
}

const MARK: Record<CheckStatus, (style: Style) => string> = {
  ok: (s) => s.ok('ok  '),
  warn: (s) => s.warn('warn'),
  fail: (s) => s.bad('FAIL'),
};

/** The report as people read it: one line per check, the fix indented under anything not ok. */
export function renderReport(title: string, report: DoctorReport, style: Style): string {
  const lines = [style.bold(printable(title))];
  for (const check of report.checks) {
    lines.push(`  ${MARK[check.status](style)}  ${check.id.padEnd(26)} ${check.summary}`);
    if (check.fix) lines.push(`        ${style.dim('fix:')} ${check.fix}`);
  }
  const failing = report.checks.filter((c) => c.status === 'fail').length;
  const warnings = report.checks.filter((c) => c.status === 'warn').length;
  lines.push(
    failing > 0
      ? style.bad(`${failing} check(s) failed, ${warnings} warning(s)`)
      : warnings > 0
        ? style.warn(`nothing failed; ${warnings} warning(s)`)
        : style.ok(`all ${report.checks.length} checks passed`),
  );
  return `${lines.join('\n')}\n`;
}
