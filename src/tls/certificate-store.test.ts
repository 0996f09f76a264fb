import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs, tool } from '../../test/helpers/skip.js';
import { TestPki } from '../../test/helpers/openssl.js';
import { TlsError } from '../errors.js';
import { readCertificateFile } from './certificate-file.js';
import { canonicalStoreName, CertificateStore } from './certificate-store.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-store-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

test('store names: Windows\' spelling for the known stores, case-insensitive; no path tricks', () => {
  assert.equal(canonicalStoreName('MY'), 'My');
  assert.equal(canonicalStoreName('webhosting'), 'WebHosting');
  assert.equal(canonicalStoreName('Custom_1'), 'Custom_1');
  assert.equal(canonicalStoreName('../etc'), undefined);
  assert.equal(canonicalStoreName(''), undefined);
});

test('import writes <THUMBPRINT>.crt (chain), .key (0600) and .json into a 0700 store folder; material reads it back; delete removes it', (t) => {
  if (!needs(t, tool('openssl'))) return;
  const pki = new TestPki(join(dir, 'pki'));
  const leaf = pki.leaf('store.example.com', { keyType: 'rsa' });
  const bundle = readCertificateFile(pki.pem(leaf, { issuers: pki.issuers() }));
  const sd = join(dir, 'sd');
  const store = new CertificateStore(sd);
  const r = store.import(bundle, { store: 'MY', importedFrom: '/somewhere/file.pem' });
  assert.deepEqual(r, { thumbprint: leaf.thumbprint, store: 'My', replaced: false });
  const folder = join(sd, 'wharf', 'certificates', 'My');
  assert.equal(store.folder('my'), folder);
  assert.deepEqual(readdirSync(folder).sort(), [`${leaf.thumbprint}.crt`, `${leaf.thumbprint}.json`, `${leaf.thumbprint}.key`]);
  assert.equal(statSync(folder).mode & 0o777, 0o700);
  assert.equal(statSync(join(sd, 'wharf', 'certificates')).mode & 0o777, 0o700);
  assert.equal(statSync(join(folder, `${leaf.thumbprint}.key`)).mode & 0o777, 0o600);
  if (process.geteuid?.() === 0) assert.equal(statSync(join(folder, `${leaf.thumbprint}.key`)).uid, 0);
  assert.equal(store.import(bundle, { store: 'My' }).replaced, true);

  const m = store.material('My', leaf.thumbprint);
  assert.equal(m.thumbprint, leaf.thumbprint);
  assert.ok(m.leaf.checkPrivateKey(m.key));
  assert.equal((m.chain.match(/BEGIN CERTIFICATE/g) ?? []).length, 3);
  assert.equal(m.source, join(folder, `${leaf.thumbprint}.crt`));

  const listed = store.list('My');
  assert.deepEqual(listed.certificates.map((c) => [c.thumbprint, c.hasPrivateKey, c.chain.length]), [[leaf.thumbprint, true, 3]]);
  assert.deepEqual(listed.broken, []);

  // A key file that is not the certificate's is caught before anything is served with it.
  const other = pki.leaf('other.example.com');
  writeFileSync(join(folder, `${leaf.thumbprint}.key`), readCertificateFile(pki.pem(other)).key.export({ format: 'pem', type: 'pkcs8' }) as string);
  assert.throws(() => store.material('My', leaf.thumbprint), (e: TlsError) => e.code === 'TLS_KEY_MISMATCH');

  assert.equal(store.delete('My', leaf.thumbprint), true);
  assert.deepEqual(readdirSync(folder), []);
  assert.throws(() => store.material('My', leaf.thumbprint), (e: TlsError) => e.code === 'TLS_CERT_NOT_FOUND' && e.message.includes(folder));
});

test('a file renamed by hand (thumbprint and content disagree) is listed as broken, never served', (t) => {
  if (!needs(t, tool('openssl'))) return;
  const pki = new TestPki(join(dir, 'pki2'));
  const leaf = pki.leaf('renamed.example.com');
  const sd = join(dir, 'sd2');
  const store = new CertificateStore(sd);
  store.import(readCertificateFile(pki.pem(leaf)), {});
  const folder = store.folder('My');
  const fake = '0'.repeat(40);
  writeFileSync(join(folder, `${fake}.crt`), readCertificateFile(pki.pem(leaf)).leaf.toString());
  const { certificates, broken } = store.list('My');
  assert.equal(certificates.length, 1);
  assert.equal(broken.length, 1);
  assert.match(broken[0]!.problem, /not 0{40}/);
  assert.throws(() => store.material('My', fake), (e: TlsError) => e.code === 'TLS_FORMAT');
});
