/**
 * The certificate verbs as an administrator uses them: `wharf cert`, `wharf sslcert`, `wharf
 * centralcert` run as real processes on files made by the openssl command line. Thumbprints are
 * checked against `openssl x509 -fingerprint -sha1`, the SSL table against netsh's layout, and the
 * store's files by their modes on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { needs, tool } from './helpers/skip.js';
import { TestPki } from './helpers/openssl.js';
import { WHARF_BIN, run, tempDir } from './helpers/wharf.js';

const work = tempDir('wharf-certs-cli-');
let pkiInstance: TestPki | undefined;
const pki = (): TestPki => (pkiInstance ??= new TestPki(join(work, 'pki')));

function wharf(sd: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [WHARF_BIN, ...args, '--system-drive', sd]);
}

/** The thumbprint in `wharf cert import`'s table (the line under "----------"). */
function importedThumbprint(stdout: string): string {
  const m = /^-{10}\s+-{7}\n([0-9A-F]{40})\s{2}/m.exec(stdout);
  assert.ok(m, `a thumbprint line in:\n${stdout}`);
  return m[1]!;
}

const mode = (p: string): number => statSync(p).mode & 0o777;

test('cert import: PFX (OpenSSL 3 default and -legacy), PEM with chain, PEM + --key; printed thumbprints are openssl\'s; keys 0600 in 0700 folders', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const sd = join(work, 'import');
  const p = pki();
  const rsa = p.leaf('rsa.example.com', { keyType: 'rsa' });
  const ec = p.leaf('ec.example.com');
  const pem = p.leaf('pem.example.com');
  const split = p.leaf('split.example.com');
  const cases: Array<[string, string[], string]> = [
    ['modern PFX (RSA)', [p.pfx(rsa, { password: 'Secret 1', issuers: p.issuers() }), '--password', 'Secret 1'], rsa.thumbprint],
    ['legacy PFX (EC)', [p.pfx(ec, { password: 'Secret 2', legacy: true, issuers: p.issuers() }), '--password', 'Secret 2', '--store', 'WebHosting'], ec.thumbprint],
    ['PEM with chain and key', [p.pem(pem, { issuers: p.issuers() })], pem.thumbprint],
    ['PEM + --key', [split.cert, '--key', split.key], split.thumbprint],
  ];
  for (const [what, args, expected] of cases) {
    const r = await wharf(sd, 'cert', 'import', ...args);
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    assert.equal(importedThumbprint(r.stdout), expected, what);
  }
  const my = join(sd, 'wharf', 'certificates', 'My');
  assert.equal(mode(join(sd, 'wharf', 'certificates')), 0o700);
  assert.equal(mode(my), 0o700);
  assert.equal(mode(join(sd, 'wharf', 'certificates', 'WebHosting')), 0o700);
  for (const tp of [rsa.thumbprint, pem.thumbprint, split.thumbprint]) {
    assert.equal(mode(join(my, `${tp}.key`)), 0o600);
    if (process.geteuid?.() === 0) assert.equal(statSync(join(my, `${tp}.key`)).uid, 0);
    assert.ok(readFileSync(join(my, `${tp}.key`), 'utf8').startsWith('-----BEGIN PRIVATE KEY-----'));
  }
  // The full chain is kept: leaf, intermediate, root.
  assert.equal((readFileSync(join(my, `${rsa.thumbprint}.crt`), 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length, 3);
  assert.ok(existsSync(join(sd, 'wharf', 'certificates', 'WebHosting', `${ec.thumbprint}.key`)));

  // --password-file keeps the password off the command line.
  const pwFile = join(work, 'pw.txt');
  writeFileSync(pwFile, 'Secret 1\n');
  const again = await wharf(sd, 'cert', 'import', cases[0]![1][0]!, '--password-file', pwFile);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^Replaced in store My /);
});

