import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingResponse, TestContext, removeDir, runNotification, type ElementSpec } from '../../../test/helpers/module-harness.js';
import type { Identity } from '../../worker/module-api.js';
import { UrlAuthorizationModule } from './index.js';

const SECTION = 'system.webServer/security/authorization';
const BOB: Identity = { name: 'bob', provider: 'system', uid: 1001, gid: 1001, groups: [{ name: 'bob', gid: 1001 }, { name: 'Editors', gid: 2001 }] };

function rule(accessType: 'Allow' | 'Deny', attrs: { users?: string; roles?: string; verbs?: string }): ElementSpec {
  return { attributes: { accessType, ...attrs } };
}

async function decide(t: { after: (fn: () => void) => void }, rules: ElementSpec[], who: Identity | undefined, method = 'GET'): Promise<string> {
  const ctx = new TestContext({ url: '/x', method, response: new RecordingResponse(), sections: { [SECTION]: { items: rules } } });
  t.after(() => removeDir(ctx.root));
  if (who !== undefined) {
    ctx.user = who.name;
    ctx.identity = who;
  }
  await runNotification(ctx, UrlAuthorizationModule, 'AuthorizeRequest');
  return `${ctx.response.statusCode}.${ctx.response.subStatus}${ctx.finished ? '' : ' (continues)'}`;
}

test('IIS shipped rule: everyone, anonymous included', async (t) => {
  assert.equal(await decide(t, [rule('Allow', { users: '*' })], undefined), '200.0 (continues)');
  assert.equal(await decide(t, [rule('Allow', { users: '*' })], BOB), '200.0 (continues)');
});

test('no rule at all, or none that matches: 401.2', async (t) => {
  assert.equal(await decide(t, [], BOB), '401.2');
  assert.equal(await decide(t, [rule('Allow', { users: 'alice' })], BOB), '401.2');
});

test('? is anonymous only; names match case-insensitively; roles are the Linux groups', async (t) => {
  const rules = [rule('Deny', { users: '?' }), rule('Allow', { users: 'ALICE, bob' })];
  assert.equal(await decide(t, rules, undefined), '401.2');
  assert.equal(await decide(t, rules, BOB), '200.0 (continues)');
  assert.equal(await decide(t, [rule('Allow', { roles: 'editors' })], BOB), '200.0 (continues)');
  assert.equal(await decide(t, [rule('Allow', { roles: 'editors' })], undefined), '401.2');
});

test('Deny rules first, whatever their place in the collection', async (t) => {
  // An Allow for everyone written before a Deny of bob: bob is still denied (IIS, unlike ASP.NET).
  assert.equal(await decide(t, [rule('Allow', { users: '*' }), rule('Deny', { users: 'bob' })], BOB), '401.2');
  assert.equal(await decide(t, [rule('Allow', { users: '*' }), rule('Deny', { roles: 'Editors' })], BOB), '401.2');
});

test('verbs limit a rule to those methods (case-sensitive, as IIS compares them)', async (t) => {
  const rules = [rule('Allow', { users: '*', verbs: 'GET, HEAD' }), rule('Allow', { users: 'bob', verbs: 'POST' })];
  assert.equal(await decide(t, rules, undefined, 'GET'), '200.0 (continues)');
  assert.equal(await decide(t, rules, undefined, 'POST'), '401.2');
  assert.equal(await decide(t, rules, BOB, 'POST'), '200.0 (continues)');
  assert.equal(await decide(t, [rule('Allow', { users: '*', verbs: 'get' })], undefined, 'GET'), '401.2');
  assert.equal(await decide(t, [rule('Allow', { users: '*' }), rule('Deny', { users: '*', verbs: 'DELETE' })], BOB, 'DELETE'), '401.2');
});
