// The credential service end to end: a real worker (running as its pool's Linux user) asks the
// main process over its control channel, through a test module (fixtures/credentials/
// cred-probe.mjs) that calls services.credentials as the Basic and Digest modules do. Linux
// accounts are real (useradd, chpasswd, PAM); Wharf's users are added and deleted with the real
// `wharf user` command while the server runs.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { isRoot, needs, pamModule, root } from './helpers/skip.js';
import { admin, getent } from './helpers/test-users.js';
import { eventually, run, startWharf, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';

const LINUX_USER = 'wharfcredtest';
const LINUX_GROUP = 'wharfcredgrp';
const PASSWORD = 'Linux pässword 1';


let w: WharfProcess | undefined;
before(async () => {
  if (!isRoot || !pamModule().met) return;
  if (getent('passwd', LINUX_USER) !== undefined) admin('userdel', [LINUX_USER]);
  if (getent('group', LINUX_GROUP) !== undefined) admin('groupdel', [LINUX_GROUP]);
  admin('groupadd', [LINUX_GROUP]);
  admin('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', LINUX_GROUP, LINUX_USER]);
  const r = spawnSync('chpasswd', { input: `${LINUX_USER}:${PASSWORD}\n`, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  w = await startWharf({ fixture: 'credentials' });
});
after(async () => {
  await w?.stop();
  if (getent('passwd', LINUX_USER) !== undefined) admin('userdel', [LINUX_USER]);
  if (getent('group', LINUX_GROUP) !== undefined) admin('groupdel', [LINUX_GROUP]);
});

function ready(t: TestContext): boolean {
  return needs(t, root('Linux test accounts (useradd, chpasswd) and a pool running as its own user'), pamModule());
}

interface Answer {
  readonly status: number;
  readonly body: { ok: boolean; reason?: string; message?: string; identity?: { name: string; provider: string; uid: number; gid: number; groups: { name: string; gid: number }[] }; ms: number };
}

/** GET `path` from `from` (a loopback address), with Basic credentials when given. */
function ask(path: string, basic?: [string, string], from = '127.0.0.1'): Promise<Answer> {
  const headers: Record<string, string> = basic === undefined ? {} : { Authorization: `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString('base64')}` };
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: w!.port, path, headers, localAddress: from, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer['body'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

function wharfUser(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [WHARF_BIN, 'user', ...args, '--system-drive', w!.systemDrive], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a Linux account logs on through PAM: its uid and groups come back, the W3C line names it; a wrong password is 401.1 and logged without the password', async (t) => {
  if (!ready(t)) return;
  const ok = await ask('/check?kind=password&providers=system', [LINUX_USER, PASSWORD]);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const id = ok.body.identity!;
  assert.equal(id.name, LINUX_USER);
  assert.equal(id.provider, 'system');
  assert.equal(id.uid, Number(execFileSync('id', ['-u', LINUX_USER], { encoding: 'utf8' })));
  assert.equal(id.groups[0]!.gid, id.gid, 'the primary group comes first');
  assert.ok(id.groups.some((g) => g.name === LINUX_GROUP), JSON.stringify(id.groups));
  await eventually(() => w!.logLines(1).some((l) => l.includes('/check') && l.includes(` ${LINUX_USER} `) && / 200 0 0 /.test(l)));

  const bad = await ask('/check?kind=password&providers=system', [LINUX_USER, 'not the password']);
  assert.equal(bad.status, 401);
  assert.equal(bad.body.reason, 'bad-credentials');
  await eventually(() => w!.logLines(1).some((l) => l.includes('/check') && / 401 1 0 /.test(l)));
  await w!.waitForOutput(new RegExp(`SEC_LOGON_FAILED: logon of user "${LINUX_USER}" from 127\\.0\\.0\\.1 failed: bad-credentials`));
  assert.doesNotMatch(w!.output(), /not the password/);
  assert.doesNotMatch(w!.output(), new RegExp(PASSWORD));
});

test('a verified logon is cached (IIS UserTokenTTL): after chpasswd the old password still logs on at once, the new one through PAM', async (t) => {
  if (!ready(t)) return;
  assert.equal((await ask('/check?kind=password&providers=system', [LINUX_USER, PASSWORD])).status, 200);
  const r = spawnSync('chpasswd', { input: `${LINUX_USER}:changed password\n`, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const cached = await ask('/check?kind=password&providers=system', [LINUX_USER, PASSWORD]);
  assert.equal(cached.status, 200, 'the cached logon stays valid for its 15 minutes');
  assert.ok(cached.body.ms < 20, `a cached logon is answered in the worker (${cached.body.ms} ms)`);
  assert.equal((await ask('/check?kind=password&providers=system', [LINUX_USER, 'changed password'])).status, 200);
  spawnSync('chpasswd', { input: `${LINUX_USER}:${PASSWORD}\n` });
});

test("an expired Linux account, or one that must change its password, is 401.1 even with the right password (pam_unix's account stage); chage -E -1 restores it", async (t) => {
  if (!ready(t)) return;
  // A new password for each step, so no cached logon answers; 127.0.0.3 keeps these failures off the other tests' failure limit.
  const from = '127.0.0.3';
  const logon = (password: string): Promise<Answer> => ask('/check?kind=password&providers=system', [LINUX_USER, password], from);
  const refusals = (): number =>
    w!.w3cRecords(1).filter((r) => r['c-ip'] === from && r['cs-uri-query'] === 'kind=password&providers=system' && r['sc-status'] === '401' && r['sc-substatus'] === '1').length;
  const refusal = async (password: string, why: RegExp): Promise<void> => {
    const before = refusals();
    const a = await logon(password);
    assert.equal(a.status, 401, JSON.stringify(a.body));
    assert.equal(a.body.reason, 'bad-credentials');
    assert.match(a.body.message!, why);
    await eventually(() => refusals() === before + 1);
    await w!.waitForOutput(new RegExp(`SEC_LOGON_FAILED: logon of user "${LINUX_USER}" from 127\\.0\\.0\\.3 failed: bad-credentials \\(${why.source}`));
  };
  const setPassword = (password: string): void => assert.equal(spawnSync('chpasswd', { input: `${LINUX_USER}:${password}\n`, encoding: 'utf8' }).status, 0);
  try {
    setPassword('expiring password 1');
    admin('chage', ['-E', '0', LINUX_USER]);
    await refusal('expiring password 1', /the account expired on 1970-01-01/);
    // An account a certificate mapping (or anonymous userName) names is refused the same way.
    const named = await ask(`/check?kind=account&providers=system,wharf&user=${LINUX_USER}`, undefined, from);
    assert.equal(named.status, 401);
    assert.match(named.body.message!, /the account expired on 1970-01-01/);

    admin('chage', ['-E', '-1', LINUX_USER]);
    assert.equal((await logon('expiring password 1')).status, 200, 'failures are not cached: the restored account logs on at once');
    assert.equal((await ask(`/check?kind=account&providers=system,wharf&user=${LINUX_USER}`, undefined, from)).status, 200);

    setPassword('expiring password 2');
    admin('chage', ['-d', '0', LINUX_USER]);
    await refusal('expiring password 2', /the password must be changed before the next logon/);
  } finally {
    setPassword(PASSWORD);
    admin('chage', ['-E', '-1', LINUX_USER]);
  }
});

test('an account without a password (anonymousAuthentication userName): its identity, or unknown-user; a numeric name is not a uid', async (t) => {
  if (!ready(t)) return;
  const known = await ask(`/check?kind=account&providers=system&user=${LINUX_USER}`);
  assert.equal(known.status, 200);
  assert.equal(known.body.identity!.name, LINUX_USER);
  const unknown = await ask('/check?kind=account&providers=system&user=nosuchuser-wharf');
  assert.equal(unknown.status, 401);
  assert.equal(unknown.body.reason, 'unknown-user');
  assert.equal((await ask('/check?kind=account&providers=system&user=0')).body.reason, 'unknown-user');
});

test("Wharf's users: `wharf user add` applies to the running server, Basic and Digest (MD5, SHA-256) log on, `wharf user delete` logs them off in every worker", async (t) => {
  if (!ready(t)) return;
  const missing = await ask('/check?kind=password&providers=wharf', ['webuser', 'web secret']);
  assert.equal(missing.body.reason, 'unknown-user');
  const added = wharfUser('add', 'webuser', '--password', 'web secret');
  assert.equal(added.code, 0, added.stderr);
  assert.match(wharfUser('list').stdout, /^webuser\s+created /m);
  const ok = await eventually(async () => {
    const a = await ask('/check?kind=password&providers=system,wharf', ['webuser', 'web secret']);
    return a.status === 200 ? a : undefined;
  });
  assert.deepEqual(ok.body.identity, { name: 'webuser', provider: 'wharf', uid: -1, gid: -1, groups: [] });
  assert.equal((await ask('/check?kind=password&providers=wharf', ['webuser', 'wrong'])).status, 401);

  for (const [algorithm, hash] of [
    ['MD5', 'md5'],
    ['SHA-256', 'sha256'],
    ['SHA-256-sess', 'sha256'],
  ] as const) {
    const h = (s: string): string => createHash(hash).update(s).digest('hex');
    const f = { user: 'webuser', realm: 'wharf test', method: 'GET', uri: '/private/', nonce: 'bm9uY2UtMQ', nc: '00000001', cnonce: 'Y25vbmNl', qop: 'auth' };
    let ha1 = h(`${f.user}:${f.realm}:web secret`);
    if (algorithm.endsWith('-sess')) ha1 = h(`${ha1}:${f.nonce}:${f.cnonce}`);
    const response = h(`${ha1}:${f.nonce}:${f.nc}:${f.cnonce}:${f.qop}:${h(`${f.method}:${f.uri}`)}`);
    const q = new URLSearchParams({ kind: 'digest', algorithm, ...f, response });
    const good = await ask(`/check?${q}`);
    assert.equal(good.status, 200, `${algorithm}: ${JSON.stringify(good.body)}`);
    assert.equal(good.body.identity!.name, 'webuser');
    q.set('uri', '/elsewhere/');
    assert.equal((await ask(`/check?${q}`)).body.reason, 'bad-credentials', algorithm);
  }
  const authInt = await ask(`/check?${new URLSearchParams({ kind: 'digest', algorithm: 'MD5', user: 'webuser', realm: 'r', method: 'GET', uri: '/', nonce: 'n', nc: '00000001', cnonce: 'c', qop: 'auth-int', response: '0'.repeat(32) })}`);
  assert.equal(authInt.status, 401);
  assert.match(authInt.body.message!, /auth-int is not supported/);

  // Cached in the worker by now; deleting the user must end it there too.
  assert.equal((await ask('/check?kind=password&providers=wharf', ['webuser', 'web secret'])).status, 200);
  assert.equal(wharfUser('delete', 'webuser').code, 0);
  await eventually(async () => (await ask('/check?kind=password&providers=wharf', ['webuser', 'web secret'])).status === 401, 8000);
  assert.match(w!.output(), /Wharf's users changed/);
});

test('after 10 failures an address is throttled without checking, logged once; other addresses keep logging on', async (t) => {
  if (!ready(t)) return;
  assert.equal(wharfUser('add', 'guesser-target', '--password', 'right one').code, 0);
  await eventually(async () => (await ask('/check?kind=password&providers=wharf', ['guesser-target', 'right one'])).status === 200);
  for (let i = 0; i < 10; i++) {
    const a = await ask('/check?kind=password&providers=wharf', ['guesser-target', `guess ${i}`], '127.0.0.2');
    // The failure that reaches the limit is answered 'throttled' already.
    assert.equal(a.body.reason, i < 9 ? 'bad-credentials' : 'throttled', `guess ${i}`);
  }
  for (let i = 0; i < 3; i++) {
    const a = await ask('/check?kind=password&providers=wharf', ['guesser-target', 'right one'], '127.0.0.2');
    assert.equal(a.status, 401);
    assert.equal(a.body.reason, 'throttled', 'even the right password (cached in the worker) is refused for this address');
  }
  assert.equal((await ask('/check?kind=password&providers=wharf', ['guesser-target', 'right one'])).status, 200, '127.0.0.1 is not throttled');
  await w!.waitForOutput(/SEC_THROTTLED: client 127\.0\.0\.2 failed to log on too often/);
  assert.equal(w!.output().match(/SEC_THROTTLED: client 127\.0\.0\.2/g)!.length, 1, 'logged once per address per period');
});

test('a hostile credential request is refused with a reason and answered at once; the server keeps serving', async (t) => {
  if (!ready(t)) return;
  for (const [raw, pad, problem] of [
    [{ kind: 'password', providers: ['system'], password: '', domain: '', clientAddress: '1.2.3.4' }, 'user:300', /user is longer than 256 bytes/],
    [{ kind: 'password', providers: ['system'], user: 'a', domain: '', clientAddress: '1.2.3.4' }, 'password:5000', /password is longer than 1024 bytes/],
    [{ kind: 'password', providers: ['ldap'], user: 'a', password: '', domain: '', clientAddress: '1.2.3.4' }, '', /unknown provider "ldap"/],
    [{ kind: 'negotiate', context: '', clientAddress: '1.2.3.4' }, 'token:70000', /token is longer than 65536 bytes/],
    [{ kind: 'sudo', user: 'root' }, '', /unknown kind "sudo"/],
  ] as const) {
    const a = await ask(`/check?${new URLSearchParams({ kind: 'raw', raw: JSON.stringify(raw), pad: pad === '' ? ':0' : pad })}`);
    assert.equal(a.status, 500);
    assert.equal(a.body.reason, 'unavailable');
    assert.ok(a.body.ms < 1000, `answered at once (${a.body.ms} ms)`);
    await w!.waitForOutput(new RegExp(`sent a [a-z]+ credential request .*${problem.source}|sent a credential request of ${problem.source}`));
  }
  assert.equal((await ask(`/check?kind=account&providers=system&user=${LINUX_USER}`)).status, 200);
});

test("the worker runs as its pool's user and cannot read /etc/shadow nor Wharf's user store", async (t) => {
  if (!ready(t)) return;
  assert.equal(wharfUser('add', 'storeprobe', '--password', 'p').code, 0);
  for (const file of ['/etc/shadow', join(w!.systemDrive, 'wharf', 'users', 'users.json'), join(w!.systemDrive, 'wharf', 'users', 'machine.key')]) {
    const a = (await ask(`/read?file=${encodeURIComponent(file)}`)) as unknown as { body: { outcome: string; uid: number } };
    assert.notEqual(a.body.uid, 0, 'the worker is not root');
    assert.equal(a.body.outcome, 'EACCES', file);
  }
  const r = await run('stat', ['-c', '%a %U', join(w!.systemDrive, 'wharf', 'users'), join(w!.systemDrive, 'wharf', 'users', 'users.json')]);
  assert.equal(r.stdout, '700 root\n600 root\n');
});
