import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ControlType, parseWorkerControl } from './control-messages.js';
import { decodeCredentialResult, MAX_CREDENTIAL_PAYLOAD, parseCredentialRequest } from './credential-validate.js';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const basic = { kind: 'password', providers: ['system', 'wharf'], user: 'alice', password: 'p', domain: '', clientAddress: '10.0.0.1' };

function problem(v: unknown): string {
  const r = parseCredentialRequest(Buffer.isBuffer(v) ? v : json(v));
  assert.ok('problem' in r, `refused: ${JSON.stringify(v)?.slice(0, 80)}`);
  return r.problem;
}

test('a well-formed request of each kind passes unchanged', () => {
  assert.deepEqual(parseCredentialRequest(json(basic)), basic);
  const digest = { kind: 'digest', user: 'u', realm: 'r', algorithm: 'SHA-256', method: 'GET', uri: '/a?b', nonce: 'n', nc: '00000001', cnonce: 'c', qop: 'auth', response: 'ab', clientAddress: '::1' };
  assert.deepEqual(parseCredentialRequest(json(digest)), digest);
  assert.deepEqual(parseCredentialRequest(json({ kind: 'account', providers: ['wharf'], user: 'u' })), { kind: 'account', providers: ['wharf'], user: 'u' });
  // Extra fields a worker adds are dropped, not passed on.
  assert.deepEqual(parseCredentialRequest(json({ kind: 'negotiate', token: 'YII=', context: '', clientAddress: '::1', uid: 0 })), { kind: 'negotiate', token: 'YII=', context: '', clientAddress: '::1' });
});

test('hostile payloads are refused with what was wrong, never thrown', () => {
  assert.match(problem({ ...basic, user: 'x'.repeat(257) }), /user is longer than 256 bytes/);
  assert.match(problem({ ...basic, user: 'é'.repeat(129) }), /user is longer than 256 bytes/, 'bytes, not characters');
  assert.match(problem({ ...basic, password: 'x'.repeat(1025) }), /password is longer than 1024 bytes/);
  assert.match(problem({ ...basic, user: 'a\nb' }), /user holds control characters/);
  assert.match(problem({ ...basic, user: 42 }), /user is not a string/);
  assert.match(problem({ ...basic, providers: [] }), /providers/);
  assert.match(problem({ ...basic, providers: ['system', 'system'] }), /provider system twice/);
  assert.match(problem({ ...basic, providers: ['system', 'wharf', 'ldap'] }), /providers/);
  assert.match(problem({ ...basic, providers: ['__proto__'] }), /unknown provider/);
  assert.match(problem({ ...basic, providers: 'system' }), /providers/);
  assert.match(problem({ kind: 'negotiate', token: 'A'.repeat(64 * 1024 + 1), context: '', clientAddress: '' }), /token is longer than 65536 bytes/);
  assert.match(problem({ kind: 'digest', algorithm: 'SHA-512', user: 'u' }), /algorithm/);
  assert.match(problem({ kind: 'root' }), /unknown kind "root"/);
  assert.match(problem([basic]), /not an object/);
  assert.match(problem(null), /not an object/);
  assert.match(problem(Buffer.from('{"kind":')), /not JSON/);
  assert.match(problem(Buffer.alloc(MAX_CREDENTIAL_PAYLOAD + 1, 0x20)), /credential request of \d+ bytes/);
});

test('CredentialCheck frames: the id is the frame stream; a bad payload is still answered under its id', () => {
  assert.deepEqual(parseWorkerControl(ControlType.CredentialCheck, 7, json(basic)), { type: ControlType.CredentialCheck, id: 7, request: basic });
  const bad = parseWorkerControl(ControlType.CredentialCheck, 8, json({ ...basic, clientAddress: 'x'.repeat(65) }));
  assert.equal(bad.type, 'credential-refused');
  if (bad.type === 'credential-refused') {
    assert.equal(bad.id, 8);
    assert.match(bad.problem, /clientAddress is longer than 64 bytes/);
  }
});

test('a damaged result never decodes as a success', () => {
  assert.equal(decodeCredentialResult(Buffer.from('{')).ok, false);
  assert.equal(decodeCredentialResult(json({ ok: true })).ok, false);
  assert.equal(decodeCredentialResult(json({ ok: 'yes', identity: {} })).ok, false);
  const ok = { ok: true, identity: { name: 'a', provider: 'wharf', uid: -1, gid: -1, groups: [] } };
  assert.deepEqual(decodeCredentialResult(json(ok)), ok);
});
