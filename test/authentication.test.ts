// Authentication and authorization end to end (fixture authn): a real Wharf whose pool runs as its
// own Linux user, real Linux accounts and groups (useradd, chpasswd, groupadd, setfacl), one of
// Wharf's own users (`wharf user add`), and curl as the client (--basic, --digest). Each test
// checks what a user sees: the status, the WWW-Authenticate challenges, and the W3C line's
// sc-status, sc-substatus and cs-username.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAppInstalled } from './helpers/node-apps.js';
import { acls, isRoot, type Need, needs, pamModule, root, tool } from './helpers/skip.js';
import { admin, getent } from './helpers/test-users.js';
import { eventually, run, startWharf, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';

const MEMBER = 'wharfauthnmember';
const OUTSIDER = 'wharfauthnout';
const GROUP = 'wharfauthngrp';
const PASSWORD = 'Authn pässword 7';
const WHARF_USER = 'dora';
const WHARF_PASSWORD = 'digest secret 9';
const SITE = 61;


function removeAccounts(): void {
  for (const u of [MEMBER, OUTSIDER]) if (getent('passwd', u) !== undefined) admin('userdel', [u]);
  if (getent('group', GROUP) !== undefined) admin('groupdel', [GROUP]);
}

let w: WharfProcess | undefined;
before(async () => {
  if (!isRoot || !pamModule().met) return;
  removeAccounts();
  admin('groupadd', [GROUP]);
  admin('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', GROUP, MEMBER]);
  admin('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', OUTSIDER]);
  const r = spawnSync('chpasswd', { input: `${MEMBER}:${PASSWORD}\n${OUTSIDER}:${PASSWORD}\n`, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  ensureAppInstalled('express');
  w = await startWharf({ fixture: 'authn', vars: { USER: MEMBER, GROUP }, files: { 'www/app': 'apps/express' } });
  // The hosted app: Express, answering with what Wharf told it about the user.
  writeFileSync(
    join(w.root, 'www', 'app', 'whoami.js'),
    "const app = require('express')();\napp.use((req, res) => res.json({ user: req.get('x-iisnode-auth_user') ?? null, type: req.get('x-iisnode-auth_type') ?? null }));\napp.listen(process.env.PORT || 3000);\n",
  );
});
after(async () => {
  await w?.stop();
  removeAccounts();
});

function ready(t: TestContext, ...more: Need[]): boolean {
  return needs(t, root('Linux test accounts (useradd, chpasswd) and a pool running as its own user'), pamModule(), tool('curl'), ...more);
}

interface CurlReply {
  readonly status: number;
  /** Every WWW-Authenticate of the last response, in order. */
  readonly challenges: string[];
  readonly body: string;
}

/** curl `path` with extra arguments (-u, --basic, --digest, -H); the last response's status, challenges and body. */
async function curl(path: string, ...args: string[]): Promise<CurlReply> {
  const r = await run('curl', ['-s', '-i', '--max-time', '10', ...args, `http://127.0.0.1:${w!.port}${path}`]);
  // With --digest curl makes two requests: the last head and body are those of the second.
  const heads = r.stdout.split(/\r\n\r\n/);
  let i = heads.length - 2;
  while (i > 0 && !/^HTTP\/1\.1 /.test(heads[i]!)) i--;
  const head = heads[i] ?? '';
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0);
  const challenges = [...head.matchAll(/^WWW-Authenticate: (.*)$/gim)].map((m) => m[1]!.trim());
  return { status, challenges, body: heads.slice(i + 1).join('\r\n\r\n') };
}

/** The W3C record of the latest request for `path` with this status (and this cs-username, when given). */
function logged(path: string, status: string, user?: string): Promise<Record<string, string>> {
  const wanted = (r: Record<string, string>): boolean => r['cs-uri-stem'] === path && `${r['sc-status']}.${r['sc-substatus']}` === status && (user === undefined || r['cs-username'] === user);
  return eventually(() => w!.w3cRecords(SITE).reverse().find(wanted), 5000).catch(() => assert.fail(`no W3C line for ${path} ${status} ${user ?? ''}:\n${w!.logLines(SITE).join('\n')}`));
}

test('anonymous requests are served as before; a folder with anonymous off answers 401.2 with its Basic challenge', async (t) => {
  if (!ready(t)) return;
  const pub = await curl('/public.txt');
  assert.equal(pub.status, 200);
  assert.equal(pub.body, 'public page\n');
  assert.equal((await logged('/public.txt', '200.0'))['cs-username'], '-');
  const refused = await curl('/basic/page.txt');
  assert.equal(refused.status, 401);
  assert.deepEqual(refused.challenges, ['Basic realm="Wharf test"']);
  assert.doesNotMatch(refused.body, /basic page/);
  assert.equal((await logged('/basic/page.txt', '401.2'))['cs-username'], '-');
});

test('curl --basic with a Linux account logs on (PAM): 200, and the W3C line names the user; a wrong password is 401.1 with the name tried', async (t) => {
  if (!ready(t)) return;
  const ok = await curl('/basic/page.txt', '--basic', '-u', `${MEMBER}:${PASSWORD}`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'basic page\n');
  await logged('/basic/page.txt', '200.0', MEMBER);
  const bad = await curl('/basic/page.txt', '--basic', '-u', `${MEMBER}:wrong password`);
  assert.equal(bad.status, 401);
  assert.deepEqual(bad.challenges, ['Basic realm="Wharf test"'], 'a 401.1 asks again');
  await logged('/basic/page.txt', '401.1', MEMBER);
  assert.doesNotMatch(w!.output(), /wrong password/);
  // A malformed header: 401.1 too, and the server keeps serving.
  const junk = await curl('/basic/page.txt', '-H', 'Authorization: Basic !!!notbase64');
  assert.equal(junk.status, 401);
  assert.equal((await curl('/public.txt')).status, 200);
});

