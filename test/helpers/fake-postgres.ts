/**
 * A fake PostgreSQL server speaking just enough of the wire protocol to play a hostile one: it can
 * refuse TLS, ask for a cleartext password and keep it, declare a 2 GB message, or stream rows or
 * notices for as long as the client keeps reading. Each connection runs the test's script; the server
 * counts what it managed to send, so a test can prove a client hung up early.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'tls');

/** A self-signed certificate for 127.0.0.1 / localhost, for tests only (see test/fixtures/tls/README.md). */
export function testCertificate(): { key: string; cert: string } {
  return {
    key: readFileSync(join(FIXTURES, 'server.key'), 'utf8'),
    cert: readFileSync(join(FIXTURES, 'server.crt'), 'utf8'),
  };
}

export interface ClientMessage {
  /** The message type letter ('p' password, 'Q' query, 'P' parse, 'S' sync, ...). */
  type: string;
  body: Buffer;
}

export interface FakeConnection {
  /** Startup parameters the client sent (user, database, application_name, options, ...). */
  readonly startup: Record<string, string>;
  /** Whether the conversation runs over TLS. */
  readonly tls: boolean;
  /** Sends one message; resolves once the socket can take more (backpressure), false when it is gone. */
  send(type: string, body?: Buffer): Promise<boolean>;
  /** Sends bytes as they are: a header that lies about its length, the body that follows. */
  sendRaw(bytes: Buffer): Promise<boolean>;
  /** The client's next message; rejects when the client hangs up. */
  next(): Promise<ClientMessage>;
  /** Waits for the client's Sync (the end of an extended-protocol query). */
  untilSync(): Promise<void>;
  readonly closed: boolean;
  close(): void;
}

export interface FakePostgresOptions {
  /** What the server answers to an SSLRequest. @default 'refuse' */
  tls?: 'refuse' | 'accept';
  /** What each connection does after the startup message. */
  script(connection: FakeConnection): Promise<void>;
}

export interface FakePostgres {
  readonly port: number;
  readonly connections: number;
  /** Bytes written to clients, over all connections. */
  readonly bytesSent: number;
  /** Passwords clients sent in PasswordMessages, in order. */
  readonly passwords: readonly string[];
  /** Startup messages received over TLS and in plaintext. */
  readonly startups: { readonly tls: number; readonly plaintext: number };
  close(): Promise<void>;
}

const cstring = (text: string) => Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0])]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};

/** Message bodies the scripts compose. */
export const messages = {
  authOk: () => int32(0),
  authCleartext: () => int32(3),
  authMd5: () => Buffer.concat([int32(5), Buffer.from([1, 2, 3, 4])]),
  parameter: (name: string, value: string) => Buffer.concat([cstring(name), cstring(value)]),
  backendKey: (pid = 4242, key = 1) => Buffer.concat([int32(pid), int32(key)]),
  ready: () => Buffer.from('I'),
  /** ErrorResponse / NoticeResponse fields. */
  fields: (fields: { severity?: string; code: string; message: string }) =>
    Buffer.concat([
      Buffer.from('S'),
      cstring(fields.severity ?? 'ERROR'),
      Buffer.from('V'),
      cstring(fields.severity ?? 'ERROR'),
      Buffer.from('C'),
      cstring(fields.code),
      Buffer.from('M'),
      cstring(fields.message),
      Buffer.from([0]),
    ]),
  /** A one-column text RowDescription. */
  rowDescription: (column = 'x') =>
    Buffer.concat([int16(1), cstring(column), int32(0), int16(0), int32(25), int16(-1), int32(-1), int16(0)]),
  dataRow: (value: string) => {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([int16(1), int32(bytes.length), bytes]);
  },
  commandComplete: (tag = 'SELECT 1') => cstring(tag),
};

/** One protocol message as it goes on the wire: its type, its length, its body. */
export function frame(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
}

/**
 * Sends one message over and over until the client hangs up: in 64 KB batches, yielding to the event
 * loop between them, so a client in the same process gets its turn however small the messages are.
 */
export async function flood(connection: FakeConnection, type: string, body: Buffer): Promise<void> {
  const one = frame(type, body);
  const batch = Buffer.concat(
    Array.from({ length: Math.max(1, Math.floor(65_536 / one.length)) }, () => one),
  );
  while (await connection.sendRaw(batch)) await new Promise((resolve) => setImmediate(resolve));
}

