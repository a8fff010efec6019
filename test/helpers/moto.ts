/**
 * An AWS API emulator for the test suite: `moto_server` (preinstalled on every machine of this
 * project), started on a free port by the test file that needs it and stopped when it ends, like the
 * embedded PostgreSQL. Clients pointed at it get fixed credentials and request compression off
 * (moto answers a gzip-compressed request with a 500).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../../cli/local/embedded.ts';

export interface Moto {
  readonly endpoint: string;
  /** Configuration for any SDK v3 client: `new SNSClient(moto.config('eu-west-1'))`. */
  config(region?: string): {
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
    disableRequestCompression: true;
    maxAttempts: number;
  };
  /** Forgets every resource, in every region. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;

export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (error) =>
      reject(
        new Error(
          `moto_server could not be started (${error.message}); it is preinstalled on every machine of this project and must be on the PATH`,
        ),
      ),
    ),
  );

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killed = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killed);
  };

  const ready = (async () => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`moto_server exited at start: ${stderr}`);
      try {
        const response = await fetch(`${endpoint}/moto-api/`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`moto_server did not answer on ${endpoint} within ${READY_TIMEOUT_MS} ms: ${stderr}`);
  })();
  try {
    await Promise.race([ready, spawnError]);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    endpoint,
    config: (region = 'eu-west-1') => ({
      endpoint,
      region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      disableRequestCompression: true,
      maxAttempts: 1,
    }),
    reset: async () => {
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset failed: ${response.status}`);
    },
    stop,
  };
}
