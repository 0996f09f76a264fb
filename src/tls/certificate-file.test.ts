import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs, tool } from '../../test/helpers/skip.js';
import { openssl, TestPki } from '../../test/helpers/openssl.js';
import { TlsError } from '../errors.js';
import { dnsNames, normalizeThumbprint, readCertificateFile, thumbprintOf, windowsName } from './certificate-file.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-certfile-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let pki: TestPki | undefined;
const getPki = (): TestPki => (pki ??= new TestPki(join(dir, 'pki')));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TlsError, `a TlsError, not ${String(err)}`);
    return err.code;
  }
  assert.fail('no error');
}

for (const keyType of ['rsa', 'ec'] as const) {
  for (const legacy of [false, true]) {
    test(`PFX (${legacy ? 'openssl -legacy: 3DES/RC2, SHA-1 MAC' : 'OpenSSL 3 default: AES-256, PBKDF2, SHA-256 MAC'}, ${keyType}) with its chain: the key, the leaf and its issuers in order, thumbprints as openssl prints them`, (t) => {
      if (!needs(t, tool('openssl'))) return;
      const p = getPki();
      const leaf = p.leaf(`${keyType}${legacy ? '-legacy' : ''}.example.com`, { keyType, sans: ['alt.example.com'] });
      // Issuers in the wrong order, as some exports have them: the bundle puts them right.
      const file = p.pfx(leaf, { password: 'pa ss', legacy, issuers: [p.root().cert, p.intermediate().cert], name: 'My Friendly Name' });
      const b = readCertificateFile(file, { password: 'pa ss' });
      assert.equal(thumbprintOf(b.leaf), leaf.thumbprint);
      assert.deepEqual(b.chain.map(thumbprintOf), [leaf.thumbprint, p.intermediate().thumbprint, p.root().thumbprint]);
      assert.ok(b.leaf.checkPrivateKey(b.key));
      assert.equal(b.key.asymmetricKeyType, keyType);
      assert.equal(b.friendlyName, 'My Friendly Name');
      assert.deepEqual(dnsNames(b.leaf), [`${keyType}${legacy ? '-legacy' : ''}.example.com`, 'alt.example.com']);
      assert.equal(code(() => readCertificateFile(file, { password: 'wrong' })), 'TLS_PASSWORD');
      assert.equal(code(() => readCertificateFile(file)), 'TLS_PASSWORD');
    });
  }
}

test('PFX exported with an empty password opens without one', (t) => {
  if (!needs(t, tool('openssl'))) return;
  const p = getPki();
  const leaf = p.leaf('nopass.example.com', { issuer: 'self' });
  for (const legacy of [false, true]) {
    const b = readCertificateFile(p.pfx(leaf, { password: '', legacy }));
    assert.equal(thumbprintOf(b.leaf), leaf.thumbprint);
  }
});

test('PEM: certificate, chain and key in one file; or the key given apart; or an encrypted key with its password', (t) => {
  if (!needs(t, tool('openssl'))) return;
  const p = getPki();
  const leaf = p.leaf('pem.example.com', { keyType: 'rsa' });
  const all = readCertificateFile(p.pem(leaf, { issuers: p.issuers() }));
  assert.deepEqual(all.chain.map(thumbprintOf), [leaf.thumbprint, p.intermediate().thumbprint, p.root().thumbprint]);
  const apart = readCertificateFile(p.pem(leaf, { withKey: false }), { keyFile: leaf.key });
  assert.equal(thumbprintOf(apart.leaf), leaf.thumbprint);
  // The key before the certificate is fine too.
  const reversed = join(dir, 'reversed.pem');
  writeFileSync(reversed, readFileSync(leaf.key, 'utf8') + readFileSync(leaf.cert, 'utf8'));
  assert.equal(thumbprintOf(readCertificateFile(reversed).leaf), leaf.thumbprint);
  const encrypted = join(dir, 'encrypted.key');
  openssl(['pkcs8', '-topk8', '-in', leaf.key, '-out', encrypted, '-passout', 'pass:s3cret']);
  assert.equal(thumbprintOf(readCertificateFile(leaf.cert, { keyFile: encrypted, password: 's3cret' }).leaf), leaf.thumbprint);
  assert.equal(code(() => readCertificateFile(leaf.cert, { keyFile: encrypted, password: 'nope' })), 'TLS_PASSWORD');
  assert.equal(code(() => readCertificateFile(leaf.cert, { keyFile: encrypted })), 'TLS_PASSWORD');
});

test('errors have codes: no key, a key of another certificate, not a certificate, unreadable file', (t) => {
  if (!needs(t, tool('openssl'))) return;
  const p = getPki();
  const a = p.leaf('a.example.com');
  const b = p.leaf('b.example.com');
  assert.equal(code(() => readCertificateFile(a.cert)), 'TLS_NO_KEY');
  // A DER certificate (.cer) alone: no key either.
  const der = join(dir, 'a.cer');
  openssl(['x509', '-in', a.cert, '-outform', 'DER', '-out', der]);
  assert.equal(code(() => readCertificateFile(der)), 'TLS_NO_KEY');
  assert.equal(code(() => readCertificateFile(a.cert, { keyFile: b.key })), 'TLS_KEY_MISMATCH');
  const junk = join(dir, 'junk.pfx');
  writeFileSync(junk, 'this is not a certificate');
  assert.equal(code(() => readCertificateFile(junk)), 'TLS_FORMAT');
  assert.equal(code(() => readCertificateFile(join(dir, 'missing.pfx'))), 'TLS_FILE_READ');
  assert.equal(code(() => readCertificateFile(dir)), 'TLS_FILE_READ');
});

test('a certificate that is not an issuer of the leaf is left out and reported, not served', (t) => {
  if (!needs(t, tool('openssl'))) return;
  const p = getPki();
  const leaf = p.leaf('c.example.com');
  const stranger = p.leaf('stranger.example.com', { issuer: 'self' });
  const b = readCertificateFile(p.pem(leaf, { issuers: [stranger.cert, p.intermediate().cert] }));
  assert.deepEqual(b.chain.map(thumbprintOf), [leaf.thumbprint, p.intermediate().thumbprint]);
  assert.deepEqual(b.unrelated.map(thumbprintOf), [stranger.thumbprint]);
});

test('names as Windows prints them: most specific first, S= and E=, quoted values', () => {
  assert.equal(windowsName('C=US\nST=Washington\nO=Contoso\\, Ltd\nCN=www.contoso.com'), 'CN=www.contoso.com, O="Contoso, Ltd", S=Washington, C=US');
  assert.equal(windowsName('CN=localhost'), 'CN=localhost');
  assert.equal(windowsName('CN=x\nemailAddress=a@b.c'), 'E=a@b.c, CN=x');
});

test('thumbprints are taken as pasted from Windows: spaces, colons, invisible marks, any case', () => {
  const t = 'DB8983A6B3127150C03D61ABA45B7828F3A14E4D';
  assert.equal(normalizeThumbprint(t.toLowerCase()), t);
  assert.equal(normalizeThumbprint('\u200edb 89 83 a6 b3 12 71 50 c0 3d 61 ab a4 5b 78 28 f3 a1 4e 4d'), t);
  assert.equal(normalizeThumbprint('DB:89:83:A6:B3:12:71:50:C0:3D:61:AB:A4:5B:78:28:F3:A1:4E:4D'), t);
  assert.equal(normalizeThumbprint('DB8983'), undefined);
  assert.equal(normalizeThumbprint(t + 'G'), undefined);
});