/** The usual welcome after authentication: AuthenticationOk, a few parameters, the key, ReadyForQuery. */
export async function welcome(connection: FakeConnection): Promise<void> {
  await connection.send('R', messages.authOk());
  await connection.send('S', messages.parameter('server_version', '17.0'));
  await connection.send('S', messages.parameter('client_encoding', 'UTF8'));
  await connection.send('K', messages.backendKey());
  await connection.send('Z', messages.ready());
}

export async function startFakePostgres(options: FakePostgresOptions): Promise<FakePostgres> {
  const sockets = new Set<Socket>();
  const passwords: string[] = [];
  const startups = { tls: 0, plaintext: 0 };
  let connections = 0;
  let bytesSent = 0;
  const server: Server = createServer((raw) => {
    connections += 1;
    sockets.add(raw);
    raw.on('error', () => undefined);
    raw.on('close', () => sockets.delete(raw));
    void converse(raw).catch(() => raw.destroy());
  });

  async function converse(raw: Socket): Promise<void> {
    let socket: Socket = raw;
    let reader = bufferedReader(socket);
    let tls = false;
    let startup: Record<string, string> | undefined;
    while (!startup) {
      const length = (await reader.read(4)).readInt32BE(0);
      const rest = await reader.read(length - 4);
      const code = rest.readInt32BE(0);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        const accept = code === SSL_REQUEST && options.tls === 'accept';
        raw.write(accept ? 'S' : 'N');
        if (accept) {
          reader.detach();
          const secure = new TLSSocket(raw, { isServer: true, ...testCertificate() });
          secure.on('error', () => undefined);
          socket = secure;
          reader = bufferedReader(socket);
          tls = true;
        }
        continue;
      }
      startups[tls ? 'tls' : 'plaintext'] += 1;
      const parts = rest.subarray(4).toString('utf8').split('\0');
      startup = {};
      for (let i = 0; i + 1 < parts.length && parts[i]; i += 2)
        startup[parts[i] as string] = parts[i + 1] ?? '';
    }
    let closed = false;
    socket.on('close', () => {
      closed = true;
    });
    const connection: FakeConnection = {
      startup,
      tls,
      get closed() {
        return closed;
      },
      send(type, body = Buffer.alloc(0)) {
        return connection.sendRaw(frame(type, body));
      },
      sendRaw(frame) {
        if (closed || socket.destroyed) return Promise.resolve(false);
        bytesSent += frame.length;
        const flushed = socket.write(frame);
        if (flushed) return Promise.resolve(true);
        return new Promise((resolve) => {
          const done = (ok: boolean) => {
            socket.off('drain', onDrain);
            socket.off('close', onClose);
            resolve(ok);
          };
          const onDrain = () => done(true);
          const onClose = () => done(false);
          socket.once('drain', onDrain);
          socket.once('close', onClose);
        });
      },
      async next() {
        const type = String.fromCharCode((await reader.read(1))[0] as number);
        const length = (await reader.read(4)).readInt32BE(0);
        const body = await reader.read(length - 4);
        if (type === 'p') passwords.push(body.subarray(0, body.length - 1).toString('utf8'));
        return { type, body };
      },
      async untilSync() {
        for (;;) if ((await connection.next()).type === 'S') return;
      },
      close() {
        socket.destroy();
      },
    };
    try {
      await options.script(connection);
    } finally {
      socket.end();
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    get connections() {
      return connections;
    },
    get bytesSent() {
      return bytesSent;
    },
    passwords,
    startups,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads exact byte counts from a socket; rejects once the socket ends. */
function bufferedReader(socket: Socket): { read(n: number): Promise<Buffer>; detach(): void } {
  let buffered = Buffer.alloc(0);
  let ended = false;
  let waiter: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    waiter?.();
  };
  const onEnd = () => {
    ended = true;
    waiter?.();
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  return {
    async read(n) {
      while (buffered.length < n) {
        if (ended) throw new Error('client hung up');
        await new Promise<void>((resolve) => {
          waiter = resolve;
        });
        waiter = undefined;
      }
      const out = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      return out;
    },
    detach() {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    },
  };
}
