/**
 * Section 3: time to remediate connection-slot exhaustion. Idle sessions of an ordinary role take
 * every slot; the whole system in local mode (monitor, runbook from the deployed definition, guarded
 * remediation, sweep) detects it and terminates them; the clock stops when an ordinary new connection
 * succeeds again. Run with the production defaults and with local mode's shortened clocks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FaultTarget } from '../cli/local/faults.ts';
import { exhaustSlots } from '../cli/local/faults.ts';
import { LOCAL_PROFILE, type LocalSettings, LocalSystem, type SystemEvent } from '../cli/local/system.ts';
import { DEFAULT_MONITOR_SETTINGS } from '../functions/monitor/settings.ts';
import { openSession } from '../shared/db.ts';
import { silentLogger } from '../shared/logger.ts';
import { RUNBOOK_PLACEHOLDERS, runbookDefinition } from '../shared/runbook/definition.ts';
import { DEFAULT_RUNBOOK_SETTINGS } from '../shared/runbook/types.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS } from '../shared/target.ts';
import {
  type BenchOptions,
  createRoles,
  type Measured,
  median,
  onTeardown,
  percentile,
  progress,
  type Roles,
  type SectionResult,
  type SummaryRow,
  seconds,
  seededRandom,
  sleep,
  startBenchServer,
  table,
} from './support.ts';

const SECTION = 'remediation';
/** The production sweep interval (`schedules.sweepEvery` default). */
const PRODUCTION_SWEEP_MS = 5 * 60_000;

type Profile = 'production' | 'local';

type ProfileSettings = Omit<LocalSettings, 'home' | 'logger' | 'databaseUrl'>;

const PROFILES: Record<Profile, ProfileSettings> = {
  production: {
    cadenceMs: DEFAULT_MONITOR_SETTINGS.cadenceMs,
    confirmDelayMs: DEFAULT_MONITOR_SETTINGS.confirmDelayMs,
    escalateAfterMs: DEFAULT_RUNBOOK_SETTINGS.escalateAfterSeconds * 1_000,
    recheckMs: DEFAULT_RUNBOOK_SETTINGS.recheckSeconds * 1_000,
    maxDurationMs: DEFAULT_RUNBOOK_SETTINGS.maxDurationSeconds * 1_000,
    sweepEveryMs: PRODUCTION_SWEEP_MS,
    thresholds: DEFAULT_THRESHOLDS,
    remediation: DEFAULT_REMEDIATION,
    maxConnections: LOCAL_PROFILE.maxConnections,
  },
  local: LOCAL_PROFILE,
};

/** Which function each Task state of the runbook invokes. */
function taskFunctions(): Map<string, 'runbook' | 'probe' | 'remediate'> {
  const states = runbookDefinition().States as Record<string, { Type: string; Resource?: string }>;
  const out = new Map<string, 'runbook' | 'probe' | 'remediate'>();
  for (const [name, state] of Object.entries(states)) {
    if (state.Type !== 'Task' || !state.Resource) continue;
    for (const fn of ['runbook', 'probe', 'remediate'] as const)
      if (state.Resource.includes(RUNBOOK_PLACEHOLDERS[fn])) out.set(name, fn);
  }
  return out;
}

interface Trial {
  profile: Profile;
  offsetMs: number;
  /** From the start of the injection. */
  detectMs?: number;
  incidentMs?: number;
  remediatedMs?: number;
  /** Sessions the sweep terminated during the trial (0: the runbook did it). */
  sweptSessions: number;
  steps: string[];
  ended: boolean;
  published: number;
  errors: string[];
  /** The incident record's timeline, from the start of the injection. */
  timeline: Array<{ atMs: number; text: string }>;
}

async function ordinaryConnection(app: FaultTarget, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const session = await openSession(app.spec, app.credentials, {
        connectTimeoutMs: 2_000,
        statementTimeoutMs: 2_000,
        applicationName: 'bench:ordinary',
        logger: silentLogger,
      });
      const at = Date.now();
      await session.close();
      return at;
    } catch {
      await sleep(250);
    }
  }
  return undefined;
}

