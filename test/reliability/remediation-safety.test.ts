/**
 * Remediation safety as properties. The planner's guardrail, cap, threshold and dry-run properties are
 * in test/unit/remediation-policy.test.ts; these add what the audit promises (every matching session
 * accounted for), order independence and cap monotonicity, then check the executor end to end on
 * seeded random populations of real sessions.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { type DbSession, openSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';
import {
  type ActionReason,
  type PlanRequest,
  planRemediation,
  REMEDIATION_ACTIONS,
  type RemediationAction,
} from '../../shared/remediation/policy.ts';
import { type RemediationSuccess, remediate } from '../../shared/remediation/remediator.ts';
import type { SessionInfo } from '../../shared/remediation/sessions-sql.ts';
import { DEFAULT_REMEDIATION, type RemediationPolicy } from '../../shared/target.ts';
import { createMonitorRole, startTestServer, type TestServer, waitFor } from '../helpers/postgres.ts';

// Small domains shrink to readable counterexamples: pids up to 60, a handful of names, whole seconds.
const USERS = ['app', 'batch', 'ops', 'rdsadmin', null] as const;
const APPLICATIONS = ['orders-api', 'etl', 'psql', '', 'pgwarden-probe'] as const;
const STATES = ['idle', 'idle in transaction', 'idle in transaction (aborted)', 'active', null] as const;

const sessionArb: fc.Arbitrary<SessionInfo> = fc.record({
  pid: fc.integer({ min: 1, max: 60 }),
  user: fc.constantFrom(...USERS),
  application: fc.constantFrom(...APPLICATIONS),
  clientAddr: fc.constant('10.0.0.5'),
  state: fc.constantFrom(...STATES),
  backendType: fc.constantFrom('client backend', 'client backend', 'client backend', 'walsender'),
  waitEventType: fc.constant(null),
  idleSeconds: fc.option(fc.integer({ min: 0, max: 120 }), { nil: null, freq: 6 }),
  transactionSeconds: fc.constant(null),
  querySeconds: fc.option(fc.integer({ min: 0, max: 120 }), { nil: null, freq: 6 }),
  stateChange: fc.constant('2026-01-01T00:00:00.000001+00:00'),
  superuser: fc.boolean(),
  lockChainHead: fc.boolean(),
  query: fc.constant(null),
});

const populationArb = fc.uniqueArray(sessionArb, { selector: (s) => s.pid, maxLength: 25 });

const policyArb: fc.Arbitrary<RemediationPolicy> = fc
  .record({
    idleAfterSeconds: fc.integer({ min: 1, max: 100 }),
    idleInTransactionAfterSeconds: fc.integer({ min: 1, max: 100 }),
    blockerIdleSeconds: fc.integer({ min: 0, max: 100 }),
    cancelQueriesAfterSeconds: fc.option(fc.integer({ min: 1, max: 100 }), { nil: null }),
    terminateBlockers: fc.boolean(),
    maxPerRun: fc.integer({ min: 1, max: 6 }),
    protectUsers: fc.subarray(['app', 'batch', 'ops']),
    protectApplications: fc.subarray(['orders-api', 'etl', 'psql']),
    pressureIdle: fc.integer({ min: 1, max: 100 }),
  })
  .map(({ pressureIdle, ...p }) => ({
    ...DEFAULT_REMEDIATION,
    ...p,
    pressure: { utilizationPct: 95, idleAfterSeconds: pressureIdle },
  }));

const requestArb: fc.Arbitrary<PlanRequest> = fc.record(
  {
    policy: policyArb,
    actions: fc.subarray([...REMEDIATION_ACTIONS], { minLength: 1 }),
    pressure: fc.record({ active: fc.boolean() }),
    ownUser: fc.constantFrom('app', 'ops'),
  },
  { requiredKeys: ['policy', 'actions', 'pressure'] },
);

const IIT: readonly string[] = ['idle in transaction', 'idle in transaction (aborted)'];

/** The rule a session matches, restated from the runbook's rules in priority order. */
function expectedMatch(s: SessionInfo, req: PlanRequest): ActionReason | undefined {
  const p = req.policy;
  const has = (a: RemediationAction) => req.actions.includes(a);
  const idle = s.idleSeconds;
  if (s.state !== null && IIT.includes(s.state) && idle !== null) {
    if (has('blockers') && p.terminateBlockers && s.lockChainHead && idle >= p.blockerIdleSeconds)
      return 'lock_chain_blocker';
    if (has('idle_in_transaction') && idle > p.idleInTransactionAfterSeconds) return 'idle_in_transaction';
    return undefined;
  }
  if (s.state === 'idle' && idle !== null && has('idle')) {
    if (idle > p.idleAfterSeconds) return 'idle';
    if (req.pressure.active && idle > p.pressure.idleAfterSeconds) return 'idle_under_pressure';
    return undefined;
  }
  if (s.state === 'active' && has('cancel_queries') && p.cancelQueriesAfterSeconds !== null) {
    if (s.querySeconds !== null && s.querySeconds > p.cancelQueriesAfterSeconds) return 'long_query';
  }
  return undefined;
}

