import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ActionReason,
  appliedThresholds,
  candidateBounds,
  type PlanRequest,
  planRemediation,
  REMEDIATION_ACTIONS,
  type RemediationAction,
} from '../../shared/remediation/policy.ts';
import type { CandidateBounds, SessionInfo } from '../../shared/remediation/sessions-sql.ts';
import { DEFAULT_REMEDIATION, type RemediationPolicy } from '../../shared/target.ts';

const ALL: RemediationAction[] = [...REMEDIATION_ACTIONS];

function session(overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    pid: 100,
    user: 'app',
    application: 'orders-api',
    clientAddr: '10.0.0.5',
    state: 'idle',
    backendType: 'client backend',
    waitEventType: 'Client',
    idleSeconds: 10,
    transactionSeconds: null,
    querySeconds: 10,
    stateChange: '2026-01-01T00:00:00.123456+00:00',
    superuser: false,
    lockChainHead: false,
    query: null,
    ...overrides,
  };
}

/** Small thresholds so each case reads at a glance. */
function policy(overrides: Partial<RemediationPolicy> = {}): RemediationPolicy {
  return {
    ...DEFAULT_REMEDIATION,
    idleAfterSeconds: 100,
    idleInTransactionAfterSeconds: 50,
    blockerIdleSeconds: 10,
    cancelQueriesAfterSeconds: null,
    pressure: { utilizationPct: 90, idleAfterSeconds: 20 },
    ...overrides,
  };
}

function request(overrides: Partial<PlanRequest> = {}): PlanRequest {
  return { policy: policy(), actions: ALL, pressure: { active: false }, ...overrides };
}

const acted = (sessions: SessionInfo[], req: PlanRequest) =>
  planRemediation(sessions, req).act.map((a) => ({ pid: a.session.pid, action: a.action, reason: a.reason }));
const skips = (sessions: SessionInfo[], req: PlanRequest) =>
  planRemediation(sessions, req).skipped.map((s) => ({
    pid: s.session.pid,
    reason: s.reason,
    matched: s.matched,
  }));

