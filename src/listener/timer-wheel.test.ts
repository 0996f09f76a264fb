import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimerWheel, WheelTimer, type TimerOwner } from './timer-wheel.js';

class Recorder implements TimerOwner {
  readonly fired: number[] = [];
  onTimer(now: number): void {
    this.fired.push(now);
  }
}

function wheel(clock: { t: number }, slots = 8): TimerWheel {
  return new TimerWheel({ tickMs: 1000, slots, now: () => clock.t, autoStart: false });
}

test('a timer fires at the first tick at or after its deadline, once', () => {
  const clock = { t: 10_000 };
  const w = wheel(clock);
  const r = new Recorder();
  const t = new WheelTimer(r);
  w.arm(t, 12_500);
  assert.equal(w.size, 1);
  w.advance(12_000);
  assert.deepEqual(r.fired, []);
  w.advance(13_000);
  assert.deepEqual(r.fired, [13_000]);
  assert.equal(t.armed, false);
  assert.equal(w.size, 0);
  w.advance(20_000);
  assert.equal(r.fired.length, 1);
});

test('disarm and re-arm are O(1) and leave other timers in the slot alone', () => {
  const clock = { t: 0 };
  const w = wheel(clock);
  const a = new Recorder();
  const b = new Recorder();
  const c = new Recorder();
  const ta = new WheelTimer(a);
  const tb = new WheelTimer(b);
  const tc = new WheelTimer(c);
  w.arm(ta, 2000);
  w.arm(tb, 2000);
  w.arm(tc, 2000);
  w.disarm(tb); // middle of the slot's list
  w.arm(tc, 5000); // moved to another slot
  assert.equal(w.size, 2);
  w.advance(3000);
  assert.deepEqual(a.fired, [3000]);
  assert.deepEqual(b.fired, []);
  assert.deepEqual(c.fired, []);
  w.advance(5000);
  assert.deepEqual(c.fired, [5000]);
  assert.equal(w.size, 0);
});

test('deadlines beyond one turn of the wheel wait for their turn', () => {
  const clock = { t: 0 };
  const w = wheel(clock, 4); // one turn = 4 s
  const r = new Recorder();
  w.arm(new WheelTimer(r), 10_000);
  for (let s = 1; s <= 9; s++) w.advance(s * 1000);
  assert.deepEqual(r.fired, []);
  w.advance(10_000);
  assert.deepEqual(r.fired, [10_000]);
});

test('an already-due deadline fires at the next tick; a long stall fires everything due', () => {
  const clock = { t: 5000 };
  const w = wheel(clock, 4);
  const r = new Recorder();
  w.arm(new WheelTimer(r), 1000);
  w.advance(5999);
  assert.deepEqual(r.fired, []);
  w.advance(6000);
  assert.equal(r.fired.length, 1);
  const many = Array.from({ length: 10 }, () => new Recorder());
  many.forEach((m, i) => w.arm(new WheelTimer(m), 7000 + i * 1000));
  w.advance(60_000); // the event loop was blocked for a while
  assert.ok(many.every((m) => m.fired.length === 1));
});

test('an owner may re-arm its timer from onTimer (lazy deadlines)', () => {
  const clock = { t: 0 };
  const w = wheel(clock);
  let calls = 0;
  const owner: TimerOwner = {
    onTimer(now) {
      calls++;
      if (calls === 1) w.arm(t, now + 3000);
    },
  };
  const t = new WheelTimer(owner);
  w.arm(t, 1000);
  w.advance(1000);
  assert.equal(calls, 1);
  assert.equal(t.armed, true);
  w.advance(3000);
  assert.equal(calls, 1);
  w.advance(4000);
  assert.equal(calls, 2);
});
