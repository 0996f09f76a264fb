/**
 * IP and domain restrictions with real clients (fixture ipsec/): curl bound to 127.0.0.2 (Linux
 * routes all of 127/8 to lo) or ::1 is refused while 127.0.0.1 is served, each deny action, a
 * subnet, reverse DNS, proxy mode, a web.config rule (IpRestrictionModule in the worker), and
 * dynamicIpSecurity's rate, concurrency and logging-only mode. Site-level rules are enforced in
 * the listener: a denied client starts no worker. What is asserted is what a client and an
 * administrator see: the status, and `sc-status sc-substatus` of the W3C line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { needs, tool } from './helpers/skip.js';
import { TestPki } from './helpers/openssl.js';
import { eventually, FIXTURES, freePort, run, startWharf, tempDir, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';
import { workerPids } from '../bench/procs.js';

let w: WharfProcess;
let tlsPort: number;

before(async () => {
  // The fixture serves on '*', so ::1 must exist for the IPv6 case; 127.0.0.2 for every case.
  for (const address of ['127.0.0.2', '::1']) {
    await new Promise<void>((resolve, reject) => {
      const s = createServer().once('error', (e) => reject(new Error(`cannot bind ${address} on this machine: ${e.message}`)));
      s.listen(0, address, () => s.close(() => resolve()));
    });
  }
  const staging = tempDir('wharf-ipsec-fixture-');
  cpSync(join(FIXTURES, 'ipsec'), staging, { recursive: true });
  cpSync(join(FIXTURES, 'qos', 'qos-module.mjs'), join(staging, 'qos-module.mjs'));
  const pki = new TestPki(join(tempDir('wharf-ipsec-pki-'), 'pki'));
  const leaf = pki.leaf('localhost', { sans: ['127.0.0.1'] });
  const sd = join(staging, 'systemdrive');
  const cli = async (...args: string[]): Promise<void> => {
    const r = await run(process.execPath, [WHARF_BIN, ...args, '--system-drive', sd]);
    assert.equal(r.code, 0, `wharf ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  };
  await cli('cert', 'import', pki.pem(leaf, { issuers: pki.issuers() }));
  tlsPort = await freePort();
  await cli('sslcert', 'add', `ipport=0.0.0.0:${tlsPort}`, `certhash=${leaf.thumbprint}`);
  w = await startWharf({ fixture: staging, vars: { TLSPORT: String(tlsPort) } });
});
after(async () => {
  await w?.stop();
});

interface Reply {
  /** curl's exit code: 0, or 52/56 when the server closed or reset the connection. */
  readonly code: number | null;
  /** One status per URL requested ('000' when none came). */
  readonly statuses: string[];
}

/** curl from `from` to `host`'s `paths` on one connection (keep-alive). */
async function curl(from: string, host: string, paths: readonly string[], ...args: string[]): Promise<Reply> {
  const target = from === '::1' ? `http://[::1]:${w.port}` : `http://127.0.0.1:${w.port}`;
  // One -o per URL: curl pairs them in order.
  const urls = paths.flatMap((p) => ['-o', '/dev/null', target + p]);
  const r = await run('curl', ['-s', '-g', '--max-time', '15', '--interface', from, '-H', `Host: ${host}`, '-w', '%{http_code}\\n', ...args, ...urls]);
  return { code: r.code, statuses: r.stdout.trim().split('\n') };
}

/** The `status.substatus` of each W3C line of a site for a URL and client address. */
function logged(siteId: number, path: string, clientIp: string): string[] {
  const out: string[] = [];
  for (const l of w.logLines(siteId)) {
    const f = l.split(' ');
    // date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus …
    if (f[4] === path && f[8] === clientIp) out.push(`${f[11]}.${f[12]}`);
  }
  return out;
}

async function loggedEventually(siteId: number, path: string, clientIp: string, expected: string): Promise<void> {
  await eventually(() => logged(siteId, path, clientIp).includes(expected), 5000).catch(() => {
    assert.fail(`no ${expected} line for ${clientIp} ${path} in W3SVC${siteId}: ${JSON.stringify(w.logLines(siteId))}`);
  });
}

test('ipSecurity in the listener: 127.0.0.2 gets 403.503 and starts no worker; 127.0.0.1 is served', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const denied = await curl('127.0.0.2', 'ip', ['/ok.txt']);
  assert.deepEqual(denied.statuses, ['403']);
  assert.deepEqual(workerPids(w.child.pid!, 'IpPool'), [], 'refused before any pool: no worker was started for it');
  await loggedEventually(31, '/ok.txt', '127.0.0.2', '403.503');
  assert.deepEqual((await curl('127.0.0.1', 'ip', ['/ok.txt'])).statuses, ['200']);
  await loggedEventually(31, '/ok.txt', '127.0.0.1', '200.0');
});