test('cert import errors: wrong or missing password, no key, a key of another certificate, not a certificate, unreadable file; expired: a warning, imported all the same', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const sd = join(work, 'errors');
  const p = pki();
  const a = p.leaf('a.example.com');
  const b = p.leaf('b.example.com');
  const pfx = p.pfx(a, { password: 'right' });
  const junk = join(work, 'junk.pfx');
  writeFileSync(junk, Buffer.from([0x30, 0x82, 0x01, 0x00, 1, 2, 3]));
  const expectations: Array<[string[], string, RegExp]> = [
    [[pfx, '--password', 'wrong'], 'TLS_PASSWORD', /the password does not open this PFX file/],
    [[pfx], 'TLS_PASSWORD', /no password was given/],
    [[a.cert], 'TLS_NO_KEY', /no private key/],
    [[a.cert, '--key', b.key], 'TLS_KEY_MISMATCH', /does not belong to the certificate/],
    [[junk], 'TLS_FORMAT', /not a PKCS#12 \(PFX\) file/],
    [[join(work, 'missing.pfx')], 'TLS_FILE_READ', /does not exist/],
  ];
  for (const [args, code, message] of expectations) {
    const r = await wharf(sd, 'cert', 'import', ...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^wharf: ${code}: `), args.join(' '));
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
  assert.equal(existsSync(join(sd, 'wharf', 'certificates', 'My')) ? readdirSync(join(sd, 'wharf', 'certificates', 'My')).length : 0, 0, 'nothing was stored');

  const old = p.leaf('old.example.com', { startDate: '20200101000000Z', endDate: '20200201000000Z' });
  const r = await wharf(sd, 'cert', 'import', p.pem(old));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: TLS_EXPIRED: .* expired on 2020-02-01T00:00:00Z; imported all the same/);
  assert.equal(importedThumbprint(r.stdout), old.thumbprint);
  const list = await wharf(sd, 'cert', 'list');
  assert.match(list.stdout, /NotAfter {6}: 2020-02-01T00:00:00Z \(expired\)/);
});

test('cert list shows thumbprint, subject, issuer, validity, DNS names, key; cert delete refuses while an sslcert entry uses it, unless --force', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const sd = join(work, 'list');
  const p = pki();
  const leaf = p.leaf('list.example.com', { sans: ['www.list.example.com'] });
  assert.equal((await wharf(sd, 'cert', 'import', p.pem(leaf, { issuers: p.issuers() }))).code, 0);
  const list = await wharf(sd, 'cert', 'list');
  assert.equal(list.code, 0, list.stderr);
  const block = [
    `Thumbprint    : ${leaf.thumbprint}`,
    'Subject       : CN=list.example.com',
    'Issuer        : CN=Wharf Test Intermediate CA, O=Wharf Tests',
  ].join('\n');
  assert.ok(list.stdout.includes(block), list.stdout);
  assert.match(list.stdout, /^Store: My \(.*\), 1 certificate\(s\)$/m);
  assert.match(list.stdout, /^NotBefore {5}: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
  assert.match(list.stdout, /^DnsNameList {3}: list\.example\.com, www\.list\.example\.com$/m);
  assert.match(list.stdout, /^HasPrivateKey : True$/m);
  assert.match(list.stdout, /^KeyAlgorithm {2}: ECDSA P-256$/m);
  assert.match(list.stdout, /^Chain {9}: 3 certificate\(s\): CN=Wharf Test Intermediate CA, O=Wharf Tests; CN=Wharf Test Root CA, O=Wharf Tests$/m);
  assert.match((await wharf(sd, 'cert', 'list', '--store', 'WebHosting')).stdout, /, 0 certificate\(s\)\n$/);

  assert.equal((await wharf(sd, 'sslcert', 'add', 'ipport=0.0.0.0:443', `certhash=${leaf.thumbprint}`)).code, 0);
  const refused = await wharf(sd, 'cert', 'delete', leaf.thumbprint.toLowerCase());
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`^wharf: TLS_CERT_IN_USE: certificate ${leaf.thumbprint} is used by ipport=0\\.0\\.0\\.0:443`));
  const forced = await wharf(sd, 'cert', 'delete', `\u200e${leaf.thumbprint}`, '--force');
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /^Deleted certificate [0-9A-F]{40} from store My\.$/m);
  assert.match(forced.stderr, /ipport=0\.0\.0\.0:443 now names a certificate that is not in the store/);
  const gone = await wharf(sd, 'cert', 'delete', leaf.thumbprint);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^wharf: TLS_CERT_NOT_FOUND: /);
  const usage = await wharf(sd, 'cert', 'delete', 'xyz');
  assert.equal(usage.code, 2);
});

test('sslcert add|show|delete: netsh\'s messages, layout and errors (1312 for an unknown thumbprint, 183 for a duplicate, 2 for a missing entry, 87 for a bad parameter)', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const sd = join(work, 'sslcert');
  const p = pki();
  const leaf = p.leaf('ssl.example.com');
  assert.equal((await wharf(sd, 'cert', 'import', p.pem(leaf))).code, 0);
  const add = await wharf(sd, 'sslcert', 'add', 'ipport=0.0.0.0:443', `certhash=${leaf.thumbprint}`, 'appid={00112233-4455-6677-8899-AABBCCDDEEFF}');
  assert.equal(add.code, 0, add.stderr);
  assert.equal(add.stdout, '\nSSL Certificate successfully added\n\n');
  assert.equal((await wharf(sd, 'sslcert', 'add', 'hostnameport=www.example.com:443', `certhash=${leaf.thumbprint}`, 'certstorename=MY', 'disablehttp2=enable')).code, 0);

  const show = await wharf(sd, 'sslcert', 'show');
  assert.equal(show.code, 0);
  const lines = show.stdout.split('\n');
  assert.deepEqual(lines.slice(0, 8), [
    '',
    'SSL Certificate bindings:',
    '-------------------------',
    '',
    '    IP:port                      : 0.0.0.0:443',
    `    Certificate Hash             : ${leaf.thumbprint.toLowerCase()}`,
    '    Application ID               : {00112233-4455-6677-8899-aabbccddeeff}',
    '    Certificate Store Name       : (null)',
  ]);
  assert.ok(lines.includes('    Hostname:port                : www.example.com:443'));
  assert.ok(lines.includes('    Certificate Store Name       : My'));
  assert.ok(lines.includes('    Disable HTTP2                : Set'));
  // Every field line has its colon where netsh puts it (column 34) unless the label is longer.
  for (const l of lines.filter((x) => x.startsWith('    '))) assert.ok(l.indexOf(' : ') === 32 || l.slice(4, l.indexOf(' : ')).length > 28, l);

  const one = await wharf(sd, 'sslcert', 'show', 'hostnameport=WWW.example.com:443');
  assert.equal(one.code, 0);
  assert.equal((one.stdout.match(/Hostname:port/g) ?? []).length, 1);
  assert.doesNotMatch(one.stdout, /IP:port/);

  const unknown = '0123456789ABCDEF0123456789ABCDEF01234567';
  const cases: Array<[string[], number, string]> = [
    [['add', 'ipport=10.0.0.1:443', `certhash=${unknown}`], 1312, 'TLS_CERT_NOT_FOUND'],
    [['add', 'ipport=0.0.0.0:443', `certhash=${leaf.thumbprint}`], 183, 'TLS_SSLCERT_EXISTS'],
    [['delete', 'ipport=10.9.9.9:443'], 2, 'TLS_SSLCERT_NOT_FOUND'],
    [['add', 'ipport=0.0.0.0', `certhash=${leaf.thumbprint}`], 87, 'TLS_SSLCERT_PARAMETER'],
  ];
  for (const [args, win32, code] of cases) {
    const r = await wharf(sd, 'sslcert', ...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, new RegExp(`^SSL Certificate (add|deletion) failed, Error: ${win32}\n`), args.join(' '));
    assert.match(r.stderr, new RegExp(`\nwharf: ${code}: `));
  }
  const notFound = await wharf(sd, 'sslcert', 'add', 'ipport=10.0.0.1:443', `certhash=${unknown}`);
  assert.ok(notFound.stderr.includes(`certificate ${unknown} is not in store My`), notFound.stderr);
  const missingShow = await wharf(sd, 'sslcert', 'show', 'ipport=10.9.9.9:443');
  assert.equal(missingShow.code, 1);
  assert.match(missingShow.stderr, /^The system cannot find the file specified\./);

  const del = await wharf(sd, 'sslcert', 'delete', 'ipport=0.0.0.0:443');
  assert.equal(del.code, 0, del.stderr);
  assert.equal(del.stdout, '\nSSL Certificate successfully deleted\n\n');
  assert.doesNotMatch((await wharf(sd, 'sslcert', 'show')).stdout, /IP:port/);
  const tableFile = join(sd, 'wharf', 'http', 'sslcert.json');
  assert.equal(mode(tableFile), 0o644);
});

test('centralcert enable|show|disable: settings kept under the system drive, readable by root only; the password is never printed', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const sd = join(work, 'ccs');
  const p = pki();
  const folder = join(work, 'ccs-files');
  mkdirSync(folder, { recursive: true });
  p.pfx(p.leaf('one.example.com'), { password: 'ccs secret', out: join(folder, 'one.example.com.pfx') });
  p.pfx(p.leaf('two.example.com'), { password: 'another', out: join(folder, 'two.example.com.pfx') });

  const off = await wharf(sd, 'centralcert', 'show');
  assert.equal(off.code, 0);
  assert.match(off.stdout, /^ {4}Enabled {26}: False$/m);

  const missing = await wharf(sd, 'centralcert', 'enable', '--path', join(work, 'nope'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^wharf: TLS_CCS_PATH: /);

  const on = await wharf(sd, 'centralcert', 'enable', '--path', folder, '--password', 'ccs secret');
  assert.equal(on.code, 0, on.stderr);
  assert.match(on.stdout, /Central Certificate Store enabled: .*ccs-files \(2 \.pfx files\)/);
  // The file that does not open with the store's password is named now, not when a client asks.
  assert.match(on.stderr, /warning: TLS_PASSWORD: .*two\.example\.com\.pfx/);
  const settings = join(sd, 'wharf', 'centralcert.json');
  assert.equal(mode(settings), 0o600);
  if (process.geteuid?.() === 0) assert.equal(statSync(settings).uid, 0);

  const show = await wharf(sd, 'centralcert', 'show');
  assert.equal(show.code, 0);
  assert.match(show.stdout, /^ {4}Enabled {26}: True$/m);
  assert.ok(show.stdout.includes(`    Physical Path                    : ${folder}\n`), show.stdout);
  assert.match(show.stdout, /^ {4}Certificate Private Key Password : \(set\)$/m);
  assert.match(show.stdout, /^ {4}Certificate Files \(\.pfx\) {9}: 2$/m);
  assert.doesNotMatch(show.stdout + show.stderr, /ccs secret/);

  // ACME: usage errors exit 2; settings are kept in the same 0600 file.
  assert.equal((await wharf(sd, 'centralcert', 'acme', '--directory', 'https://acme.example.test/dir', '--email', 'a@example.test')).code, 2, 'no --accept-tos');
  assert.equal((await wharf(sd, 'centralcert', 'acme', '--directory', 'http://acme.example.test/dir', '--email', 'a@example.test', '--accept-tos')).code, 2, 'not https');
  const acme = await wharf(sd, 'centralcert', 'acme', '--directory', 'https://acme.example.test/dir', '--email', 'a@example.test', '--accept-tos');
  assert.equal(acme.code, 0, acme.stderr);
  assert.match((await wharf(sd, 'centralcert', 'show')).stdout, /^ {4}ACME Directory {19}: https:\/\/acme\.example\.test\/dir$/m);
  assert.equal(mode(settings), 0o600);
  assert.match((await wharf(sd, 'centralcert', 'show')).stdout, /^ {4}ACME HTTP-01 Port {16}: 80\n {4}ACME TLS-ALPN-01 Port {12}: 443$/m);
  // The ports the CA's validations arrive on, behind a port forward (or a test CA).
  assert.equal((await wharf(sd, 'centralcert', 'acme', '--directory', 'https://acme.example.test/dir', '--email', 'a@example.test', '--accept-tos', '--http-port', '0')).code, 2, 'port 0');
  const ports = await wharf(sd, 'centralcert', 'acme', '--directory', 'https://acme.example.test/dir', '--email', 'a@example.test', '--accept-tos', '--http-port', '8080', '--tls-port', '8443');
  assert.equal(ports.code, 0, ports.stderr);
  assert.match((await wharf(sd, 'centralcert', 'show')).stdout, /^ {4}ACME HTTP-01 Port {16}: 8080\n {4}ACME TLS-ALPN-01 Port {12}: 8443$/m);
  assert.equal((await wharf(sd, 'centralcert', 'acme', '--disable')).code, 0);
  assert.doesNotMatch((await wharf(sd, 'centralcert', 'show')).stdout, /ACME/);

  const disable = await wharf(sd, 'centralcert', 'disable');
  assert.equal(disable.code, 0);
  assert.match((await wharf(sd, 'centralcert', 'show')).stdout, /Enabled {26}: False/);
  const noStore = await wharf(join(work, 'ccs-none'), 'centralcert', 'acme', '--directory', 'https://acme.example.test/dir', '--email', 'a@example.test', '--accept-tos');
  assert.equal(noStore.code, 1);
  assert.match(noStore.stderr, /^wharf: TLS_CCS_PATH: ACME fills the Central Certificate Store: enable it first/);
});

test('cert import --store Root|CA takes CA certificates without a key (every certificate of a bundle), as Windows\' trust stores do; My still needs the key', async (t) => {
  if (!needs(t, tool('openssl'))) return;
  const sd = join(work, 'trust');
  const p = pki();
  const bundle = join(work, 'ca-bundle.pem');
  writeFileSync(bundle, readFileSync(p.root().cert, 'utf8') + readFileSync(p.intermediate().cert, 'utf8'));
  const r = await wharf(sd, 'cert', 'import', bundle, '--store', 'root');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Imported into store Root /);
  assert.ok(r.stdout.includes(`${p.root().thumbprint}  CN=Wharf Test Root CA, O=Wharf Tests\n`), r.stdout);
  assert.ok(r.stdout.includes(`${p.intermediate().thumbprint}  CN=Wharf Test Intermediate CA, O=Wharf Tests\n`), r.stdout);
  const list = await wharf(sd, 'cert', 'list', '--store', 'Root');
  assert.match(list.stdout, /, 2 certificate\(s\)\n/);
  assert.match(list.stdout, /^HasPrivateKey : False$/m);
  assert.equal(existsSync(join(sd, 'wharf', 'certificates', 'Root', `${p.root().thumbprint}.key`)), false);
  // A leaf into a trust store is kept, with a warning that it cannot vouch for anyone.
  const leaf = p.leaf('not-a-ca.example.com');
  const warned = await wharf(sd, 'cert', 'import', leaf.cert, '--store', 'CA');
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, /is not a CA certificate/);
  // The personal store still refuses a certificate without its key.
  const my = await wharf(sd, 'cert', 'import', p.root().cert);
  assert.equal(my.code, 1);
  assert.match(my.stderr, /^wharf: TLS_NO_KEY: /);
});