/** Why a session must be left alone, restated from the guardrails (first that applies). */
function expectedGuardrail(s: SessionInfo, p: RemediationPolicy, ownUser?: string): string | undefined {
  if (s.backendType !== 'client backend') return 'not_client_backend';
  if (s.user === 'rdsadmin') return 'rdsadmin';
  if (s.superuser) return 'superuser';
  if (s.user !== null && p.protectUsers.includes(s.user)) return 'protected_user';
  if (p.protectApplications.includes(s.application)) return 'protected_application';
  // The name alone is what any client can claim; pgwarden's own sessions also run as its role.
  if (ownUser !== undefined && s.user === ownUser && s.application.startsWith('pgwarden-'))
    return 'pgwarden_session';
  return undefined;
}

describe('remediation plan properties the audit relies on', () => {
  it('accounts for every session that matches a rule: acted on, or skipped with its guardrail or the cap', () => {
    fc.assert(
      fc.property(populationArb, requestArb, (sessions, req) => {
        const plan = planRemediation(sessions, req);
        const acted = new Map(plan.act.map((a) => [a.session.pid, a]));
        const skipped = new Map(plan.skipped.map((s) => [s.session.pid, s]));
        for (const s of sessions) {
          const match = expectedMatch(s, req);
          if (!match) {
            expect(acted.has(s.pid) || skipped.has(s.pid)).toBe(false);
            continue;
          }
          const guardrail = expectedGuardrail(s, req.policy, req.ownUser);
          if (guardrail) {
            expect(skipped.get(s.pid)).toMatchObject({ reason: guardrail, matched: match });
          } else if (acted.has(s.pid)) {
            expect(acted.get(s.pid)?.reason).toBe(match);
          } else {
            expect(skipped.get(s.pid)).toMatchObject({ reason: 'cap_reached', matched: match });
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('plans the same whatever order the server lists the sessions in', () => {
    fc.assert(
      fc.property(
        populationArb.chain((sessions) =>
          fc.tuple(fc.constant(sessions), fc.shuffledSubarray(sessions, { minLength: sessions.length })),
        ),
        requestArb,
        ([sessions, shuffled], req) => {
          expect(planRemediation(shuffled, req)).toEqual(planRemediation(sessions, req));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('only extends the action list when the cap is raised, never reorders or replaces it', () => {
    fc.assert(
      fc.property(populationArb, requestArb, fc.integer({ min: 1, max: 10 }), (sessions, req, more) => {
        const small = planRemediation(sessions, req).act;
        const policy = { ...req.policy, maxPerRun: req.policy.maxPerRun + more };
        const large = planRemediation(sessions, { ...req, policy }).act;
        expect(large.slice(0, small.length)).toEqual(small);
      }),
      { numRuns: 300 },
    );
  });
});

/** One session of a random population, described so fast-check prints it when a run fails. */
interface PlannedSession {
  role: 'app_a' | 'app_b' | 'guarded' | 'postgres';
  application: 'orders-api' | 'etl' | 'migrations' | 'pgwarden-impostor' | '';
  inTransaction: boolean;
}

const plannedSessionArb: fc.Arbitrary<PlannedSession> = fc.record({
  role: fc.constantFrom('app_a', 'app_b', 'guarded', 'postgres'),
  application: fc.constantFrom('orders-api', 'etl', 'migrations', 'pgwarden-impostor', ''),
  inTransaction: fc.boolean(),
});

const realPopulationArb = fc.record({
  sessions: fc.array(plannedSessionArb, { minLength: 1, maxLength: 9 }),
  maxPerRun: fc.integer({ min: 1, max: 5 }),
});

describe('remediation on real sessions (seeded random populations)', () => {
  let server: TestServer;
  let monitor: ConnectionSpec;
  const passwords: Record<string, string> = {
    app_a: 'app-a-pw-1',
    app_b: 'app-b-pw-1',
    guarded: 'guarded-pw-1',
  };

  beforeAll(async () => {
    server = await startTestServer({ maxConnections: 40 });
    const role = await createMonitorRole(server);
    monitor = server.spec({ user: role.user, password: role.password });
    for (const [name, password] of Object.entries(passwords))
      await server.admin(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
  });
  afterAll(async () => {
    await server?.destroy();
  });

  /** Thresholds under a second so the population ages quickly; the same rules as production. */
  const policyFor = (maxPerRun: number): RemediationPolicy => ({
    ...DEFAULT_REMEDIATION,
    idleAfterSeconds: 0.3,
    idleInTransactionAfterSeconds: 0.3,
    pressure: { utilizationPct: 95, idleAfterSeconds: 0.3 },
    maxPerRun,
    protectUsers: ['guarded'],
    protectApplications: ['migrations'],
  });

  // A pgwarden- name from an application role is a claim, not protection: only the monitor role's
  // own sessions are pgwarden's, and none of these runs as it.
  const isProtected = (s: PlannedSession) =>
    s.role === 'guarded' || s.role === 'postgres' || s.application === 'migrations';

  async function openPopulation(
    planned: PlannedSession[],
  ): Promise<Array<PlannedSession & { session: DbSession }>> {
    const out: Array<PlannedSession & { session: DbSession }> = [];
    for (const p of planned) {
      const password = p.role === 'postgres' ? server.password : (passwords[p.role] as string);
      const session = await openSession(
        server.spec({ user: p.role, password }),
        { user: p.role, password },
        {
          connectTimeoutMs: 5_000,
          statementTimeoutMs: 0,
          applicationName: p.application,
          logger: silentLogger,
        },
      );
      if (p.inTransaction) await session.query('begin', 'BEGIN');
      await session.query('touch', 'SELECT 1');
      out.push({ ...p, session });
    }
    return out;
  }

  async function alive(pids: readonly number[]): Promise<Set<number>> {
    const rows = await server.admin<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])',
      [pids],
    );
    return new Set(rows.map((r) => r.pid));
  }

  it('never touches a protected session, stays under the cap, changes nothing in dry-run, and audits exactly what it terminated', async () => {
    await fc.assert(
      fc.asyncProperty(realPopulationArb, async ({ sessions: planned, maxPerRun }) => {
        const population = await openPopulation(planned);
        const pids = population.map((p) => p.session.pid);
        const policy = policyFor(maxPerRun);
        const run = async (dryRun: boolean) => {
          const result = await remediate(
            monitor,
            { targetId: 'safety', policy, actions: ['idle', 'idle_in_transaction'], dryRun },
            { logger: silentLogger },
          );
          expect(result.ok, JSON.stringify(result)).toBe(true);
          return result as RemediationSuccess;
        };
        try {
          await new Promise((resolve) => setTimeout(resolve, 400));

          const dry = await run(true);
          expect(dry.dryRun).toBe(true);
          expect(dry.terminated.every((r) => r.outcome === 'would_terminate')).toBe(true);
          expect(dry.terminated.length).toBeLessThanOrEqual(maxPerRun);
          expect(await alive(pids)).toEqual(new Set(pids));

          const real = await run(false);
          const terminated = real.terminated.map((r) => r.pid);
          expect(real.terminated.every((r) => r.outcome === 'terminated')).toBe(true);
          expect(terminated.length).toBeLessThanOrEqual(maxPerRun);
          // A dry run reports exactly what the real run then does.
          expect(terminated).toEqual(dry.terminated.map((r) => r.pid));
          // Everything it terminated was one of ours and unprotected; everything protected was skipped.
          for (const p of population) {
            if (terminated.includes(p.session.pid)) expect(isProtected(p), JSON.stringify(p)).toBe(false);
            if (isProtected(p))
              expect(
                real.skipped.map((s) => s.pid),
                JSON.stringify(p),
              ).toContain(p.session.pid);
          }
          // Every pid in the audit is gone, and every session that is gone is in the audit.
          const after = await waitFor(async () => {
            const left = await alive(pids);
            return terminated.every((pid) => !left.has(pid)) ? left : undefined;
          }, 5_000);
          expect(pids.filter((pid) => !after.has(pid)).sort()).toEqual([...terminated].sort());
          for (const p of population.filter(isProtected)) expect(after.has(p.session.pid)).toBe(true);
          // Unprotected sessions are left only because the cap was reached.
          const unprotected = population.filter((p) => !isProtected(p)).length;
          expect(terminated.length).toBe(Math.min(unprotected, maxPerRun));
        } finally {
          await Promise.all(population.map((p) => p.session.close()));
        }
      }),
      { numRuns: 4, seed: 20261126 },
    );
  });
});
