import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTimeFormat, DEFAULT_TIME_FORMAT, formatTime, MAX_TIME_FORMAT_LENGTH } from './ssi-time-format.js';

// Tuesday 5 March 2024, 14:07:09 UTC (day 65 of a leap year).
const T = new Date(Date.UTC(2024, 2, 5, 14, 7, 9));

test('the tokens IIS documents for #config timefmt, in GMT', () => {
  const f = (fmt: string): string => formatTime(T, fmt, true);
  assert.equal(f('%a %A %b %B'), 'Tue Tuesday Mar March');
  assert.equal(f('%c'), '03/05/24 14:07:09');
  assert.equal(f('%d %H %I %j %m %M %p %S'), '05 14 02 065 03 07 PM 09');
  assert.equal(f('%U %w %W'), '09 2 10');
  assert.equal(f('%x|%X|%y|%Y|%Z|%%'), '03/05/24|14:07:09|24|2024|GMT|%');
  assert.equal(f(DEFAULT_TIME_FORMAT), 'Tuesday, March 05, 2024 14:07:09');
});

test("Microsoft's # flag and C99's extra tokens", () => {
  const f = (fmt: string): string => formatTime(T, fmt, true);
  assert.equal(f('%#d/%#m %#H:%#M'), '5/3 14:7');
  assert.equal(f('%#x'), 'Tuesday, March 05, 2024');
  assert.equal(f('%#c'), 'Tuesday, March 05, 2024, 14:07:09');
  assert.equal(f('%D %T %R %r %F %e %h %C %u'), '03/05/24 14:07:09 14:07 02:07:09 PM 2024-03-05  5 Mar 20 2');
  assert.equal(f('%G-W%V'), '2024-W10');
  // ISO weeks at year ends: 1 January 2021 (a Friday) is in week 53 of 2020.
  assert.equal(formatTime(new Date(Date.UTC(2021, 0, 1)), '%G-%V %g', true), '2020-53 20');
  assert.equal(formatTime(new Date(Date.UTC(2024, 11, 30)), '%G-%V', true), '2025-01');
});

test('local time uses the process time zone', () => {
  const local = formatTime(T, '%Y-%m-%d %H:%M:%S', false);
  const pad = (n: number): string => String(n).padStart(2, '0');
  assert.equal(local, `${T.getFullYear()}-${pad(T.getMonth() + 1)}-${pad(T.getDate())} ${pad(T.getHours())}:${pad(T.getMinutes())}:${pad(T.getSeconds())}`);
});

test('a format with an unknown token, a lone %, or too long is refused', () => {
  assert.equal(checkTimeFormat('%Y-%m-%d'), undefined);
  assert.equal(checkTimeFormat(''), undefined);
  assert.equal(checkTimeFormat('%Q'), 'the time format has the unknown token %Q');
  assert.equal(checkTimeFormat('100%'), 'the time format ends with a lone %');
  assert.match(checkTimeFormat('x'.repeat(MAX_TIME_FORMAT_LENGTH + 1))!, /longer than 1024/);
});
