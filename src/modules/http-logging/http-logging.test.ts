import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpLoggingModule } from './index.js';
import { TestContext } from '../../../test/helpers/module-harness.js';

async function decide(httpLogging: Record<string, string | boolean>, status: number): Promise<boolean> {
  const ctx = new TestContext({ sections: { 'system.webServer/httpLogging': { attributes: httpLogging } } });
  ctx.response.statusCode = status;
  await HttpLoggingModule.notifications!.SendResponse!(ctx);
  return ctx.response.logRequest;
}

test('httpLogging: every request is logged by default', async () => {
  assert.equal(await decide({}, 200), true);
  assert.equal(await decide({}, 404), true);
});

test('dontLog="true" suppresses the W3C line', async () => {
  assert.equal(await decide({ dontLog: true }, 200), false);
});

test('selectiveLogging keeps only successes or only errors', async () => {
  assert.equal(await decide({ selectiveLogging: 'LogSuccessful' }, 200), true);
  assert.equal(await decide({ selectiveLogging: 'LogSuccessful' }, 500), false);
  assert.equal(await decide({ selectiveLogging: 'LogError' }, 404), true);
  assert.equal(await decide({ selectiveLogging: 'LogError' }, 304), false);
});
