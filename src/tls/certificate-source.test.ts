import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { connect, createSecureContext, createServer } from 'node:tls';
import { needs, tool } from '../../test/helpers/skip.js';
import { TestPki, type Issued } from '../../test/helpers/openssl.js';
import { readCertificateFile } from './certificate-file.js';
import { CertificateSource } from './certificate-source.js';
import { CertificateStore } from './certificate-store.js';
import { CentralStoreConfig } from './central-store.js';
import { entryFromAddArguments, SslBindingTable } from './ssl-bindings.js';
import type { CertificateLookup, TlsLogger } from './tls-types.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-source-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

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

function thumbprint(l: CertificateLookup | undefined): string {
  assert.ok(l !== undefined, 'an answer');
  assert.ok(l.ok, l.ok ? '' : `${l.error.code}: ${l.error.message}`);
  return l.cert.thumbprint;
}

function errorOf(l: CertificateLookup | undefined): { code: string; message: string } {
  assert.ok(l !== undefined && !l.ok, 'an error answer');
  return { code: l.error.code, message: l.error.message };
}

async function until(what: string, fn: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Setup {
  sd: string;
  pki: TestPki;
  store: CertificateStore;
  table: SslBindingTable;
  ccs: string;
  certs: Record<string, Issued>;
}

async function setup(name: string): Promise<Setup> {
  const sd = join(dir, name, 'sd');
  const pki = new TestPki(join(dir, name, 'pki'));
  const store = new CertificateStore(sd);
  const table = new SslBindingTable(sd);
  const certs: Record<string, Issued> = {};
  for (const cn of ['wild.example.com', 'exact.example.com', 'sni.example.com', 'ip.example.com']) {
    certs[cn] = pki.leaf(cn);
  }
  for (const cn of ['wild.example.com', 'sni.example.com', 'ip.example.com']) store.import(readCertificateFile(pki.pem(certs[cn]!, { issuers: pki.issuers() })), {});
  await table.add(entryFromAddArguments(['ipport=0.0.0.0:443', `certhash=${certs['wild.example.com']!.thumbprint}`]));
  await table.add(entryFromAddArguments(['ipport=127.0.0.2:443', `certhash=${certs['ip.example.com']!.thumbprint}`]));
  await table.add(entryFromAddArguments(['hostnameport=sni.example.com:443', `certhash=${certs['sni.example.com']!.thumbprint}`, 'certstorename=My']));
  const ccs = join(dir, name, 'ccs');
  mkdirSync(ccs, { recursive: true });
  return { sd, pki, store, table, ccs, certs };
}

test('ipport: the exact address first, then the wildcard of its family, then the other family\'s; IPv4-mapped addresses count as IPv4', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const s = await setup('ipport');
  const source = await CertificateSource.open({ systemDrive: s.sd, logger: new Log() });
  try {
    const wild = s.certs['wild.example.com']!.thumbprint;
    const ip = s.certs['ip.example.com']!.thumbprint;
    assert.equal(thumbprint(source.forIpPort('127.0.0.1', 443)), wild);
    assert.equal(thumbprint(source.forIpPort('127.0.0.2', 443)), ip);
    assert.equal(thumbprint(source.forIpPort('::ffff:127.0.0.2', 443)), ip);
    assert.equal(thumbprint(source.forIpPort('::1', 443)), wild); // no [::]:443: the IPv4 wildcard answers
    assert.equal(source.forIpPort('127.0.0.1', 8443), undefined);
    await s.table.add(entryFromAddArguments(['ipport=[::]:443', `certhash=${ip}`]));
    await source.reload();
    assert.equal(thumbprint(source.forIpPort('::1', 443)), ip);
    assert.equal(thumbprint(source.forIpPort('127.0.0.1', 443)), wild);
    const l = source.forIpPort('127.0.0.2', 443);
    assert.ok(l?.ok && l.binding?.key === '127.0.0.2:443');
    // The chain is served whole: leaf, intermediate, root.
    assert.equal((l.cert.chain.match(/BEGIN CERTIFICATE/g) ?? []).length, 3);
  } finally {
    source.close();
  }
});

