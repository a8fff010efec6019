import { describe, expect, it } from 'vitest';
import { runSweep, sweepRequest } from '../../../functions/sweep/sweep.ts';
import { InvocationError } from '../../../shared/errors.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { DEFAULT_REMEDIATION, type Target } from '../../../shared/target.ts';
import { testTarget } from '../../helpers/targets.ts';

const target = (id: string): Target =>
  testTarget(id, {
    connection: { ...testTarget(id).connection, auth: { kind: 'secret', secretId: `secret-${id}` } },
    remediation: { ...DEFAULT_REMEDIATION, protectUsers: ['etl'] },
  });

describe('sweep', () => {
  it('asks the remediator for the idle policy only, with the target policy and no secrets', () => {
    expect(sweepRequest(target('a'))).toEqual({
      targetId: 'a',
      connection: target('a').connection,
      policy: { ...DEFAULT_REMEDIATION, protectUsers: ['etl'] },
      actions: ['idle', 'idle_in_transaction'],
    });
  });

  it('sweeps every target and reports failures per target without stopping', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const results = await runSweep(
      ['a', 'b', 'c', 'd', 'e', 'f'].map(target),
      {
        remediate: async (request) => {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((resolve) => setTimeout(resolve, 10));
          inFlight -= 1;
          if (request.targetId === 'b')
            throw new InvocationError('pgwarden-remediate failed: Task timed out after 30.00 seconds');
          if (request.targetId === 'c')
            return {
              ok: false,
              failure: { category: 'too_many_connections', message: 'sorry, too many clients already' },
            };
          return {
            ok: true,
            dryRun: false,
            terminated: [{ pid: 1 }, { pid: 2 }],
            skipped: [{ pid: 3 }],
            skipCounts: { protected_user: 1, cap_reached: 250 },
          };
        },
        logger: silentLogger,
      },
      2,
    );
    expect(maxInFlight).toBe(2);
    expect(results.map((r) => [r.targetId, r.ok])).toEqual([
      ['a', true],
      ['b', false],
      ['c', false],
      ['d', true],
      ['e', true],
      ['f', true],
    ]);
    // The skipped list is capped by the remediator; the count comes from skipCounts.
    expect(results[0]).toEqual({ targetId: 'a', ok: true, dryRun: false, terminated: 2, skipped: 251 });
    expect(results[1]?.error).toContain('Task timed out');
    expect(results[2]?.error).toBe('too_many_connections: sorry, too many clients already');
  });
});
