/**
 * Fuzzing every way input enters pgwarden: function events, the fleet config, durations and database
 * URLs. Arbitrary JSON and near-valid mutations of valid inputs (a required field dropped, a wrong
 * type, a value out of range, an unknown key) must end in a named validation error whose message names
 * the field, or in a documented "ignored" result, and never in an action: no AWS call, no connection.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { runProbe } from '../../functions/probe/probe.ts';
import { type RdsEventsDeps, runRdsEvents } from '../../functions/rds-events/rds-events.ts';
import { runRemediate } from '../../functions/remediate/remediate.ts';
import { type RunbookDeps, runRunbook } from '../../functions/runbook/runbook.ts';
import { parseDatabaseUrl, TLS_MODES } from '../../shared/connection.ts';
import { parseDuration } from '../../shared/duration.ts';
import { ConfigError, ValidationError } from '../../shared/errors.ts';
import { fleetFromEnvironment, parseFleet } from '../../shared/fleet.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { MetricSink } from '../../shared/metrics.ts';
import { parseScheduleEvent } from '../../shared/schedule-event.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../../shared/target.ts';
import { duration, parse } from '../../shared/validate.ts';
import { ManualClock } from '../helpers/clock.ts';
import { countingListener } from '../helpers/listener.ts';

type Path = ReadonlyArray<string | number>;

/** A path as issues print it: `targets[0].port`, `connection.auth.kind`. */
function render(path: Path): string {
  return path.reduce<string>(
    (out, key) =>
      typeof key === 'number' ? `${out}[${key}]` : key === '' ? `${out}[""]` : out ? `${out}.${key}` : key,
    '',
  );
}

function get(value: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, key) => (v as Record<string | number, unknown>)?.[key], value);
}

/** A copy of `value` with `path` set to `replacement` (or removed when `remove`). */
function edit(value: unknown, path: Path, replacement: unknown, remove = false): unknown {
  const copy = structuredClone(value);
  const parent = get(copy, path.slice(0, -1)) as Record<string | number, unknown>;
  const key = path[path.length - 1] as string | number;
  if (remove) delete parent[key];
  else parent[key] = replacement;
  return copy;
}

/** Every object and leaf path under `value`, except under `skip`. */
function paths(value: unknown, skip: readonly string[] = [], prefix: Path = []): Path[] {
  if (skip.includes(render(prefix))) return [];
  const out: Path[] = prefix.length > 0 ? [prefix] : [];
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) out.push(...paths(item, skip, [...prefix, i]));
  } else if (value && typeof value === 'object')
    for (const [key, item] of Object.entries(value)) out.push(...paths(item, skip, [...prefix, key]));
  return out;
}

type Kind = 'string' | 'number' | 'boolean' | 'object' | 'array';
const kindOf = (v: unknown): Kind =>
  Array.isArray(v) ? 'array' : (typeof v as Kind) === 'object' ? 'object' : (typeof v as Kind);

/** A value of any JSON type but `kind` (and never null, which means "absent" to optional fields). */
function otherType(kind: Kind): fc.Arbitrary<unknown> {
  const all: Record<Kind, fc.Arbitrary<unknown>> = {
    string: fc.string({ maxLength: 12 }),
    number: fc.oneof(fc.integer(), fc.double({ noNaN: true })),
    boolean: fc.boolean(),
    object: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
    array: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
  };
  return fc.oneof(
    ...(Object.entries(all) as Array<[Kind, fc.Arbitrary<unknown>]>)
      .filter(([k]) => k !== kind)
      .map(([, a]) => a),
  );
}

interface Shape {
  /** A valid input. */
  valid: unknown;
  /** Fields that must be present. */
  required: Path[];
  /** Fields whose type is checked (default: every path of `valid`). */
  typed?: Path[];
  /** Subtrees passed through unchecked, left out of `typed`. */
  unchecked?: string[];
  /** Objects that refuse unknown keys. */
  strict: Path[];
  /** Values that are the right type but not allowed. */
  invalid: Array<[Path, unknown[]]>;
}

interface Mutation {
  input: unknown;
  /** The field the mutation broke, as issues print it. */
  field: string;
  what: string;
}