test('hostnameport (SNI) entries, case-insensitive; a broken entry answers an error naming the entry and the file, and is logged once', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const s = await setup('sni');
  const log = new Log();
  const missing = s.certs['exact.example.com']!.thumbprint; // never imported
  await s.table.add(entryFromAddArguments(['hostnameport=missing.example.com:443', `certhash=${s.certs['sni.example.com']!.thumbprint}`, 'certstorename=My']));
  // Bypass `sslcert add`'s check (a certificate deleted with --force later looks the same).
  const raw = { ...entryFromAddArguments(['hostnameport=gone.example.com:443', `certhash=${missing}`, 'certstorename=My']) };
  const table = JSON.parse(JSON.stringify({ version: 1, entries: [...s.table.read(), raw] }));
  writeFileSync(s.table.file, JSON.stringify(table));
  const source = await CertificateSource.open({ systemDrive: s.sd, logger: log });
  try {
    assert.equal(thumbprint(source.forHostnamePort('SNI.Example.COM', 443)), s.certs['sni.example.com']!.thumbprint);
    assert.equal(source.forHostnamePort('sni.example.com', 8443), undefined);
    assert.equal(source.forHostnamePort('other.example.com', 443), undefined);
    const e = errorOf(source.forHostnamePort('gone.example.com', 443));
    assert.equal(e.code, 'TLS_CERT_NOT_FOUND');
    assert.match(e.message, /^SSL binding hostnameport=gone\.example\.com:443: /);
    assert.ok(e.message.includes(join(s.store.folder('My'), `${missing}.crt`)), e.message);
    await source.reload();
    assert.equal(log.lines.filter((l) => l.includes('gone.example.com')).length, 1, log.lines.join('\n'));
  } finally {
    source.close();
  }
});

test('Central Certificate Store: <host>.pfx first, then _.<parent>.pfx; undefined while disabled; missing and undecryptable files are errors naming the files', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const s = await setup('ccs');
  const exact = s.certs['exact.example.com']!;
  const wild = s.pki.leaf('*.example.com');
  s.pki.pfx(exact, { password: 'ccs-pass', out: join(s.ccs, 'Exact.Example.com.pfx'), issuers: s.pki.issuers() });
  s.pki.pfx(wild, { password: 'ccs-pass', legacy: true, out: join(s.ccs, '_.example.com.pfx') });
  s.pki.pfx(exact, { password: 'other', out: join(s.ccs, 'badpass.example.com.pfx') });
  const source = await CertificateSource.open({ systemDrive: s.sd, logger: new Log() });
  try {
    assert.equal(source.forCentralStore('exact.example.com'), undefined);
    await new CentralStoreConfig(s.sd).update(() => ({ enabled: true, physicalPath: s.ccs, privateKeyPassword: 'ccs-pass' }));
    await source.reload();
    assert.equal(thumbprint(source.forCentralStore('exact.example.com')), exact.thumbprint);
    assert.equal(thumbprint(source.forCentralStore('EXACT.example.com.')), exact.thumbprint);
    assert.equal(thumbprint(source.forCentralStore('anything.example.com')), wild.thumbprint);
    const none = errorOf(source.forCentralStore('example.com')); // _.com.pfx is never looked for
    assert.equal(none.code, 'TLS_CCS_NO_FILE');
    assert.ok(none.message.includes(join(s.ccs, 'example.com.pfx')), none.message);
    const deep = errorOf(source.forCentralStore('a.b.example.org'));
    assert.ok(deep.message.includes(join(s.ccs, 'a.b.example.org.pfx')) && deep.message.includes(join(s.ccs, '_.b.example.org.pfx')), deep.message);
    const bad = errorOf(source.forCentralStore('badpass.example.com'));
    assert.equal(bad.code, 'TLS_PASSWORD');
    assert.ok(bad.message.includes(join(s.ccs, 'badpass.example.com.pfx')), bad.message);
    assert.equal(errorOf(source.forCentralStore('../etc/passwd')).code, 'TLS_CCS_NO_FILE');
    await new CentralStoreConfig(s.sd).update((c) => ({ ...c!, enabled: false }));
    await source.reload();
    assert.equal(source.forCentralStore('exact.example.com'), undefined);
  } finally {
    source.close();
  }
});

