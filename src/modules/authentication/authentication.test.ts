import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RecordingResponse, TestContext, removeDir, runNotification } from '../../../test/helpers/module-harness.js';
import type { CredentialRequest, CredentialResult, Identity, WorkerServices } from '../../worker/module-api.js';
import { computeServerVariable } from '../../worker/server-variables.js';
import { AnonymousAuthenticationModule } from './anonymous.js';
import { BasicAuthenticationModule, parseBasic, providersFor } from './basic.js';
import { addChallenge } from './challenge.js';
import { DigestAuthenticationModule, parseAuthParams, resetDigestNonces } from './digest.js';
import { DigestNonces, NONCE_LIFETIME_MS } from './digest-nonce.js';

const ALICE: Identity = { name: 'alice', provider: 'system', uid: 1234, gid: 1234, groups: [{ name: 'alice', gid: 1234 }, { name: 'staff', gid: 50 }] };

/** A CredentialClient that knows alice / s3cret and records what it was asked. */
class FakeCredentials {
  readonly asked: CredentialRequest[] = [];
  answer: (r: CredentialRequest) => CredentialResult = (r) => {
    if (r.kind === 'password' && r.user === 'alice' && r.password === 's3cret') return { ok: true, identity: ALICE };
    if (r.kind === 'account' && r.user === 'web') return { ok: true, identity: { ...ALICE, name: 'web', uid: 2000 } };
    if (r.kind === 'digest' && r.user === 'dora') return { ok: true, identity: { name: 'dora', provider: 'wharf', uid: -1, gid: -1, groups: [] } };
    return { ok: false, reason: r.kind === 'account' ? 'unknown-user' : 'bad-credentials', message: 'no' };
  };
  check(r: CredentialRequest): Promise<CredentialResult> {
    this.asked.push(r);
    return Promise.resolve(this.answer(r));
  }
  cached(): CredentialResult | undefined {
    return undefined;
  }
}

function services(credentials: FakeCredentials): WorkerServices {
  return {
    poolName: () => 'p',
    systemDrive: () => '/tmp',
    requestRecycle: () => undefined,
    appHints: () => undefined,
    log: () => undefined,
    credentials,
  };
}

function attachAll(): FakeCredentials {
  const c = new FakeCredentials();
  for (const m of [AnonymousAuthenticationModule, BasicAuthenticationModule, DigestAuthenticationModule]) m.attach!(services(c));
  return c;
}

const BASIC = 'system.webServer/security/authentication/basicAuthentication';
const DIGEST = 'system.webServer/security/authentication/digestAuthentication';
const ANON = 'system.webServer/security/authentication/anonymousAuthentication';