test('a subnet entry (255.255.255.0) denies every address in it', async (t) => {
  if (!needs(t, tool('curl'))) return;
  assert.deepEqual((await curl('127.0.1.77', 'ip', ['/ok.txt'])).statuses, ['403']);
  await loggedEventually(31, '/ok.txt', '127.0.1.77', '403.503');
  assert.deepEqual((await curl('127.0.2.77', 'ip', ['/ok.txt'])).statuses, ['200']);
});

test('an IPv6 entry: ::1 is refused on the same site', async (t) => {
  if (!needs(t, tool('curl'))) return;
  assert.deepEqual((await curl('::1', 'ip', ['/ok.txt'])).statuses, ['403']);
  await loggedEventually(31, '/ok.txt', '::1', '403.503');
});

test('HTTP/2: the listener refuses the stream with the same status', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const r = await run('curl', ['-sk', '--http2', '--max-time', '15', '--interface', '127.0.0.2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://127.0.0.1:${tlsPort}/h2.txt`]);
  assert.equal(r.stdout, '2 403', r.stderr);
  await loggedEventually(31, '/h2.txt', '127.0.0.2', '403.503');
  const ok = await run('curl', ['-sk', '--http2', '--max-time', '15', '--interface', '127.0.0.1', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://127.0.0.1:${tlsPort}/ok.txt`]);
  assert.equal(ok.stdout, '2 200', ok.stderr);
});

test('denyAction AbortRequest closes the connection without a response, logged 403.503', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const r = await curl('127.0.0.2', 'abort', ['/ok.txt']);
  assert.deepEqual(r.statuses, ['000']);
  assert.ok(r.code === 52 || r.code === 56, `curl exit ${r.code}: no reply (52) or a reset (56)`);
  await loggedEventually(32, '/ok.txt', '127.0.0.2', '403.503');
  assert.deepEqual((await curl('127.0.0.1', 'abort', ['/ok.txt'])).statuses, ['200']);
});

test('denyAction Unauthorized with allowUnlisted="false": unlisted 127.0.0.2 gets 401.503, the allowed /31 is served', async (t) => {
  if (!needs(t, tool('curl'))) return;
  assert.deepEqual((await curl('127.0.0.2', 'unauth', ['/ok.txt'])).statuses, ['401']);
  await loggedEventually(33, '/ok.txt', '127.0.0.2', '401.503');
  assert.deepEqual((await curl('127.0.0.1', 'unauth', ['/ok.txt'])).statuses, ['200']);
});

test('domainName with enableReverseDns and denyAction NotFound: 127.0.0.1 (localhost, forward-confirmed) gets 404.504; a nameless address is served', async (t) => {
  if (!needs(t, tool('curl'))) return;
  assert.deepEqual((await curl('127.0.0.1', 'notfound', ['/ok.txt', '/ok.txt'])).statuses, ['404', '404'], 'the second from the cache');
  await loggedEventually(34, '/ok.txt', '127.0.0.1', '404.504');
  assert.deepEqual((await curl('127.0.0.2', 'notfound', ['/ok.txt'])).statuses, ['200']);
});

test('enableProxyMode: a denied address anywhere in X-Forwarded-For is refused', async (t) => {
  if (!needs(t, tool('curl'))) return;
  assert.deepEqual((await curl('127.0.0.1', 'proxy', ['/ok.txt'], '-H', 'X-Forwarded-For: 203.0.113.7, 10.0.0.1')).statuses, ['403']);
  await loggedEventually(35, '/ok.txt', '127.0.0.1', '403.503');
  assert.deepEqual((await curl('127.0.0.1', 'proxy', ['/ok.txt'], '-H', 'X-Forwarded-For: 198.51.100.1')).statuses, ['200']);
  assert.deepEqual((await curl('127.0.0.1', 'proxy', ['/ok.txt'])).statuses, ['200']);
});

test('a web.config rule (IpRestrictionModule in the worker): /admin only for 127.0.0.1, the rest of the site for everyone', async (t) => {
  if (!needs(t, tool('curl'))) return;
  assert.deepEqual((await curl('127.0.0.2', 'web', ['/admin/secret.txt', '/ok.txt'])).statuses, ['403', '200']);
  await loggedEventually(36, '/admin/secret.txt', '127.0.0.2', '403.503');
  assert.deepEqual((await curl('127.0.0.1', 'web', ['/admin/secret.txt'])).statuses, ['200']);
});

test('denyByRequestRate: a burst from 127.0.0.2 gets 403.502 past 5 requests while 127.0.0.1 keeps getting 200', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const burst = await curl('127.0.0.2', 'rate', Array.from({ length: 12 }, () => '/ok.txt'));
  assert.deepEqual(burst.statuses.slice(0, 5), ['200', '200', '200', '200', '200']);
  assert.ok(burst.statuses.slice(5).every((s) => s === '403'), burst.statuses.join(' '));
  assert.deepEqual((await curl('127.0.0.1', 'rate', ['/ok.txt', '/ok.txt'])).statuses, ['200', '200']);
  await loggedEventually(37, '/ok.txt', '127.0.0.2', '403.502');
});

test('denyByConcurrentRequests: a third slow request at once from one address gets 404.501 (denyAction NotFound)', async (t) => {
  if (!needs(t, tool('curl'))) return;
  assert.deepEqual((await curl('127.0.0.1', 'conc', ['/ok.txt'])).statuses, ['200']); // the worker is up
  const three = await Promise.all([1, 2, 3].map(() => curl('127.0.0.2', 'conc', ['/qos-slow'])));
  const statuses = three.map((r) => r.statuses[0]).sort();
  assert.deepEqual(statuses, ['200', '200', '404']);
  await loggedEventually(38, '/qos-slow', '127.0.0.2', '404.501');
  // Once they ended, the address may have two in progress again.
  assert.deepEqual((await curl('127.0.0.2', 'conc', ['/ok.txt'])).statuses, ['200']);
});

test('enableLoggingOnlyMode: every request of the burst is served; the server log names the client and the limit', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const burst = await curl('127.0.0.2', 'logonly', Array.from({ length: 5 }, () => '/ok.txt'));
  assert.deepEqual(burst.statuses, ['200', '200', '200', '200', '200']);
  await w.waitForOutput(/site "LogOnly": dynamicIpSecurity \(logging only\): client 127\.0\.0\.2 is over denyByRequestRate/);
});

