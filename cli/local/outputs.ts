/**
 * Where local mode puts what AWS would: metrics as PutMetricData requests (one JSON document per line,
 * the same shape the monitor sends to CloudWatch) and every page and notification as a file in an
 * outbox folder (the email text, and the JSON document machine subscribers get).
 */
import { join } from 'node:path';
import {
  chunk,
  MAX_DATUMS_PER_CALL,
  type MetricSink,
  NAMESPACE,
  type Sample,
  toDatums,
} from '../../shared/metrics.ts';
import type { PublishedMessage } from './aws.ts';
import { appendPrivateFile, preparePrivateDir, writeNewPrivateFile } from './home.ts';

/** Buffers samples and appends them to a file as PutMetricData inputs. */
export class MetricsFileSink implements MetricSink {
  readonly file: string;
  private pending: Sample[] = [];

  constructor(file: string) {
    this.file = file;
  }

  add(samples: readonly Sample[]): void {
    this.pending.push(...samples);
  }

  async flush() {
    const datums = toDatums(this.pending);
    this.pending = [];
    const batches = chunk(datums, MAX_DATUMS_PER_CALL);
    if (batches.length > 0) {
      const lines = batches
        .map((MetricData) => JSON.stringify({ Namespace: NAMESPACE, MetricData }))
        .join('\n');
      await appendPrivateFile(this.file, `${lines}\n`);
    }
    return { sent: datums.length, calls: batches.length, failed: 0 };
  }
}

/** Fans samples out to several sinks (the file and the live view). */
export class TeeSink implements MetricSink {
  private readonly sinks: MetricSink[];
  constructor(...sinks: MetricSink[]) {
    this.sinks = sinks;
  }
  add(samples: readonly Sample[]): void {
    for (const sink of this.sinks) sink.add(samples);
  }
  async flush(signal?: AbortSignal) {
    const results = await Promise.all(this.sinks.map((s) => s.flush(signal)));
    return results[0] ?? { sent: 0, calls: 0, failed: 0 };
  }
}

let sequence = 0;

/** Writes a published message to the outbox: `<time>-<topic>-<kind>.txt` and `.json`. */
export async function writeOutbox(dir: string, message: PublishedMessage): Promise<string> {
  await preparePrivateDir(dir);
  sequence += 1;
  const stamp = new Date(message.at).toISOString().replace(/[:.]/g, '-');
  const base = join(
    dir,
    `${stamp}-${String(sequence).padStart(3, '0')}-${message.topic}-${message.attributes['pgwarden.kind'] ?? 'message'}`,
  );
  await writeNewPrivateFile(
    `${base}.txt`,
    `Subject: ${message.subject}\nTopic: ${message.topic}\n\n${message.message}\n`,
  );
  await writeNewPrivateFile(
    `${base}.json`,
    `${JSON.stringify({ topic: message.topic, subject: message.subject, attributes: message.attributes, document: message.document }, null, 2)}\n`,
  );
  return `${base}.txt`;
}
