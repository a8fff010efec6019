/**
 * Local mode's home folder (`.pgwarden/` by default): pages, metrics and the control socket through
 * which any process that can reach it may inject a fault. It is private to the user who runs
 * pgwarden: created 0700 whatever the umask, refused when it is a symbolic link or belongs to someone
 * else, and written with files that are never opened through a symbolic link.
 */
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PgWardenError } from '../../shared/errors.ts';

/** The home folder (or a folder in it) cannot be used safely. */
export class HomeFolderError extends PgWardenError {
  override name = 'HomeFolderError';
}

/** The home folder: `--home`, else PGWARDEN_HOME, else `.pgwarden` in the current directory. */
export function homeFolder(flag: string | undefined, env: Record<string, string | undefined>): string {
  return resolve(flag ?? env.PGWARDEN_HOME ?? '.pgwarden');
}

const uid = () => (typeof process.getuid === 'function' ? process.getuid() : undefined);
/** 0 where the platform has no such flag (Windows); there the folder checks are all there is. */
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * Creates `path` (mode 0700) or checks the one there: a real directory, owned by this user, whose mode
 * is then tightened to 0700 (an older pgwarden created it with the umask's).
 */
export async function preparePrivateDir(path: string): Promise<void> {
  let stat = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!stat) {
    await mkdir(path, { recursive: true, mode: 0o700 });
    stat = await lstat(path);
  }
  const fix = 'Point --home (or PGWARDEN_HOME) at a folder of your own, or remove this one.';
  if (stat.isSymbolicLink())
    throw new HomeFolderError(
      `${path} is a symbolic link; pgwarden keeps its pages, metrics and control socket only in a real folder of its own. ${fix}`,
    );
  if (!stat.isDirectory()) throw new HomeFolderError(`${path} is not a folder. ${fix}`);
  const me = uid();
  if (me !== undefined && stat.uid !== me)
    throw new HomeFolderError(
      `${path} belongs to user ${stat.uid}, not to you (${me}): whoever owns it could read pgwarden's pages or inject faults through its control socket. ${fix}`,
    );
  if ((stat.mode & 0o077) !== 0) await chmod(path, 0o700);
}

/** Opens `path` for writing (mode 0600) and fails, rather than following it, if it is a symbolic link. */
async function openPrivate(path: string, flags: number) {
  return open(path, flags | NOFOLLOW | constants.O_WRONLY | constants.O_CREAT, 0o600);
}

/** Appends to a file in a private folder, never through a symbolic link. */
export async function appendPrivateFile(path: string, data: string): Promise<void> {
  const file = await openPrivate(path, constants.O_APPEND);
  try {
    await file.writeFile(data);
  } finally {
    await file.close();
  }
}

/** Creates a new file in a private folder; fails if anything (a symbolic link included) is already there. */
export async function writeNewPrivateFile(path: string, data: string): Promise<void> {
  const file = await openPrivate(path, constants.O_EXCL);
  try {
    await file.writeFile(data);
  } finally {
    await file.close();
  }
}
