/**
 * A TCP proxy in front of PostgreSQL that counts what a client costs the server: connections, round
 * trips (a flight of client bytes answered by a flight of server bytes), split into the connection
 * handshake (before the first ReadyForQuery) and queries after it, and the query messages sent (Query
 * or Parse). It reads the wire protocol's message framing only; plaintext connections (sslmode=disable)
 * are assumed.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { onTeardown } from './support.ts';

export interface Tally {
  connections: number;
  /** Client flights answered by the server. */
  roundTrips: number;
  /** ...of which before the first ReadyForQuery: startup, authentication, parameter status. */
  handshakeRoundTrips: number;
  /** ...of which after it: queries. */
  queryRoundTrips: number;
  /** Query ('Q') and Parse ('P') messages: statements sent (a Query message may hold several). */
  queryMessages: number;
  bytesFromClient: number;
  bytesFromServer: number;
}

export const emptyTally = (): Tally => ({
  connections: 0,
  roundTrips: 0,
  handshakeRoundTrips: 0,
  queryRoundTrips: 0,
  queryMessages: 0,
  bytesFromClient: 0,
  bytesFromServer: 0,
});

const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;

/** Follows one direction's message framing and reports each message's type byte. */
class Framer {
  private buffer: Buffer = Buffer.alloc(0);
  /** Untyped messages still expected at the start (the client's startup packet, SSL/GSS requests). */
  untyped: number;
  /** A single-byte answer expected next (the server's reply to an SSL or GSS request). */
  singleByte = false;
  private readonly onMessage: (type: string | undefined, body: Buffer) => void;

  constructor(untyped: number, onMessage: (type: string | undefined, body: Buffer) => void) {
    this.untyped = untyped;
    this.onMessage = onMessage;
  }

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.singleByte) {
        if (this.buffer.length < 1) return;
        this.singleByte = false;
        this.onMessage(undefined, this.buffer.subarray(0, 1));
        this.buffer = this.buffer.subarray(1);
        continue;
      }
      if (this.untyped > 0) {
        if (this.buffer.length < 4) return;
        const length = this.buffer.readInt32BE(0);
        if (this.buffer.length < length) return;
        this.untyped -= 1;
        this.onMessage(undefined, this.buffer.subarray(0, length));
        this.buffer = this.buffer.subarray(length);
        continue;
      }
      if (this.buffer.length < 5) return;
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) return;
      const type = String.fromCharCode(this.buffer[0] as number);
      this.onMessage(type, this.buffer.subarray(5, 1 + length));
      this.buffer = this.buffer.subarray(1 + length);
    }
  }
}

export class CountingProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private tally = emptyTally();
  private readonly upstreamPort: number;
  private readonly upstreamHost: string;
  port = 0;

  constructor(upstreamHost: string, upstreamPort: number) {
    this.upstreamHost = upstreamHost;
    this.upstreamPort = upstreamPort;
  }

  async start(): Promise<this> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    this.server = server;
    onTeardown(() => this.close());
    return this;
  }

  /** Returns the counts since the last reset and starts counting afresh. */
  reset(): Tally {
    const tally = this.tally;
    this.tally = emptyTally();
    return tally;
  }

  private accept(client: Socket): void {
    const upstream = tcpConnect(this.upstreamPort, this.upstreamHost);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const tally = () => this.tally;
    tally().connections += 1;
    let last: 'client' | 'server' | undefined;
    let ready = false;
    let flightPhase: 'handshake' | 'query' = 'handshake';

    const fromClient = new Framer(1, (type, body) => {
      if (type === undefined && body.length >= 8) {
        const code = body.readInt32BE(4);
        // Another untyped startup packet follows the server's one-byte answer.
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          fromClient.untyped += 1;
          fromServer.singleByte = true;
        }
      }
      if (type === 'Q' || type === 'P') tally().queryMessages += 1;
    });
    const fromServer = new Framer(0, (type) => {
      if (type === 'Z') ready = true;
    });

    client.on('data', (chunk: Buffer) => {
      tally().bytesFromClient += chunk.length;
      if (last !== 'client') flightPhase = ready ? 'query' : 'handshake';
      last = 'client';
      fromClient.push(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      tally().bytesFromServer += chunk.length;
      if (last === 'client') {
        tally().roundTrips += 1;
        if (flightPhase === 'query') tally().queryRoundTrips += 1;
        else tally().handshakeRoundTrips += 1;
      }
      last = 'server';
      fromServer.push(chunk);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (socket: Socket) => {
      this.sockets.delete(socket);
      socket.destroy();
    };
    client.on('error', () => end(upstream));
    upstream.on('error', () => end(client));
    client.on('close', () => {
      this.sockets.delete(client);
      upstream.end();
    });
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      client.end();
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