test('several schemes enabled: the 401.2 carries one WWW-Authenticate each, Digest (SHA-256, then MD5) before Basic', async (t) => {
  if (!ready(t)) return;
  const r = await curl('/both/page.txt');
  assert.equal(r.status, 401);
  assert.equal(r.challenges.length, 3, r.challenges.join('\n'));
  assert.match(r.challenges[0]!, /^Digest realm="wharf-digest", qop="auth", algorithm=SHA-256, nonce="[\w-]+"$/);
  assert.match(r.challenges[1]!, /^Digest realm="wharf-digest", qop="auth", algorithm=MD5, nonce="[\w-]+"$/);
  assert.equal(r.challenges[2], 'Basic realm="127.0.0.1"');
  await logged('/both/page.txt', '401.2');
});

test("curl --digest with one of Wharf's users (wharf user add): 200 and the W3C line names the user; a wrong password is 401.1", async (t) => {
  if (!ready(t)) return;
  const add = spawnSync(process.execPath, [WHARF_BIN, 'user', 'add', WHARF_USER, '--password', WHARF_PASSWORD, '--system-drive', w!.systemDrive], { encoding: 'utf8' });
  assert.equal(add.status, 0, add.stderr);
  // A running server re-reads the store within seconds.
  const ok = await eventually(async () => {
    const r = await curl('/digest/page.txt', '--digest', '-u', `${WHARF_USER}:${WHARF_PASSWORD}`);
    return r.status === 200 ? r : undefined;
  }, 15000);
  assert.equal(ok.body, 'digest page\n');
  await logged('/digest/page.txt', '200.0', WHARF_USER);
  const bad = await curl('/digest/page.txt', '--digest', '-u', `${WHARF_USER}:not it`);
  assert.equal(bad.status, 401);
  await logged('/digest/page.txt', '401.1', WHARF_USER);
  // Basic with the WHARF\ domain names the same user in Wharf's store.
  const basic = await curl('/both/page.txt', '--basic', '-u', `WHARF\\${WHARF_USER}:${WHARF_PASSWORD}`);
  assert.equal(basic.status, 200);
});

test('URL authorization: anonymous is asked to log on (401.2 + Basic), a member of the allowed group is served, another user is 401.2 by name', async (t) => {
  if (!ready(t)) return;
  const anon = await curl('/members/page.txt');
  assert.equal(anon.status, 401);
  assert.deepEqual(anon.challenges, ['Basic realm="127.0.0.1"']);
  await logged('/members/page.txt', '401.2');
  const member = await curl('/members/page.txt', '--basic', '-u', `${MEMBER}:${PASSWORD}`);
  assert.equal(member.status, 200);
  assert.equal(member.body, 'members page\n');
  const outsider = await curl('/members/page.txt', '--basic', '-u', `${OUTSIDER}:${PASSWORD}`);
  assert.equal(outsider.status, 401);
  await logged('/members/page.txt', '401.2', OUTSIDER);
});

test("a file the authenticated user may not read (setfacl) is 401.3 for that user only; the pool's identity still serves it to others", async (t) => {
  if (!ready(t, acls(w?.root ?? '/tmp'))) return;
  const secret = join(w!.root, 'www', 'basic', 'secret.txt');
  execFileSync('setfacl', ['-m', `u:${MEMBER}:---`, secret]);
  const denied = await curl('/basic/secret.txt', '--basic', '-u', `${MEMBER}:${PASSWORD}`);
  assert.equal(denied.status, 401);
  assert.doesNotMatch(denied.body, /only some/);
  assert.deepEqual(denied.challenges, ['Basic realm="Wharf test"']);
  await logged('/basic/secret.txt', '401.3', MEMBER);
  const other = await curl('/basic/secret.txt', '--basic', '-u', `${OUTSIDER}:${PASSWORD}`);
  assert.equal(other.status, 200);
  assert.equal(other.body, 'only some may read this\n');
  // Lifting the ACL entry is seen at once (the file's ctime changed).
  execFileSync('setfacl', ['-x', `u:${MEMBER}`, secret]);
  await eventually(async () => (await curl('/basic/secret.txt', '--basic', '-u', `${MEMBER}:${PASSWORD}`)).status === 200, 5000);
});

test("anonymousAuthentication userName: anonymous requests get that account's file rights (401.3), and stay anonymous in the log", async (t) => {
  if (!ready(t, acls(w?.root ?? '/tmp'))) return;
  execFileSync('setfacl', ['-m', `u:${MEMBER}:---`, join(w!.root, 'www', 'named', 'hidden.txt')]);
  assert.equal((await curl('/named/page.txt')).status, 200);
  const hidden = await curl('/named/hidden.txt');
  assert.equal(hidden.status, 401);
  assert.equal((await logged('/named/hidden.txt', '401.3'))['cs-username'], '-');
});

test('a hosted Express app behind Basic sees the user through promoteServerVars; a client cannot forge the header', async (t) => {
  if (!ready(t)) return;
  const r = await curl('/app/whoami', '--basic', '-u', `${MEMBER}:${PASSWORD}`, '-H', 'X-iisnode-AUTH_USER: root');
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(JSON.parse(r.body), { user: MEMBER, type: 'Basic' });
  assert.equal((await curl('/app/whoami')).status, 401, 'the app never sees an anonymous request');
});