async function trial(
  lane: { server: Awaited<ReturnType<typeof startBenchServer>>; roles: Roles },
  profile: Profile,
  random: () => number,
): Promise<Trial> {
  const settings = PROFILES[profile];
  const home = await mkdtemp(join(tmpdir(), 'pgwarden-bench-'));
  const events: Array<{ at: number; event: SystemEvent }> = [];
  const waiters = new Set<() => void>();
  const system = await LocalSystem.start(
    {
      ...settings,
      home,
      logger: silentLogger,
      databaseUrl: lane.server.spec({ user: lane.roles.monitor.user, password: lane.roles.monitor.password }),
    },
    (event) => {
      events.push({ at: Date.now(), event });
      for (const wake of waiters) wake();
    },
  );
  const stopSystem = onTeardown(async () => {
    await system.stop();
    await rm(home, { recursive: true, force: true });
  });
  const waitFor = async <T>(find: () => T | undefined, timeoutMs: number): Promise<T | undefined> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 500));
        waiters.add(wake);
      });
    }
  };
  let release: (() => Promise<void>) | undefined;
  try {
    const healthy = await waitFor(
      () => events.find((e) => e.event.type === 'probe' && e.event.status === 'healthy'),
      settings.cadenceMs * 3 + 30_000,
    );
    if (!healthy) throw new Error('the monitor never saw the server healthy');
    const offsetMs = random() * settings.cadenceMs;
    await sleep(Math.max(0, healthy.at + offsetMs - Date.now()));
    const injectedAt = Date.now();
    const flood = await exhaustSlots(lane.roles.app, { applicationName: 'bench:flood' });
    release = () => flood.release();
    if (flood.refusedWith !== '53300') throw new Error(`exhaustion refused with ${flood.refusedWith}`);
    const budget = profile === 'production' ? 5 * 60_000 : 3 * 60_000;
    const remediatedAt = await ordinaryConnection(lane.roles.app, budget);
    await release();
    release = undefined;
    const after = (e: { at: number }) => e.at >= injectedAt;
    const incident = events.find((e) => after(e) && e.event.type === 'incident');
    const incidentId = incident?.event.type === 'incident' ? incident.event.outcome.incidentId : undefined;
    // Let the incident run to its resolution, so its transitions are those of a whole incident.
    const ended = incidentId
      ? await waitFor(
          () => events.find((e) => e.event.type === 'incident-ended' && e.event.incidentId === incidentId),
          3 * 60_000,
        )
      : undefined;
    const detect = events.find((e) => after(e) && e.event.type === 'probe' && e.event.status === 'unhealthy');
    const record = ended?.event.type === 'incident-ended' ? ended.event.record : undefined;
    const timeline = (record?.timeline ?? []).map((entry) => ({
      atMs: Date.parse(entry.at) - injectedAt,
      text: entry.text,
    }));
    const steps = events.flatMap((e) =>
      e.event.type === 'step' && e.event.incidentId === incidentId ? [e.event.state] : [],
    );
    return {
      profile,
      offsetMs,
      ...(detect ? { detectMs: detect.at - injectedAt } : {}),
      ...(incident ? { incidentMs: incident.at - injectedAt } : {}),
      ...(remediatedAt !== undefined ? { remediatedMs: remediatedAt - injectedAt } : {}),
      sweptSessions: events.reduce(
        (n, e) => n + (after(e) && e.event.type === 'sweep' ? e.event.terminated : 0),
        0,
      ),
      steps,
      ended: ended !== undefined,
      published: events.filter((e) => after(e) && e.event.type === 'published').length,
      errors: events.flatMap((e) => (e.event.type === 'error' ? [e.event.message] : [])),
      timeline,
    };
  } finally {
    await release?.().catch(() => undefined);
    await stopSystem();
  }
}

export async function remediation(options: BenchOptions, measured: Measured): Promise<SectionResult> {
  const random = seededRandom(options.seed + 1);
  const plan: Array<{ profile: Profile; trials: number }> = options.quick
    ? [
        { profile: 'production', trials: 2 },
        { profile: 'local', trials: 2 },
      ]
    : [
        { profile: 'production', trials: 10 },
        { profile: 'local', trials: 10 },
      ];
  const laneCount = options.quick ? 2 : 5;
  progress(
    SECTION,
    `starting ${laneCount} PostgreSQL servers (max_connections ${LOCAL_PROFILE.maxConnections})`,
  );
  const lanes: Array<{ server: Awaited<ReturnType<typeof startBenchServer>>; roles: Roles }> = [];
  const trials: Trial[] = [];
  // Local systems name the monitor's secret alike, and credentials are cached by secret name for the
  // process: concurrent systems must share the password, or one would log in with another's.
  const monitorPassword = `mon-${Math.random().toString(36).slice(2, 12)}`;
  try {
    for (let i = 0; i < laneCount; i++) {
      const server = await startBenchServer({
        maxConnections: LOCAL_PROFILE.maxConnections,
        settings: { reserved_connections: 3 },
      });
      lanes.push({ server, roles: await createRoles(server, monitorPassword) });
    }
    for (const { profile, trials: n } of plan) {
      progress(SECTION, `${profile} settings: ${n} trials on ${lanes.length} servers`);
      const perLane = lanes.map((_, i) => Math.floor(n / lanes.length) + (i < n % lanes.length ? 1 : 0));
      const results = await Promise.all(
        lanes.map(async (lane, i) => {
          const out: Trial[] = [];
          for (let k = 0; k < (perLane[i] as number); k++) out.push(await trial(lane, profile, random));
          return out;
        }),
      );
      const flat = results.flat();
      trials.push(...flat);
      const times = flat.flatMap((t) => (t.remediatedMs === undefined ? [] : [t.remediatedMs]));
      progress(
        SECTION,
        `${profile}: new connections succeed again after median ${seconds(percentile(times, 50))}, p95 ${seconds(percentile(times, 95))}`,
      );
    }
  } finally {
    for (const lane of lanes) await lane.server.release().catch(() => undefined);
  }

  const incident = incidentFigures(trials);
  if (incident) measured.incident = incident;
  return report(trials, plan, laneCount, measured);
}