describe('planRemediation rules', () => {
  it('terminates sessions idle longer than idleAfterSeconds, and only longer', () => {
    const sessions = [
      session({ pid: 1, idleSeconds: 100.5 }),
      session({ pid: 2, idleSeconds: 100 }),
      session({ pid: 3, idleSeconds: 5 }),
    ];
    expect(acted(sessions, request())).toEqual([{ pid: 1, action: 'terminate', reason: 'idle' }]);
    expect(skips(sessions, request())).toEqual([]);
  });

  it('leaves idle sessions alone when the idle rule is not requested', () => {
    const sessions = [session({ pid: 1, idleSeconds: 10_000 })];
    expect(
      acted(sessions, request({ actions: ['idle_in_transaction', 'blockers', 'cancel_queries'] })),
    ).toEqual([]);
  });

  it('applies the escalated idle threshold under pressure and says so in the reason', () => {
    const sessions = [
      session({ pid: 1, idleSeconds: 30 }),
      session({ pid: 2, idleSeconds: 150 }),
      session({ pid: 3, idleSeconds: 15 }),
    ];
    const req = request({ pressure: { active: true, reason: 'utilization 95% ≥ 90%' } });
    expect(acted(sessions, req)).toEqual([
      { pid: 2, action: 'terminate', reason: 'idle' },
      { pid: 1, action: 'terminate', reason: 'idle_under_pressure' },
    ]);
  });

  it('ignores the escalated idle threshold without pressure', () => {
    expect(acted([session({ pid: 1, idleSeconds: 30 })], request())).toEqual([]);
  });

  it('terminates sessions idle in a transaction, aborted or not, past their threshold', () => {
    const sessions = [
      session({ pid: 1, state: 'idle in transaction', idleSeconds: 60 }),
      session({ pid: 2, state: 'idle in transaction (aborted)', idleSeconds: 70 }),
      session({ pid: 3, state: 'idle in transaction', idleSeconds: 40 }),
    ];
    expect(acted(sessions, request())).toEqual([
      { pid: 2, action: 'terminate', reason: 'idle_in_transaction' },
      { pid: 1, action: 'terminate', reason: 'idle_in_transaction' },
    ]);
  });

  it('terminates an idle-in-transaction lock-chain head once it has idled blockerIdleSeconds', () => {
    const sessions = [
      session({ pid: 1, state: 'idle in transaction', lockChainHead: true, idleSeconds: 10 }),
      session({ pid: 2, state: 'idle in transaction', lockChainHead: true, idleSeconds: 9 }),
      session({ pid: 3, state: 'idle in transaction', lockChainHead: false, idleSeconds: 30 }),
    ];
    expect(acted(sessions, request())).toEqual([
      { pid: 1, action: 'terminate', reason: 'lock_chain_blocker' },
    ]);
  });

  it('never terminates an active lock-chain head', () => {
    const sessions = [
      session({ pid: 1, state: 'active', lockChainHead: true, idleSeconds: 500, querySeconds: 500 }),
    ];
    expect(acted(sessions, request({ actions: ['blockers', 'idle_in_transaction', 'idle'] }))).toEqual([]);
  });

  it('skips the blocker rule when the policy turns it off, leaving the idle-in-transaction rule', () => {
    const req = request({ policy: policy({ terminateBlockers: false }) });
    const sessions = [
      session({ pid: 1, state: 'idle in transaction', lockChainHead: true, idleSeconds: 30 }),
      session({ pid: 2, state: 'idle in transaction', lockChainHead: true, idleSeconds: 60 }),
    ];
    expect(acted(sessions, req)).toEqual([{ pid: 2, action: 'terminate', reason: 'idle_in_transaction' }]);
  });

  it('cancels long queries only when cancelQueriesAfterSeconds is set', () => {
    const sessions = [session({ pid: 1, state: 'active', querySeconds: 400 })];
    expect(acted(sessions, request())).toEqual([]);
    const req = request({ policy: policy({ cancelQueriesAfterSeconds: 300 }) });
    expect(acted(sessions, req)).toEqual([{ pid: 1, action: 'cancel', reason: 'long_query' }]);
    expect(acted([session({ pid: 1, state: 'active', querySeconds: 300 })], req)).toEqual([]);
  });

  it('lists neither the sessions that match no rule nor sessions in other states', () => {
    const sessions = [
      session({ pid: 1, idleSeconds: 1 }),
      session({ pid: 2, state: null, backendType: 'checkpointer', idleSeconds: null, querySeconds: null }),
      session({ pid: 3, state: 'fastpath function call', idleSeconds: 5_000 }),
      session({ pid: 4, state: 'idle', idleSeconds: null }),
    ];
    expect(planRemediation(sessions, request())).toEqual({ act: [], skipped: [] });
  });

  it('acts once on a session matching several rules, by the highest-priority one', () => {
    const sessions = [
      session({ pid: 1, state: 'idle in transaction', lockChainHead: true, idleSeconds: 500 }),
    ];
    expect(acted(sessions, request())).toEqual([
      { pid: 1, action: 'terminate', reason: 'lock_chain_blocker' },
    ]);
  });

  it('judges a pid listed twice once', () => {
    const sessions = [session({ pid: 1, idleSeconds: 500 }), session({ pid: 1, idleSeconds: 500 })];
    expect(acted(sessions, request())).toHaveLength(1);
  });
});

