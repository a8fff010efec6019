import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../shared/connection.ts';
import { redact, redactDeep, registerSecret } from '../../shared/redact.ts';

describe('redact', () => {
  it('masks URL passwords, password= pairs and IAM signatures', () => {
    const text = 'postgres://app:hunter2@db/x password=abc123 X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA';
    const out = redact(text);
    expect(out).toBe('postgres://app:***@db/x password=*** X-Amz-Signature=***&X-Amz-Credential=***');
  });

  it('masks the password of a URL cut short before its host, and leaves ports alone', () => {
    expect(redact('postgres://pgwarden_monitor:Sup3r-s3cret-pw')).toBe('postgres://pgwarden_monitor:***');
    expect(redact('got "postgres://app:hunter2" instead')).toBe('got "postgres://app:***" instead');
    expect(redact('postgres://db.example.com:5432/app')).toBe('postgres://db.example.com:5432/app');
    expect(redact('https://example.com:8443/x')).toBe('https://example.com:8443/x');
    const parsed = parseDatabaseUrl('postgres://pgwarden_monitor:Sup3r-s3cret-pw');
    expect(JSON.stringify(parsed)).not.toContain('Sup3r-s3cret-pw');
  });

  it('masks registered secrets wherever they appear, deeply', () => {
    registerSecret('tok-9f8e7d6c');
    expect(redactDeep({ a: ['x tok-9f8e7d6c y'], b: { c: 'tok-9f8e7d6c' }, n: 3 })).toEqual({
      a: ['x *** y'],
      b: { c: '***' },
      n: 3,
    });
  });

  it('ignores values too short to be secrets', () => {
    registerSecret('ab');
    expect(redact('abc')).toBe('abc');
  });
});
