/**
 * https end to end, as an administrator sets it up and as clients see it: a real Wharf process
 * (fixture `https`), certificates put in place with the real `wharf cert|sslcert|centralcert`
 * verbs while it runs, and real clients: `openssl s_client -servername`, curl with
 * --cacert/--cert/--key, Node's https module, and testssl.sh. Certificates are made by the openssl
 * command line (test/helpers/openssl.ts); thumbprints are openssl's, never Wharf's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { needs, tool } from './helpers/skip.js';
import { TestPki, type Issued } from './helpers/openssl.js';
import { eventually, freePort, get, run, startWharf, tempDir, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';

const CCS_PASSWORD = 'central store secret';

/** What one handshake showed: the server certificate, or why there was none. */
interface Handshake {
  readonly ok: boolean;
  readonly subject: string;
  readonly thumbprint: string;
  readonly output: string;
}

/** `openssl s_client` on 127.0.0.1:port with this SNI name (undefined: none), as an admin checks a binding. */
async function sClient(port: number, servername: string | undefined): Promise<Handshake> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, ...(servername === undefined ? ['-noservername'] : ['-servername', servername])];
  const out = await new Promise<string>((resolve, reject) => {
    const c = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let text = '';
    c.stdout.on('data', (d: Buffer) => (text += d.toString()));
    c.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    c.on('error', reject);
    c.on('exit', () => {
      clearTimeout(timer);
      resolve(text);
    });
    c.stdin.end(); // EOF on stdin: s_client closes after the handshake
  });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
  if (pem === undefined) return { ok: false, subject: '', thumbprint: '', output: out };
  const cert = new X509Certificate(pem);
  return { ok: true, subject: cert.subject, thumbprint: cert.fingerprint.replace(/:/g, ''), output: out };
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One https request with Node's client on a new connection (SNI and Host = host). */
function nodeHttps(port: number, host: string, path: string, options: { ca: string; cert?: Issued }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: host,
        headers: { host: `${host}:${port}` },
        ca: readFileSync(options.ca),
        ...(options.cert !== undefined ? { cert: readFileSync(options.cert.cert), key: readFileSync(options.cert.key) } : {}),
        agent: false,
        checkServerIdentity: () => undefined,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** curl as a user runs it: the host resolved to loopback, our CA trusted, optionally a client certificate. */
async function curl(port: number, host: string, path: string, options: { ca: string; cert?: Issued; http?: boolean; httpPort?: number }): Promise<{ status: number; headers: string; body: string }> {
  const scheme = options.http === true ? 'http' : 'https';
  const p = options.http === true ? options.httpPort! : port;
  const args = ['-sS', '--max-time', '10', '--resolve', `${host}:${p}:127.0.0.1`, '-D', '-', `${scheme}://${host}:${p}${path}`];
  if (options.http !== true) args.push('--cacert', options.ca);
  if (options.cert !== undefined) args.push('--cert', options.cert.cert, '--key', options.cert.key);
  const r = await run('curl', args, 15_000);
  assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`);
  const split = r.stdout.indexOf('\r\n\r\n');
  const headers = r.stdout.slice(0, split);
  return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(headers)?.[1]), headers, body: r.stdout.slice(split + 4) };
}

const hasTools = tool('openssl').met && tool('curl').met;

describe('https end to end', () => {
  const work = tempDir('wharf-https-');
  let wharf: WharfProcess;
  let port = 0;
  let httpPort = 0;
  let pki: TestPki;
  let ccsDir = '';
  let rootCa = '';
  const certs: Record<string, Issued> = {};
  const cli = (...args: string[]) => run(process.execPath, [WHARF_BIN, ...args, '--system-drive', wharf.systemDrive]);
  const must = async (...args: string[]): Promise<string> => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `wharf ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const ccsFile = (name: string, leaf: Issued, password = CCS_PASSWORD): void => {
    // Written beside and renamed in, as a deployment tool replaces a file.
    const tmp = join(work, `${name}.tmp`);
    pki.pfx(leaf, { password, issuers: pki.issuers(), out: tmp });
    renameSync(tmp, join(ccsDir, name));
  };

  before(async () => {
    if (!hasTools) return;
    pki = new TestPki(join(work, 'pki'));
    rootCa = pki.root().cert;
    httpPort = await freePort();
    wharf = await startWharf({ fixture: 'https', vars: { HTTP_PORT: String(httpPort) } });
    port = wharf.port;

    certs['store'] = pki.leaf('store.example.test');
    certs['ccs'] = pki.leaf('ccs.example.test');
    certs['wildcard'] = pki.leaf('*.example.test');
    certs['ip'] = pki.leaf('ip.wharf.test', { keyType: 'rsa', sans: ['127.0.0.1'] });
    certs['ip2'] = pki.leaf('ip2.wharf.test', { sans: ['127.0.0.1'] });
    certs['secure'] = pki.leaf('secure.example.test');
    certs['app'] = pki.leaf('app.example.test');
    certs['broken'] = pki.leaf('broken.example.test');
    certs['alice'] = pki.leaf('alice.client.test', { issuer: 'root', usage: 'client' });
    certs['mallory'] = pki.leaf('mallory.client.test', { issuer: 'self', usage: 'client' });
    certs['expired'] = pki.leaf('old.client.test', { issuer: 'root', usage: 'client', startDate: '20200101000000Z', endDate: '20200201000000Z' });
    certs['revoked'] = pki.leaf('eve.client.test', { issuer: 'root', usage: 'client' });

    // The store and the SSL table (netsh's verbs), a CA in the trust store, the Central Certificate Store.
    for (const name of ['store', 'ip', 'ip2', 'secure', 'app']) await must('cert', 'import', pki.pem(certs[name]!, { issuers: pki.issuers() }));
    await must('cert', 'import', rootCa, '--store', 'Root');
    // The root's revocation list, as `certutil -addstore CA root.crl` would add it.
    assert.match(await must('cert', 'import', pki.crl('root', [certs['revoked']!]), '--store', 'CA'), /the revocation list of .*Wharf Test Root CA \(1 revoked certificate/);
    await must('sslcert', 'add', `hostnameport=store.example.test:${port}`, `certhash=${certs['store']!.thumbprint}`, 'certstorename=My');
    await must('sslcert', 'add', `ipport=127.0.0.1:${port}`, `certhash=${certs['ip']!.thumbprint}`);
    for (const site of ['secure', 'app']) {
      await must('sslcert', 'add', `hostnameport=${site}.example.test:${port}`, `certhash=${certs[site]!.thumbprint}`, 'certstorename=My', 'clientcertnegotiation=enable');
    }
    ccsDir = join(work, 'ccs');
    mkdirSync(ccsDir);
    ccsFile('ccs.example.test.pfx', certs['ccs']!);
    ccsFile('_.example.test.pfx', certs['wildcard']!);
    ccsFile('broken.example.test.pfx', certs['broken']!, 'not the store password');
    await must('centralcert', 'enable', '--path', ccsDir, '--password', CCS_PASSWORD);
    // The running server picks all of it up without a restart.
    try {
      await eventually(async () => (await sClient(port, 'any.example.test')).thumbprint === certs['wildcard']!.thumbprint, 20_000);
      await eventually(async () => (await sClient(port, 'app.example.test')).thumbprint === certs['app']!.thumbprint, 20_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the server said:\n${wharf.output()}`);
    }
  });

  after(async () => {
    await wharf?.stop();
  });

  it('openssl s_client -servername gets the right certificate: hostnameport, Central Certificate Store, CCS wildcard, and the ipport entry without SNI', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    const expect = async (servername: string | undefined, cert: Issued): Promise<void> => {
      const h = await sClient(port, servername);
      assert.ok(h.ok, `${servername}: ${h.output}`);
      assert.equal(h.thumbprint, cert.thumbprint, `${servername ?? '(no SNI)'} got ${h.subject}`);
    };
    await expect('store.example.test', certs['store']!);
    await expect('ccs.example.test', certs['ccs']!);
    await expect('any.example.test', certs['wildcard']!);
    await expect('other.example.test', certs['wildcard']!);
    await expect(undefined, certs['ip']!);
    // The full chain is sent: the leaf, then the intermediate.
    const chain = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} -servername store.example.test -showcerts </dev/null 2>/dev/null | grep -c 'BEGIN CERTIFICATE'`]);
    assert.ok(Number(chain.stdout.trim()) >= 2, `chain: ${chain.stdout}`);
    // Verified against our root by a client that checks: curl.
    const r = await curl(port, 'store.example.test', '/', { ca: rootCa });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'static site over https\n');
  });

  it('a binding whose certificate does not open fails alone, with a log line naming the binding and the file; the others serve', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    const h = await sClient(port, 'broken.example.test');
    assert.equal(h.ok, false, 'no certificate for the broken binding');
    const line = await wharf.waitForOutput(new RegExp(`https binding \\*:${port}:broken\\.example\\.test [^\\n]*broken\\.example\\.test\\.pfx[^\\n]*password`, 'i'));
    assert.ok(line.length > 0);
    assert.equal((await sClient(port, 'store.example.test')).thumbprint, certs['store']!.thumbprint);
    assert.equal((await curl(port, 'ccs.example.test', '/', { ca: rootCa })).status, 200);
  });

  it('a Central Certificate Store file replaced on disk is served to new connections without a restart', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    const renewed = pki.leaf('ccs.example.test');
    ccsFile('ccs.example.test.pfx', renewed);
    const started = Date.now();
    await eventually(async () => (await sClient(port, 'ccs.example.test')).thumbprint === renewed.thumbprint, 15_000);
    assert.ok(Date.now() - started < 15_000);
  });

  it('sslcert changes on a running server apply to new connections; an open keep-alive connection stays and keeps being served', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    // A keep-alive connection without SNI: the ipport entry's certificate.
    const socket: TLSSocket = await new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(rootCa), checkServerIdentity: () => undefined }, () => resolve(s));
      s.once('error', reject);
    });
    let closed = false;
    socket.on('close', () => (closed = true));
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const ask = async (): Promise<string> => {
      received = '';
      socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      return eventually(() => (received.includes('static site over https\n') ? received : undefined));
    };
    assert.equal(new X509Certificate(socket.getPeerCertificate().raw).fingerprint.replace(/:/g, ''), certs['ip']!.thumbprint);
    assert.match(await ask(), /^HTTP\/1\.1 200 /);

    await must('sslcert', 'delete', `ipport=127.0.0.1:${port}`);
    await must('sslcert', 'add', `ipport=127.0.0.1:${port}`, `certhash=${certs['ip2']!.thumbprint}`);
    await eventually(async () => (await sClient(port, undefined)).thumbprint === certs['ip2']!.thumbprint, 15_000);

    assert.equal(closed, false, 'the open connection was not dropped');
    assert.match(await ask(), /^HTTP\/1\.1 200 /);
    assert.equal(closed, false);
    socket.destroy();
  });

  it('a hosted Node app sees TLS as on its own server: req.socket.encrypted, getPeerCertificate(), and the HTTPS server variables', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    const https = await curl(port, 'app.example.test', '/', { ca: rootCa, cert: certs['alice']! });
    assert.equal(https.status, 200, https.body);
    const j = JSON.parse(https.body) as { encrypted?: boolean; authorized?: boolean; protocol: string; peerSubject: string | null; promoted: Record<string, string> };
    assert.equal(j.encrypted, true);
    assert.equal(j.protocol, 'https');
    assert.equal(j.authorized, true);
    assert.equal(j.peerSubject, 'alice.client.test');
    assert.equal(j.promoted['HTTPS'], 'on');
    assert.equal(j.promoted['SERVER_PORT_SECURE'], '1');
    assert.equal(j.promoted['SERVER_PORT'], String(port));
    assert.ok(['128', '256'].includes(j.promoted['HTTPS_KEYSIZE']!), j.promoted['HTTPS_KEYSIZE']);
    assert.equal(j.promoted['HTTPS_SECRETKEYSIZE'], '256'); // ECDSA P-256
    assert.equal(j.promoted['HTTPS_SERVER_SUBJECT'], 'CN=app.example.test');
    assert.equal(j.promoted['CERT_SUBJECT'], 'CN=alice.client.test');

    // Node's own https client, without a client certificate: encrypted, no peer certificate.
    const plainTls = JSON.parse((await nodeHttps(port, 'app.example.test', '/', { ca: rootCa })).body) as typeof j;
    assert.equal(plainTls.encrypted, true);
    assert.equal(plainTls.peerSubject, null);
    assert.equal(plainTls.promoted['CERT_SUBJECT'], '');

    const http = await curl(port, 'app.example.test', '/', { ca: rootCa, http: true, httpPort });
    const h = JSON.parse(http.body) as typeof j;
    assert.equal(h.encrypted, undefined);
    assert.equal(h.protocol, 'http');
    assert.equal(h.peerSubject, null);
    assert.equal(h.promoted['HTTPS'], 'off');
    assert.equal(h.promoted['SERVER_PORT_SECURE'], '0');
    assert.equal(h.promoted['HTTPS_KEYSIZE'], '');
  });

  it('HSTS: the header on https responses only; redirectHttpToHttps answers http with a 301 to the https binding', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    const https = await curl(port, 'store.example.test', '/', { ca: rootCa });
    assert.match(https.headers, /^strict-transport-security: max-age=31536000; includeSubDomains\r?$/im);
    const http = await curl(port, 'store.example.test', '/a/b.html?x=1', { ca: rootCa, http: true, httpPort });
    assert.equal(http.status, 301);
    assert.match(http.headers, new RegExp(`^location: https://store\\.example\\.test:${port}/a/b\\.html\\?x=1\\r?$`, 'im'));
    assert.doesNotMatch(http.headers, /strict-transport-security/i);
    // A site without <hsts>: neither header nor redirect.
    const other = await curl(port, 'secure.example.test', '/open/', { ca: rootCa });
    assert.equal(other.status, 200);
    assert.doesNotMatch(other.headers, /strict-transport-security/i);
    assert.equal((await curl(port, 'secure.example.test', '/open/', { ca: rootCa, http: true, httpPort })).status, 200);
  });

  it('security/access sslFlags: 403.4 on http, 403.7 without a client certificate, 200 with one, 403.16 untrusted, 403.17 expired, 403.13 revoked (a CRL in the CA store); SslNegotiateCert accepts none', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    const secure = (path: string, cert?: Issued) => curl(port, 'secure.example.test', path, { ca: rootCa, ...(cert !== undefined ? { cert } : {}) });
    const http = await curl(port, 'secure.example.test', '/ssl/', { ca: rootCa, http: true, httpPort });
    assert.equal(http.status, 403);
    assert.match(http.body, /403\.4/);
    const sslOk = await secure('/ssl/');
    assert.equal(sslOk.status, 200, sslOk.body);

    const none = await secure('/cert/');
    assert.equal(none.status, 403);
    assert.match(none.body, /403\.7/);
    const alice = await secure('/cert/', certs['alice']);
    assert.equal(alice.status, 200);
    assert.equal(alice.body, 'cert\n');
    const mallory = await secure('/cert/', certs['mallory']);
    assert.equal(mallory.status, 403);
    assert.match(mallory.body, /403\.16/);
    const expired = await secure('/cert/', certs['expired']);
    assert.equal(expired.status, 403);
    assert.match(expired.body, /403\.17/);
    const revoked = await secure('/cert/', certs['revoked']);
    assert.equal(revoked.status, 403);
    assert.match(revoked.body, /403\.13/);

    assert.equal((await secure('/nego/')).status, 200);
    assert.equal((await secure('/nego/', certs['alice'])).status, 200);
    assert.equal((await secure('/nego/', certs['mallory'])).status, 403);
    // A client certificate where none is asked about is not looked at.
    assert.equal((await secure('/open/', certs['mallory'])).status, 200);
    // Node's https client sees the same.
    assert.equal((await nodeHttps(port, 'secure.example.test', '/cert/', { ca: rootCa, cert: certs['alice']! })).status, 200);
    assert.equal((await nodeHttps(port, 'secure.example.test', '/cert/', { ca: rootCa })).status, 403);

    // The W3C log has IIS's sub-statuses and win32 codes.
    const rows = await eventually(() => {
      const r = wharf.w3cRecords(6);
      return r.filter((x) => x['cs-uri-stem'] === '/cert/').length >= 7 ? r : undefined;
    });
    const codes = rows.filter((x) => x['cs-uri-stem'] === '/cert/').map((x) => `${x['sc-status']}.${x['sc-substatus']} ${x['sc-win32-status']}`);
    assert.ok(codes.includes('403.7 5'), codes.join(', '));
    assert.ok(codes.includes(`403.16 ${0x800b0109}`), codes.join(', '));
    assert.ok(codes.includes(`403.17 ${0x800b0101}`), codes.join(', '));
    assert.ok(codes.includes(`403.13 ${0x80092010}`), codes.join(', '));
    assert.ok(codes.includes('200.0 0'), codes.join(', '));
    assert.ok(rows.some((x) => x['cs-uri-stem'] === '/ssl/' && x['sc-status'] === '403' && x['sc-substatus'] === '4' && x['s-port'] === String(httpPort)));
  });

  it('the W3C line of an https request: s-port is the https port, cs-version HTTP/2 (curl negotiates h2 by ALPN), sc-status 200', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    await curl(port, 'store.example.test', '/index.html?w3c=1', { ca: rootCa });
    const row = await eventually(() => wharf.w3cRecords(1).find((x) => x['cs-uri-query'] === 'w3c=1'));
    assert.equal(row['s-port'], String(port));
    assert.equal(row['cs-version'], 'HTTP/2');
    assert.equal(row['sc-status'], '200');
    assert.equal(row['cs-method'], 'GET');
    assert.equal(row['cs-host'], `store.example.test:${port}`);
  });

  it('wharf check warns about https bindings without a usable certificate, at the binding\'s file and line', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    const lineOf = (needle: string): number => readFileSync(wharf.configFile, 'utf8').split('\n').findIndex((l) => l.includes(needle)) + 1;
    // An empty system drive: no binding has a certificate.
    const empty = await run(process.execPath, [WHARF_BIN, 'check', '--config', wharf.configFile, '--system-drive', join(work, 'empty-sd')]);
    assert.equal(empty.code, 0, empty.stdout + empty.stderr);
    const warnings = empty.stdout.split('\n').filter((l) => l.includes(': warning: ') && l.includes('https binding'));
    assert.equal(warnings.length, 7, warnings.join('\n'));
    const storeLine = lineOf(`*:${port}:store.example.test`);
    assert.ok(
      warnings.some((w) => w.startsWith(`${wharf.configFile}:${storeLine}:`) && w.includes(`no SSL table entry hostnameport=store.example.test:${port}`)),
      warnings.join('\n'),
    );
    // The live system drive: only the binding whose file does not open.
    const live = await run(process.execPath, [WHARF_BIN, 'check', '--config', wharf.configFile, '--system-drive', wharf.systemDrive]);
    const liveWarnings = live.stdout.split('\n').filter((l) => l.includes(': warning: ') && l.includes('https binding'));
    assert.equal(liveWarnings.length, 1, live.stdout);
    assert.ok(liveWarnings[0]!.startsWith(`${wharf.configFile}:${lineOf(`*:${port}:broken.example.test`)}:`), liveWarnings[0]);
    assert.match(liveWarnings[0]!, /broken\.example\.test\.pfx/);
  });

  it('testssl.sh against the default TLS settings: no SSLv2/3, no TLS 1.0/1.1, no weak ciphers, no flagged vulnerability', { timeout: 240_000 }, async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'), tool('testssl', 'testssl.sh'))) return;
    const json = join(work, 'testssl.json');
    const started = Date.now();
    const r = await run('testssl', ['--quiet', '--color', '0', '--warnings', 'off', '--fast', '--sneaky', '--protocols', '--std', '--vulnerable', '--jsonfile', json, `127.0.0.1:${port}`], 200_000);
    const seconds = Math.round((Date.now() - started) / 1000);
    assert.ok(existsSync(json), `testssl wrote no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}\nwharf:\n${wharf.output().slice(-3000)}`);
    const findings = JSON.parse(readFileSync(json, 'utf8')) as Array<{ id: string; severity: string; finding: string }>;
    const byId = new Map(findings.map((f) => [f.id, f]));
    const summary = findings.filter((f) => !['scanTime', 'engine_problem'].includes(f.id)).map((f) => `  ${f.id.padEnd(26)} ${f.severity.padEnd(8)} ${f.finding}`);
    process.stdout.write(`\ntestssl.sh ${`127.0.0.1:${port}`} (--fast --protocols --std --vulnerable), ${seconds} s:\n${summary.join('\n')}\n\n`);
    const tail = (): string => `\ntestssl:\n${r.stdout.slice(-3000)}\nwharf:\n${wharf.output().slice(-3000)}`;
    for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) assert.match(byId.get(id)?.finding ?? '', /not offered/, id + tail());
    assert.match(byId.get('TLS1_2')?.finding ?? '', /^offered/);
    assert.match(byId.get('TLS1_3')?.finding ?? '', /^offered/);
    const bad = findings.filter((f) => ['MEDIUM', 'HIGH', 'CRITICAL'].includes(f.severity));
    assert.deepEqual(bad.map((f) => `${f.id}: ${f.severity}: ${f.finding}`), []);
    assert.ok(seconds < 180, `testssl took ${seconds} s`);
  });

  // Keep the plain-http helper used (it is the reference client for 301 and 403.4 too).
  it('plain http on the https port gets a readable 400, not a hang', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'))) return;
    const r = await get(port, '/').catch((e: Error) => assert.fail(`${e.message}\n${wharf.output()}`));
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /plain HTTP request was sent to an https port/);
  });
});
