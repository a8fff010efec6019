/**
 * Argument parsing on node:util parseArgs, with the errors every pgwarden command gives: the flag, the
 * value and the fix.
 */
import { parseArgs } from 'node:util';
import type { ConnectionSpec } from '../shared/connection.ts';
import { parseDatabaseUrl } from '../shared/connection.ts';
import { type Issue, UsageError } from '../shared/errors.ts';
import { duration, number, type Schema } from '../shared/validate.ts';

export type FlagSpec =
  | { type: 'boolean'; describe: string }
  | { type: 'string'; describe: string; multiple?: boolean; value?: string };

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  /** Positional arguments accepted (names, for help). */
  positionals?: string[];
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseCommandArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options: Record<string, { type: 'boolean' | 'string'; multiple?: boolean }> = {};
  for (const [name, flag] of Object.entries(spec.flags)) {
    options[name] =
      flag.type === 'string' && flag.multiple ? { type: 'string', multiple: true } : { type: flag.type };
  }
  try {
    const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    const maxPositionals = spec.positionals?.length ?? 0;
    if (parsed.positionals.length > maxPositionals) {
      const extra = parsed.positionals[maxPositionals] ?? '';
      throw new UsageError('arguments', [
        {
          path: extra,
          received: JSON.stringify(extra),
          problem: 'is not an argument this command takes',
          fix: `Usage: ${spec.usage}`,
        },
      ]);
    }
    return { values: parsed.values as ParsedArgs['values'], positionals: parsed.positionals };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? '(arguments)';
    const known = Object.keys(spec.flags).map((f) => `--${f}`);
    const code = (error as { code?: string }).code;
    const problem =
      code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
        ? 'is not a flag of this command'
        : code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE'
          ? 'needs a value'
          : message;
    throw new UsageError('arguments', [
      {
        path: flag,
        received: JSON.stringify(flag),
        problem,
        fix: `Flags: ${known.join(', ')}. Usage: ${spec.usage}`,
      },
    ]);
  }
}

/** Collects issues across flags so one run reports every mistake. */
export class FlagReader {
  readonly issues: Issue[] = [];
  private readonly spec: CommandSpec;
  private readonly args: ParsedArgs;

  constructor(spec: CommandSpec, args: ParsedArgs) {
    this.spec = spec;
    this.args = args;
  }

  string(name: string): string | undefined {
    const value = this.args.values[name];
    return typeof value === 'string' ? value : undefined;
  }

  strings(name: string): string[] {
    const value = this.args.values[name];
    return Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  }

  /** Every value of a repeatable flag that passes `schema`; the others become issues. */
  checkedStrings(name: string, schema: Schema<string>): string[] {
    const out: string[] = [];
    for (const raw of this.strings(name)) {
      const parsed = schema.check(raw, `--${name}`, this.issues);
      if (typeof parsed === 'string') out.push(parsed);
    }
    return out;
  }

  boolean(name: string): boolean {
    return this.args.values[name] === true;
  }

  /** A duration flag in milliseconds. */
  duration(name: string, fallbackMs: number, options: { minMs?: number; maxMs?: number } = {}): number {
    const raw = this.string(name);
    if (raw === undefined) return fallbackMs;
    const issues: Issue[] = [];
    const parsed = duration(options).check(raw, `--${name}`, issues);
    if (typeof parsed === 'number') return parsed;
    this.issues.push(...issues);
    return fallbackMs;
  }

  integer(name: string, fallback: number, options: { min?: number; max?: number } = {}): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const issues: Issue[] = [];
    const parsed = number({ ...options, integer: true, coerce: true }).check(raw, `--${name}`, issues);
    if (typeof parsed === 'number') return parsed;
    this.issues.push(...issues);
    return fallback;
  }

  /** The database to act on: --url, else DATABASE_URL. PGPASSWORD fills a URL without a password. */
  database(env: Record<string, string | undefined>, required = true): ConnectionSpec | undefined {
    const raw = this.string('url') ?? (env.DATABASE_URL || undefined);
    if (raw === undefined) {
      if (required)
        this.issues.push({
          path: '--url',
          received: 'nothing',
          problem: 'is required',
          fix: 'Pass --url postgres://USER@HOST:PORT/DATABASE (or set DATABASE_URL); keep the password in PGPASSWORD.',
        });
      return undefined;
    }
    const parsed = parseDatabaseUrl(raw, {
      path: '--url',
      ...(env.PGPASSWORD ? { passwordFallback: env.PGPASSWORD } : {}),
    });
    if (parsed.ok) return parsed.spec;
    this.issues.push(...parsed.issues);
    return undefined;
  }

  /** Throws a UsageError listing every issue found so far. */
  done(): void {
    if (this.issues.length > 0) throw new UsageError('arguments', this.issues);
  }
}

export function helpText(spec: CommandSpec): string {
  const lines = [`${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Flags:'];
  for (const [name, flag] of Object.entries(spec.flags)) {
    const value = flag.type === 'string' ? ` <${flag.value ?? 'value'}>` : '';
    lines.push(`  --${name}${value}`.padEnd(34) + flag.describe);
  }
  return `${lines.join('\n')}\n`;
}
