/**
 * One probe against a hostile server, in a process of its own so its memory is its own. Started by
 * bench/hostile.ts with BENCH_HOSTILE (JSON) in the environment; prints one JSON line.
 */
import { silentLogger } from '../shared/logger.ts';
import { probe } from '../shared/probe/snapshot.ts';

export interface HostileInput {
  port: number;
  tls: 'disable' | 'require';
}

export interface HostileOutput {
  ms: number;
  maxRssMb: number;
  category: string | null;
  message: string | null;
}

const input = JSON.parse(process.env.BENCH_HOSTILE ?? '') as HostileInput;
const started = performance.now();
const result = await probe(
  {
    host: '127.0.0.1',
    port: input.port,
    database: 'app',
    user: 'pgwarden_monitor',
    auth: { kind: 'password', password: 'bench-hostile-pw' },
    tls: { mode: input.tls },
  },
  { label: 'hostile' },
  { logger: silentLogger },
);
const output: HostileOutput = {
  ms: performance.now() - started,
  maxRssMb: process.resourceUsage().maxRSS / 1024,
  category: result.ok ? null : result.failure.category,
  message: result.ok ? null : result.failure.message,
};
process.stdout.write(`${JSON.stringify(output)}\n`);
