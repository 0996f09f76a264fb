/**
 * Automatic certificates through a real Wharf process, as an administrator sets them up: Pebble on
 * loopback (test/helpers/pebble.ts), `wharf centralcert enable` and `wharf centralcert acme` before
 * start, a site with an http binding on the port Pebble validates HTTP-01 on and an https binding
 * `*:PORT:acme.test` with sslFlags 3 (SNI + Central Certificate Store). What is checked is what a
 * client sees: `openssl s_client -servername acme.test` gets Pebble's certificate, then a renewed
 * one (another serial) from the same running server; plain http answers all along; and a restart
 * loop of a server whose challenge fails does not send a second order before the backoff ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs, tool } from './helpers/skip.js';
import { acmeSystemDrive, startPebble } from './helpers/pebble.js';
import { FIXTURES, freePort, get, startWharf, tempDir, type WharfProcess } from './helpers/wharf.js';

/** A fixture: the static site with the given bindings ({{PORT}} is the https port startWharf picks). */
function fixture(bindings: string): string {
  const dir = tempDir('wharf-acme-fixture-');
  cpSync(join(FIXTURES, 'static', 'wwwroot'), join(dir, 'wwwroot'), { recursive: true });
  const config = readFileSync(join(FIXTURES, 'static', 'applicationHost.config'), 'utf8');
  const replaced = config.replace(/<bindings>[\s\S]*?<\/bindings>/, `<bindings>\n${bindings}\n        </bindings>`);
  assert.notEqual(replaced, config);
  writeFileSync(join(dir, 'applicationHost.config'), replaced);
  return dir;
}

interface Served {
  readonly issuer: string;
  readonly serial: string;
  readonly validTo: string;
  readonly subjectAltName: string | undefined;
}

/** The certificate `openssl s_client -servername NAME` is given by 127.0.0.1:port, or undefined (no handshake). */
function served(port: number, name: string): Served | undefined {
  const r = spawnSync('openssl', ['s_client', '-servername', name, '-connect', `127.0.0.1:${port}`], { input: '', encoding: 'utf8', timeout: 10000 });
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout ?? '');
  if (m === null) return undefined;
  const c = new X509Certificate(m[0]);
  return { issuer: c.issuer, serial: c.serialNumber, validTo: c.validTo, subjectAltName: c.subjectAltName };
}

