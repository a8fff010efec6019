/**
 * A hostile (or broken) server at the other end of a probe: a fake PostgreSQL that declares a 2 GB
 * error message, streams rows or notices for as long as the client reads, or asks for the password in
 * cleartext. Time was always bounded by the timeouts; now what one probe reads is bounded too, the
 * excess is a classified failure, and a password never leaves in cleartext (an RDS IAM token over TLS
 * excepted: that is how RDS asks for it). Peak memory is measured by `npm run bench -- --only hostile`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectionSpec, TlsMode } from '../../shared/connection.ts';
import { DEFAULT_READ_LIMITS } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';
import { type ProbeFailure, probe } from '../../shared/probe/snapshot.ts';
import { remediate } from '../../shared/remediation/remediator.ts';
import { DEFAULT_REMEDIATION } from '../../shared/target.ts';
import {
  type FakeConnection,
  type FakePostgres,
  flood,
  messages,
  startFakePostgres,
  welcome,
} from '../helpers/fake-postgres.ts';

const PASSWORD = 'PGW-hostile-pw-31c9';
/** Far more than any limit, far less than what the fakes push in the seconds a timeout allows. */
const CUT_OFF_BYTES = 32 * 1024 * 1024;

const SCRIPTS: Record<string, (c: FakeConnection) => Promise<void>> = {
  'declares a 2 GB error message and starts sending it': async (c) => {
    await c.sendRaw(Buffer.concat([Buffer.from('E'), Buffer.from([0x7f, 0xff, 0xff, 0xf0])]));
    const chunk = Buffer.alloc(1 << 20, 0x41);
    while (await c.sendRaw(chunk)) await new Promise((resolve) => setImmediate(resolve));
  },
  'streams rows in answer to the snapshot': async (c) => {
    await welcome(c);
    await c.untilSync();
    await c.send('1');
    await c.send('2');
    await c.send('T', messages.rowDescription());
    await flood(c, 'D', messages.dataRow('x'.repeat(1_000)));
  },
  'streams notices before it ever says ready': async (c) => {
    await c.send('R', messages.authOk());
    await flood(c, 'N', messages.fields({ severity: 'NOTICE', code: '00000', message: 'y'.repeat(1_000) }));
  },
  'streams one-byte notices': async (c) => {
    await welcome(c);
    await flood(c, 'N', messages.fields({ severity: 'NOTICE', code: '00000', message: '' }));
  },
};

function spec(
  port: number,
  mode: TlsMode,
  auth: ConnectionSpec['auth'] = { kind: 'password', password: PASSWORD },
) {
  return {
    host: '127.0.0.1',
    port,
    database: 'app',
    user: 'monitor',
    auth,
    tls: { mode },
  } satisfies ConnectionSpec;
}

describe('a hostile server', () => {
  let fake: FakePostgres | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  for (const mode of ['disable', 'require'] as const) {
    describe(mode === 'disable' ? 'in plaintext' : 'over TLS', () => {
      for (const [what, script] of Object.entries(SCRIPTS)) {
        it(`is cut off when it ${what}, with a classified failure`, async () => {
          fake = await startFakePostgres({ tls: mode === 'require' ? 'accept' : 'refuse', script });
          const result = (await probe(
            spec(fake.port, mode),
            { label: 'fake' },
            { logger: silentLogger },
          )) as ProbeFailure;
          expect(result.ok).toBe(false);
          expect(result.failure).toMatchObject({ category: 'unknown', retryable: false });
          expect(result.failure.message).toMatch(/more than|announced/);
          // The client hung up at once instead of reading until the timeout.
          expect(fake.bytesSent).toBeLessThan(CUT_OFF_BYTES);
        });
      }
    });
  }

  it('cuts off a remediation listing that never ends', async () => {
    fake = await startFakePostgres({
      script: SCRIPTS['streams rows in answer to the snapshot'] as (c: FakeConnection) => Promise<void>,
    });
    const result = await remediate(
      spec(fake.port, 'disable'),
      {
        targetId: 'fake',
        policy: DEFAULT_REMEDIATION,
        actions: ['idle'],
        connectTimeoutMs: 2_000,
        statementTimeoutMs: 10_000,
      },
      { logger: silentLogger },
    );
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.failure.category).toBe('unknown');
    expect(fake.bytesSent).toBeLessThan(2 * DEFAULT_READ_LIMITS.maxTotalBytes);
  });

  describe('asking for the password in cleartext', () => {
    const askCleartext = async (c: FakeConnection) => {
      await c.send('R', messages.authCleartext());
      await c.next();
      await welcome(c);
    };

    it('gets no password, in plaintext or over TLS, and the probe says why', async () => {
      for (const mode of ['disable', 'require'] as const) {
        fake = await startFakePostgres({
          tls: mode === 'require' ? 'accept' : 'refuse',
          script: askCleartext,
        });
        const result = (await probe(
          spec(fake.port, mode),
          { label: 'fake' },
          { logger: silentLogger },
        )) as ProbeFailure;
        expect(fake.passwords).toEqual([]);
        expect(result.failure).toMatchObject({ category: 'auth_failed', retryable: false });
        expect(result.failure.message).toContain('cleartext');
        await fake.close();
      }
    });

    it('gets an RDS IAM token over TLS (RDS asks for it that way), never without TLS', async () => {
      const token = 'db.example.com:5432/?Action=connect&DBUser=monitor&X-Amz-Signature=0123456789abcdef';
      const deps = { logger: silentLogger, signToken: async () => token };
      fake = await startFakePostgres({ tls: 'accept', script: askCleartext });
      await probe(spec(fake.port, 'require', { kind: 'iam', region: 'eu-west-1' }), { label: 'fake' }, deps);
      expect(fake.passwords).toEqual([token]);
      await fake.close();

      fake = await startFakePostgres({ script: askCleartext });
      const plain = (await probe(
        spec(fake.port, 'disable', { kind: 'iam', region: 'eu-central-1' }),
        { label: 'fake' },
        deps,
      )) as ProbeFailure;
      expect(fake.passwords).toEqual([]);
      expect(plain.failure.category).toBe('auth_failed');
    });
  });

  it('gets nothing from a client that wanted TLS when it answers "no TLS here"', async () => {
    fake = await startFakePostgres({
      tls: 'refuse',
      script: async (c) => {
        await c.send('R', messages.authCleartext());
        await c.next();
      },
    });
    const result = (await probe(
      spec(fake.port, 'require'),
      { label: 'fake' },
      { logger: silentLogger },
    )) as ProbeFailure;
    expect(result.failure.category).toBe('tls');
    expect(fake.passwords).toEqual([]);
  });
});
