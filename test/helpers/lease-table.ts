/**
 * The monitor's lease table at the SDK boundary: PutItem and DeleteItem with the two condition
 * expressions the lease uses, evaluated the way DynamoDB does. The real table's behaviour is checked
 * against the AWS API emulator in test/aws/monitor-lease.test.ts.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';

export const LEASE_TABLE = 'pgwarden-monitor-lease';

type Item = Record<string, { S?: string; N?: string }>;

export interface FakeLeaseTable {
  /** The lease item, if one is held. */
  item(): Item | undefined;
  /** Puts an item as another run would have. */
  hold(holder: string, expiresAt: number): void;
  /** Every PutItem and DeleteItem in order, as `put`/`delete`. */
  calls(): string[];
  /** Makes every call fail with `error` until reset. */
  fail(error: Error): void;
  reset(): void;
}

export function fakeLeaseTable(): FakeLeaseTable {
  const mock = mockClient(DynamoDBClient);
  let stored: Item | undefined;
  let failure: Error | undefined;
  const log: string[] = [];
  const conditionFailed = (old: Item | undefined) =>
    new ConditionalCheckFailedException({
      message: 'The conditional request failed',
      $metadata: {},
      ...(old ? { Item: old as Record<string, AttributeValue> } : {}),
    });

  const install = () => {
    mock.reset();
    mock.on(PutItemCommand).callsFake(async (input) => {
      log.push('put');
      if (failure) throw failure;
      const values = input.ExpressionAttributeValues ?? {};
      const now = Number(values[':now']?.N);
      const free =
        stored === undefined ||
        Number(stored.expiresAt?.N) < now ||
        stored.holder?.S === values[':holder']?.S;
      if (!free) throw conditionFailed(stored);
      stored = input.Item as Item;
      return {};
    });
    mock.on(DeleteItemCommand).callsFake(async (input) => {
      log.push('delete');
      if (failure) throw failure;
      if (stored?.holder?.S !== input.ExpressionAttributeValues?.[':holder']?.S)
        throw conditionFailed(stored);
      stored = undefined;
      return {};
    });
  };
  install();

  return {
    item: () => stored,
    hold: (holder, expiresAt) => {
      stored = { id: { S: 'monitor' }, holder: { S: holder }, expiresAt: { N: String(expiresAt) } };
    },
    calls: () => [...log],
    fail: (error) => {
      failure = error;
    },
    reset: () => {
      stored = undefined;
      failure = undefined;
      log.length = 0;
      install();
    },
  };
}