describe('planRemediation guardrails', () => {
  const old = { idleSeconds: 500 };
  it.each<[string, Partial<SessionInfo>, Partial<RemediationPolicy>]>([
    ['not_client_backend', { backendType: 'walsender' }, {}],
    ['not_client_backend', { backendType: 'autovacuum worker' }, {}],
    ['not_client_backend', { backendType: 'background worker' }, {}],
    ['rdsadmin', { user: 'rdsadmin' }, {}],
    ['superuser', { superuser: true, user: 'postgres' }, {}],
    ['protected_user', { user: 'batch' }, { protectUsers: ['batch'] }],
    ['protected_application', { application: 'migrations' }, { protectApplications: ['migrations'] }],
    ['pgwarden_session', { user: 'pgwarden_monitor', application: 'pgwarden-probe' }, {}],
    ['pgwarden_session', { user: 'pgwarden_monitor', application: 'pgwarden-remediate' }, {}],
  ])('skips a matching session with %s', (reason, overrides, policyOverrides) => {
    const req = request({ policy: policy(policyOverrides), ownUser: 'pgwarden_monitor' });
    const sessions = [session({ pid: 7, ...old, ...overrides })];
    expect(acted(sessions, req)).toEqual([]);
    expect(skips(sessions, req)).toEqual([{ pid: 7, reason, matched: 'idle' }]);
  });

  it('reports the first guardrail in order when several apply', () => {
    const req = request({
      policy: policy({ protectUsers: ['rdsadmin', 'ops'], protectApplications: ['psql'] }),
    });
    const sessions = [
      session({ pid: 1, ...old, backendType: 'walsender', user: 'rdsadmin', superuser: true }),
      session({ pid: 2, ...old, user: 'rdsadmin', superuser: true }),
      session({ pid: 3, ...old, user: 'ops', superuser: true }),
      session({ pid: 4, ...old, user: 'ops', application: 'psql' }),
      session({ pid: 5, ...old, application: 'psql' }),
    ];
    expect(skips(sessions, req).map((s) => [s.pid, s.reason])).toEqual([
      [1, 'not_client_backend'],
      [2, 'rdsadmin'],
      [3, 'superuser'],
      [4, 'protected_user'],
      [5, 'protected_application'],
    ]);
  });

  it("takes a pgwarden- name for pgwarden's own session only from pgwarden's own role", () => {
    const sessions = [
      session({ pid: 1, ...old, user: 'app', application: 'pgwarden-probe' }),
      session({ pid: 2, ...old, user: 'pgwarden_monitor', application: 'pgwarden-probe' }),
      session({ pid: 3, ...old, user: 'pgwarden_monitor', application: 'psql' }),
    ];
    expect(acted(sessions, request({ ownUser: 'pgwarden_monitor' })).map((a) => a.pid)).toEqual([1, 3]);
    expect(acted(sessions, request()).map((a) => a.pid)).toEqual([1, 2, 3]);
  });

  it('matches protected applications exactly, and the pgwarden prefix only as a prefix', () => {
    const req = request({ policy: policy({ protectApplications: ['orders-api'] }), ownUser: 'app' });
    const sessions = [
      session({ pid: 1, ...old, application: 'Orders-API' }),
      session({ pid: 2, ...old, application: 'orders-api-2' }),
      session({ pid: 3, ...old, application: 'my-pgwarden-fork' }),
    ];
    expect(acted(sessions, req).map((a) => a.pid)).toEqual([1, 2, 3]);
  });

  it('does not spend the cap on protected sessions', () => {
    const req = request({ policy: policy({ maxPerRun: 1 }) });
    const sessions = [
      session({ pid: 1, idleSeconds: 900, superuser: true }),
      session({ pid: 2, idleSeconds: 500 }),
    ];
    expect(acted(sessions, req).map((a) => a.pid)).toEqual([2]);
    expect(skips(sessions, req)).toEqual([{ pid: 1, reason: 'superuser', matched: 'idle' }]);
  });
});

