/**
 * `pgwarden doctor` and `pgwarden test-page` against the local system `npm start` runs in the same
 * folder, reached the way drills reach it: through the control socket in its private home folder.
 */
import { lstat } from 'node:fs/promises';
import { controlPath, type LocalTestPage, requestDoctor, requestTestPage } from '../local/control.ts';
import { HomeFolderError, preparePrivateDir } from '../local/home.ts';
import { CHECK_STATUSES, type Check, fail, ok } from './report.ts';

const fixForNoSystem =
  'Start it in this folder with npm start (or pgwarden start --home DIR), then run this again. To check a database or a deployment instead, pass --url or --stack.';

/** The doctor's checks of the local system running in `home` (the CLI side). */
export async function localDoctor(home: string): Promise<Check[]> {
  const running = await reachable(home);
  if (running !== true) return [running];
  const checks = await requestDoctor(home);
  if (checks === undefined)
    return [fail('local.running', `no local pgwarden is running in ${home}`, fixForNoSystem)];
  return [ok('local.running', `a local pgwarden answers on ${controlPath(home)}`), ...checkedChecks(checks)];
}

/** Asks the local system in `home` for a test page; a failed check when none runs there. */
export async function localTestPageRequest(
  home: string,
  topic: 'pages' | 'notifications',
): Promise<LocalTestPage | Check> {
  const running = await reachable(home);
  if (running !== true) return running;
  const result = await requestTestPage(home, topic);
  if (result === undefined)
    return fail('local.running', `no local pgwarden is running in ${home}`, fixForNoSystem);
  if (
    typeof result?.messageId !== 'string' ||
    typeof result.subject !== 'string' ||
    typeof result.file !== 'string'
  )
    throw new Error('the local system answered test-page with something that is not a test-page result');
  return result;
}

/** True when `home` is a folder of this user's that a system could be running in; else why not. */
async function reachable(home: string): Promise<true | Check> {
  const exists = await lstat(home).then(
    () => true,
    () => false,
  );
  if (!exists) return fail('local.running', `no local pgwarden has run in ${home}`, fixForNoSystem);
  try {
    // The socket is trusted with the answer only in a folder that is this user's own.
    await preparePrivateDir(home);
  } catch (error) {
    if (error instanceof HomeFolderError)
      return fail('local.running', error.message, 'Use --home DIR with a folder of your own.');
    throw error;
  }
  return true;
}

/** The checks a local system sent, kept only if they are checks (the socket is another process). */
function checkedChecks(raw: unknown): Check[] {
  if (!Array.isArray(raw))
    throw new Error('the local system answered the doctor with something that is not a list of checks');
  return raw.map((c) => {
    const check = c as Partial<Check>;
    if (
      typeof check?.id !== 'string' ||
      !(CHECK_STATUSES as readonly unknown[]).includes(check.status) ||
      typeof check.summary !== 'string' ||
      !(check.fix === null || typeof check.fix === 'string')
    )
      throw new Error('the local system answered the doctor with a malformed check');
    return { id: check.id, status: check.status as Check['status'], summary: check.summary, fix: check.fix };
  });
}
