import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl, safeUrl } from '../../shared/connection.ts';

describe('parseDatabaseUrl', () => {
  it('reads a full URL, verifying TLS by default', () => {
    const parsed = parseDatabaseUrl('postgres://mon:p%40ss@db.example.com:6432/app');
    expect(parsed).toEqual({
      ok: true,
      spec: {
        host: 'db.example.com',
        port: 6432,
        database: 'app',
        user: 'mon',
        auth: { kind: 'password', password: 'p@ss' },
        tls: { mode: 'verify-full' },
      },
    });
  });

  it('defaults the port to 5432 and the database to the user', () => {
    const parsed = parseDatabaseUrl('postgresql://mon@db?sslmode=disable');
    expect(parsed.ok && parsed.spec).toMatchObject({
      port: 5432,
      database: 'mon',
      tls: { mode: 'disable' },
      auth: { kind: 'none' },
    });
  });

  it('takes the password from the fallback (PGPASSWORD) when the URL has none', () => {
    const parsed = parseDatabaseUrl('postgres://mon@db/app', { passwordFallback: 'from-env' });
    expect(parsed.ok && parsed.spec.auth).toEqual({ kind: 'password', password: 'from-env' });
  });

  it('keeps sslrootcert as the CA bundle', () => {
    const parsed = parseDatabaseUrl('postgres://mon@db/app?sslmode=verify-ca&sslrootcert=/etc/rds.pem');
    expect(parsed.ok && parsed.spec.tls).toEqual({ mode: 'verify-ca', caFile: '/etc/rds.pem' });
  });

  it.each([
    ['mysql://u@h/d', 'scheme "mysql"'],
    ['not a url', 'is not a URL'],
    ['postgres://h/d', 'has no user'],
    ['postgres://u@h/d?sslmode=prefer', 'falls back to an unencrypted connection'],
    ['postgres://u@h/d?sslmode=bogus', 'sslmode "bogus" is not supported'],
  ])('refuses %s with a reason', (url, reason) => {
    const parsed = parseDatabaseUrl(url, { path: '--url' });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.issues[0]?.path).toBe('--url');
    expect(parsed.issues[0]?.problem).toContain(reason);
  });

  it('never echoes the password in an issue', () => {
    const parsed = parseDatabaseUrl('postgres://u:hunter22@h/d?sslmode=allow');
    expect(parsed.ok).toBe(false);
    expect(JSON.stringify(parsed)).not.toContain('hunter22');
    expect(safeUrl('postgres://u:hunter22@h/d')).not.toContain('hunter22');
  });
});

describe('parseDatabaseUrl and the password', () => {
  it('masks the password wherever an issue quotes part of the URL', () => {
    const url = 'postgres://mon:Sup3r-s3cret-pw@db/app?sslmode=postgres://mon:Sup3r-s3cret-pw@db/app';
    const parsed = parseDatabaseUrl(url);
    expect(parsed.ok).toBe(false);
    expect(JSON.stringify(parsed)).not.toContain('Sup3r-s3cret-pw');
  });
});