describe('planRemediation cap and priority', () => {
  it('acts on at most maxPerRun sessions and skips the rest as cap_reached', () => {
    const sessions = [1, 2, 3, 4, 5].map((pid) => session({ pid, idleSeconds: 100 + pid }));
    const req = request({ policy: policy({ maxPerRun: 2 }) });
    expect(acted(sessions, req).map((a) => a.pid)).toEqual([5, 4]);
    expect(skips(sessions, req)).toEqual([
      { pid: 3, reason: 'cap_reached', matched: 'idle' },
      { pid: 2, reason: 'cap_reached', matched: 'idle' },
      { pid: 1, reason: 'cap_reached', matched: 'idle' },
    ]);
  });

  it('orders blockers, then idle in transaction oldest first, then idle oldest first, then cancels', () => {
    const sessions = [
      session({ pid: 1, state: 'active', querySeconds: 9_000 }),
      session({ pid: 2, idleSeconds: 200 }),
      session({ pid: 3, idleSeconds: 900 }),
      session({ pid: 4, state: 'idle in transaction', idleSeconds: 60 }),
      session({ pid: 5, state: 'idle in transaction', idleSeconds: 80 }),
      session({ pid: 6, state: 'idle in transaction', lockChainHead: true, idleSeconds: 15 }),
      session({ pid: 7, idleSeconds: 30 }),
    ];
    const req = request({
      policy: policy({ cancelQueriesAfterSeconds: 60 }),
      pressure: { active: true, reason: 'monitor saw 53300' },
    });
    expect(acted(sessions, req).map((a) => [a.pid, a.reason])).toEqual([
      [6, 'lock_chain_blocker'],
      [5, 'idle_in_transaction'],
      [4, 'idle_in_transaction'],
      [3, 'idle'],
      [2, 'idle'],
      [7, 'idle_under_pressure'],
      [1, 'long_query'],
    ]);
    const capped = request({ ...req, policy: policy({ cancelQueriesAfterSeconds: 60, maxPerRun: 3 }) });
    expect(acted(sessions, capped).map((a) => a.pid)).toEqual([6, 5, 4]);
    expect(skips(sessions, capped).map((s) => s.pid)).toEqual([3, 2, 7, 1]);
  });
});

describe('planRemediation and dry-run', () => {
  it('plans the same whether or not the policy is a dry run', () => {
    const sessions = [
      session({ pid: 1, idleSeconds: 500 }),
      session({ pid: 2, idleSeconds: 500, superuser: true }),
      session({ pid: 3, state: 'idle in transaction', idleSeconds: 500 }),
    ];
    expect(planRemediation(sessions, request({ policy: policy({ dryRun: true }) }))).toEqual(
      planRemediation(sessions, request({ policy: policy({ dryRun: false }) })),
    );
  });
});

describe('appliedThresholds', () => {
  it('reports the thresholds in force, null for rules not requested or switched off', () => {
    const req = request({
      actions: ['idle', 'blockers', 'cancel_queries'],
      policy: policy({ terminateBlockers: false }),
    });
    expect(appliedThresholds(req)).toEqual({
      idleAfterSeconds: 100,
      pressureIdleAfterSeconds: null,
      idleInTransactionAfterSeconds: null,
      blockerIdleSeconds: null,
      cancelQueriesAfterSeconds: null,
      maxPerRun: 20,
    });
  });

  it('reports the escalated idle threshold when pressure is active', () => {
    const req = request({ pressure: { active: true } });
    expect(appliedThresholds(req)).toMatchObject({ idleAfterSeconds: 100, pressureIdleAfterSeconds: 20 });
  });
});

describe('candidateBounds', () => {
  it('lists idle sessions down to the lower of the normal and escalated thresholds', () => {
    expect(candidateBounds(policy(), ALL)).toEqual({
      idleSeconds: 20,
      idleInTransactionSeconds: 50,
      blockerIdleSeconds: 10,
      activeSeconds: null,
    });
    expect(candidateBounds(policy({ cancelQueriesAfterSeconds: 30 }), ['cancel_queries'])).toEqual({
      idleSeconds: null,
      idleInTransactionSeconds: null,
      blockerIdleSeconds: null,
      activeSeconds: 30,
    });
  });
});

const USERS: ReadonlyArray<string | null> = [
  'app',
  'reporting',
  'batch',
  'rdsadmin',
  'postgres',
  'ops',
  null,
];
const APPLICATIONS = ['orders-api', 'psql', 'etl', '', 'Orders-API', 'pgwarden-probe', 'pgwarden-remediate'];
const STATES = ['idle', 'idle in transaction', 'idle in transaction (aborted)', 'active', 'disabled', null];
/** Weighted towards client backends, as on a real server. */
const BACKEND_TYPES = [
  ...Array<string>(6).fill('client backend'),
  'walsender',
  'autovacuum worker',
  'background worker',
  'parallel worker',
];

/** Seconds with centisecond resolution; fc.double would crowd its values near zero. */
const seconds = (min: number, max: number) =>
  fc.integer({ min: min * 100, max: max * 100 }).map((n) => n / 100);
const age = fc.option(seconds(0, 5_000), { nil: null, freq: 8 });

