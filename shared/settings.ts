/**
 * A function's settings as one contract: for each setting its environment variable, its bounds and
 * default (as a schema), and how a value is written into the environment. The CDK app writes a
 * function's environment with `toEnvironment`, the handler reads it back with `parse` at cold start,
 * and local mode takes the same `defaults`, so a value one side writes is a value the other accepts.
 */
import { durationText } from './duration.ts';
import { ConfigError } from './errors.ts';
import { type Fleet, fleetFromEnvironment } from './fleet.ts';
import {
  duration,
  number,
  type ObjectOf,
  object,
  optional,
  parse,
  type Schema,
  string,
  withDefault,
} from './validate.ts';

/**
 * Parses a function's environment once, at cold start. A bad value throws a ConfigError naming the
 * variable, the value and the fix, so the first invocation fails loudly instead of misbehaving.
 */
export function parseEnvironment<S extends Record<string, Schema<unknown>>>(
  shape: S,
  env: Record<string, string | undefined>,
  functionName: string,
): ObjectOf<S> {
  return parse(
    object(shape, { strict: false }),
    env,
    `environment of the ${functionName} function`,
    ConfigError,
  );
}

interface SettingBase<T> {
  /** The environment variable: a deployed contract, never renamed. */
  readonly variable: string;
  /** Parses the variable's text: bounds, and the default when the variable is unset. */
  readonly schema: Schema<T>;
  /** Writes a value as the variable's text. */
  write(value: T): string;
}

/** A setting with a default: the environment may leave it out. */
export interface Tunable<T> extends SettingBase<T> {
  readonly defaultValue: T;
}

/** A setting only the deployment knows (a function name, a table, an ARN): the environment must carry it. */
export interface Reference extends SettingBase<string> {
  readonly defaultValue?: never;
  readonly optional?: false;
}

/** A setting that may be absent, with no default (a link). */
export interface OptionalSetting extends SettingBase<string | undefined> {
  readonly defaultValue?: never;
  readonly optional: true;
}

export type Setting = Tunable<unknown> | Reference | OptionalSetting;
type SettingsShape = Record<string, Setting>;

type ValueOf<S> = S extends SettingBase<infer T> ? T : never;

/** The parsed settings: one value per setting (defaults applied). */
export type SettingsOf<S extends SettingsShape> = { -readonly [K in keyof S]: ValueOf<S[K]> };

/**
 * What `toEnvironment` takes: the references known so far, and any tunable or optional setting to
 * override. A reference to something created later is added then, under its setting's `variable`.
 */
export type EnvironmentInput<S extends SettingsShape> = { [K in keyof S]?: ValueOf<S[K]> };

export interface DurationBounds {
  readonly minMs: number;
  readonly maxMs: number;
  readonly defaultMs: number;
}

/** A duration variable ("10s", "20m"), parsed to milliseconds. */
export function durationSetting(variable: string, bounds: DurationBounds): Tunable<number> & DurationBounds {
  return {
    variable,
    ...bounds,
    schema: withDefault(duration({ minMs: bounds.minMs, maxMs: bounds.maxMs }), bounds.defaultMs),
    defaultValue: bounds.defaultMs,
    write: durationText,
  };
}

/** A whole-number variable such as a concurrency. */
export function countSetting(
  variable: string,
  bounds: { readonly min: number; readonly max: number; readonly defaultValue: number },
): Tunable<number> & { readonly min: number; readonly max: number } {
  return {
    variable,
    min: bounds.min,
    max: bounds.max,
    schema: withDefault(
      number({ min: bounds.min, max: bounds.max, integer: true, coerce: true }),
      bounds.defaultValue,
    ),
    defaultValue: bounds.defaultValue,
    write: String,
  };
}

/** A text variable with a default. */
export function textSetting(
  variable: string,
  options: { readonly maxLength: number; readonly defaultValue: string },
): Tunable<string> {
  return {
    variable,
    schema: withDefault(string({ maxLength: options.maxLength }), options.defaultValue),
    defaultValue: options.defaultValue,
    write: (value) => value,
  };
}

