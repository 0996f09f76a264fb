import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { CellCounter, CellHistogram } from './cells.js';

test('a histogram cell counts a value equal to a bound in that bound\'s bucket (le is ≤), larger ones in +Inf; buckets are cumulative', async () => {
  const r = new Registry();
  const h = new CellHistogram<'site'>('t_seconds', 'Test.', [1, 0.1, 10], r);
  const a = h.cell({ site: 'A' });
  for (const v of [0.05, 0.1, 0.5, 1, 11]) a.observe(v);
  const text = await r.metrics();
  assert.match(text, /^# TYPE t_seconds histogram$/m);
  assert.match(text, /^t_seconds_bucket\{le="0.1",site="A"\} 2$/m);
  assert.match(text, /^t_seconds_bucket\{le="1",site="A"\} 4$/m);
  assert.match(text, /^t_seconds_bucket\{le="10",site="A"\} 4$/m);
  assert.match(text, /^t_seconds_bucket\{le="\+Inf",site="A"\} 5$/m);
  assert.match(text, /^t_seconds_sum\{site="A"\} 12.65$/m);
  assert.match(text, /^t_seconds_count\{site="A"\} 5$/m);
});

test('counter cells: one series per cell, label values escaped by prom-client, reset to 0', async () => {
  const r = new Registry();
  const c = new CellCounter<'site'>('t_total', 'Test.', r);
  const a = c.cell({ site: 'say "hi"\\' });
  a.inc();
  a.inc();
  c.cell({ site: 'B' });
  assert.match(await r.metrics(), /^t_total\{site="say \\"hi\\"\\\\"\} 2$/m);
  assert.match(await r.metrics(), /^t_total\{site="B"\} 0$/m);
  r.resetMetrics();
  assert.match(await r.metrics(), /^t_total\{site="say \\"hi\\"\\\\"\} 0$/m);
});