const sessionArb = fc.record({
  pid: fc.integer({ min: 1, max: 1_000_000 }),
  user: fc.constantFrom(...USERS),
  application: fc.constantFrom(...APPLICATIONS),
  clientAddr: fc.constantFrom('10.0.0.5', null),
  state: fc.constantFrom(...STATES),
  backendType: fc.constantFrom(...BACKEND_TYPES),
  waitEventType: fc.constantFrom('Client', 'Lock', null),
  idleSeconds: age,
  transactionSeconds: age,
  querySeconds: age,
  stateChange: fc.constant('2026-01-01T00:00:00.000001+00:00'),
  // One session in five belongs to a superuser.
  superuser: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
  lockChainHead: fc.boolean(),
  query: fc.constant(null),
});

const threshold = seconds(0.5, 3_000);

const policyArb = fc.record({
  ...Object.fromEntries(Object.entries(DEFAULT_REMEDIATION).map(([key, value]) => [key, fc.constant(value)])),
  dryRun: fc.boolean(),
  idleAfterSeconds: threshold,
  idleInTransactionAfterSeconds: threshold,
  cancelQueriesAfterSeconds: fc.option(threshold, { nil: null }),
  terminateBlockers: fc.boolean(),
  blockerIdleSeconds: seconds(0, 3_000),
  maxPerRun: fc.integer({ min: 1, max: 8 }),
  protectUsers: fc.subarray(
    USERS.filter((u): u is string => u !== null),
    { maxLength: 2 },
  ),
  protectApplications: fc.subarray(APPLICATIONS, { maxLength: 2 }),
  pressure: fc.record({ utilizationPct: fc.integer({ min: 1, max: 100 }), idleAfterSeconds: threshold }),
}) as fc.Arbitrary<RemediationPolicy>;

const requestArb: fc.Arbitrary<PlanRequest> = fc.record(
  {
    policy: policyArb,
    actions: fc.subarray([...REMEDIATION_ACTIONS], { minLength: 1 }),
    pressure: fc.record({ active: fc.boolean() }),
    ownUser: fc.constantFrom('app', 'ops'),
  },
  { requiredKeys: ['policy', 'actions', 'pressure'] },
);

const populationArb = fc.uniqueArray(sessionArb, { selector: (s) => s.pid, maxLength: 40, size: 'medium' });

const IIT = ['idle in transaction', 'idle in transaction (aborted)'];

/** The rule's threshold, restated independently of the implementation. */
function satisfiesRule(s: SessionInfo, reason: ActionReason, req: PlanRequest): boolean {
  const p = req.policy;
  const has = (a: RemediationAction) => req.actions.includes(a);
  const idle = s.idleSeconds ?? Number.NEGATIVE_INFINITY;
  switch (reason) {
    case 'idle':
      return has('idle') && s.state === 'idle' && idle > p.idleAfterSeconds;
    case 'idle_under_pressure':
      return has('idle') && req.pressure.active && s.state === 'idle' && idle > p.pressure.idleAfterSeconds;
    case 'idle_in_transaction':
      return (
        has('idle_in_transaction') && IIT.includes(s.state ?? '') && idle > p.idleInTransactionAfterSeconds
      );
    case 'lock_chain_blocker':
      return (
        has('blockers') &&
        p.terminateBlockers &&
        s.lockChainHead &&
        IIT.includes(s.state ?? '') &&
        idle >= p.blockerIdleSeconds
      );
    case 'long_query':
      return (
        has('cancel_queries') &&
        p.cancelQueriesAfterSeconds !== null &&
        s.state === 'active' &&
        (s.querySeconds ?? Number.NEGATIVE_INFINITY) > p.cancelQueriesAfterSeconds
      );
  }
}

/** What SESSIONS_SQL's WHERE clause lets through, restated in TypeScript. */
function listedBy(s: SessionInfo, b: CandidateBounds): boolean {
  const ge = (value: number | null, bound: number | null) =>
    value !== null && bound !== null && value >= bound;
  return (
    (s.state === 'idle' && ge(s.idleSeconds, b.idleSeconds)) ||
    (IIT.includes(s.state ?? '') &&
      (ge(s.idleSeconds, b.idleInTransactionSeconds) ||
        (s.lockChainHead && ge(s.idleSeconds, b.blockerIdleSeconds)))) ||
    (s.state === 'active' && ge(s.querySeconds, b.activeSeconds))
  );
}

