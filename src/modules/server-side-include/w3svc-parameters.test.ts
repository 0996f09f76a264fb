import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseW3svcParameters } from './w3svc-parameters.js';

test('SSIEnableCmdDirective: off unless set to a non-zero DWORD', () => {
  assert.deepEqual(parseW3svcParameters(undefined), { ssiEnableCmdDirective: false, problems: [] });
  assert.deepEqual(parseW3svcParameters(''), { ssiEnableCmdDirective: false, problems: [] });
  assert.equal(parseW3svcParameters('SSIEnableCmdDirective=1').ssiEnableCmdDirective, true);
  assert.equal(parseW3svcParameters('ssienablecmddirective=0x1').ssiEnableCmdDirective, true);
  assert.equal(parseW3svcParameters('SSIEnableCmdDirective=0').ssiEnableCmdDirective, false);
});

test('what cannot be understood is reported, and never turns cmd on', () => {
  const typo = parseW3svcParameters('SSIEnableCmdDirectiv=1');
  assert.equal(typo.ssiEnableCmdDirective, false);
  assert.match(typo.problems[0]!, /unknown value 'SSIEnableCmdDirectiv'/);
  const bad = parseW3svcParameters('SSIEnableCmdDirective=1; SSIEnableCmdDirective=yes');
  assert.equal(bad.ssiEnableCmdDirective, false);
  assert.match(bad.problems[0]!, /must be a DWORD/);
});