/** What one production-settings incident costs in Step Functions and Lambda terms (medians over trials). */
function incidentFigures(trials: Trial[]): Measured['incident'] {
  const functions = taskFunctions();
  const production = trials.filter((t) => t.profile === 'production' && t.ended);
  const sample = production.length > 0 ? production : trials.filter((t) => t.ended);
  if (sample.length === 0) return undefined;
  const countOf = (t: Trial, fn: string) => t.steps.filter((s) => functions.get(s) === fn).length;
  return {
    transitions: median(sample.map((t) => t.steps.length)),
    runbookTasks: median(sample.map((t) => countOf(t, 'runbook'))),
    probeTasks: median(sample.map((t) => countOf(t, 'probe'))),
    remediateTasks: median(sample.map((t) => countOf(t, 'remediate'))),
    published: median(sample.map((t) => t.published)),
  };
}

/** One production-settings exhaustion incident on a server of its own, for the cost model run alone. */
export async function measureIncident(seed: number): Promise<Measured['incident']> {
  const server = await startBenchServer({
    maxConnections: LOCAL_PROFILE.maxConnections,
    settings: { reserved_connections: 3 },
  });
  try {
    const lane = { server, roles: await createRoles(server) };
    return incidentFigures([await trial(lane, 'production', seededRandom(seed))]);
  } finally {
    await server.release();
  }
}

