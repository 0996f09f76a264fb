import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, TraceFlags } from '@opentelemetry/api';
import { batchSettingsFromEnv, SpanBatcher, type SpanBatch, type SpanSink } from './span-export.js';
import { newTraceId, SpanRecord } from './span-record.js';

class ListBatch implements SpanBatch {
  readonly spans: SpanRecord[] = [];
  get count(): number {
    return this.spans.length;
  }
  add(span: SpanRecord): void {
    this.spans.push(span);
  }
}

/** A sink whose exports the test settles by hand. */
class ManualSink implements SpanSink<ListBatch> {
  readonly sent: { batch: ListBatch; settle: (error?: Error) => void }[] = [];
  closed = false;
  newBatch(): ListBatch {
    return new ListBatch();
  }
  export(batch: ListBatch): Promise<void> {
    return new Promise((resolve, reject) => this.sent.push({ batch, settle: (e) => (e === undefined ? resolve() : reject(e)) }));
  }
  async shutdown(): Promise<void> {
    this.closed = true;
  }
}

const span = (): SpanRecord => {
  const s = new SpanRecord(newTraceId(), undefined, TraceFlags.SAMPLED, '', 'x', SpanKind.INTERNAL, performance.now(), []);
  s.end = performance.now();
  return s;
};
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('SpanBatcher', () => {
  it('exports a full batch on the next turn, one export at a time; the rest wait for it', async () => {
    const sink = new ManualSink();
    const errors: string[] = [];
    const b = new SpanBatcher({ sink, settings: { scheduleDelayMs: 60_000, maxQueueSize: 100, maxExportBatchSize: 3, exportTimeoutMs: 60_000 }, onError: (r) => errors.push(r) });
    for (let i = 0; i < 7; i++) b.add(span());
    assert.equal(sink.sent.length, 0, 'not inside the request');
    await turn();
    assert.equal(sink.sent.length, 1);
    assert.equal(sink.sent[0]!.batch.count, 3);
    sink.sent[0]!.settle();
    await turn();
    await turn();
    assert.equal(sink.sent.length, 2, 'the second full batch after the first');
    assert.equal(sink.sent[1]!.batch.count, 3);
    sink.sent[1]!.settle();
    // The seventh span waits for the schedule; flush sends it.
    const flushed = b.flush();
    await turn();
    assert.equal(sink.sent.length, 3);
    assert.equal(sink.sent[2]!.batch.count, 1);
    sink.sent[2]!.settle();
    await flushed;
    assert.deepEqual(errors, []);
  });

  it('a full queue drops spans and says so once per run of drops; a failed export is reported', async () => {
    const sink = new ManualSink();
    const errors: string[] = [];
    const b = new SpanBatcher({ sink, settings: { scheduleDelayMs: 60_000, maxQueueSize: 4, maxExportBatchSize: 2, exportTimeoutMs: 60_000 }, onError: (r) => errors.push(r) });
    for (let i = 0; i < 10; i++) b.add(span());
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /OTEL_BSP_MAX_QUEUE_SIZE=4/);
    await turn();
    sink.sent[0]!.settle(new Error('connect ECONNREFUSED 127.0.0.1:4318'));
    await turn();
    assert.match(errors[1]!, /ECONNREFUSED/);
    // The queue has room again.
    sink.sent[1]!.settle();
    await turn();
    b.add(span());
    assert.equal(errors.length, 2);
  });

  it('the schedule delay exports a partial batch; shutdown exports the rest and closes the sink', async () => {
    const sink = new ManualSink();
    const b = new SpanBatcher({ sink, settings: { scheduleDelayMs: 5, maxQueueSize: 100, maxExportBatchSize: 50, exportTimeoutMs: 60_000 }, onError: () => undefined });
    b.add(span());
    while (sink.sent.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(sink.sent[0]!.batch.count, 1);
    sink.sent[0]!.settle();
    b.add(span());
    b.add(span());
    const done = b.shutdown();
    while (sink.sent.length < 2) await turn();
    sink.sent[1]!.settle();
    await done;
    assert.equal(sink.sent[1]!.batch.count, 2);
    assert.ok(sink.closed);
    b.add(span());
    assert.equal(sink.sent.length, 2, 'nothing after shutdown');
  });

  it('reads OTEL_BSP_* and keeps the batch within the queue', () => {
    const saved = { ...process.env };
    try {
      process.env['OTEL_BSP_MAX_QUEUE_SIZE'] = '100';
      process.env['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'] = '500';
      process.env['OTEL_BSP_SCHEDULE_DELAY'] = '250';
      const s = batchSettingsFromEnv();
      assert.deepEqual(s, { scheduleDelayMs: 250, maxQueueSize: 100, maxExportBatchSize: 100, exportTimeoutMs: 30000 });
    } finally {
      for (const k of ['OTEL_BSP_MAX_QUEUE_SIZE', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'OTEL_BSP_SCHEDULE_DELAY']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});