test('an entry IIS could not use is reported at its line; that site answers 500.19, the others keep serving', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const text = readFileSync(w.configFile, 'utf8');
  writeFileSync(w.configFile, text.replace('<add ipAddress="203.0.113.0" subnetMask="24" />', '<add ipAddress="203.0.113.300" />'));
  const line = text.split('\n').findIndex((l) => l.includes('203.0.113.0')) + 1;
  await w.waitForOutput(new RegExp(`applicationHost\\.config:${line}:\\d+: site "Proxy": ipSecurity: ipAddress "203\\.0\\.113\\.300" is not an IPv4 or IPv6 address`));
  assert.deepEqual((await curl('127.0.0.1', 'proxy', ['/ok.txt'])).statuses, ['500']);
  await loggedEventually(35, '/ok.txt', '127.0.0.1', '500.19');
  assert.deepEqual((await curl('127.0.0.1', 'ip', ['/ok.txt'])).statuses, ['200']);
});

test('flood shunt: an address refused a hundred times in a second is reset at accept, for every site on the port; others are served', async (t) => {
  if (!needs(t, tool('curl'))) return;
  // 127.0.1.0/24 is denied on site Ip; this address is used by no other test (the shunt lasts 10 s).
  const flooder = '127.0.1.200';
  const burst = await curl(flooder, 'ip', Array.from({ length: 150 }, () => '/ok.txt'), '--max-time', '30');
  assert.ok(burst.statuses.filter((s) => s === '403').length >= 100, burst.statuses.join(' '));
  assert.ok(burst.statuses.slice(-1)[0] === '000', `the last requests of the burst are not answered: ${burst.statuses.slice(-5).join(' ')}`);
  // While shunned, even a site without rules is out of reach for it …
  const web = await curl(flooder, 'web', ['/ok.txt']);
  assert.deepEqual(web.statuses, ['000']);
  assert.notEqual(web.code, 0);
  // … and everyone else is served.
  assert.deepEqual((await curl('127.0.0.1', 'ip', ['/ok.txt'])).statuses, ['200']);
  await eventually(() => /client 127\.0\.1\.200 was refused \d+ times in a second by site "Ip"'s IP restrictions/.test(w.output()), 5000);
});
