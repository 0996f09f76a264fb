import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SequenceMatcher } from './sequence-matcher.js';

test('finds any of the strings, case-insensitively, wherever they start', () => {
  const m = new SequenceMatcher(['..', 'Admin', '<script', '%']);
  assert.equal(m.test('/a/../b'), true);
  assert.equal(m.test('/site/admin/x'), true);
  assert.equal(m.test('q=%3c'), true);
  assert.equal(m.test('x=<script>'), true);
  assert.equal(m.test('/a/b.c/d'), false);
  assert.equal(new SequenceMatcher([]).test('anything'), false);
  assert.equal(new SequenceMatcher(['']).size, 0, 'an empty string matches nothing rather than everything');
});

test('a partial match that fails resumes from the longest suffix that is still a prefix', () => {
  // 'abab' then 'c': the automaton must fall back to 'ab' and still find 'abc'.
  assert.equal(new SequenceMatcher(['abc']).test('xababc'), true);
  assert.equal(new SequenceMatcher(['aab']).test('aaab'), true);
  // A string inside another string's path is found through the failure links.
  assert.equal(new SequenceMatcher(['abcd', 'bc']).test('xbcx'), true);
  assert.equal(new SequenceMatcher(['abcd', 'bc']).test('abcx'), true);
  assert.equal(new SequenceMatcher(['abcd', 'cdz']).test('abcdz'), true);
  assert.equal(new SequenceMatcher(['abcd', 'cdz']).test('abcz'), false);
});

test('agrees with includes() on random texts and lists over a small alphabet', () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const word = (max: number): string => Array.from({ length: 1 + rnd(max) }, () => 'abc'[rnd(3)]).join('');
  for (let round = 0; round < 2000; round++) {
    const list = Array.from({ length: 1 + rnd(5) }, () => word(4));
    const text = word(20);
    const expected = list.some((s) => text.includes(s));
    assert.equal(new SequenceMatcher(list).test(text), expected, `${JSON.stringify(list)} in ${text}`);
  }
});
