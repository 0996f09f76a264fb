import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs, tool } from '../../test/helpers/skip.js';
import { openssl, TestPki } from '../../test/helpers/openssl.js';
import { readCertificateFile, thumbprintOf } from './certificate-file.js';
import { readPkcs12, writePkcs12 } from './pkcs12.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-pkcs12-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

for (const keyType of ['ec', 'rsa'] as const) {
  for (const password of ['store pass', '']) {
    test(`writePkcs12 (${keyType} key, ${password === '' ? 'empty password' : 'a password'}): openssl verifies its MAC and reads key and chain; Wharf reads it back`, (t) => {
      if (!needs(t, tool('openssl'))) return;
      const pki = new TestPki(join(dir, `${keyType}-${password.length}`));
      const leaf = pki.leaf('write.example.com', { keyType });
      const bundle = readCertificateFile(pki.pem(leaf, { issuers: pki.issuers() }));
      const pfx = writePkcs12({ key: bundle.key, certificates: bundle.chain.map((c) => c.raw), password, friendlyName: 'write.example.com (ACME)' });
      const file = join(dir, `${keyType}-${password.length}.pfx`);
      writeFileSync(file, pfx);
      const info = openssl(['pkcs12', '-in', file, '-passin', `pass:${password}`, '-nodes']);
      assert.equal((info.match(/BEGIN CERTIFICATE/g) ?? []).length, 3);
      assert.match(info, /BEGIN PRIVATE KEY/);
      assert.match(info, /friendlyName: write\.example\.com \(ACME\)/);
      const back = readPkcs12(pfx, password, file);
      assert.equal(back.friendlyName, 'write.example.com (ACME)');
      assert.equal(thumbprintOf(readCertificateFile(file, { password }).leaf), leaf.thumbprint);
      if (password !== '') assert.throws(() => readPkcs12(pfx, 'wrong', file), /password/);
    });
  }
}
