import { describe, expect, it } from 'vitest';
import { classifyError, explainCategory, FAILURE_CATEGORIES } from '../../shared/classify.ts';
import { registerSecret } from '../../shared/redact.ts';

// The integration suite produces each category from its real fault; these pin the decision order.
const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('classifyError', () => {
  it('prefers the SQLSTATE over the message text', () => {
    const failure = classifyError(withCode('53300', 'connection timeout in a translated message'), 'connect');
    expect(failure.category).toBe('too_many_connections');
    expect(failure.sqlstate).toBe('53300');
  });

  it('maps Node errno codes', () => {
    expect(classifyError(withCode('ECONNREFUSED'), 'connect').category).toBe('unreachable');
    expect(classifyError(withCode('ENOTFOUND'), 'connect').category).toBe('dns');
    expect(classifyError(withCode('ETIMEDOUT'), 'connect').category).toBe('timeout');
    expect(classifyError(withCode('ECONNRESET'), 'query').category).toBe('connection_lost');
    expect(classifyError(withCode('DEPTH_ZERO_SELF_SIGNED_CERT'), 'connect').category).toBe('tls');
  });

  it('reads the errno inside an AggregateError from a dual-stack connect', () => {
    const aggregate = new AggregateError([withCode('ECONNREFUSED')], 'connect failed');
    expect(classifyError(aggregate, 'connect').category).toBe('unreachable');
  });

  it('falls back to unknown, not retryable, for anything else', () => {
    const failure = classifyError(withCode('XX000', 'internal'), 'query');
    expect(failure).toMatchObject({ category: 'unknown', retryable: false, sqlstate: 'XX000' });
    expect(classifyError('a string', 'query').category).toBe('unknown');
    expect(classifyError(undefined, 'query').category).toBe('unknown');
  });

  it('removes registered secrets and URL passwords from the message', () => {
    registerSecret('s3cr3t-value');
    const failure = classifyError(new Error('failed for postgres://u:pw@h/d with s3cr3t-value'), 'connect');
    expect(failure.message).not.toContain('s3cr3t-value');
    expect(failure.message).not.toContain(':pw@');
  });

  it('explains every category', () => {
    for (const category of FAILURE_CATEGORIES) expect(explainCategory(category).length).toBeGreaterThan(10);
  });
});
