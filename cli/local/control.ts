/**
 * A control socket for a running local system, so `pgwarden drill` from another terminal injects its
 * fault into the database that `npm start` watches, and follows the incident it causes.
 */
import { chmod, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describeError, ValidationError } from '../../shared/errors.ts';
import { literal, number, object, oneOf, optional, parse, variant } from '../../shared/validate.ts';
import type { Check } from '../doctor/report.ts';
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

/** The other requests: the doctor's checks, a test page through the outbox. */
const commandRequestSchema = variant('command', {
  doctor: object({ command: literal('doctor') }),
  'test-page': object({ command: literal('test-page'), topic: oneOf(['pages', 'notifications'] as const) }),
});
export type CommandRequest =
  | { command: 'doctor' }
  | { command: 'test-page'; topic: 'pages' | 'notifications' };

/** What `pgwarden test-page` learns from the local system. */
export interface LocalTestPage {
  messageId: string;
  subject: string;
  /** The outbox file the message was written to. */
  file: string;
}

/** What a system answers a command with. */
export interface CommandHandlers {
  doctor(): Promise<Check[]>;
  testPage(topic: 'pages' | 'notifications'): Promise<LocalTestPage>;
}

/** A request is one short JSON line; anything longer is not pgwarden talking. */
export const MAX_REQUEST_BYTES = 4_096;
/** Replies carry a drill's report with its pages: generous, but bounded on the reading side too. */
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

export type ControlMessage =
  | { type: 'event'; event: SystemEvent }
  | { type: 'report'; report: DrillReport }
  | { type: 'doctor'; checks: Check[] }
  | { type: 'test-page'; result: LocalTestPage }
  | { type: 'error'; message: string };

const FOLLOWED: ReadonlySet<SystemEvent['type']> = new Set([
  'drill',
  'incident',
  'step',
  'published',
  'incident-ended',
]);

/**
 * Serves drill, doctor and test-page requests on `home`/control.sock (mode 0600, in the 0700 home
 * folder): one request line per connection, at most MAX_REQUEST_BYTES, validated like the command
 * line's flags.
 */
export async function serveControl(
  system: LocalSystem,
  home: string,
  commands: CommandHandlers,
): Promise<Server> {
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
      let request: DrillRequest | CommandRequest;
      try {
        const raw: unknown = JSON.parse(line);
        request =
          raw !== null && typeof raw === 'object' && 'command' in raw
            ? parse(commandRequestSchema, raw, 'control request', ValidationError)
            : parse(drillRequestSchema, raw, 'drill request', ValidationError);
      } catch (error) {
        refuse(error instanceof SyntaxError ? 'the request is not JSON' : describeError(error));
        return;
      }
      if ('command' in request) void answer(request);
      else void run(request);
    };
    const answer = async (request: CommandRequest) => {
      try {
        if (request.command === 'doctor') send({ type: 'doctor', checks: await commands.doctor() });
        else send({ type: 'test-page', result: await commands.testPage(request.topic) });
      } catch (error) {
        send({ type: 'error', message: describeError(error) });
      } finally {
        socket.end();
      }
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
export async function requestDrill(
  home: string,
  request: DrillRequest,
  onMessage: (message: ControlMessage) => void,
): Promise<DrillReport | undefined> {
  const answer = await converse(home, request, onMessage);
  if (answer === undefined) return undefined;
  if (answer.type !== 'report') throw new Error(`the local system answered a drill with ${answer.type}`);
  return answer.report;
}

/** Asks the local system running in `home` for its doctor checks. Undefined when none is running there. */
export async function requestDoctor(home: string): Promise<Check[] | undefined> {
  const answer = await converse(home, { command: 'doctor' }, () => undefined);
  if (answer === undefined) return undefined;
  if (answer.type !== 'doctor') throw new Error(`the local system answered the doctor with ${answer.type}`);
  return answer.checks;
}

/** Asks the local system running in `home` to publish a test page. Undefined when none is running there. */
export async function requestTestPage(
  home: string,
  topic: 'pages' | 'notifications',
): Promise<LocalTestPage | undefined> {
  const answer = await converse(home, { command: 'test-page', topic }, () => undefined);
  if (answer === undefined) return undefined;
  if (answer.type !== 'test-page') throw new Error(`the local system answered test-page with ${answer.type}`);
  return answer.result;
}

type Answer = Exclude<ControlMessage, { type: 'event' } | { type: 'error' }>;

/**
 * Sends one request and reads the reply: events (passed on) until the answer. Resolves undefined when
 * no system is running in `home`; rejects with the system's error.
 */
function converse(
  home: string,
  request: DrillRequest | CommandRequest,
  onMessage: (message: ControlMessage) => void,
): Promise<Answer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(controlPath(home));
    let buffer = '';
    let answer: Answer | undefined;
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
        if (message.type === 'error') failure = message.message;
        else if (message.type === 'event') onMessage(message);
        else answer = message;
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
      else if (answer) resolve(answer);
      else reject(new Error('the local system closed the connection before it answered'));
    });
  });
}