async function poll<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms: number, server: WharfProcess): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; Wharf's output:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a real Wharf gets its certificate from Pebble by HTTP-01 on its own http binding, serves it, and renews a short-lived one without a restart; http answers all along', async (t) => {
  if (!needs(t, tool('pebble'), tool('pebble-challtestsrv', 'pebble'), tool('openssl'))) return;
  const ca = await startPebble(20);
  const { sd, ccs } = await acmeSystemDrive(ca, ['--http-port', String(ca.httpPort)]);
  const dir = fixture(`          <binding protocol="http" bindingInformation="*:${ca.httpPort}:acme.test" />
          <binding protocol="https" bindingInformation="*:{{PORT}}:acme.test" sslFlags="3" />`);
  const server = await startWharf({ fixture: dir, args: ['--system-drive', sd] });
  try {
    const httpOk = async (): Promise<void> => {
      const r = await get(ca.httpPort, '/', { Host: 'acme.test' });
      assert.equal(r.status, 200, 'the site answers on http while its certificate is ordered');
    };
    // Serving never waits for the CA: Wharf is up (startWharf saw "Wharf is serving") before any certificate exists.
    await httpOk();
    const first = await poll('a certificate issued by Pebble', async () => {
      await httpOk();
      const c = served(server.port, 'acme.test');
      return c !== undefined && /Pebble/.test(c.issuer) ? c : undefined;
    }, 40000, server);
    assert.equal(first.subjectAltName, 'DNS:acme.test');
    assert.match(server.output(), /ACME: acme\.test: ordering a certificate from https:\/\/127\.0\.0\.1:\d+\/dir/);
    assert.match(server.output(), /ACME: acme\.test: answering the http-01 challenge/);
    // The log line is read from the server's stderr pipe: it may arrive a moment after the new
    // certificate is already served (the store's watcher can be quicker than the pipe).
    const written = new RegExp(`ACME: acme\\.test: certificate written to ${join(ccs, 'acme.test.pfx').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
    await poll('the "certificate written" log line', () => (written.test(server.output()) ? true : undefined), 10000, server);
    // Pebble's validation authority fetched the token from Wharf's http binding (the listener answered it, before any pool).
    assert.match(ca.output(), /acme-challenge|http-01/i);

    // 20 s of validity: the running server renews it a third of the lifetime before the end; new
    // connections get the new certificate, and every handshake meanwhile gets a certificate.
    const renewed = await poll('a renewed certificate (another serial)', async () => {
      await httpOk();
      const c = served(server.port, 'acme.test');
      assert.ok(c !== undefined, 'https keeps serving while the certificate is renewed');
      return c.serial !== first.serial && /Pebble/.test(c.issuer) ? c : undefined;
    }, 40000, server);
    assert.ok(Date.parse(renewed.validTo) > Date.parse(first.validTo));
    assert.equal(server.child.exitCode, null, 'no restart');
    assert.equal(server.output().match(/Wharf is serving/g)?.length, 1, 'no restart');
    assert.equal(ca.orders(), 2, `one order per certificate:\n${ca.output()}`);
  } finally {
    await server.stop();
    ca.stop();
  }
});

test('a restart loop does not hammer the CA: a failed order backs off, the backoff is on disk, and a restarted Wharf waits it out', async (t) => {
  if (!needs(t, tool('pebble'), tool('pebble-challtestsrv', 'pebble'), tool('openssl'))) return;
  const ca = await startPebble(3600);
  const { sd } = await acmeSystemDrive(ca, ['--http-port', String(ca.httpPort)]);
  // refused.test has no http binding anywhere and nothing answers on Pebble's ports for it: its validation fails.
  const dir = fixture(`          <binding protocol="https" bindingInformation="*:{{PORT}}:refused.test" sslFlags="3" />
          <binding protocol="http" bindingInformation="127.0.0.1:{{PORT2}}:" />`);
  const stateFile = join(sd, 'wharf', 'acme', 'state.json');
  const state = (): { failures: number; nextAttemptAt: number; lastError?: string } | undefined => {
    try {
      return (JSON.parse(readFileSync(stateFile, 'utf8')) as { hosts: Record<string, { failures: number; nextAttemptAt: number; lastError?: string }> }).hosts['refused.test'];
    } catch {
      return undefined;
    }
  };
  const first = await startWharf({ fixture: dir, args: ['--system-drive', sd], vars: { PORT2: String(await freePort()) } });
  let second: WharfProcess | undefined;
  try {
    await first.waitForOutput(/ACME: refused\.test: TLS_ACME_ORDER: the order failed \(attempt 1 in a row\)/, 40000);
    const failed = state();
    assert.ok(failed !== undefined && failed.failures === 1 && failed.lastError !== 'interrupted', JSON.stringify(failed));
    assert.ok(failed.nextAttemptAt > Date.now() + 30000, `the first backoff is a minute: ${JSON.stringify(failed)}`);
    assert.equal(ca.orders(), 1);
    await first.stop();

    // The restarted server reads the backoff and does not order again before it ends.
    second = await startWharf({ fixture: dir, args: ['--system-drive', sd], vars: { PORT2: String(await freePort()) } });
    await second.waitForOutput(/ACME: refused\.test: waiting until \S+ before the next attempt \(1 failed in a row/, 15000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(ca.orders(), 1, `no second order before the backoff ends:\n${ca.output()}`);
    assert.deepEqual(state(), failed, 'the state on disk is unchanged');
    assert.doesNotMatch(second.output(), /ACME: refused\.test: ordering/);
  } finally {
    await first.stop();
    await second?.stop();
    ca.stop();
  }
});

test('TLS-ALPN-01 through a real Wharf: a host with only an https binding on the CA\'s TLS port gets its certificate from Pebble by acme-tls/1, then serves it', async (t) => {
  if (!needs(t, tool('pebble'), tool('pebble-challtestsrv', 'pebble'), tool('openssl'))) return;
  const ca = await startPebble(3600);
  const { sd } = await acmeSystemDrive(ca, ['--http-port', String(ca.httpPort), '--tls-port', String(ca.tlsPort)]);
  const dir = fixture(`          <binding protocol="http" bindingInformation="127.0.0.1:{{PORT}}:" />
          <binding protocol="https" bindingInformation="*:${ca.tlsPort}:alpn.test" sslFlags="3" />`);
  const server = await startWharf({ fixture: dir, args: ['--system-drive', sd] });
  try {
    const c = await poll('a certificate issued by Pebble', () => {
      const c = served(ca.tlsPort, 'alpn.test');
      return c !== undefined && /Pebble/.test(c.issuer) ? c : undefined;
    }, 40000, server);
    assert.equal(c.subjectAltName, 'DNS:alpn.test');
    assert.match(server.output(), /answering the tls-alpn-01 challenge for alpn\.test/);
    assert.doesNotMatch(server.output(), /answering the http-01/);
  } finally {
    await server.stop();
    ca.stop();
  }
});
