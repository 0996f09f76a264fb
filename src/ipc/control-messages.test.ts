import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedProcesses, ControlType, MAX_EXIT_REASON, MAX_HINTED_PROCESSES, MAX_RECYCLE_REASON, parseWorkerControl } from './control-messages.js';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

test("a worker's AppHints process count is bounded, never trusted", () => {
  assert.equal(boundedProcesses(3), 3);
  assert.equal(boundedProcesses(1e9), MAX_HINTED_PROCESSES);
  for (const bad of [-1, 0, 2.5, Number.NaN, '3', null, undefined]) assert.equal(boundedProcesses(bad), 0);
  assert.deepEqual(parseWorkerControl(ControlType.AppHints, 0, json({ processes: 1e9, shutdownTimeLimitMs: -5 })), {
    type: ControlType.AppHints,
    msg: { processes: MAX_HINTED_PROCESSES, shutdownTimeLimitMs: 0 },
    asked: 1e9,
  });
});

test('a recycle reason becomes one bounded log line; malformed payloads and unknown types are reported, never thrown', () => {
  const long = parseWorkerControl(ControlType.RecycleRequest, 0, json({ reason: 'a\nb\x1b' + 'x'.repeat(10_000) }));
  assert.equal(long.type, ControlType.RecycleRequest);
  if (long.type === ControlType.RecycleRequest) {
    assert.equal(long.msg.reason.length, MAX_RECYCLE_REASON);
    assert.ok(long.msg.reason.startsWith('a b '));
  }
  assert.equal(parseWorkerControl(ControlType.RecycleRequest, 0, Buffer.from('{not json')).type, 'invalid');
  assert.equal(parseWorkerControl(ControlType.RecycleRequest, 0, json({ reason: 42 })).type, 'invalid');
  assert.equal(parseWorkerControl(ControlType.AppHints, 0, json([1, 2])).type, 'invalid');
  assert.deepEqual(parseWorkerControl(99, 0, Buffer.alloc(0)), { type: 'invalid', problem: 'unknown control message type 99' });
  assert.deepEqual(parseWorkerControl(ControlType.Pong, 7, Buffer.alloc(0)), { type: ControlType.Pong, id: 7 });
});

test("a worker's exit notice is one bounded log line; without a reason it is reported", () => {
  const m = parseWorkerControl(ControlType.Exiting, 0, json({ reason: "the pool's code threw TypeError: x\n  at y" + 'z'.repeat(5000) }));
  assert.equal(m.type, ControlType.Exiting);
  if (m.type === ControlType.Exiting) {
    assert.equal(m.msg.reason.length, MAX_EXIT_REASON);
    assert.ok(m.msg.reason.startsWith("the pool's code threw TypeError: x   at y"));
  }
  assert.deepEqual(parseWorkerControl(ControlType.Exiting, 0, json({})), { type: 'invalid', problem: 'an exit notice without a reason' });
});