function ctxWith(headers: Record<string, string>, sections: Record<string, Record<string, string | boolean>> = {}, url = '/a.txt'): TestContext {
  return new TestContext({
    url,
    headers,
    response: new RecordingResponse(),
    sections: Object.fromEntries(Object.entries(sections).map(([k, v]) => [k, { attributes: v }])),
  });
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

test('Basic: good credentials set the user, identity, AUTH_TYPE and AUTH_PASSWORD; the check goes to the credential service', async (t) => {
  const c = attachAll();
  const ctx = ctxWith({ authorization: `Basic ${b64('alice:s3cret')}` }, { [BASIC]: { enabled: true } });
  t.after(() => removeDir(ctx.root));
  await runNotification(ctx, BasicAuthenticationModule, 'AuthenticateRequest');
  assert.equal(ctx.response.statusCode, 200);
  assert.equal(ctx.user, 'alice');
  assert.equal(ctx.identity, ALICE);
  assert.equal(computeServerVariable(ctx, 'AUTH_TYPE'), 'Basic');
  assert.equal(computeServerVariable(ctx, 'AUTH_USER'), 'alice');
  assert.equal(computeServerVariable(ctx, 'REMOTE_USER'), 'alice');
  assert.equal(computeServerVariable(ctx, 'LOGON_USER'), 'alice');
  assert.equal(computeServerVariable(ctx, 'AUTH_PASSWORD'), 's3cret');
  assert.deepEqual(c.asked, [{ kind: 'password', providers: ['system', 'wharf'], user: 'alice', password: 's3cret', domain: '', clientAddress: '203.0.113.9' }]);
});

test('Basic: a wrong password is 401.1 with the name tried as the user (cs-username), and nothing authenticated', async (t) => {
  attachAll();
  const ctx = ctxWith({ authorization: `Basic ${b64('alice:wrong')}` }, { [BASIC]: { enabled: true } });
  t.after(() => removeDir(ctx.root));
  await runNotification(ctx, BasicAuthenticationModule, 'AuthenticateRequest');
  assert.equal(`${ctx.response.statusCode}.${ctx.response.subStatus}`, '401.1');
  assert.ok(ctx.finished);
  assert.equal(ctx.user, 'alice');
  assert.equal(ctx.identity, undefined);
  assert.equal(ctx.authType, '');
});

test('Basic: the credential service being unavailable is a 500, not a logon', async (t) => {
  const c = attachAll();
  c.answer = () => ({ ok: false, reason: 'unavailable', message: 'PAM missing' });
  const ctx = ctxWith({ authorization: `Basic ${b64('alice:s3cret')}` }, { [BASIC]: { enabled: true } });
  t.after(() => removeDir(ctx.root));
  await runNotification(ctx, BasicAuthenticationModule, 'AuthenticateRequest');
  assert.equal(ctx.response.statusCode, 500);
  assert.equal(ctx.user, '');
});

test('Basic: disabled, or no Basic header, leaves the request alone', async (t) => {
  const c = attachAll();
  for (const [headers, enabled] of [[{ authorization: `Basic ${b64('alice:s3cret')}` }, false], [{ authorization: 'Bearer abc' }, true], [{}, true]] as const) {
    const ctx = ctxWith(headers, { [BASIC]: { enabled } });
    t.after(() => removeDir(ctx.root));
    await runNotification(ctx, BasicAuthenticationModule, 'AuthenticateRequest');
    assert.equal(ctx.response.statusCode, 200);
    assert.equal(ctx.user, '');
  }
  assert.equal(c.asked.length, 0);
});

test('Basic parsing: strict base64, a colon, DOMAIN\\user, user@domain, bounded length', () => {
  assert.deepEqual(parseBasic(b64('EXAMPLE\\bob:pw:with:colons'), ''), { sent: 'EXAMPLE\\bob', user: 'bob', domain: 'EXAMPLE', password: 'pw:with:colons' });
  assert.deepEqual(parseBasic(b64('bob@example.com:pw'), 'DEF'), { sent: 'bob@example.com', user: 'bob@example.com', domain: '', password: 'pw' });
  assert.deepEqual(parseBasic(b64('bob:'), 'DEF'), { sent: 'bob', user: 'bob', domain: 'DEF', password: '' });
  assert.match(parseBasic('not base64!', '') as string, /not base64/);
  assert.match(parseBasic('YWxpY2U', '') as string, /not base64/); // unpadded
  assert.match(parseBasic(b64('no-colon'), '') as string, /no ":"/);
  assert.match(parseBasic(b64(':pw'), '') as string, /empty/);
  assert.match(parseBasic(b64('a\x01b:pw'), '') as string, /control/);
  assert.match(parseBasic(b64('\\bob:pw'), '') as string, /DOMAIN/);
  assert.match(parseBasic('A'.repeat(4000), '') as string, /at most/);
  assert.deepEqual(providersFor('wharf'), ['wharf']);
  assert.deepEqual(providersFor('EXAMPLE'), ['system', 'wharf']);
});

test('Basic: a malformed header is 401.1 without asking the credential service; WHARF\\ names Wharf users only', async (t) => {
  const c = attachAll();
  const bad = ctxWith({ authorization: 'Basic %%%' }, { [BASIC]: { enabled: true } });
  t.after(() => removeDir(bad.root));
  await runNotification(bad, BasicAuthenticationModule, 'AuthenticateRequest');
  assert.equal(`${bad.response.statusCode}.${bad.response.subStatus}`, '401.1');
  assert.equal(c.asked.length, 0);
  const w = ctxWith({ authorization: `Basic ${b64('WHARF\\alice:s3cret')}` }, { [BASIC]: { enabled: true } });
  t.after(() => removeDir(w.root));
  await runNotification(w, BasicAuthenticationModule, 'AuthenticateRequest');
  assert.deepEqual(c.asked[0], { kind: 'password', providers: ['wharf'], user: 'alice', password: 's3cret', domain: '', clientAddress: '203.0.113.9' });
  assert.equal(w.user, 'WHARF\\alice');
});

test('challenges: one WWW-Authenticate per enabled scheme on every 401, in IIS order (Negotiate, Digest, Basic), none on other statuses', async (t) => {
  attachAll();
  const ctx = ctxWith({ host: 'shop.example:8080' }, { [BASIC]: { enabled: true }, [DIGEST]: { enabled: true, realm: 'Shop "A"' } });
  t.after(() => removeDir(ctx.root));
  ctx.response.statusCode = 401;
  ctx.response.subStatus = 3;
  await runNotification(ctx, BasicAuthenticationModule, 'SendResponse');
  addChallenge(ctx.response, 'Negotiate');
  await runNotification(ctx, DigestAuthenticationModule, 'SendResponse');
  const h = ctx.response.getHeader('WWW-Authenticate') as readonly string[];
  assert.equal(h.length, 4);
  assert.equal(h[0], 'Negotiate');
  assert.match(h[1]!, /^Digest realm="Shop \\"A\\"", qop="auth", algorithm=SHA-256, nonce="[A-Za-z0-9_-]{40}"$/);
  assert.match(h[2]!, /^Digest realm="Shop \\"A\\"", qop="auth", algorithm=MD5, nonce="[A-Za-z0-9_-]{40}"$/);
  assert.equal(h[3], 'Basic realm="shop.example"');
  const ok = ctxWith({}, { [BASIC]: { enabled: true } });
  t.after(() => removeDir(ok.root));
  await runNotification(ok, BasicAuthenticationModule, 'SendResponse');
  assert.equal(ok.response.getHeader('WWW-Authenticate'), undefined);
});

test('anonymous: empty userName or IUSR is the pool identity (nothing asked); a named account is looked up and its identity applies, the user stays anonymous', async (t) => {
  const c = attachAll();
  for (const userName of ['', 'IUSR']) {
    const ctx = ctxWith({}, { [ANON]: { userName } });
    t.after(() => removeDir(ctx.root));
    await runNotification(ctx, AnonymousAuthenticationModule, 'AuthenticateRequest');
    assert.equal(ctx.identity, undefined);
  }
  assert.equal(c.asked.length, 0);
  const named = ctxWith({}, { [ANON]: { userName: 'web' } });
  t.after(() => removeDir(named.root));
  await runNotification(named, AnonymousAuthenticationModule, 'AuthenticateRequest');
  assert.deepEqual(c.asked, [{ kind: 'account', providers: ['system', 'wharf'], user: 'web' }]);
  assert.equal(named.identity?.uid, 2000);
  assert.equal(named.user, '');
  assert.equal(computeServerVariable(named, 'AUTH_USER'), '');
  assert.equal(computeServerVariable(named, 'LOGON_USER'), 'web');
  assert.equal(computeServerVariable(named, 'AUTH_TYPE'), '');
  const missing = ctxWith({}, { [ANON]: { userName: 'ghost' } });
  t.after(() => removeDir(missing.root));
  await runNotification(missing, AnonymousAuthenticationModule, 'AuthenticateRequest');
  assert.equal(`${missing.response.statusCode}.${missing.response.subStatus}`, '401.1');
});

test('a child request runs as its parent: no scheme authenticates it again', async (t) => {
  const c = attachAll();
  const child = new TestContext({ url: '/x', headers: { authorization: `Basic ${b64('alice:s3cret')}` }, isChildRequest: true, sections: { [BASIC]: { attributes: { enabled: true } } } });
  t.after(() => removeDir(child.root));
  await runNotification(child, BasicAuthenticationModule, 'AuthenticateRequest');
  assert.equal(c.asked.length, 0);
});

// ---- Digest ------------------------------------------------------------------------------------

function h(alg: string, s: string): string {
  return createHash(alg.startsWith('SHA-256') ? 'sha256' : 'md5').update(s).digest('hex');
}

/** The Authorization header curl would send for `nonce` (RFC 7616 §3.4.1). */
function digestHeader(o: { user: string; realm: string; nonce: string; uri: string; nc: string; alg?: string; method?: string }): string {
  const alg = o.alg ?? 'SHA-256';
  const ha1 = h(alg, `${o.user}:${o.realm}:pw`);
  const ha2 = h(alg, `${o.method ?? 'GET'}:${o.uri}`);
  const response = h(alg, `${ha1}:${o.nonce}:${o.nc}:c0ffee:auth:${ha2}`);
  return `Digest username="${o.user}", realm="${o.realm}", nonce="${o.nonce}", uri="${o.uri}", algorithm=${alg}, response="${response}", qop=auth, nc=${o.nc}, cnonce="c0ffee"`;
}

async function digestChallenge(t: { after: (fn: () => void) => void }): Promise<string> {
  const ctx = ctxWith({}, { [DIGEST]: { enabled: true, realm: 'r' } });
  t.after(() => removeDir(ctx.root));
  ctx.response.statusCode = 401;
  await runNotification(ctx, DigestAuthenticationModule, 'SendResponse');
  return /nonce="([^"]+)"/.exec((ctx.response.getHeader('WWW-Authenticate') as string[])[0]!)![1]!;
}

