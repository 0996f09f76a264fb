/**
 * Automatic certificates against a real ACME CA: Pebble (Let's Encrypt's test CA) on loopback, its
 * DNS answered by pebble-challtestsrv (every name → 127.0.0.1), its HTTP-01 validation answered by
 * a small HTTP server on Pebble's httpPort that asks the renewal manager, as the listener will.
 * Pebble really fetches the challenge: a host whose challenge is refused fails, and backs off.
 * TLS-ALPN-01 is validated the same way, through a small TLS server on Pebble's tlsPort that
 * follows the listener's hook contract.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, TLSSocket } from 'node:tls';
import { needs, tool } from './helpers/skip.js';
import { openssl } from './helpers/openssl.js';
import { acmeSystemDrive, startPebble } from './helpers/pebble.js';
import { WHARF_BIN, run } from './helpers/wharf.js';
import { parseClientHello } from '../src/listener/client-hello.js';
import { ACME_TLS_ALPN, AcmeManager } from '../src/tls/acme.js';
import { CertificateSource } from '../src/tls/certificate-source.js';
import type { TlsLogger } from '../src/tls/tls-types.js';


class Log implements TlsLogger {
  readonly lines: string[] = [];
  info(m: string): void {
    this.lines.push(`info ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn ${m}`);
  }
  error(m: string): void {
    this.lines.push(`error ${m}`);
  }
}

async function until<T>(what: string, fn: () => T | undefined | false, ms: number, log?: Log): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}${log ? `\n${log.lines.join('\n')}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The HTTP-01 answers on Pebble's httpPort: what the listener will do before any pool. */
async function challengeServer(port: number, manager: () => AcmeManager | undefined, refuse: ReadonlySet<string>): Promise<{ server: Server; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    hits.push(host);
    const answer = m !== null && !refuse.has(host) ? manager()?.httpChallenge(host, m[1]!) : undefined;
    if (answer === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(answer);
  });
  server.listen(port, '::');
  await once(server, 'listening');
  return { server, hits };
}