/** Near-valid inputs: one thing wrong with each. */
function mutations(shape: Shape): fc.Arbitrary<Mutation> {
  const typed = (shape.typed ?? paths(shape.valid, shape.unchecked)).filter(
    (p) => get(shape.valid, p) !== null,
  );
  const existing = (p: Path) => Object.keys((get(shape.valid, p) ?? {}) as object);
  const kinds: Array<fc.Arbitrary<Mutation>> = [
    fc.constantFrom(...shape.required).map((p) => ({
      input: edit(shape.valid, p, undefined, true),
      field: render(p),
      what: 'dropped',
    })),
    fc
      .constantFrom(...typed)
      .chain((p) => otherType(kindOf(get(shape.valid, p))).map((v) => ({ p, v })))
      .map(({ p, v }) => ({
        input: edit(shape.valid, p, v),
        field: render(p),
        what: `wrong type ${JSON.stringify(v)}`,
      })),
    fc
      .constantFrom(...shape.invalid)
      .chain(([p, values]) => fc.constantFrom(...values).map((v) => ({ p, v })))
      .map(({ p, v }) => ({
        input: edit(shape.valid, p, v),
        field: render(p),
        what: `value ${JSON.stringify(v)}`,
      })),
  ];
  if (shape.strict.length > 0)
    kinds.push(
      fc
        .constantFrom(...shape.strict)
        .chain((p) =>
          fc
            .string({ minLength: 1, maxLength: 10 })
            .filter((k) => !existing(p).includes(k) && k !== '__proto__')
            .chain((key) => fc.jsonValue({ maxDepth: 1 }).map((v) => ({ p: [...p, key], v }))),
        )
        .filter(({ v }) => v !== null)
        .map(({ p, v }) => ({ input: edit(shape.valid, p, v), field: render(p), what: 'unknown key' })),
    );
  return fc.oneof(...kinds);
}

/** The error every malformed input must produce: named, every issue with a path the message shows. */
function expectNamedError(error: unknown, name: string, field?: string): void {
  expect(error, 'the input should have been refused').toBeInstanceOf(ValidationError);
  const e = error as ValidationError;
  expect(e.name).toBe(name);
  expect(e.issues.length).toBeGreaterThan(0);
  for (const issue of e.issues) {
    expect(issue.path.length).toBeGreaterThan(0);
    expect(e.message).toContain(`${issue.path}: ${issue.problem}`);
  }
  if (field !== undefined) {
    const related = e.issues.some(
      (i) => i.path === '(input)' || field.startsWith(i.path) || i.path.startsWith(field),
    );
    expect(related, `${field} not named in:\n${e.message}`).toBe(true);
  }
}

async function failure(work: () => unknown): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Counts calls to a dependency that must never be reached, and refuses them. */
function tripwire() {
  const calls: string[] = [];
  const trip = (what: string) => {
    calls.push(what);
    throw new Error(`${what} must not be called for malformed input`);
  };
  return { calls, trip };
}

const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/monitor-AbCdEf';
const anyJson = fc.oneof(fc.anything({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 }));