async function digestRequest(t: { after: (fn: () => void) => void }, header: string, url = '/a.txt'): Promise<TestContext> {
  const ctx = ctxWith({ authorization: header }, { [DIGEST]: { enabled: true, realm: 'r' } }, url);
  t.after(() => removeDir(ctx.root));
  await runNotification(ctx, DigestAuthenticationModule, 'AuthenticateRequest');
  return ctx;
}

test('Digest: a response to our nonce goes to the main process with every field; the user is logged on; nc replay and uri mismatch are refused', async (t) => {
  resetDigestNonces();
  const c = attachAll();
  const nonce = await digestChallenge(t);
  const ok = await digestRequest(t, digestHeader({ user: 'dora', realm: 'r', nonce, uri: '/a.txt', nc: '00000001' }));
  assert.equal(ok.response.statusCode, 200);
  assert.equal(ok.user, 'dora');
  assert.equal(ok.authType, 'Digest');
  const sent = c.asked[0]!;
  assert.equal(sent.kind, 'digest');
  assert.deepEqual({ ...sent, response: '' }, { kind: 'digest', user: 'dora', realm: 'r', algorithm: 'SHA-256', method: 'GET', uri: '/a.txt', nonce, nc: '00000001', cnonce: 'c0ffee', qop: 'auth', response: '', clientAddress: '203.0.113.9' });
  // The same nc again: a replay.
  const replay = await digestRequest(t, digestHeader({ user: 'dora', realm: 'r', nonce, uri: '/a.txt', nc: '00000001' }));
  assert.equal(`${replay.response.statusCode}.${replay.response.subStatus}`, '401.1');
  const next = await digestRequest(t, digestHeader({ user: 'dora', realm: 'r', nonce, uri: '/a.txt', nc: '00000002', alg: 'MD5' }));
  assert.equal(next.user, 'dora');
  // A header captured for one URL, sent for another.
  const moved = await digestRequest(t, digestHeader({ user: 'dora', realm: 'r', nonce, uri: '/other.txt', nc: '00000003' }));
  assert.equal(moved.response.statusCode, 400);
  assert.equal(c.asked.length, 2);
});

