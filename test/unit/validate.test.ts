import { describe, expect, it } from 'vitest';
import { ConfigError, ValidationError } from '../../shared/errors.ts';
import {
  array,
  boolean,
  duration,
  number,
  object,
  oneOf,
  optional,
  parse,
  safeParse,
  string,
  variant,
  withDefault,
} from '../../shared/validate.ts';

const schema = object({
  name: string(),
  port: withDefault(number({ min: 1, max: 65_535, integer: true }), 5432),
  mode: oneOf(['a', 'b'] as const),
  every: optional(duration({ minMs: 1_000 })),
  tags: optional(array(string())),
  password: optional(string({ secret: true, minLength: 8 })),
});

describe('validate', () => {
  it('parses a valid object and applies defaults', () => {
    expect(parse(schema, { name: 'x', mode: 'a', every: '5m' }, 'thing')).toEqual({
      name: 'x',
      port: 5432,
      mode: 'a',
      every: 300_000,
    });
  });

  it('reports every issue with its path, the value received and a fix', () => {
    const result = safeParse(
      schema,
      { name: '', port: 70_000, mode: 'c', every: '30', tags: ['ok', 3] },
      'config',
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const byPath = Object.fromEntries(result.issues.map((i) => [i.path, i]));
    expect(Object.keys(byPath).sort()).toEqual([
      'config.every',
      'config.mode',
      'config.name',
      'config.port',
      'config.tags[1]',
    ]);
    expect(byPath['config.port']?.received).toBe('70000');
    expect(byPath['config.port']?.fix).toContain('between 1 and 65535');
    expect(byPath['config.mode']?.fix).toContain('"a", "b"');
    expect(byPath['config.every']?.fix).toContain('Add a unit: "30s"');
  });

  it('names a missing required field', () => {
    expect(() => parse(schema, { mode: 'a' }, 'thing')).toThrowError(/name: is required \(got nothing\)/);
  });

  it('suggests the closest known field for a typo', () => {
    const result = safeParse(schema, { name: 'x', mode: 'a', prot: 1 });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues[0]?.fix).toBe('Did you mean "port"?');
  });

  it('masks secret values in messages', () => {
    try {
      parse(schema, { name: 'x', mode: 'a', password: 'short' }, 'thing');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).not.toContain('short');
      expect((error as Error).message).toContain('"***"');
    }
  });

  it('throws the requested error class', () => {
    expect(() => parse(schema, 42, 'environment', ConfigError)).toThrowError(ConfigError);
  });

  it('selects a variant by its tag and rejects an unknown tag', () => {
    const v = variant('kind', {
      a: object({ kind: oneOf(['a'] as const), x: number() }),
      b: object({ kind: oneOf(['b'] as const) }),
    });
    expect(parse(v, { kind: 'a', x: 1 }, 'v')).toEqual({ kind: 'a', x: 1 });
    expect(() => parse(v, { kind: 'z' }, 'v')).toThrowError(/kind: is not an accepted kind/);
  });

  it('coerces numbers and booleans from environment strings when asked', () => {
    expect(parse(number({ coerce: true }), '42', 'n')).toBe(42);
    expect(parse(boolean({ coerce: true }), 'yes', 'b')).toBe(true);
    expect(() => parse(number(), '42', 'n')).toThrowError(/must be a number/);
  });
});
