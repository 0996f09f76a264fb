import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialService } from './credential-service.js';
import { digestResponse } from './digest.js';
import { UserStore, userStorePaths } from './user-store.js';
import type { CredentialRequest } from '../ipc/credential-messages.js';

const drive = mkdtempSync(join(tmpdir(), 'wharf-cred-'));
after(() => rmSync(drive, { recursive: true, force: true }));

const lines: string[] = [];
const service = new CredentialService({ systemDrive: drive, log: (level, m) => lines.push(`${level} ${m}`), pamService: 'wharf-test-none' });
const store = new UserStore(drive);
const basic = (user: string, password: string, clientAddress = '198.51.100.1'): CredentialRequest => ({ kind: 'password', providers: ['wharf'], user, password, domain: '', clientAddress });

test("Wharf's users: the store is argon2id and an encrypted password; Basic verifies, names are case-insensitive, failures are logged without the password", async () => {
  await store.add('Carol', 'carol secret');
  const ok = await service.check(basic('carol', 'carol secret'));
  assert.deepEqual(ok, { ok: true, identity: { name: 'Carol', provider: 'wharf', uid: -1, gid: -1, groups: [] } });
  assert.match(store.list()[0]!.hash, /^\$argon2id\$/);
  assert.doesNotMatch(JSON.stringify(store.list()), /carol secret/);
  const bad = await service.check(basic('Carol', 'guess'));
  assert.equal(!bad.ok && bad.reason, 'bad-credentials');
  const unknown = await service.check(basic('dave', 'x'));
  assert.equal(!unknown.ok && unknown.reason, 'unknown-user');
  assert.ok(lines.some((l) => l.startsWith('warn SEC_LOGON_FAILED: logon of user "Carol" from 198.51.100.1 failed: bad-credentials')));
  assert.ok(!lines.some((l) => l.includes('guess')));
});

test('Digest against a Wharf user: every algorithm; a wrong response, and a user the store cannot decrypt', async () => {
  const f = { user: 'carol', realm: 'Realm', method: 'GET', uri: '/x', nonce: 'abc', nc: '00000001', cnonce: 'def', qop: 'auth' };
  for (const algorithm of ['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess'] as const) {
    const response = digestResponse({ ...f, algorithm }, 'carol secret');
    const r = await service.check({ kind: 'digest', ...f, algorithm, response, clientAddress: '198.51.100.2' });
    assert.equal(r.ok, true, algorithm);
    const wrong = await service.check({ kind: 'digest', ...f, algorithm, response: digestResponse({ ...f, algorithm }, 'other'), clientAddress: '198.51.100.2' });
    assert.equal(!wrong.ok && wrong.reason, 'bad-credentials');
  }
  // A machine key that is not the one the secrets were made with: reported, 'unavailable'.
  writeFileSync(userStorePaths(drive).key, 'ab'.repeat(32));
  await new Promise((r) => setTimeout(r, 20));
  await store.add('eve', 'eve secret');
  // A name the server does not know makes it re-read the store (and the key) at once.
  assert.equal((await service.check({ kind: 'account', providers: ['wharf'], user: 'eve' })).ok, true);
  const r = await service.check({ kind: 'digest', ...f, algorithm: 'MD5', response: digestResponse({ ...f, algorithm: 'MD5' }, 'carol secret'), clientAddress: '198.51.100.2' });
  assert.equal(!r.ok && r.reason, 'unavailable');
  assert.ok(lines.some((l) => /error SEC_USER_STORE: the stored password of Wharf user "Carol" does not decrypt/.test(l)));
});

test('a provider that is not installed or configured answers unavailable: negotiate without an acceptor', async () => {
  const r = await service.check({ kind: 'negotiate', token: 'YII=', context: '', clientAddress: '::1' });
  assert.equal(!r.ok && r.reason, 'unavailable');
});

test('the failure limit stops checking after 10 failures from one address; another address still logs on', async () => {
  const reasons: string[] = [];
  for (let i = 0; i < 12; i++) {
    const r = await service.check(basic('eve', `guess ${i}`, '203.0.113.5'));
    reasons.push(r.ok ? 'ok' : r.reason);
  }
  assert.deepEqual(reasons, [...Array(9).fill('bad-credentials'), 'throttled', 'throttled', 'throttled']);
  const blocked = await service.check(basic('eve', 'eve secret', '203.0.113.5'));
  assert.equal(!blocked.ok && blocked.reason, 'throttled');
  assert.equal((await service.check(basic('eve', 'eve secret', '203.0.113.6'))).ok, true);
  assert.equal(lines.filter((l) => l.includes('SEC_THROTTLED: client 203.0.113.5')).length, 1);
});

test('accounts without a password, from either provider', async () => {
  const w = await service.check({ kind: 'account', providers: ['wharf'], user: 'EVE' });
  assert.equal(w.ok && w.identity.name, 'eve');
  const root = await service.check({ kind: 'account', providers: ['wharf', 'system'], user: 'root' });
  assert.deepEqual(root.ok && [root.identity.uid, root.identity.provider], [0, 'system']);
  const none = await service.check({ kind: 'account', providers: ['system'], user: '-n' });
  assert.equal(!none.ok && none.reason, 'unknown-user');
});
