/** Human-readable rendering shared by the CLI commands and local mode. */
import { explainCategory } from '../shared/classify.ts';
import { formatDuration } from '../shared/duration.ts';
import type { Assessment } from '../shared/health.ts';
import { printable } from '../shared/printable.ts';
import type { ProbeResult } from '../shared/probe/snapshot.ts';
import type { PublishedMessage } from './local/aws.ts';

export interface Style {
  ok(text: string): string;
  bad(text: string): string;
  warn(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const ansi = (code: string) => (text: string) => `\u001b[${code}m${text}\u001b[0m`;
export const colours: Style = {
  ok: ansi('32'),
  bad: ansi('31'),
  warn: ansi('33'),
  dim: ansi('2'),
  bold: ansi('1'),
};
export const plain: Style = { ok: (t) => t, bad: (t) => t, warn: (t) => t, dim: (t) => t, bold: (t) => t };

const secondsText = (s: number) => formatDuration(s * 1_000);

export function renderProbe(result: ProbeResult, assessment: Assessment, style: Style): string {
  const lines: string[] = [];
  const verdict = !result.ok
    ? style.bad(`UNREACHABLE (${result.failure.category})`)
    : assessment.healthy
      ? style.ok('healthy')
      : style.warn(`${assessment.findings.length} finding(s)`);
  lines.push(`${style.bold(printable(result.target))}  ${verdict}`);
  lines.push(
    `  checked       ${result.checkedAt}  connect ${result.latencyMs.connect} ms${result.latencyMs.query !== null ? `, query ${result.latencyMs.query} ms` : ''}`,
  );
  if (!result.ok) {
    const f = result.failure;
    lines.push(
      `  failure       ${f.category}${f.sqlstate ? ` (SQLSTATE ${f.sqlstate})` : f.errno ? ` (${f.errno})` : ''}, ${f.retryable ? 'retryable' : 'not retryable'}`,
    );
    lines.push(`  meaning       ${explainCategory(f.category)}`);
    lines.push(`  message       ${printable(f.message)}`);
    return `${lines.join('\n')}\n`;
  }
  const c = result.connections;
  lines.push(
    `  server        PostgreSQL ${printable(result.serverVersion)}, started ${result.serverStartedAt}${result.inRecovery ? ', replica' : ''}${
      result.replicationLagSeconds !== null
        ? ` (replay lag ${secondsText(result.replicationLagSeconds)})`
        : ''
    }`,
  );
  if (result.crashRestartAt)
    lines.push(`  crash-restart ${style.warn(result.crashRestartAt)} (background processes restarted)`);
  lines.push(
    `  connections   ${c.total}/${c.usable} usable (${c.utilizationPct}%): ${c.active} active, ${c.idle} idle, ${c.idleInTransaction} idle in transaction, ${c.waiting} waiting; max ${c.max}, reserved ${c.reserved}`,
  );
  lines.push(
    `  idle          longest idle ${secondsText(result.longestIdleSeconds)}, longest idle in transaction ${secondsText(result.longestIdleInTransactionSeconds)}`,
  );
  lines.push(
    `  queries       ${result.longRunningQueries} longer than ${secondsText(result.longQueryThresholdSeconds)}; longest ${secondsText(result.longestQuerySeconds)}${result.longestQueryPid ? ` (pid ${result.longestQueryPid})` : ''}`,
  );
  lines.push(
    `  locks         ${result.blockedSessions} blocked${result.blockingPids.length ? `, chain head pid(s) ${result.blockingPids.join(', ')}` : ''}${
      result.blockedSessions === 0
        ? ''
        : result.longestLockWaitSeconds === null
          ? ' (wait times unknown before PostgreSQL 14)'
          : `, the longest waiting ${secondsText(result.longestLockWaitSeconds)}`
    }`,
  );
  lines.push(`  transactions  oldest ${secondsText(result.oldestTransactionAgeSeconds)}`);
  lines.push(
    `  wraparound    age ${result.wraparoundAge.toLocaleString('en-US')} (${result.wraparoundPct}% of 2^31)`,
  );
  for (const finding of assessment.findings) {
    const mark = finding.severity === 'critical' ? style.bad('!!') : style.warn(' !');
    lines.push(`${mark} ${finding.severity}: ${finding.message}`);
  }
  return `${lines.join('\n')}\n`;
}

/** How an incident ended, as the CLI reports it. */
export function outcomeLabel(outcome: 'resolved' | 'escalated' | 'unresolved', style: Style): string {
  if (outcome === 'resolved') return style.ok('RESOLVED');
  return outcome === 'escalated' ? style.bad('ESCALATED') : style.warn('UNRESOLVED');
}

/** Published messages in the CLI's report shape: `{ topic: "pages" | "notifications", subject, message }`. */
export function reportedMessages(published: readonly PublishedMessage[]) {
  return published.map((m) => ({
    topic: m.topic === 'pgwarden-pages' ? ('pages' as const) : ('notifications' as const),
    subject: printable(m.subject),
    message: printable(m.message, { multiline: true }),
  }));
}