test('Pebble issues a certificate for a wanted host by a real HTTP-01 validation; it lands in the Central Certificate Store and is served; a short-lived one is renewed', async (t) => {
  if (!needs(t, tool('pebble'), tool('pebble-challtestsrv', 'pebble'), tool('openssl'))) return;
  const ca = await startPebble(20);
  let manager: AcmeManager | undefined;
  const { server, hits } = await challengeServer(ca.httpPort, () => manager, new Set());
  const { sd, ccs } = await acmeSystemDrive(ca);
  const log = new Log();
  const source = await CertificateSource.open({ systemDrive: sd, logger: log, pollIntervalMs: 500, debounceMs: 20 });
  try {
    manager = AcmeManager.start({ systemDrive: sd, logger: log, source });
    manager.setWantedHosts(['Shop.Example.test', 'shop.example.test']);
    const first = await until('the first certificate', () => {
      const l = source.forCentralStore('shop.example.test');
      return l?.ok === true ? l.cert : undefined;
    }, 30000, log);
    assert.ok(hits.includes('shop.example.test'), `Pebble fetched the challenge (${hits.join(', ')})`);
    assert.match(first.leaf.issuer, /Pebble/);
    assert.equal(first.leaf.subjectAltName, 'DNS:shop.example.test');
    assert.equal(first.key.asymmetricKeyType, 'ec');
    const file = join(ccs, 'shop.example.test.pfx');
    assert.equal(first.source, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // The file is a PFX any tool opens with the store's password, chain included.
    const info = openssl(['pkcs12', '-in', file, '-passin', 'pass:ccs pass', '-nokeys']);
    assert.ok((info.match(/BEGIN CERTIFICATE/g) ?? []).length >= 2, info);
    assert.ok(log.lines.some((l) => /ACME: shop\.example\.test: ordering a certificate from https:\/\/127\.0\.0\.1:\d+\/dir/.test(l)), log.lines.join('\n'));
    assert.ok(log.lines.some((l) => /ACME: shop\.example\.test: answering the http-01 challenge/.test(l)));
    assert.ok(log.lines.some((l) => /ACME: shop\.example\.test: certificate written to /.test(l)));
    assert.equal(statSync(join(sd, 'wharf', 'acme', 'account.json')).mode & 0o777, 0o600);

    // 20 s of validity: renewed a third of it before the end, by the manager's own timer.
    const renewed = await until('the renewal', () => {
      const l = source.forCentralStore('shop.example.test');
      return l?.ok === true && l.cert.thumbprint !== first.thumbprint ? l.cert : undefined;
    }, 30000, log);
    assert.ok(Date.parse(renewed.leaf.validTo) > Date.parse(first.leaf.validTo));
    assert.equal(log.lines.filter((l) => /new account key/.test(l)).length, 1, 'one account, reused');
  } finally {
    manager?.close();
    source.close();
    server.close();
    ca.stop();
  }
});

test('a failed order backs off, and the backoff survives a restart: a restart loop does not ask the CA again early', async (t) => {
  if (!needs(t, tool('pebble'), tool('pebble-challtestsrv', 'pebble'), tool('openssl'))) return;
  const ca = await startPebble(3600);
  let manager: AcmeManager | undefined;
  const refused = 'refused.example.test';
  const { server, hits } = await challengeServer(ca.httpPort, () => manager, new Set([refused]));
  const { sd } = await acmeSystemDrive(ca);
  const log = new Log();
  const source = await CertificateSource.open({ systemDrive: sd, logger: log });
  try {
    manager = AcmeManager.start({ systemDrive: sd, logger: log, source, backoffBaseMs: 4000 });
    manager.setWantedHosts([refused]);
    await until('the first failure', () => manager!.hostState(refused)?.lastError !== 'interrupted' && manager!.hostState(refused), 30000, log);
    const first = manager.hostState(refused)!;
    assert.equal(first.failures, 1);
    assert.match(first.lastError ?? '', /40\d|unauthorized|Invalid response/i);
    const hitsAfterFirst = hits.filter((h) => h === refused).length;
    assert.ok(hitsAfterFirst >= 1, 'Pebble asked for the challenge');
    const state = JSON.parse(readFileSync(join(sd, 'wharf', 'acme', 'state.json'), 'utf8')) as { hosts: Record<string, { failures: number; nextAttemptAt: number }> };
    assert.equal(state.hosts[refused]!.failures, 1);
    assert.equal(statSync(join(sd, 'wharf', 'acme', 'state.json')).mode & 0o777, 0o600);
    const show = await run(process.execPath, [WHARF_BIN, 'centralcert', 'show', '--system-drive', sd]);
    assert.match(show.stdout, /ACME refused\.example\.test +: 1 failed attempt\(s\) in a row; next attempt not before /);

    // "Restart": a new manager on the same system drive waits out the backoff.
    manager.close();
    manager = AcmeManager.start({ systemDrive: sd, logger: log, source, backoffBaseMs: 4000 });
    manager.setWantedHosts([refused]);
    await manager.check();
    assert.equal(hits.filter((h) => h === refused).length, hitsAfterFirst, 'no new attempt before the backoff ends');
    assert.ok(log.lines.some((l) => l.includes(`ACME: ${refused}: waiting until`)), log.lines.join('\n'));
    // Once it ends, the timer tries again; the next backoff is twice as long.
    await until('the second failure', () => (manager!.hostState(refused)?.failures === 2 && manager!.hostState(refused)?.lastError !== 'interrupted') || undefined, 30000, log);
    const second = manager.hostState(refused)!;
    assert.ok(second.nextAttemptAt - (second.lastAttemptAt ?? 0) === 8000, JSON.stringify(second));
    assert.ok(hits.filter((h) => h === refused).length > hitsAfterFirst);
  } finally {
    manager?.close();
    source.close();
    server.close();
    ca.stop();
  }
});

/**
 * TLS-ALPN-01 on Pebble's tlsPort, answered by a small TLS server that follows the listener's hook
 * contract (src/tls/acme.ts, alpnChallenge): read the ClientHello first; when it offers ALPN
 * `acme-tls/1` and the manager has a certificate for its SNI name, present that certificate,
 * select `acme-tls/1`, and close once the handshake is done; anything else is not answered here.
 */
async function alpnServer(port: number, manager: () => AcmeManager | undefined): Promise<{ server: NetServer; seen: Array<{ sni: string | undefined; alpn: readonly string[]; certPem?: string }> }> {
  const seen: Array<{ sni: string | undefined; alpn: readonly string[]; certPem?: string }> = [];
  const server = createNetServer((raw) => {
    let buf = Buffer.alloc(0);
    raw.on('error', () => undefined);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const hello = parseClientHello(buf);
      if (hello.kind === 'partial') return;
      raw.removeListener('data', onData);
      raw.pause();
      if (hello.kind !== 'hello') return void raw.destroy();
      const challenge = hello.alpn.includes(ACME_TLS_ALPN) && hello.serverName !== undefined ? manager()?.alpnChallenge(hello.serverName) : undefined;
      seen.push({ sni: hello.serverName, alpn: hello.alpn, ...(challenge !== undefined ? { certPem: challenge.certPem } : {}) });
      if (challenge === undefined) return void raw.destroy();
      raw.unshift(buf);
      const tls = new TLSSocket(raw, {
        isServer: true,
        secureContext: createSecureContext({ key: challenge.keyPem, cert: challenge.certPem, minVersion: 'TLSv1.2' }),
        ALPNCallback: ({ protocols }: { protocols: string[] }) => (protocols.includes(ACME_TLS_ALPN) ? ACME_TLS_ALPN : undefined),
      } as ConstructorParameters<typeof TLSSocket>[1]);
      tls.on('error', () => tls.destroy());
      // RFC 8737 §3: no application data on an acme-tls/1 connection; the CA closes it after the handshake.
      tls.once('secure', () => tls.end());
    };
    raw.on('data', onData);
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, seen };
}

test('TLS-ALPN-01: a host with only an https binding on the CA\'s TLS port is validated by Pebble through acme-tls/1; a host that also has an http binding on the HTTP-01 port keeps HTTP-01', async (t) => {
  if (!needs(t, tool('pebble'), tool('pebble-challtestsrv', 'pebble'), tool('openssl'))) return;
  const ca = await startPebble(3600);
  let manager: AcmeManager | undefined;
  const { server: httpServer, hits } = await challengeServer(ca.httpPort, () => manager, new Set());
  const { server: tlsServer, seen } = await alpnServer(ca.tlsPort, () => manager);
  const { sd, ccs } = await acmeSystemDrive(ca, ['--http-port', String(ca.httpPort), '--tls-port', String(ca.tlsPort)]);
  const log = new Log();
  const source = await CertificateSource.open({ systemDrive: sd, logger: log, pollIntervalMs: 500, debounceMs: 20 });
  const alpnHost = 'alpn.example.test';
  const bothHost = 'both.example.test';
  try {
    manager = AcmeManager.start({ systemDrive: sd, logger: log, source });
    manager.setWantedHosts([
      { host: alpnHost, httpPorts: [8080], httpsPorts: [ca.tlsPort] },
      { host: bothHost, httpPorts: [ca.httpPort], httpsPorts: [ca.tlsPort] },
    ]);
    const issued = (host: string) => () => {
      const l = source.forCentralStore(host);
      return l?.ok === true ? l.cert : undefined;
    };
    const alpnCert = await until(`the certificate for ${alpnHost}`, issued(alpnHost), 30000, log);
    const bothCert = await until(`the certificate for ${bothHost}`, issued(bothHost), 30000, log);
    assert.match(alpnCert.leaf.issuer, /Pebble/);
    assert.equal(alpnCert.leaf.subjectAltName, `DNS:${alpnHost}`);
    assert.equal(alpnCert.source, join(ccs, `${alpnHost}.pfx`));
    assert.match(bothCert.leaf.issuer, /Pebble/);
    assert.ok(log.lines.some((l) => l.includes(`ACME: ${alpnHost}: answering the tls-alpn-01 challenge for ${alpnHost} with ALPN acme-tls/1`)), log.lines.join('\n'));
    assert.ok(log.lines.some((l) => l.includes(`ACME: ${bothHost}: answering the http-01 challenge`)), log.lines.join('\n'));
    // Pebble's validation authority connected with the SNI name and only acme-tls/1 (RFC 8737 §3)…
    const validation = seen.find((s) => s.sni === alpnHost && s.certPem !== undefined);
    assert.ok(validation !== undefined, JSON.stringify(seen));
    assert.deepEqual(validation.alpn, [ACME_TLS_ALPN]);
    // …and got a self-signed certificate for that one name with the critical acmeIdentifier extension.
    const text = openssl(['x509', '-noout', '-text'], undefined, validation.certPem);
    assert.match(text, /DNS:alpn\.example\.test/);
    assert.match(text, /1\.3\.6\.1\.5\.5\.7\.1\.31: critical/);
    assert.ok(!hits.includes(alpnHost), 'no HTTP-01 request for the TLS-ALPN-01 host');
    assert.ok(hits.includes(bothHost), 'HTTP-01 is preferred when the host has an http binding on the CA\'s port');
    assert.ok(!seen.some((s) => s.sni === bothHost), 'no TLS-ALPN-01 for the HTTP-01 host');
    // Nothing is left to present once the order is over.
    assert.equal(manager.alpnChallenge(alpnHost), undefined);
  } finally {
    manager?.close();
    source.close();
    httpServer.close();
    tlsServer.close();
    ca.stop();
  }
});
