/**
 * A control socket for a running local system, so `pgwarden drill` from another terminal injects its
 * fault into the database that `npm start` watches, and follows the incident it causes.
 */
import { rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describeError } from '../errors.ts';
import { DRILLS, type Drill } from './drills.ts';
import type { DrillReport, LocalSystem, SystemEvent } from './system.ts';

export function controlPath(home: string): string {
  return join(home, 'control.sock');
}

export interface DrillRequest {
  drill: Drill;
  forMs?: number;
  timeoutMs?: number;
}

export type ControlMessage =
  | { type: 'event'; event: SystemEvent }
  | { type: 'report'; report: DrillReport }
  | { type: 'error'; message: string };

const FOLLOWED: ReadonlySet<SystemEvent['type']> = new Set([
  'drill',
  'incident',
  'step',
  'published',
  'incident-ended',
]);

export async function serveControl(system: LocalSystem, home: string): Promise<Server> {
  const path = controlPath(home);
  await rm(path, { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let buffer = '';
    socket.on('data', async (chunk) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      const line = buffer.slice(0, newline);
      buffer = '';
      const send = (message: ControlMessage) => {
        if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
      };
      let request: DrillRequest;
      try {
        request = JSON.parse(line) as DrillRequest;
        if (!(DRILLS as readonly string[]).includes(request.drill))
          throw new Error(`unknown drill "${String(request.drill)}"`);
      } catch (error) {
        send({ type: 'error', message: describeError(error) });
        socket.end();
        return;
      }
      const unsubscribe = system.on((event) => {
        if (FOLLOWED.has(event.type)) send({ type: 'event', event });
      });
      try {
        const report = await system.drill(request.drill, {
          ...(request.forMs !== undefined ? { forMs: request.forMs } : {}),
          ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs } : {}),
        });
        send({ type: 'report', report });
      } catch (error) {
        send({ type: 'error', message: describeError(error) });
      } finally {
        unsubscribe();
        socket.end();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return server;
}

/**
 * Asks the local system running in `home` to run a drill. Resolves undefined when none is running there.
 */
export function requestDrill(
  home: string,
  request: DrillRequest,
  onMessage: (message: ControlMessage) => void,
): Promise<DrillReport | undefined> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(controlPath(home));
    let buffer = '';
    let report: DrillReport | undefined;
    let failure: string | undefined;
    let connected = false;
    socket.on('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk) => {
      buffer += chunk;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const message = JSON.parse(buffer.slice(0, newline)) as ControlMessage;
        buffer = buffer.slice(newline + 1);
        if (message.type === 'report') report = message.report;
        else if (message.type === 'error') failure = message.message;
        else onMessage(message);
        newline = buffer.indexOf('\n');
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === 'ENOENT' || error.code === 'ECONNREFUSED')) resolve(undefined);
      else reject(error);
    });
    socket.on('close', () => {
      if (!connected) return;
      if (failure) reject(new Error(failure));
      else if (report) resolve(report);
      else reject(new Error('the local system closed the connection before the drill finished'));
    });
  });
}
