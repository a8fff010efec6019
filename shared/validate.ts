/**
 * A small schema toolkit for events, configuration and CLI input. Every failure becomes an `Issue`
 * naming the field, the value received and the fix, and all issues of one input are reported together.
 */

import { formatDuration, parseDuration } from './duration.ts';
import { type Issue, ValidationError } from './errors.ts';
import { redact } from './redact.ts';

const INVALID: unique symbol = Symbol('invalid');
type Invalid = typeof INVALID;

export interface Schema<T> {
  /** Returns the parsed value, or records issues and returns the INVALID marker. */
  check(value: unknown, path: string, issues: Issue[]): T | Invalid;
  /** What a valid value looks like, for messages: "a port number (1-65535)". */
  readonly expected: string;
  readonly isOptional?: boolean;
  readonly defaultValue?: T;
  readonly secret?: boolean;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/**
 * Renders a received value for a message; secrets are masked (also a password inside anything
 * URL-shaped), long values cut.
 */
export function display(value: unknown, secret = false): string {
  if (value === undefined) return 'nothing';
  if (secret) return '"***"';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  text = redact(text);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function issue(
  issues: Issue[],
  path: string,
  value: unknown,
  problem: string,
  fix: string,
  secret = false,
): Invalid {
  issues.push({ path, received: display(value, secret), problem, fix });
  return INVALID;
}

/** Parses `value` or throws a `ValidationError` (or the given subclass) listing every issue. */
export function parse<T>(
  schema: Schema<T>,
  value: unknown,
  subject: string,
  ErrorClass: new (subject: string, issues: readonly Issue[]) => ValidationError = ValidationError,
  root = '',
): T {
  const issues: Issue[] = [];
  const result = schema.check(value, root, issues);
  if (result === INVALID || issues.length > 0) throw new ErrorClass(subject, issues);
  return result;
}

/** Like `parse` but returns the issues instead of throwing. */
export function safeParse<T>(
  schema: Schema<T>,
  value: unknown,
  root = '',
): { ok: true; value: T } | { ok: false; issues: Issue[] } {
  const issues: Issue[] = [];
  const result = schema.check(value, root, issues);
  if (result === INVALID || issues.length > 0) return { ok: false, issues };
  return { ok: true, value: result };
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  // An empty key would leave the issue without a path.
  if (key === '') return `${path}[""]`;
  return path ? `${path}.${key}` : key;
}

/** Keys whose values are masked even when the field is unknown (a password put where none belongs). */
const SECRET_KEY = /pass(word)?|pwd|secret|token|credential|private/i;

export interface StringOptions {
  minLength?: number;
  maxLength?: number;
  pattern?: RegExp;
  /** Human description of the pattern, used in the fix. */
  patternHint?: string;
  secret?: boolean;
}

export function string(options: StringOptions = {}): Schema<string> {
  const { minLength = 1, maxLength = 4096, pattern, patternHint, secret = false } = options;
  const expected = patternHint ?? 'a non-empty string';
  return {
    expected,
    secret,
    check(value, path, issues) {
      if (typeof value !== 'string')
        return issue(issues, path, value, 'must be a string', `Set it to ${expected}.`, secret);
      if (value.length < minLength)
        return issue(
          issues,
          path,
          value,
          `must be at least ${minLength} characters`,
          `Set it to ${expected}.`,
          secret,
        );
      if (value.length > maxLength)
        return issue(issues, path, value, `must be at most ${maxLength} characters`, `Shorten it.`, secret);
      if (pattern && !pattern.test(value))
        return issue(issues, path, value, 'has the wrong format', `Set it to ${expected}.`, secret);
      return value;
    },
  };
}

export interface NumberOptions {
  min?: number;
  max?: number;
  integer?: boolean;
  /** Accept numeric strings such as "5432" (environment variables, URL parts). */
  coerce?: boolean;
}

export function number(options: NumberOptions = {}): Schema<number> {
  const {
    min = Number.NEGATIVE_INFINITY,
    max = Number.POSITIVE_INFINITY,
    integer = false,
    coerce = false,
  } = options;
  const range =
    Number.isFinite(min) && Number.isFinite(max)
      ? ` between ${min} and ${max}`
      : Number.isFinite(min)
        ? ` of at least ${min}`
        : Number.isFinite(max)
          ? ` of at most ${max}`
          : '';
  const expected = `${integer ? 'an integer' : 'a number'}${range}`;
  return {
    expected,
    check(value, path, issues) {
      let n = value;
      if (coerce && typeof value === 'string' && value.trim() !== '') n = Number(value);
      if (typeof n !== 'number' || !Number.isFinite(n))
        return issue(issues, path, value, 'must be a number', `Set it to ${expected}.`);
      if (integer && !Number.isInteger(n))
        return issue(issues, path, value, 'must be a whole number', `Set it to ${expected}.`);
      if (n < min || n > max) return issue(issues, path, value, 'is out of range', `Set it to ${expected}.`);
      return n;
    },
  };
}

export function boolean(options: { coerce?: boolean } = {}): Schema<boolean> {
  return {
    expected: 'true or false',
    check(value, path, issues) {
      if (typeof value === 'boolean') return value;
      if (options.coerce && typeof value === 'string') {
        const lowered = value.trim().toLowerCase();
        if (['true', '1', 'yes', 'on'].includes(lowered)) return true;
        if (['false', '0', 'no', 'off'].includes(lowered)) return false;
      }
      return issue(issues, path, value, 'must be true or false', 'Set it to true or false.');
    },
  };
}

export function oneOf<const V extends string>(values: readonly V[]): Schema<V> {
  const expected = `one of ${values.map((v) => `"${v}"`).join(', ')}`;
  return {
    expected,
    check(value, path, issues) {
      if (typeof value === 'string' && (values as readonly string[]).includes(value)) return value as V;
      return issue(issues, path, value, 'is not an accepted value', `Use ${expected}.`);
    },
  };
}

export function literal<const V extends string | number | boolean>(expectedValue: V): Schema<V> {
  return {
    expected: JSON.stringify(expectedValue),
    check(value, path, issues) {
      if (value === expectedValue) return expectedValue;
      return issue(
        issues,
        path,
        value,
        `must be ${JSON.stringify(expectedValue)}`,
        `Set it to ${JSON.stringify(expectedValue)}.`,
      );
    },
  };
}

export interface DurationOptions {
  minMs?: number;
  maxMs?: number;
}

/** A duration written as text (`500ms`, `30s`, `5m`, `1h`), parsed to milliseconds. */
export function duration(options: DurationOptions = {}): Schema<number> {
  const { minMs = 0, maxMs = Number.POSITIVE_INFINITY } = options;
  const bounds = Number.isFinite(maxMs)
    ? ` between ${formatDuration(minMs)} and ${formatDuration(maxMs)}`
    : minMs > 0
      ? ` of at least ${formatDuration(minMs)}`
      : '';
  const expected = `a duration such as "500ms", "30s", "5m" or "1h"${bounds}`;
  return {
    expected,
    check(value, path, issues) {
      if (typeof value !== 'string')
        return issue(issues, path, value, 'must be a duration string', `Write ${expected}.`);
      const ms = parseDuration(value);
      if (ms === undefined) {
        const hint = /^\d+(\.\d+)?$/.test(value.trim())
          ? ` Add a unit: "${value.trim()}s" or "${value.trim()}m".`
          : '';
        return issue(issues, path, value, 'is not a duration', `Write ${expected}.${hint}`);
      }
      if (ms < minMs || ms > maxMs)
        return issue(issues, path, value, 'is out of range', `Write ${expected}.`);
      return ms;
    },
  };
}

export function array<T>(item: Schema<T>, options: { min?: number; max?: number } = {}): Schema<T[]> {
  const { min = 0, max = 10_000 } = options;
  const expected = `a list of ${item.expected}`;
  return {
    expected,
    check(value, path, issues) {
      if (!Array.isArray(value))
        return issue(issues, path, value, 'must be a list', `Set it to ${expected}.`);
      if (value.length < min)
        return issue(issues, path, value, `must have at least ${min} item(s)`, 'Add the missing items.');
      if (value.length > max)
        return issue(issues, path, value, `must have at most ${max} items`, 'Remove items.');
      const out: T[] = [];
      let bad = false;
      value.forEach((element, index) => {
        const parsed = item.check(element, join(path, index), issues);
        if (parsed === INVALID) bad = true;
        else out.push(parsed);
      });
      return bad ? INVALID : out;
    },
  };
}

/** A schema whose key may be left out of an object. */
export interface OptionalSchema<T> extends Schema<T | undefined> {
  readonly isOptional: true;
  readonly optionalKey: true;
}

export function optional<T>(schema: Schema<T>): OptionalSchema<T> {
  return { ...schema, check: schema.check, isOptional: true, optionalKey: true, defaultValue: undefined };
}

export function withDefault<T>(schema: Schema<T>, defaultValue: T): Schema<T> {
  return { ...schema, check: schema.check, isOptional: true, defaultValue };
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S> = { [K in keyof S]: S[K] extends { optionalKey: true } ? K : never }[keyof S];
type Prettify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<S extends Shape> = Prettify<
  { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }
>;

export interface ObjectOptions {
  /** Reject keys the shape does not name (catches typos in config); when false, keep them as they are. @default true */
  strict?: boolean;
}

export function object<S extends Shape>(shape: S, options: ObjectOptions = {}): Schema<ObjectOf<S>> {
  const { strict = true } = options;
  const known = Object.keys(shape);
  return {
    expected: 'an object',
    check(value, path, issues) {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        return issue(issues, path || '(input)', value, 'must be an object', 'Pass a JSON object.');
      const input = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      let bad = false;
      for (const key of known) {
        const schema = shape[key] as Schema<unknown>;
        const fieldPath = join(path, key);
        const raw = input[key];
        if (raw === undefined || raw === null) {
          if (schema.isOptional) {
            if (schema.defaultValue !== undefined) out[key] = schema.defaultValue;
            continue;
          }
          issue(issues, fieldPath, raw, 'is required', `Set it to ${schema.expected}.`);
          bad = true;
          continue;
        }
        const parsed = schema.check(raw, fieldPath, issues);
        if (parsed === INVALID) bad = true;
        else out[key] = parsed;
      }
      if (!strict) {
        // Lenient objects (event envelopes, environments) keep the fields they do not describe.
        for (const key of Object.keys(input)) if (!known.includes(key)) out[key] = input[key];
      } else {
        for (const key of Object.keys(input)) {
          if (!known.includes(key)) {
            const suggestion = closest(key, known);
            issue(
              issues,
              join(path, key),
              input[key],
              'is not a known field',
              suggestion ? `Did you mean "${suggestion}"?` : `Known fields: ${known.join(', ')}.`,
              SECRET_KEY.test(key),
            );
            bad = true;
          }
        }
      }
      return bad ? INVALID : (out as ObjectOf<S>);
    },
  };
}

/** A tagged union: `field` selects which object schema applies. */
export function variant<K extends string, M extends Record<string, Schema<unknown>>>(
  field: K,
  members: M,
): Schema<Infer<M[keyof M]>> {
  const tags = Object.keys(members);
  return {
    expected: `an object with ${field} ${tags.map((t) => `"${t}"`).join(' | ')}`,
    check(value, path, issues) {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        return issue(issues, path || '(input)', value, 'must be an object', 'Pass a JSON object.');
      const tag = (value as Record<string, unknown>)[field];
      const schema = typeof tag === 'string' ? members[tag] : undefined;
      if (!schema)
        return issue(
          issues,
          join(path, field),
          tag,
          'is not an accepted kind',
          `Use one of ${tags.map((t) => `"${t}"`).join(', ')}.`,
        );
      return schema.check(value, path, issues) as Infer<M[keyof M]> | Invalid;
    },
  };
}

/**
 * Any JSON value, unchecked: for payloads produced by pgwarden's own tasks and passed through the
 * workflow, which their consumers check field by field.
 */
export function passthrough<T = unknown>(): Schema<T> {
  return { expected: 'a JSON value', check: (value) => value as T };
}

/** Converts a parsed value (e.g. milliseconds to seconds). */
export function map<T, U>(schema: Schema<T>, convert: (value: T) => U): Schema<U> {
  return {
    expected: schema.expected,
    ...(schema.secret ? { secret: true } : {}),
    check(value, path, issues) {
      const parsed = schema.check(value, path, issues);
      return parsed === INVALID ? INVALID : convert(parsed);
    },
  };
}

/** Narrows a schema with an extra rule. */
export function refine<T>(
  schema: Schema<T>,
  rule: (value: T) => { problem: string; fix: string } | undefined,
): Schema<T> {
  return {
    ...schema,
    check(value, path, issues) {
      const parsed = schema.check(value, path, issues);
      if (parsed === INVALID) return INVALID;
      const broken = rule(parsed);
      return broken ? issue(issues, path, value, broken.problem, broken.fix, schema.secret) : parsed;
    },
  };
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const score = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return bestScore <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(
        (row[j] as number) + 1,
        (row[j - 1] as number) + 1,
        previous + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      previous = current;
    }
  }
  return row[b.length] as number;
}
