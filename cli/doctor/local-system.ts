/**
 * What a running local system (`npm start`) answers `pgwarden doctor` and `pgwarden test-page` with,
 * through its control socket: the database checks as its own monitor role, whether its monitor is
 * alive, and a test page through its local SNS, whose outbox stands in for the topics.
 */
import { lstat } from 'node:fs/promises';
import { PublishCommand } from '@aws-sdk/client-sns';
import { publishInput, testNotice } from '../../functions/runbook/messages.ts';
import { explainCategory } from '../../shared/classify.ts';
import { formatDuration } from '../../shared/duration.ts';
import type { LocalTestPage } from '../local/control.ts';
import type { LocalSystem, SystemEvent } from '../local/system.ts';
import { LOCAL_TOPICS } from '../local/workflow.ts';
import { databaseChecks } from './database.ts';
import { type Check, fail, ok } from './report.ts';

/** A probe older than this many cadences (plus the probe's own timeout) means the monitor stalled. */
const STALE_CADENCES = 3;
const PROBE_TIMEOUT_MS = 5_000;

/** What the running system answers the doctor with. */
export async function localSystemChecks(system: LocalSystem, now = Date.now()): Promise<Check[]> {
  const checks: Check[] = [];
  const last = system.live.last;
  const cadence = system.settings.cadenceMs;
  const staleAfter = STALE_CADENCES * cadence + PROBE_TIMEOUT_MS;
  const at = last ? Date.parse(last.checkedAt) : undefined;
  if (at === undefined || now - at > staleAfter)
    checks.push(
      fail(
        'monitor.heartbeat',
        at === undefined
          ? 'the local monitor has not probed yet'
          : `the local monitor's last probe was ${formatDuration(now - at)} ago (it probes every ${formatDuration(cadence)})`,
        'Stop npm start (Ctrl-C) and start it again; PGWARDEN_LOG_LEVEL=info shows what the monitor does.',
      ),
    );
  else
    checks.push(
      ok(
        'monitor.heartbeat',
        `the local monitor probed ${system.target.id} ${formatDuration(now - at)} ago (every ${formatDuration(cadence)})`,
      ),
    );
  if (last)
    checks.push(
      last.ok
        ? ok(`probe.${system.target.id}`, `${system.target.id}: the last probe succeeded (${last.checkedAt})`)
        : fail(
            `probe.${system.target.id}`,
            `${system.target.id}: the last probe failed: ${last.failure.category}: ${explainCategory(last.failure.category)} (${last.failure.message})`,
            'The database checks below say why; a drill in progress fails probes on purpose.',
          ),
    );
  checks.push(await outboxCheck(system.outbox));
  checks.push(...(await databaseChecks(system.target.connection, system.probeDeps())));
  return checks;
}

async function outboxCheck(outbox: string): Promise<Check> {
  try {
    const stat = await lstat(outbox);
    if (!stat.isDirectory()) throw new Error(`${outbox} is not a folder`);
    return ok('outbox', `pages and notifications go to ${outbox} and to the terminal running npm start`);
  } catch (error) {
    return fail(
      'outbox',
      `the outbox cannot be used: ${(error as Error).message}`,
      'Stop npm start and start it again; it creates the outbox (mode 0700) at start-up.',
    );
  }
}

/** What the running system answers `test-page` with: a test message through its local SNS. */
export async function localTestPage(
  system: LocalSystem,
  topic: 'pages' | 'notifications',
): Promise<LocalTestPage> {
  const notice = testNotice({
    topic,
    deployment: `local system in ${system.settings.home}`,
    at: new Date().toISOString(),
  });
  let file = '';
  const stop = system.on((event: SystemEvent) => {
    if (event.type === 'published' && event.message.subject === notice.subject) file = event.file;
  });
  try {
    const out = (await system.sns.send(new PublishCommand(publishInput(LOCAL_TOPICS[topic], notice)))) as {
      MessageId?: string;
    };
    return { messageId: out.MessageId ?? '', subject: notice.subject, file };
  } finally {
    stop();
  }
}