test('changes on disk reach a running source by themselves: a CCS file replaced (rename or copy over), added, removed; a table entry added', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const s = await setup('live');
  const first = s.pki.leaf('live.example.com');
  const second = s.pki.leaf('live.example.com');
  const third = s.pki.leaf('live.example.com');
  s.pki.pfx(first, { password: 'p', out: join(s.ccs, 'live.example.com.pfx') });
  await new CentralStoreConfig(s.sd).update(() => ({ enabled: true, physicalPath: s.ccs, privateKeyPassword: 'p' }));
  const source = await CertificateSource.open({ systemDrive: s.sd, logger: new Log(), pollIntervalMs: 500, debounceMs: 20 });
  let changes = 0;
  source.onChange(() => changes++);
  try {
    assert.equal(thumbprint(source.forCentralStore('live.example.com')), first.thumbprint);
    // Replaced by rename, as deployment tools do.
    const staged = s.pki.pfx(second, { password: 'p', out: join(dir, 'live', 'staged.pfx') });
    renameSync(staged, join(s.ccs, 'live.example.com.pfx'));
    await until('the renamed file', () => source.forCentralStore('live.example.com')?.ok === true && thumbprint(source.forCentralStore('live.example.com')) === second.thumbprint);
    assert.ok(changes >= 1);
    // Copied over in place (same inode).
    copyFileSync(s.pki.pfx(third, { password: 'p', out: join(dir, 'live', 'third.pfx') }), join(s.ccs, 'live.example.com.pfx'));
    await until('the copied file', () => source.forCentralStore('live.example.com')?.ok === true && thumbprint(source.forCentralStore('live.example.com')) === third.thumbprint);
    // Added, removed.
    s.pki.pfx(first, { password: 'p', out: join(s.ccs, 'new.example.com.pfx') });
    await until('the new file', () => source.forCentralStore('new.example.com')?.ok === true);
    rmSync(join(s.ccs, 'new.example.com.pfx'));
    await until('the removal', () => source.forCentralStore('new.example.com')?.ok === false);
    // The table, edited by another process (here: the same class the CLI uses).
    const before = changes;
    await s.table.add(entryFromAddArguments(['ipport=0.0.0.0:8443', `certhash=${s.certs['sni.example.com']!.thumbprint}`]));
    await until('the table entry', () => source.forIpPort('10.1.1.1', 8443)?.ok === true);
    assert.ok(changes > before);
  } finally {
    source.close();
  }
});

test('what a lookup gives is what a TLS server serves: an SNI callback on lookups hands each name its certificate', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const s = await setup('serve');
  const wild = s.pki.leaf('*.example.com');
  s.pki.pfx(wild, { password: '', out: join(s.ccs, '_.example.com.pfx') });
  await new CentralStoreConfig(s.sd).update(() => ({ enabled: true, physicalPath: s.ccs, privateKeyPassword: '' }));
  const source = await CertificateSource.open({ systemDrive: s.sd, logger: new Log() });
  const context = (l: CertificateLookup | undefined) => {
    assert.ok(l?.ok);
    return createSecureContext({ key: l.cert.keyPem, cert: l.cert.chain });
  };
  const fallback = source.forIpPort('0.0.0.0', 443);
  assert.ok(fallback?.ok);
  const server = createServer(
    {
      key: fallback.cert.keyPem,
      cert: fallback.cert.chain,
      SNICallback: (name, cb) => cb(null, context(source.forHostnamePort(name, 443) ?? source.forCentralStore(name))),
    },
    (sock) => sock.end(),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  try {
    const served = async (servername: string): Promise<string> => {
      const sock = connect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false });
      await once(sock, 'secureConnect');
      const fp = sock.getPeerCertificate().fingerprint.replace(/:/g, '');
      sock.destroy();
      return fp;
    };
    assert.equal(await served('sni.example.com'), s.certs['sni.example.com']!.thumbprint);
    assert.equal(await served('shop.example.com'), wild.thumbprint);
  } finally {
    server.close();
    source.close();
  }
});