describe('function events, fuzzed', async () => {
  // Every connection in these events points here.
  const listener = await countingListener();
  const wire = tripwire();
  const secrets = { send: async () => wire.trip('Secrets Manager') };

  afterAll(async () => {
    // Nothing malformed got as far as a connection or an AWS call.
    expect(listener.connections).toBe(0);
    expect(wire.calls).toEqual([]);
    await listener.close();
  });

  const connection = () => ({
    host: '127.0.0.1',
    port: listener.port,
    database: 'app',
    user: 'pgwarden_monitor',
    // No secret to fetch: a valid event would connect straight away, and be counted.
    auth: { kind: 'none' },
    tls: { mode: 'disable' },
  });
  // A connection is optional (a configured target is looked up by id), but complete when present.
  const connectionRequired: Path[] = [
    ['connection', 'host'],
    ['connection', 'port'],
    ['connection', 'database'],
    ['connection', 'auth'],
    ['connection', 'auth', 'kind'],
    ['connection', 'tls'],
    ['connection', 'tls', 'mode'],
  ];
  const connectionStrict: Path[] = [[], ['connection'], ['connection', 'auth'], ['connection', 'tls']];
  const connectionInvalid: Array<[Path, unknown[]]> = [
    [
      ['connection', 'port'],
      [0, 65_536, 5432.5, -1],
    ],
    [
      ['connection', 'database'],
      ['', 'app; DROP TABLE x', 'a'.repeat(129)],
    ],
    [
      ['connection', 'auth', 'kind'],
      ['password', 'plaintext', ''],
    ],
    [
      ['connection', 'tls', 'mode'],
      ['prefer', 'allow', 'off'],
    ],
    [['targetId'], ['Orders DB', '', '-x', 'a'.repeat(41)]],
  ];

  // No target is configured: even a valid event is refused before anything connects.
  const catalog = { targets: [], defaults: {} };

  describe('probe event', () => {
    const config = { connectTimeoutMs: 500, statementTimeoutMs: 500, catalog };
    const run = (event: unknown) => failure(() => runProbe(event, config, { logger: silentLogger, secrets }));
    const shape: Shape = {
      valid: { targetId: 'orders', connection: connection(), longQueryThresholdSeconds: 300, mode: 'health' },
      required: [['targetId'], ...connectionRequired],
      strict: connectionStrict,
      invalid: [
        ...connectionInvalid,
        [['longQueryThresholdSeconds'], [0, -1, 86_401, Number.MAX_VALUE]],
        [['mode'], ['full', 'HEALTH']],
      ],
    };

    it('refuses arbitrary JSON with a named ValidationError', async () => {
      await fc.assert(
        fc.asyncProperty(anyJson, async (event) => expectNamedError(await run(event), 'ValidationError')),
        { numRuns: 300 },
      );
    });

    it('refuses every near-valid mutation, naming the field', async () => {
      await fc.assert(
        fc.asyncProperty(mutations(shape), async (m) =>
          expectNamedError(await run(m.input), 'ValidationError', m.field),
        ),
        { numRuns: 400 },
      );
    });

    it('refuses a literal password, which would land in execution history', async () => {
      const event = edit(shape.valid, ['connection', 'auth'], { kind: 'password', password: 'hunter2-pw' });
      const error = await run(event);
      expectNamedError(error, 'ValidationError', 'connection.auth');
      expect((error as Error).message).not.toContain('hunter2-pw');
    });
  });

  describe('remediate event', () => {
    const config = { connectTimeoutMs: 500, statementTimeoutMs: 500, catalog };
    const run = (event: unknown) =>
      failure(() => runRemediate(event, config, { logger: silentLogger, secrets }));
    const shape: Shape = {
      valid: {
        targetId: 'orders',
        connection: connection(),
        policy: {
          ...DEFAULT_REMEDIATION,
          cancelQueriesAfterSeconds: 600,
          protectUsers: ['batch'],
          protectApplications: ['etl'],
        },
        actions: ['idle', 'blockers'],
        pressure: { active: true, reason: 'monitor saw 53300' },
        dryRun: true,
        incidentId: 'pgw-orders-20261126-1',
        includeQueryText: false,
      },
      required: [
        ['targetId'],
        ...connectionRequired,
        ...Object.keys(DEFAULT_REMEDIATION)
          .filter((k) => k !== 'cancelQueriesAfterSeconds' && k !== 'includeQueryText')
          .map((k) => ['policy', k]),
        ['policy', 'pressure', 'utilizationPct'],
        ['policy', 'pressure', 'idleAfterSeconds'],
        ['actions'],
        ['pressure', 'active'],
      ],
      strict: [...connectionStrict, ['policy'], ['policy', 'pressure'], ['pressure']],
      invalid: [
        ...connectionInvalid,
        [
          ['policy', 'maxPerRun'],
          [0, 1_001, 2.5],
        ],
        [
          ['policy', 'idleAfterSeconds'],
          [0, -30],
        ],
        [
          ['policy', 'pressure', 'utilizationPct'],
          [0, 101],
        ],
        [
          ['policy', 'protectUsers', 0],
          ['bad role!', ''],
        ],
        [['actions'], [[], ['idle', 'idle', 'idle', 'idle', 'idle'], ['terminate_all']]],
        [['actions', 0], ['everything']],
        [['incidentId'], ['has spaces', 'x'.repeat(81)]],
      ],
    };

    it('refuses arbitrary JSON with a named ValidationError', async () => {
      await fc.assert(
        fc.asyncProperty(anyJson, async (event) => expectNamedError(await run(event), 'ValidationError')),
        { numRuns: 300 },
      );
    });

    it('refuses every near-valid mutation, naming the field', async () => {
      await fc.assert(
        fc.asyncProperty(mutations(shape), async (m) =>
          expectNamedError(await run(m.input), 'ValidationError', m.field),
        ),
        { numRuns: 500 },
      );
    });
  });

  describe('runbook task', () => {
    const deps = (): RunbookDeps => ({
      catalog: { targets: [target], defaults: {} },
      sfn: { send: async () => wire.trip('Step Functions') },
      rds: { send: async () => wire.trip('RDS') },
      cloudwatch: { send: async () => wire.trip('CloudWatch') },
      topics: { pages: 'arn:pages', notifications: 'arn:notifications' },
      clock: new ManualClock('2026-11-26T10:00:00Z'),
      logger: silentLogger,
    });
    const run = (event: unknown) => failure(() => runRunbook(event, deps()));
    const target: Target = {
      id: 'orders',
      connection: {
        host: 'orders.db',
        port: 5432,
        database: 'orders',
        user: 'mon',
        auth: { kind: 'secret', secretId: SECRET },
        tls: { mode: 'verify-full' },
      },
      rds: { instanceId: 'orders', region: 'eu-west-1' },
      thresholds: DEFAULT_THRESHOLDS,
      remediation: DEFAULT_REMEDIATION,
    };
    const shape: Shape = {
      valid: {
        action: 'node',
        node: 'running',
        executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:pgwarden-runbook:pgw-orders-1',
        state: {
          incidentId: 'pgw-orders-20261126-1',
          requestId: 'r-1',
          target,
          trigger: { kind: 'probe', summary: 'probes failed', observedAt: '2026-11-26T09:59:00Z' },
          settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
          incident: { incidentId: 'pgw-orders-20261126-1', steps: [] },
          probe: { ok: false },
        },
      },
      required: [
        ['action'],
        ['state'],
        ['state', 'incidentId'],
        ['state', 'target'],
        ['state', 'target', 'id'],
        ['state', 'target', 'connection', 'host'],
        ['state', 'target', 'thresholds', 'utilizationPct'],
        ['state', 'target', 'remediation', 'maxPerRun'],
        ['state', 'trigger', 'kind'],
        ['state', 'trigger', 'summary'],
        ['state', 'settings', 'recheckSeconds'],
        // Not required by the schema, but by the action.
        ['state', 'incident'],
        ['node'],
        ['state', 'probe'],
      ],
      // The records inside the state are pgwarden's own task results, passed through unchecked; the
      // state, its trigger and its settings are open envelopes, so they refuse no unknown key.
      unchecked: ['state.incident', 'state.probe'],
      strict: [
        [],
        ['state', 'target'],
        ['state', 'target', 'connection'],
        ['state', 'target', 'thresholds'],
        ['state', 'target', 'remediation'],
        ['state', 'target', 'rds'],
      ],
      invalid: [
        [['action'], ['reboot', 'OPEN', '']],
        [['node'], ['database', 'pool ']],
        [
          ['state', 'incidentId'],
          ['has space', ''],
        ],
        [['state', 'trigger', 'kind'], ['pager']],
        [
          ['state', 'settings', 'recheckSeconds'],
          [0, -60],
        ],
        [
          ['state', 'target', 'thresholds', 'failuresBeforeOutage'],
          [0, 11, 1.5],
        ],
        [
          ['state', 'target', 'thresholds', 'lockWaitSeconds'],
          [0, -1, '60s'],
        ],
      ],
    };

    it('refuses arbitrary JSON with a named ValidationError and no AWS call', async () => {
      await fc.assert(
        fc.asyncProperty(
          anyJson.filter((v) => (v as { action?: unknown } | null)?.action !== 'failed'),
          async (event) => expectNamedError(await run(event), 'ValidationError'),
        ),
        { numRuns: 300 },
      );
    });

    it('refuses every near-valid mutation, naming the field, with no AWS call', async () => {
      await fc.assert(
        fc.asyncProperty(
          mutations(shape).filter((m) => (m.input as { action?: unknown }).action !== 'failed'),
          async (m) => expectNamedError(await run(m.input), 'ValidationError', m.field),
        ),
        { numRuns: 500 },
      );
    });

    it('still composes the failure notice, one, whatever state the failure left behind', async () => {
      await fc.assert(
        fc.asyncProperty(anyJson, anyJson, async (state, error) => {
          const record = await runRunbook(
            { action: 'failed', state: state && typeof state === 'object' ? { ...state, error } : state },
            deps(),
          );
          expect(record.status).toBe('failed');
          expect(Object.keys(record.outbox ?? {})).toEqual(['failed']);
          expect(['arn:pages', 'arn:notifications']).toContain(
            (record.outbox?.failed as { TopicArn?: string } | undefined)?.TopicArn,
          );
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('monitor schedule event', () => {
    /** The documented envelope: an object whose source, detail-type and id, when present, are right. */
    function acceptable(event: unknown): boolean {
      if (event === null || event === undefined) return true;
      if (typeof event !== 'object' || Array.isArray(event)) return false;
      const e = event as Record<string, unknown>;
      const absent = (v: unknown) => v === undefined || v === null;
      return (
        (absent(e.source) || e.source === 'aws.events' || e.source === 'aws.scheduler') &&
        (absent(e['detail-type']) || e['detail-type'] === 'Scheduled Event') &&
        (absent(e.id) || (typeof e.id === 'string' && e.id.length > 0 && e.id.length <= 4096))
      );
    }

    it('accepts exactly the documented envelopes and refuses the rest with a named error', () => {
      const envelope = fc.record(
        {
          source: fc.oneof(
            fc.constantFrom('aws.events', 'aws.scheduler', 'aws.rds'),
            fc.jsonValue({ maxDepth: 0 }),
          ),
          'detail-type': fc.oneof(fc.constant('Scheduled Event'), fc.jsonValue({ maxDepth: 0 })),
          id: fc.jsonValue({ maxDepth: 0 }),
          detail: fc.jsonValue({ maxDepth: 1 }),
        },
        { requiredKeys: [] },
      );
      fc.assert(
        fc.property(fc.oneof(anyJson, envelope), (event) => {
          let error: unknown;
          try {
            parseScheduleEvent(event);
          } catch (e) {
            error = e;
          }
          if (acceptable(event)) expect(error).toBeUndefined();
          else expectNamedError(error, 'ValidationError');
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('RDS event and alarm intake', () => {
    const target: Target = {
      id: 'orders',
      connection: {
        host: 'orders.db',
        port: 5432,
        database: 'orders',
        auth: { kind: 'iam', region: 'eu-west-1' },
        tls: { mode: 'verify-full' },
      },
      rds: { instanceId: 'orders' },
      thresholds: DEFAULT_THRESHOLDS,
      remediation: DEFAULT_REMEDIATION,
    };
    const metrics: MetricSink = {
      add: () => wire.trip('metrics'),
      flush: async () => wire.trip('metrics'),
    };
    const deps: RdsEventsDeps = {
      targets: async () => [target],
      openIncident: async () => wire.trip('openIncident'),
      metrics,
      rds: { send: async () => wire.trip('RDS') },
      clock: new ManualClock('2026-11-26T10:00:00Z'),
      logger: silentLogger,
    };
    const run = (event: unknown) => failure(() => runRdsEvents(event, deps));

    const rdsEvent = {
      version: '0',
      id: 'e-1',
      'detail-type': 'RDS DB Instance Event',
      source: 'aws.rds',
      account: '123456789012',
      time: '2026-11-26T09:59:00Z',
      region: 'eu-west-1',
      resources: ['arn:aws:rds:eu-west-1:123456789012:db:orders'],
      detail: {
        EventCategories: ['availability'],
        SourceType: 'DB_INSTANCE',
        SourceArn: 'arn:aws:rds:eu-west-1:123456789012:db:orders',
        Date: '2026-11-26T09:59:00.120Z',
        Message: 'The DB instance shut down.',
        SourceIdentifier: 'orders',
        EventID: 'RDS-EVENT-0004',
      },
    };
    const alarmEvent = {
      source: 'aws.cloudwatch',
      'detail-type': 'CloudWatch Alarm State Change',
      id: 'a-1',
      time: '2026-11-26T09:59:00Z',
      detail: {
        alarmName: 'PgWarden/orders/probe-failing',
        state: { value: 'ALARM', reason: 'Threshold Crossed', timestamp: '2026-11-26T09:58:58.000+0000' },
        configuration: { metrics: [] },
      },
    };
    const rdsShape: Shape = {
      valid: rdsEvent,
      required: [
        ['source'],
        ['detail-type'],
        ['time'],
        ['detail'],
        ['detail', 'EventID'],
        ['detail', 'SourceIdentifier'],
      ],
      // EventBridge envelopes carry fields pgwarden does not read (version, account, resources).
      typed: paths(rdsEvent).filter(
        (p) => !['version', 'account', 'resources', 'resources[0]'].includes(render(p)),
      ),
      strict: [],
      invalid: [
        [['source'], ['aws.ec2', 'aws.RDS']],
        [['detail-type'], ['RDS DB Snapshot Event']],
        [['time'], ['yesterday', '2026-11-26']],
        [
          ['detail', 'EventID'],
          ['RDS-EVENT-12', 'rds-event-0004', '0004'],
        ],
        [['detail', 'Date'], ['26/11/2026']],
        [['detail', 'SourceIdentifier'], ['x'.repeat(256)]],
      ],
    };
    const alarmShape: Shape = {
      valid: alarmEvent,
      required: [
        ['source'],
        ['detail-type'],
        ['time'],
        ['detail'],
        ['detail', 'alarmName'],
        ['detail', 'state'],
        ['detail', 'state', 'value'],
      ],
      typed: [
        ['source'],
        ['detail-type'],
        ['time'],
        ['id'],
        ['detail'],
        ['detail', 'alarmName'],
        ['detail', 'state'],
        ['detail', 'state', 'value'],
        ['detail', 'state', 'reason'],
        ['detail', 'state', 'timestamp'],
        ['detail', 'configuration'],
      ],
      strict: [],
      invalid: [
        [['detail-type'], ['CloudWatch Alarm Changed']],
        [
          ['detail', 'state', 'value'],
          ['PENDING', 'alarm'],
        ],
        [['time'], ['now']],
      ],
    };

    it('refuses arbitrary JSON with a named ValidationError and opens nothing', async () => {
      await fc.assert(
        fc.asyncProperty(anyJson, async (event) => expectNamedError(await run(event), 'ValidationError')),
        { numRuns: 300 },
      );
    });

    it.each([
      ['RDS event', rdsShape],
      ['alarm', alarmShape],
    ])(
      'refuses every near-valid mutation of an %s, naming the field, and opens nothing',
      async (_, shape) => {
        await fc.assert(
          fc.asyncProperty(mutations(shape), async (m) =>
            expectNamedError(await run(m.input), 'ValidationError', m.field),
          ),
          { numRuns: 400 },
        );
      },
    );

    it('ignores, without acting, well-formed events it has no business with', async () => {
      const ignorable = fc.oneof(
        // Event ids pgwarden does not act on.
        fc
          .integer({ min: 0, max: 9_999 })
          .map((n) => `RDS-EVENT-${String(n).padStart(4, '0')}`)
          .filter(
            (id) =>
              ![
                '0004',
                '0006',
                '0007',
                '0013',
                '0020',
                '0031',
                '0034',
                '0035',
                '0036',
                '0052',
                '0069',
                '0070',
                '0072',
                '0073',
                '0087',
                '0089',
                '0150',
                '0221',
                '0222',
                '0227',
                '0011',
                '0015',
                '0021',
                '0049',
                '0053',
                '0065',
                '0071',
                '0088',
                '0092',
                '0151',
                '0152',
                '0153',
                '0154',
              ].includes(id.slice(-4)),
          )
          .map((id) => ({ ...rdsEvent, detail: { ...rdsEvent.detail, EventID: id } })),
        // Databases it does not monitor.
        fc
          .stringMatching(/^[a-z][a-z0-9-]{0,20}$/)
          .filter((id) => id !== 'orders')
          .map((id) => ({ ...rdsEvent, detail: { ...rdsEvent.detail, SourceIdentifier: id } })),
        // Alarms leaving ALARM, and alarms about nothing it monitors.
        fc.constantFrom('OK', 'INSUFFICIENT_DATA').map((value) => ({
          ...alarmEvent,
          detail: { ...alarmEvent.detail, state: { value } },
        })),
        fc
          .stringMatching(/^[a-z][a-z0-9-]{0,30}$/)
          .filter((name) => !name.startsWith('pgwarden-orders-'))
          .map((alarmName) => ({ ...alarmEvent, detail: { ...alarmEvent.detail, alarmName } })),
      );
      await fc.assert(
        fc.asyncProperty(ignorable, async (event) => {
          const result = await runRdsEvents(event, deps);
          expect(result).toMatchObject({ action: 'ignored', reason: expect.any(String) });
        }),
        { numRuns: 300 },
      );
    });
  });
});

describe('fleet config, fuzzed', () => {
  const valid = {
    targets: [
      {
        id: 'orders-prod',
        host: 'orders.abc.eu-west-1.rds.amazonaws.com',
        port: 5432,
        database: 'orders',
        user: 'pgwarden_monitor',
        auth: { secretArn: SECRET },
        tls: 'verify-full',
        caFile: '/opt/rds-global-bundle.pem',
        rds: { instanceId: 'orders-prod', region: 'eu-west-1' },
        thresholds: { utilizationPct: 80, longQuery: '5m', lockWait: '90s', failuresBeforeOutage: 3 },
        remediation: {
          dryRun: false,
          idleAfter: '30m',
          maxPerRun: 20,
          protectUsers: ['batch'],
          pressure: { utilizationPct: 95, idleAfter: '30s' },
        },
      },
    ],
    defaults: { region: 'eu-west-1', auth: { iam: true } },
    discovery: { tagKey: 'pgwarden:monitor', tagValue: 'true' },
  };
  const t = (...rest: Array<string | number>): Path => ['targets', 0, ...rest];
  const shape: Shape = {
    valid,
    required: [t('id'), t('host'), t('database'), t('rds', 'instanceId')],
    strict: [
      [],
      t(),
      t('auth'),
      t('rds'),
      t('thresholds'),
      t('remediation'),
      t('remediation', 'pressure'),
      ['defaults'],
      ['defaults', 'auth'],
      ['discovery'],
    ],
    invalid: [
      [t('id'), ['Orders DB', 'orders_prod', '']],
      [t('port'), [0, 70_000, 5432.5]],
      [t('tls'), ['prefer', 'allow', 'true']],
      [t('thresholds', 'utilizationPct'), [0, 101]],
      [t('thresholds', 'longQuery'), ['soon', '5', '500ms']],
      [t('thresholds', 'lockWait'), ['never', '60', '100ms']],
      [t('remediation', 'idleAfter'), ['1s', '31d', 'never']],
      [t('remediation', 'maxPerRun'), [0, 1_001]],
      [t('rds', 'region'), ['Europe']],
      [t('auth'), [{}, { secretArn: SECRET, iam: true }]],
      [['targets'], [[valid.targets[0], valid.targets[0]]]],
    ],
  };
  const parseConfig = (raw: unknown) => failure(() => parseFleet(raw, 'pgwarden.config.json'));

  it('refuses arbitrary JSON with a ConfigError naming the field', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyJson.filter((v) => !(v && typeof v === 'object' && Object.keys(v).length === 0)),
        async (raw) => {
          const error = await parseConfig(raw);
          expectNamedError(error, 'ConfigError');
          expect(error).toBeInstanceOf(ConfigError);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses every near-valid mutation with a ConfigError naming the field', async () => {
    await fc.assert(
      fc.asyncProperty(mutations(shape), async (m) =>
        expectNamedError(await parseConfig(m.input), 'ConfigError', m.field),
      ),
      { numRuns: 500 },
    );
  });

  it('refuses any environment text that is not a valid fleet, naming the variable or the field', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          anyJson.map((v) => JSON.stringify(v) ?? 'undefined'),
        ),
        fc.constantFrom('PGWARDEN_TARGETS', 'PGWARDEN_DEFAULTS', 'PGWARDEN_DISCOVERY'),
        (text, variable) => {
          let error: unknown;
          try {
            fleetFromEnvironment(
              { PGWARDEN_TARGETS: JSON.stringify(valid.targets), [variable]: text },
              'monitor',
            );
          } catch (e) {
            error = e;
          }
          // Some texts are valid (an empty defaults object, say); the rest fail, with a name and a path.
          if (error !== undefined) {
            expectNamedError(error, 'ConfigError');
            expect((error as Error).message).toContain('environment of the monitor function');
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('durations, fuzzed', () => {
  it('parses any text without throwing: a whole number of milliseconds, or undefined', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.stringMatching(/^[\d.]{0,6}(ms|s|m|h|d)?[\d.]{0,4}[a-z]{0,2}$/)),
        (text) => {
          const ms = parseDuration(text);
          if (ms !== undefined) {
            expect(Number.isInteger(ms)).toBe(true);
            expect(ms).toBeGreaterThanOrEqual(0);
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('adds up the parts of a well-formed duration', () => {
    const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 999 }),
            fc.constantFrom(...(Object.keys(unit) as Array<keyof typeof unit>)),
          ),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (parts) => {
          const text = parts.map(([n, u]) => `${n}${u}`).join('');
          expect(parseDuration(text)).toBe(parts.reduce((sum, [n, u]) => sum + n * unit[u], 0));
        },
      ),
    );
  });

  it('refuses, through the duration schema, anything that is not a duration in range, naming the field', () => {
    const schema = duration({ minMs: 1_000, maxMs: 3_600_000 });
    fc.assert(
      fc.property(anyJson, (value) => {
        const ms = typeof value === 'string' ? parseDuration(value) : undefined;
        let error: unknown;
        try {
          parse(schema, value, 'CLI arguments', ValidationError, '--idle-after');
        } catch (e) {
          error = e;
        }
        if (ms !== undefined && ms >= 1_000 && ms <= 3_600_000) expect(error).toBeUndefined();
        else expectNamedError(error, 'ValidationError', '--idle-after');
      }),
      { numRuns: 500 },
    );
  });
});

describe('database URLs, fuzzed', () => {
  const PASSWORD = 'Sup3r-s3cret-pw';
  const base = `postgres://pgwarden_monitor:${PASSWORD}@db.example.com:5432/app?sslmode=verify-full`;
  const mutated = fc.oneof(
    fc.string().map((s) => `postgres://pgwarden_monitor:${PASSWORD}@${s}`),
    fc.string().map((s) => base.replace('5432', s)),
    fc.string().map((s) => base.replace('verify-full', s)),
    fc
      .constantFrom('prefer', 'allow', 'disable', 'require', 'verify-ca', 'VERIFY-FULL')
      .map((m) => base.replace('verify-full', m)),
    fc
      .constantFrom('http', 'mysql', 'postgresql', 'postgres', 'pg')
      .map((scheme) => base.replace('postgres', scheme)),
    fc.integer({ min: -10, max: 70_000 }).map((port) => base.replace('5432', String(port))),
    fc.nat(base.length).map((n) => base.slice(0, n)),
    fc.constant(base.replace('pgwarden_monitor:', ':')),
    // Unparseable ones that still carry the password: cut short, a stray %, a second @.
    fc.constantFrom(
      `postgres://pgwarden_monitor:${PASSWORD}`,
      `postgres://pgwarden_monitor:${PASSWORD}@%`,
      `postgres://pgwarden_monitor:${PASSWORD}@a@b c/db`,
    ),
  );

  it('never throws, never echoes the password, and returns a sane spec or issues at "url"', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.webUrl(), mutated), (text) => {
        const parsed = parseDatabaseUrl(text);
        if (!parsed.ok) {
          expect(parsed.issues.length).toBeGreaterThan(0);
          for (const issue of parsed.issues) {
            expect(issue.path).toBe('url');
            expect(JSON.stringify(issue)).not.toContain(PASSWORD);
          }
          return;
        }
        const { spec } = parsed;
        expect(spec.host.length).toBeGreaterThan(0);
        expect(Number.isInteger(spec.port) && spec.port >= 1 && spec.port <= 65_535).toBe(true);
        expect(spec.user?.length).toBeGreaterThan(0);
        expect(TLS_MODES).toContain(spec.tls.mode);
      }),
      { numRuns: 1_000 },
    );
  });

  it('refuses the modes that silently fall back to plaintext', () => {
    for (const mode of ['prefer', 'allow']) {
      const parsed = parseDatabaseUrl(base.replace('verify-full', mode));
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.issues[0]?.problem).toContain('falls back to an unencrypted connection');
    }
  });
});
