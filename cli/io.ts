/** Where a command's output goes; tests and local mode can capture it. Everything is redacted. */
import { redact } from '../shared/redact.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
  /** Whether stdout is a terminal (colour, live refresh). */
  isTty: boolean;
}

export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(redact(text)),
    err: (text) => process.stderr.write(redact(text)),
    env: process.env,
    isTty: Boolean(process.stdout.isTTY),
  };
}

/** Exit codes are a contract. */
export const EXIT = { ok: 0, fault: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