test('Digest: a forged nonce, another realm or a malformed header is 401.1 without asking; an expired nonce is 401 with stale=true', async (t) => {
  let now = 1_000_000;
  resetDigestNonces({ now: () => now });
  const c = attachAll();
  const forged = await digestRequest(t, digestHeader({ user: 'dora', realm: 'r', nonce: 'A'.repeat(40), uri: '/a.txt', nc: '00000001' }));
  assert.equal(`${forged.response.statusCode}.${forged.response.subStatus}`, '401.1');
  const nonce = await digestChallenge(t);
  const realm = await digestRequest(t, digestHeader({ user: 'dora', realm: 'other', nonce, uri: '/a.txt', nc: '00000001' }));
  assert.equal(`${realm.response.statusCode}.${realm.response.subStatus}`, '401.1');
  const junk = await digestRequest(t, 'Digest username="dora", realm="r", nonce=');
  assert.equal(`${junk.response.statusCode}.${junk.response.subStatus}`, '401.1');
  const int = await digestRequest(t, digestHeader({ user: 'dora', realm: 'r', nonce, uri: '/a.txt', nc: '00000001' }).replace('qop=auth', 'qop=auth-int'));
  assert.equal(int.response.subStatus, 1);
  assert.equal(c.asked.length, 0);
  now += NONCE_LIFETIME_MS + 1;
  const stale = await digestRequest(t, digestHeader({ user: 'dora', realm: 'r', nonce, uri: '/a.txt', nc: '00000001' }));
  assert.equal(stale.response.statusCode, 401);
  await runNotification(stale, DigestAuthenticationModule, 'SendResponse');
  const challenges = stale.response.getHeader('WWW-Authenticate') as string[];
  assert.match(challenges[0]!, /, stale=true$/);
  assert.notEqual(/nonce="([^"]+)"/.exec(challenges[0]!)![1], nonce);
});

test('auth-params: quoted strings with escapes, tokens, duplicates and junk refused', () => {
  assert.deepEqual([...parseAuthParams('a="x, \\"y\\"", b=tok ,c=""')!], [['a', 'x, "y"'], ['b', 'tok'], ['c', '']]);
  assert.equal(parseAuthParams('a=1, a=2'), undefined);
  assert.equal(parseAuthParams('a="unterminated'), undefined);
  assert.equal(parseAuthParams('just words'), undefined);
});

test('nonces: bounded memory never lets a forgotten nonce be replayed', () => {
  let now = 5_000_000;
  const n = new DigestNonces({ now: () => now, maxTracked: 2 });
  const a = n.issue();
  now++;
  const b = n.issue();
  now++;
  const c = n.issue();
  assert.equal(n.use(a, '00000001'), 'ok');
  assert.equal(n.use(b, '00000001'), 'ok');
  assert.equal(n.use(c, '00000001'), 'ok'); // evicts a
  assert.equal(n.use(a, '00000002'), 'stale');
  assert.equal(n.use(b, '00000001'), 'replay');
  assert.equal(n.use(b, 'zz'), 'invalid');
  assert.equal(new DigestNonces().use(b, '00000009'), 'invalid', 'another worker\'s key');
});