function report(
  trials: Trial[],
  plan: ReadonlyArray<{ profile: Profile; trials: number }>,
  laneCount: number,
  measured: Measured,
): SectionResult {
  const of = (profile: Profile) => trials.filter((t) => t.profile === profile);
  const times = (list: Trial[], pick: (t: Trial) => number | undefined) =>
    list.flatMap((t) => {
      const v = pick(t);
      return v === undefined ? [] : [v];
    });
  const rows: SummaryRow[] = plan.map(({ profile }) => {
    const list = of(profile);
    const remediated = times(list, (t) => t.remediatedMs);
    const failed = list.length - remediated.length;
    const p95 = failed > 0 ? Number.POSITIVE_INFINITY : percentile(remediated, 95);
    return {
      figure: `Time to remediate slot exhaustion, ${profile === 'production' ? 'production defaults' : 'local-mode defaults'} (median / p95, ${list.length} trials)`,
      target: profile === 'production' ? '< 60 s' : '—',
      measured: `${seconds(percentile(remediated, 50))} / ${failed > 0 ? `${failed} not remediated` : seconds(p95)}`,
      ...(profile === 'production' ? { pass: p95 < 60_000 } : {}),
    };
  });

  const p = PROFILES;
  const setting = (name: string, pick: (s: ProfileSettings) => string) => [
    name,
    pick(p.production),
    pick(p.local),
  ];
  const detail: string[] = [
    'The whole system in local mode (`LocalSystem`): the monitor on its cadence, the runbook run by the local Step Functions from the same ' +
      'definition CDK deploys, the remediate and probe function cores, and the sweep. It watches a bench-owned embedded PostgreSQL ' +
      `(max_connections ${LOCAL_PROFILE.maxConnections}, reserved_connections 3; the \`DATABASE_URL\` mode, so the bench holds the roles) as the documented monitor role. ` +
      'Each trial starts a fresh system, waits for a healthy probe and a random offset within the cadence, then an ordinary role takes every slot it can ' +
      '(`exhaustSlots`, refused with 53300). From that moment the bench tries an ordinary new connection every 250 ms; the time to remediate is when one ' +
      `succeeds. The incident then runs to its end so its transitions can be counted. ${laneCount} servers run trials concurrently, one system each.`,
    '',
    ...table(
      ['setting', 'production defaults', 'local-mode defaults (`LOCAL_PROFILE`)'],
      [
        setting(
          'cadence / confirmation delay',
          (s) => `${seconds(s.cadenceMs, 0)} / ${seconds(s.confirmDelayMs, 1)}`,
        ),
        setting(
          'pool pressure: utilization ≥ / idle longer than',
          (s) => `${s.remediation.pressure.utilizationPct} % / ${s.remediation.pressure.idleAfterSeconds} s`,
        ),
        setting('sessions terminated per run (maxPerRun)', (s) => String(s.remediation.maxPerRun)),
        setting('runbook re-check interval (shorter while the pool is under pressure)', (s) =>
          seconds(s.recheckMs, 0),
        ),
        setting('sweep interval', (s) => seconds(s.sweepEveryMs, 0)),
        setting('escalation (page) after', (s) => seconds(s.escalateAfterMs, 0)),
      ],
    ),
    '',
    'The sweep in local mode first runs one interval after the system starts, so with the production settings (5 minutes) it never runs within a trial; ' +
      'in production its phase is random, and it would act first in the rare trial where it falls between the 30 s idle mark and the runbook re-check.',
    '',
    ...table(
      [
        'settings',
        'trials',
        'detected (median)',
        'incident opened (median)',
        'remediated median',
        'p95',
        'max',
        'by the sweep',
        'incident resolved',
      ],
      plan.map(({ profile }) => {
        const list = of(profile);
        const remediated = times(list, (t) => t.remediatedMs);
        const medianOf = (pick: (t: Trial) => number | undefined) =>
          seconds(percentile(times(list, pick), 50));
        return [
          profile,
          String(list.length),
          medianOf((t) => t.detectMs),
          medianOf((t) => t.incidentMs),
          seconds(percentile(remediated, 50)),
          seconds(percentile(remediated, 95)),
          seconds(Math.max(...remediated)),
          `${list.filter((t) => t.sweptSessions > 0).length} of ${list.length}`,
          `${list.filter((t) => t.ended).length} of ${list.length}`,
        ];
      }),
    ),
    '',
  ];
  const production = of('production');
  const pressureIdle = DEFAULT_REMEDIATION.pressure.idleAfterSeconds;
  detail.push(
    `Sessions become eligible under pool pressure once idle for ${pressureIdle} s (\`pressure.idleAfterSeconds\`), so the floor is ${pressureIdle} s after the ` +
      "flood plus the runbook's re-check granularity: the incident opens on detection, its first pool remediation finds the sessions too young, and it looks " +
      'again on its re-check schedule until they are old enough; the pass that terminates them frees the slots at once (at most `maxPerRun` sessions a pass).',
    '',
  );
  detail.push(
    'Every trial, times from the start of the injection:',
    '',
    ...table(
      [
        'settings',
        'offset in cadence',
        'unhealthy verdict',
        'incident opened',
        'new connection succeeds',
        'remediation passes',
        'transitions',
      ],
      trials.map((t) => [
        t.profile,
        seconds(t.offsetMs),
        t.detectMs === undefined ? '—' : seconds(t.detectMs),
        t.incidentMs === undefined ? '—' : seconds(t.incidentMs),
        t.remediatedMs === undefined ? 'not within the budget' : seconds(t.remediatedMs),
        String(t.steps.filter((step) => step === 'RemediatePool').length),
        String(t.steps.length),
      ]),
    ),
    '',
  );
  const slowest = production
    .filter((t) => t.remediatedMs !== undefined)
    .reduce<Trial | undefined>(
      (a, b) => (!a || (b.remediatedMs ?? 0) > (a.remediatedMs ?? 0) ? b : a),
      undefined,
    );
  if (slowest && slowest.timeline.length > 0) {
    detail.push(
      `The slowest production trial's incident, as its record tells it (new connections succeeded at ${seconds(slowest.remediatedMs ?? Number.NaN)}):`,
      '',
      ...slowest.timeline.map((entry) => `- ${seconds(entry.atMs)}: ${entry.text}`),
      '',
    );
  }
  const errors = [...new Set(trials.flatMap((t) => t.errors))];
  if (errors.length > 0) detail.push(`Errors reported by the system during trials: ${errors.join('; ')}`, '');
  if (measured.incident) {
    const i = measured.incident;
    detail.push(
      `One production-settings incident, from open to resolution (median over trials): ${i.transitions} state transitions, ` +
        `${i.runbookTasks} runbook, ${i.probeTasks} probe and ${i.remediateTasks} remediate task invocations, ${i.published} SNS message(s). Section 6 prices them.`,
    );
  }
  return { id: 'remediation', title: '3. Time to remediate', rows, detail };
}