const RANK: Record<ActionReason, number> = {
  lock_chain_blocker: 0,
  idle_in_transaction: 1,
  idle: 2,
  idle_under_pressure: 2,
  long_query: 3,
};
const ageFor = (s: SessionInfo, reason: ActionReason) =>
  (reason === 'long_query' ? s.querySeconds : s.idleSeconds) ?? Number.NEGATIVE_INFINITY;

describe('planRemediation properties', () => {
  it('never acts on a non-client, rdsadmin, superuser, protected or pgwarden session', () => {
    fc.assert(
      fc.property(populationArb, requestArb, (sessions, req) => {
        for (const { session: s } of planRemediation(sessions, req).act) {
          expect(s.backendType).toBe('client backend');
          expect(s.user).not.toBe('rdsadmin');
          expect(s.superuser).toBe(false);
          if (s.user !== null) expect(req.policy.protectUsers).not.toContain(s.user);
          expect(req.policy.protectApplications).not.toContain(s.application);
          expect(s.user === req.ownUser && s.application.startsWith('pgwarden-')).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never exceeds maxPerRun, and only skips for the cap once the cap is used', () => {
    fc.assert(
      fc.property(populationArb, requestArb, (sessions, req) => {
        const plan = planRemediation(sessions, req);
        expect(plan.act.length).toBeLessThanOrEqual(req.policy.maxPerRun);
        if (plan.skipped.some((s) => s.reason === 'cap_reached'))
          expect(plan.act).toHaveLength(req.policy.maxPerRun);
      }),
      { numRuns: 500 },
    );
  });

  it('never lists a pid twice across actions and skips', () => {
    fc.assert(
      fc.property(populationArb, requestArb, (sessions, req) => {
        const plan = planRemediation(sessions, req);
        const pids = [...plan.act, ...plan.skipped].map((e) => e.session.pid);
        expect(new Set(pids).size).toBe(pids.length);
      }),
      { numRuns: 500 },
    );
  });

  it('acts only on sessions that satisfy their rule threshold, with the matching signal', () => {
    fc.assert(
      fc.property(populationArb, requestArb, (sessions, req) => {
        const plan = planRemediation(sessions, req);
        for (const a of plan.act) {
          expect(satisfiesRule(a.session, a.reason, req)).toBe(true);
          expect(a.action).toBe(a.reason === 'long_query' ? 'cancel' : 'terminate');
        }
        for (const s of plan.skipped) expect(satisfiesRule(s.session, s.matched, req)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('gives the cap to higher-priority and older sessions first', () => {
    fc.assert(
      fc.property(populationArb, requestArb, (sessions, req) => {
        const plan = planRemediation(sessions, req);
        for (const skip of plan.skipped.filter((s) => s.reason === 'cap_reached')) {
          for (const a of plan.act) {
            const before =
              RANK[a.reason] < RANK[skip.matched] ||
              (RANK[a.reason] === RANK[skip.matched] &&
                ageFor(a.session, a.reason) >= ageFor(skip.session, skip.matched));
            expect(before).toBe(true);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('lists, via candidateBounds, every session the plan acts on or skips', () => {
    fc.assert(
      fc.property(populationArb, requestArb, (sessions, req) => {
        const bounds = candidateBounds(req.policy, req.actions);
        const plan = planRemediation(sessions, req);
        for (const e of [...plan.act, ...plan.skipped]) expect(listedBy(e.session, bounds)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('plans the same with and without dry-run', () => {
    fc.assert(
      fc.property(populationArb, requestArb, (sessions, req) => {
        const on = planRemediation(sessions, { ...req, policy: { ...req.policy, dryRun: true } });
        const off = planRemediation(sessions, { ...req, policy: { ...req.policy, dryRun: false } });
        expect(on).toEqual(off);
      }),
      { numRuns: 200 },
    );
  });
});
