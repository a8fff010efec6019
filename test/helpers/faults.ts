/**
 * Faults only the tests and benchmarks inject: idle sessions that hold slots without a reason to
 * terminate them, and a listener that never answers. Drills use the injectors in cli/local/faults.ts.
 */
import { createServer, type Socket } from 'node:net';
import { type FaultHandle, type FaultTarget, faultHandle, faultSession } from '../../cli/local/faults.ts';
import type { DbSession } from '../../shared/db.ts';

/** Opens `count` sessions that then sit idle, like a leaking pool. */
export async function openIdleSessions(
  target: FaultTarget,
  count: number,
  applicationName = 'drill:idle',
): Promise<FaultHandle> {
  const sessions: DbSession[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = await faultSession(target, applicationName);
      sessions.push(s);
      await s.query('drill-idle', 'SELECT 1');
    }
  } catch (error) {
    await faultHandle(sessions).release();
    throw error;
  }
  return faultHandle(sessions);
}

/** A TCP listener that accepts connections and never says a word: a black-holed database. */
export async function silentListener(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
