/**
 * Local mode keeps its pages and metrics in a home folder and takes drills through a control socket
 * there: whoever can write to that socket can inject faults. The folder is private (0700) and the socket
 * 0600 whatever the umask, a folder that is a symbolic link or belongs to someone else is refused,
 * files are never written through a symbolic link, and every control message and drill clock is
 * bounded and checked.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli, spawnCli } from '../helpers/cli.ts';

const root = mkdtempSync(join(tmpdir(), 'pgwarden-home-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** `pgwarden start` as a careless shell would run it: with a umask that leaves everything open. */
function startOpenUmask(home: string) {
  const child = spawn(
    '/bin/sh',
    ['-c', `umask 000 && exec "${process.execPath}" "${BIN}" start --plain --home "${home}"`],
    {
      env: { ...process.env, PGPASSWORD: '', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    output: () => output,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!existsSync(join(home, 'control.sock')) || !output.includes('monitoring')) {
        if (child.exitCode !== null) throw new Error(`pgwarden start exited:\n${output}`);
        if (Date.now() > deadline) throw new Error(`pgwarden start did not come up:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Sends raw bytes to the control socket; resolves with what came back once it closed (or after `waitMs`). */
function talk(
  home: string,
  bytes: string | Buffer,
  waitMs = 5_000,
): Promise<{ reply: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = createConnection(join(home, 'control.sock'));
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ reply, closed: false });
    }, waitMs);
    socket.on('data', (d) => {
      reply += d;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, closed: true });
    });
    socket.write(bytes);
  });
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe('the local home folder and its control socket', () => {
  const home = join(root, 'home');
  const system = startOpenUmask(home);

  beforeAll(async () => {
    await system.ready();
  }, 90_000);
  afterAll(async () => {
    await system.stop();
  });

  it('creates the folder 0700 and the control socket 0600 under a umask of 000', () => {
    expect(mode(home)).toBe(0o700);
    expect(mode(join(home, 'outbox'))).toBe(0o700);
    expect(mode(join(home, 'control.sock'))).toBe(0o600);
  });

  it('hangs up on a request line longer than 4 KB instead of buffering it', async () => {
    const { reply, closed } = await talk(home, Buffer.alloc(1024 * 1024, 0x61));
    expect(closed).toBe(true);
    expect(reply).toContain('at most 4096 bytes');
  });

  it.each([
    ['a drill held for years', { drill: 'idle-flood', forMs: 1e15 }, 'forMs'],
    ['a negative drill duration', { drill: 'idle-flood', forMs: -5 }, 'forMs'],
    ['a follow-up longer than four hours', { drill: 'idle-flood', timeoutMs: 10 * 3_600_000 }, 'timeoutMs'],
    ['a field nobody sends', { drill: 'idle-flood', command: 'rm -rf /' }, 'command'],
    ['an unknown drill', { drill: 'drop-database' }, 'drill'],
  ])('refuses %s, naming the field, and injects nothing', async (_, request, field) => {
    const { reply, closed } = await talk(home, `${JSON.stringify(request)}\n`);
    expect(closed).toBe(true);
    const message = JSON.parse(reply.split('\n')[0] ?? '{}') as { type: string; message: string };
    expect(message.type).toBe('error');
    expect(message.message).toContain(field);
    expect(system.output()).not.toContain('drill idle-flood injected');
  });

  it('refuses the same bounds on the command line', async () => {
    for (const args of [
      ['drill', 'stop', '--for', '400d'],
      ['drill', 'stop', '--timeout', '30d'],
      ['start', '--drill', 'stop', '--drill-for', '2h'],
    ]) {
      const run = await runCli([...args, '--home', home], {}, 20_000);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/--(for|timeout|drill-for): is out of range/);
    }
  });
});

describe('a home folder that is not private', () => {
  it('refuses a folder that belongs to someone else', async () => {
    // As root, a folder handed to "nobody"; as anyone else, /tmp already belongs to root.
    let foreign = '/tmp';
    if (process.getuid?.() === 0) {
      foreign = join(root, 'foreign');
      mkdirSync(foreign);
      chownSync(foreign, 65_534, 65_534);
    }
    const run = await runCli(['start', '--home', foreign], {}, 30_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('not to you');
    expect(existsSync(join(foreign, 'control.sock'))).toBe(false);
  });

  it('refuses a home that is a symbolic link, and an outbox that is one', async () => {
    const victim = join(root, 'victim');
    mkdirSync(victim, { mode: 0o755 });
    const linked = join(root, 'linked-home');
    symlinkSync(victim, linked);
    const home = join(root, 'planted');
    mkdirSync(home, { mode: 0o700 });
    symlinkSync(victim, join(home, 'outbox'));
    for (const target of [linked, home]) {
      const run = await runCli(['start', '--home', target], {}, 30_000);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('symbolic link');
    }
    expect(readdirSync(victim)).toEqual([]);
  });

  it('tightens a folder an older version left open', async () => {
    const home = join(root, 'open');
    mkdirSync(home);
    chmodSync(home, 0o777);
    const running = spawnCli(['start', '--plain', '--home', home]);
    try {
      await running.waitFor('monitoring', 60_000);
      expect(mode(home)).toBe(0o700);
    } finally {
      await running.stop();
    }
  }, 90_000);
});
