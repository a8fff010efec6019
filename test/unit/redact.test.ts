import { describe, expect, it } from 'vitest';
import { redact, redactDeep, registerSecret } from '../../shared/redact.ts';

describe('redact', () => {
  it('masks URL passwords, password= pairs and IAM signatures', () => {
    const text = 'postgres://app:hunter2@db/x password=abc123 X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA';
    const out = redact(text);
    expect(out).toBe('postgres://app:***@db/x password=*** X-Amz-Signature=***&X-Amz-Credential=***');
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