test('trustedCertificates: the system bundle, then the Root and CA stores (certificates without keys), reloaded when one is imported', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const { sd, pki, store } = await setup('trusted');
  const { readCertificatesOnly } = await import('./certificate-file.js');
  const log = new Log();
  const source = await CertificateSource.open({ systemDrive: sd, logger: log, pollIntervalMs: 100, debounceMs: 20 });
  try {
    const before = source.trustedCertificates();
    assert.equal(before.length, 1, 'the system bundle alone');
    assert.match(before[0]!, /-----BEGIN CERTIFICATE-----/);
    let changed = 0;
    source.onChange(() => changed++);
    const [root] = readCertificatesOnly(pki.root().cert);
    const [intermediate] = readCertificatesOnly(pki.intermediate().cert);
    store.importCertificate(root!, { store: 'Root' });
    store.importCertificate(intermediate!, { store: 'ca' });
    await until('the trust stores to be read', () => source.trustedCertificates().length === 3);
    assert.ok(changed >= 1, 'a change of the trust stores is a change');
    const pems = source.trustedCertificates().slice(1).join('');
    assert.ok(pems.includes(root!.toString().trim()) && pems.includes(intermediate!.toString().trim()));
    // Stored without a key: listed, never served.
    assert.equal(store.list('Root').certificates[0]!.hasPrivateKey, false);
    assert.throws(() => store.material('Root', store.list('Root').certificates[0]!.thumbprint), /no private key/);
    assert.equal(source.trustedCertificates(), source.trustedCertificates(), 'the same array until it changes');
  } finally {
    source.close();
  }
});

test('isRevoked: a revocation list in a trust store, signed by a certificate of those stores, names revoked client certificates; an unverifiable one is reported and not used', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const { sd, pki, store } = await setup('revocation');
  const { readCertificatesOnly } = await import('./certificate-file.js');
  const { readFileSync } = await import('node:fs');
  const { X509Certificate } = await import('node:crypto');
  const revoked = pki.leaf('eve.client.test', { issuer: 'root', usage: 'client' });
  const fine = pki.leaf('alice.client.test', { issuer: 'root', usage: 'client' });
  const der = (c: Issued): Buffer => new X509Certificate(readFileSync(c.cert)).raw;
  const crlDer = (file: string): Buffer => Buffer.from(/-----BEGIN X509 CRL-----([\s\S]*?)-----END/.exec(readFileSync(file, 'utf8'))![1]!.replace(/\s+/g, ''), 'base64');
  const crl = pki.crl('root', [revoked]);
  store.importRevocationList(crlDer(crl), { store: 'CA' });
  const log = new Log();
  const source = await CertificateSource.open({ systemDrive: sd, logger: log, pollIntervalMs: 100, debounceMs: 20 });
  try {
    // Its issuer is not in the trust stores yet: the list cannot be verified, so it is not used.
    assert.equal(source.isRevoked(der(revoked)), false);
    assert.ok(log.lines.some((l) => /revocation list of .*Wharf Test Root CA is not signed by a certificate of the Root or CA store; not used/.test(l)), log.lines.join('\n'));
    store.importCertificate(readCertificatesOnly(pki.root().cert)[0]!, { store: 'Root' });
    await until('the list to be used', () => source.isRevoked(der(revoked)));
    assert.equal(source.isRevoked(der(fine)), false);
    assert.equal(source.isRevoked(Buffer.from('not a certificate')), false);
  } finally {
    source.close();
  }
});
