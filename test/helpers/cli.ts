import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment every CLI test runs with: no database from the outside, and the bundled entry `npm ci`
 * builds (PGWARDEN_ENTRY=bundle refuses to run a missing or stale bundle rather than fall back).
 */
const CLI_ENV = { PGPASSWORD: '', DATABASE_URL: '', PGWARDEN_ENTRY: 'bundle' };

/** Runs the pgwarden CLI in a child process, as a user would. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...CLI_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // On timeout: SIGTERM first, so a local system stops its embedded PostgreSQL; SIGKILL if it hangs.
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      reject(new Error(`pgwarden ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningCli {
  readonly pid: number;
  output(): string;
  /** Resolves when the output contains `text` (or matches it). */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Starts a long-running pgwarden command (start) and follows its output. */
export function spawnCli(args: string[], env: Record<string, string> = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...CLI_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (d) => {
    text += d;
  });
  child.stderr.on('data', (d) => {
    text += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    pid: child.pid ?? 0,
    output: () => text,
    async waitFor(expected, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      const seen = () => (typeof expected === 'string' ? text.includes(expected) : expected.test(text));
      while (!seen()) {
        if (child.exitCode !== null)
          throw new Error(`pgwarden exited (${child.exitCode}) before printing ${expected}:\n${text}`);
        if (Date.now() > deadline)
          throw new Error(`pgwarden did not print ${expected} within ${timeoutMs} ms:\n${text}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop(signal = 'SIGINT', timeoutMs = 30_000) {
      if (child.exitCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export interface DrillReportJson {
  drill: string;
  outcome: string;
  status: string;
  found: string[];
  actions: Array<{ kind: string; ok: boolean; summary: string }>;
  pages: Array<{ topic: string; subject: string; message: string }>;
}

/** Runs `pgwarden drill <fault> --json` in a local system of its own (a fresh home) and parses the report. */
export async function runDrill(
  home: string,
  fault: string,
  flags: string[],
): Promise<{ run: CliRun; report: DrillReportJson }> {
  const run = await runCli(['drill', fault, '--home', home, '--json', ...flags], {}, 90_000);
  try {
    return { run, report: JSON.parse(run.stdout) as DrillReportJson };
  } catch {
    throw new Error(`drill ${fault} printed no JSON (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
}