/** A name or ARN the deployment fills in. */
export function referenceSetting(
  variable: string,
  options: { readonly maxLength?: number; readonly pattern?: RegExp; readonly patternHint: string },
): Reference {
  return {
    variable,
    schema: string({
      maxLength: options.maxLength ?? 4096,
      patternHint: options.patternHint,
      ...(options.pattern ? { pattern: options.pattern } : {}),
    }),
    write: (value) => value,
  };
}

/** An optional text variable (a link): absent means "none". */
export function optionalSetting(
  variable: string,
  options: { readonly pattern: RegExp; readonly patternHint: string },
): OptionalSetting {
  return {
    variable,
    optional: true,
    schema: optional(string({ pattern: options.pattern, patternHint: options.patternHint })),
    write: (value) => value ?? '',
  };
}

/**
 * The timeouts of a function's database sessions (probe, remediate): connect and statement, each well
 * below the function's own timeout.
 */
export function sessionTimeoutSettings(defaults: {
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
}) {
  return {
    connectTimeoutMs: durationSetting('PGWARDEN_CONNECT_TIMEOUT', {
      minMs: 100,
      maxMs: 20_000,
      defaultMs: defaults.connectTimeoutMs,
    }),
    statementTimeoutMs: durationSetting('PGWARDEN_STATEMENT_TIMEOUT', {
      minMs: 100,
      maxMs: 20_000,
      defaultMs: defaults.statementTimeoutMs,
    }),
  };
}

/** One function's settings contract. */
export interface FunctionSettings<S extends SettingsShape> {
  /** The function, as named in messages ("environment of the probe function"). */
  readonly functionName: string;
  readonly settings: S;
  /** Each setting's default (tunables only). */
  readonly defaults: { readonly [K in keyof S as S[K] extends Tunable<unknown> ? K : never]: ValueOf<S[K]> };
  /**
   * The function's variables (besides the fleet's): the references given, every tunable (its default
   * unless overridden, so the template shows what is deployed), and the optional settings given.
   */
  toEnvironment(input: EnvironmentInput<S>): Record<string, string>;
  /** Reads the settings from an environment; a bad value throws a `ConfigError` naming the variable. */
  parse(env: Record<string, string | undefined>): SettingsOf<S>;
  /** `parse`, and the fleet the CDK app wrote beside the settings. */
  parseWithFleet(env: Record<string, string | undefined>): SettingsOf<S> & { fleet: Fleet };
}

/** Declares a function's settings contract. */
export function defineSettings<S extends SettingsShape>(
  functionName: string,
  settings: S,
): FunctionSettings<S> {
  const entries = Object.entries(settings) as Array<[keyof S & string, Setting]>;
  const defaults = Object.fromEntries(
    entries.filter(([, s]) => s.defaultValue !== undefined).map(([key, s]) => [key, s.defaultValue]),
  ) as FunctionSettings<S>['defaults'];
  const shape = Object.fromEntries(entries.map(([, s]) => [s.variable, s.schema])) as Record<
    string,
    Schema<unknown>
  >;
  const parse = (env: Record<string, string | undefined>): SettingsOf<S> => {
    const parsed = parseEnvironment(shape, env, functionName) as Record<string, unknown>;
    const values: Record<string, unknown> = {};
    for (const [key, s] of entries) if (parsed[s.variable] !== undefined) values[key] = parsed[s.variable];
    return values as SettingsOf<S>;
  };
  return {
    functionName,
    settings,
    defaults,
    toEnvironment(input) {
      const given = input as Record<string, unknown>;
      const env: Record<string, string> = {};
      for (const [key, s] of entries) {
        const value = given[key] ?? s.defaultValue;
        if (value === undefined) continue;
        env[s.variable] = (s.write as (v: unknown) => string)(value);
      }
      return env;
    },
    parse,
    parseWithFleet(env) {
      const values = parse(env);
      return { ...values, fleet: fleetFromEnvironment(env, functionName) };
    },
  };
}
