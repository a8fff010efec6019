/**
 * A control socket for a running local system, so `pgwarden drill` from another terminal injects its
 * fault into the database that `npm start` watches, and follows the incident it causes.
 */
import { chmod, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describeError, ValidationError } from '../../shared/errors.ts';
import { number, object, oneOf, optional, parse } from '../../shared/validate.ts';
import { DRILL_LIMITS, DRILLS, type Drill } from './drills.ts';
import type { DrillReport, LocalSystem, SystemEvent } from './system.ts';

export function controlPath(home: string): string {
  return join(home, 'control.sock');
}

export interface DrillRequest {
  drill: Drill;
  forMs?: number;
  timeoutMs?: number;
}

/** What a request line may hold: one drill, its clocks bounded as on the command line. */
const drillRequestSchema = object({
  drill: oneOf(DRILLS),
  forMs: optional(number({ min: DRILL_LIMITS.minMs, max: DRILL_LIMITS.maxForMs, integer: true })),
  timeoutMs: optional(number({ min: DRILL_LIMITS.minMs, max: DRILL_LIMITS.maxTimeoutMs, integer: true })),
});

/** A request is one short JSON line; anything longer is not pgwarden talking. */
export const MAX_REQUEST_BYTES = 4_096;
/** Replies carry a drill's report with its pages: generous, but bounded on the reading side too. */
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

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

/**
 * Serves drill requests on `home`/control.sock (mode 0600, in the 0700 home folder): one request line
 * per connection, at most MAX_REQUEST_BYTES, validated like the command line's flags.
 */
export async function serveControl(system: LocalSystem, home: string): Promise<Server> {
  const path = controlPath(home);
  await rm(path, { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    const send = (message: ControlMessage) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
    };
    const refuse = (message: string) => {
      send({ type: 'error', message });
      socket.end();
    };
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const newline = buffer.indexOf('\n');
      if (newline < 0) {
        if (Buffer.byteLength(buffer) > MAX_REQUEST_BYTES) {
          socket.off('data', onData);
          refuse(`a request is one JSON line of at most ${MAX_REQUEST_BYTES} bytes`);
        }
        return;
      }
      // One request per connection: whatever follows the first line is not read.
      socket.off('data', onData);
      const line = buffer.slice(0, newline);
      buffer = '';
      if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) {
        refuse(`a request is one JSON line of at most ${MAX_REQUEST_BYTES} bytes`);
        return;
      }
      let request: DrillRequest;
      try {
        request = parse(drillRequestSchema, JSON.parse(line), 'drill request', ValidationError);
      } catch (error) {
        refuse(error instanceof SyntaxError ? 'the request is not JSON' : describeError(error));
        return;
      }
      void run(request);
    };
    const run = async (request: DrillRequest) => {
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
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The socket file takes the umask's mode when it is bound, which listen() does before it returns:
    // a umask of 0177 for that moment means it is never open to anyone but its owner.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  // Whatever the platform did with the umask, only the owner may talk to it (the folder is 0700 too).
  await chmod(path, 0o600);
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
        let message: ControlMessage;
        try {
          message = JSON.parse(buffer.slice(0, newline)) as ControlMessage;
        } catch {
          failure = 'the local system sent something that is not a JSON line';
          socket.destroy();
          return;
        }
        buffer = buffer.slice(newline + 1);
        if (message.type === 'report') report = message.report;
        else if (message.type === 'error') failure = message.message;
        else onMessage(message);
        newline = buffer.indexOf('\n');
      }
      if (Buffer.byteLength(buffer) > MAX_REPLY_BYTES) {
        failure = `the local system sent a line longer than ${MAX_REPLY_BYTES} bytes`;
        socket.destroy();
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
