/**
 * One monitor run at a time, without reserved concurrency (which needs an account quota of 101+,
 * since Lambda keeps 100 executions unreserved).
 *
 * The guarantee: a run probes and publishes only while it holds the lease, one item in a DynamoDB
 * table written with a conditional put. The lease lasts until the run's hard end (its Lambda timeout,
 * after which Lambda has stopped it) plus a margin for clock skew, and is released after the metrics
 * are sent. So however EventBridge and Lambda deliver the schedule (late, twice, two minutes close
 * together), two runs never probe or publish at the same time: the second finds the lease taken and
 * ends without doing anything. Timing keeps that rare: the monitor's timeout is below the schedule's
 * one-minute period, so a run has normally ended before the next one starts.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { describeError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';

/** The key of the monitor's lease item. */
export const MONITOR_LEASE_ID = 'monitor';

/** Covers the difference between two Lambda hosts' clocks (NTP keeps it far below this). */
export const LEASE_CLOCK_MARGIN_MS = 2_000;

export interface LeaseDeps {
  dynamodb: Pick<DynamoDBClient, 'send'>;
  /** The lease table's name (partition key `id`, a string). */
  table: string;
  logger: Logger;
  signal?: AbortSignal;
}

export type LeaseResult =
  /** This run holds the lease; release it once the metrics are sent. */
  | { status: 'held'; release: () => Promise<void> }
  /** Another run holds it: this run must do nothing. */
  | { status: 'busy'; heldUntil?: string }
  /**
   * The table could not be asked (throttled, unreachable). The run goes ahead unguarded: a fleet
   * that might be watched twice for a minute is better than a fleet not watched at all.
   */
  | { status: 'unavailable'; error: string };

/**
 * Takes the lease until `until` (epoch ms): succeeds when no run holds it, or the holder's lease has
 * run out. `holder` identifies this run; a retry of the same put (the SDK's own) finds itself.
 */
export async function acquireLease(
  deps: LeaseDeps,
  holder: string,
  now: number,
  until: number,
): Promise<LeaseResult> {
  const options = deps.signal ? { abortSignal: deps.signal } : {};
  try {
    await deps.dynamodb.send(
      new PutItemCommand({
        TableName: deps.table,
        Item: {
          id: { S: MONITOR_LEASE_ID },
          holder: { S: holder },
          expiresAt: { N: String(until) },
        },
        ConditionExpression: 'attribute_not_exists(id) OR expiresAt < :now OR holder = :holder',
        ExpressionAttributeValues: { ':now': { N: String(now) }, ':holder': { S: holder } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      options,
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException || isConditionFailure(error)) {
      const expiresAt = Number((error as ConditionalCheckFailedException).Item?.expiresAt?.N);
      return {
        status: 'busy',
        ...(Number.isFinite(expiresAt) ? { heldUntil: new Date(expiresAt).toISOString() } : {}),
      };
    }
    return { status: 'unavailable', error: describeError(error) };
  }
  return {
    status: 'held',
    release: async () => {
      try {
        await deps.dynamodb.send(
          new DeleteItemCommand({
            TableName: deps.table,
            Key: { id: { S: MONITOR_LEASE_ID } },
            ConditionExpression: 'holder = :holder',
            ExpressionAttributeValues: { ':holder': { S: holder } },
          }),
          options,
        );
      } catch (error) {
        // The lease runs out by itself at the run's hard end; the next run only waits for that.
        if (!isConditionFailure(error))
          deps.logger.warn('could not release the monitor lease', { error: describeError(error) });
      }
    },
  };
}

function isConditionFailure(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}
