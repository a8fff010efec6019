/**
 * A TCP proxy in front of a real PostgreSQL that can interfere with the first statement of each
 * connection: the handshake goes through untouched, then the client's first Parse or Query message is
 * held until the test decides what happens to it. That puts a fault exactly between "connected" and
 * "got an answer", which a real server alone cannot do on demand.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/** What happens to a held statement. */
export type QueryFate =
  /** Send it on; the server answers as usual. */
  | 'forward'
  /** Never send it and never answer: the network went silent mid-conversation. */
  | 'hold'
  /** Reset both connections: the network dropped. */
  | 'reset';

export interface PgProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /**
   * Decides the fate of each connection's first statement; it may act on the server first (its
   * backend is connected and idle). @default forward
   */
  onQuery: (() => Promise<QueryFate>) | undefined;
  close(): Promise<void>;
}

/** Protocol codes of the untyped requests that may precede the startup message. */
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

export async function startPgProxy(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<PgProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const proxy: PgProxy = {
    port: 0,
    get accepted() {
      return accepted;
    },
    onQuery: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = tcpConnect(upstreamPort, upstreamHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on('data', (chunk) => client.write(chunk));

    let pending = Buffer.alloc(0);
    let untyped = true;
    let state: 'parsing' | 'deciding' | 'forwarding' | 'holding' = 'parsing';
    client.on('data', (chunk) => {
      if (state === 'forwarding') {
        upstream.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      if (state !== 'parsing') return;
      // Forward whole messages until the first statement.
      let offset = 0;
      for (;;) {
        if (untyped) {
          if (pending.length - offset < 8) break;
          const length = pending.readInt32BE(offset);
          if (pending.length - offset < length) break;
          const code = pending.readInt32BE(offset + 4);
          // After SSL/GSS negotiation (refused by a server without TLS) the startup message follows.
          untyped = code === SSL_REQUEST || code === GSSENC_REQUEST;
          offset += length;
          continue;
        }
        if (pending.length - offset < 5) break;
        const type = String.fromCharCode(pending[offset] as number);
        if (type === 'P' || type === 'Q') {
          state = 'deciding';
          break;
        }
        const length = pending.readInt32BE(offset + 1);
        if (pending.length - offset < length + 1) break;
        offset += length + 1;
      }
      if (offset > 0) upstream.write(pending.subarray(0, offset));
      pending = pending.subarray(offset);
      if (state !== 'deciding') return;
      void (proxy.onQuery ?? (async () => 'forward' as const))().then(
        (fate) => {
          if (fate === 'forward') {
            state = 'forwarding';
            upstream.write(pending);
            pending = Buffer.alloc(0);
          } else if (fate === 'hold') {
            state = 'holding';
          } else {
            client.resetAndDestroy();
            upstream.resetAndDestroy();
          }
        },
        () => {
          client.resetAndDestroy();
          upstream.resetAndDestroy();
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  (proxy as { port: number }).port = typeof address === 'object' && address ? address.port : 0;
  return proxy;
}
