/**
 * iisClientCertificateMappingAuthentication end to end: a CA and client certificates made by the
 * openssl command line, the server certificate and CA put in place with `wharf cert|sslcert`
 * (client certificates negotiated at the handshake), Linux accounts made with useradd, and
 * `curl --cert`. One-to-one, many-to-one Allow and Deny (403.12), and the two enabling flags.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestPki, type Issued } from './helpers/openssl.js';
import { needs, root, tool } from './helpers/skip.js';
import { admin, getent } from './helpers/test-users.js';
import { eventually, run, startWharf, tempDir, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';

const ONE_USER = 'wharfcert1';
const MANY_USER = 'wharfcert2';
const HOST = 'certs.example.test';

/** A PEM certificate file as IIS stores a one-to-one mapping: base64 DER on one line. */
function base64Der(pemFile: string): string {
  return readFileSync(pemFile, 'utf8').replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

describe('client certificate mapping end to end', () => {
  const work = tempDir('wharf-certmap-');
  let wharf: WharfProcess | undefined;
  let pki: TestPki;
  const certs: Record<string, Issued> = {};
  const created: string[] = [];
  const ready = (): boolean => tool('openssl').met && tool('curl').met && process.getuid?.() === 0;

  before(async () => {
    if (!ready()) return;
    for (const user of [ONE_USER, MANY_USER]) {
      if (getent('passwd', user) !== undefined) continue;
      admin('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user]);
      created.push(user);
    }
    pki = new TestPki(join(work, 'pki'));
    certs['server'] = pki.leaf(HOST);
    certs['alice'] = pki.leaf('alice', { issuer: 'root', usage: 'client', subject: '/CN=alice.client.test' });
    certs['bob'] = pki.leaf('bob', { issuer: 'root', usage: 'client', subject: '/O=Contoso/OU=Engineering/CN=bob' });
    certs['eve'] = pki.leaf('eve', { issuer: 'root', usage: 'client', subject: '/O=Contoso/OU=Contractors/CN=eve' });
    wharf = await startWharf({ fixture: 'certificate-mapping', vars: { ALICE_CERT: base64Der(certs['alice'].cert), ONE_USER, MANY_USER } });
    const must = async (...args: string[]): Promise<void> => {
      const r = await run(process.execPath, [WHARF_BIN, ...args, '--system-drive', wharf!.systemDrive]);
      assert.equal(r.code, 0, `wharf ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    };
    await must('cert', 'import', pki.pem(certs['server'], { issuers: pki.issuers() }));
    await must('cert', 'import', pki.root().cert, '--store', 'Root');
    await must('sslcert', 'add', `hostnameport=${HOST}:${wharf.port}`, `certhash=${certs['server'].thumbprint}`, 'certstorename=My', 'clientcertnegotiation=enable');
    // The running server picks the SSL table entry up without a restart: wait for a handshake.
    await eventually(async () => (await curl('/one/?q=ready', 'alice')).status !== 0 || undefined, 20_000);
  });
  after(async () => {
    await wharf?.stop();
    for (const user of created) admin('userdel', [user]);
  });

  async function curl(path: string, cert: string | undefined): Promise<{ status: number; body: string }> {
    const args = ['-sS', '--max-time', '10', '--resolve', `${HOST}:${wharf!.port}:127.0.0.1`, '--cacert', pki.root().cert, '-o', '-', '-w', '\n%{http_code}', `https://${HOST}:${wharf!.port}${path}`];
    if (cert !== undefined) args.push('--cert', certs[cert]!.cert, '--key', certs[cert]!.key);
    const r = await run('curl', args, 15_000);
    const cut = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
  }

  async function logged(query: string): Promise<Record<string, string>> {
    return eventually(() => wharf!.w3cRecords(1).find((x) => x['cs-uri-query'] === query), 10_000);
  }

  it('one-to-one: the certificate itself names the account; the W3C line names it', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'), root('useradd for the mapped accounts'))) return;
    const r = await curl('/one/?q=alice', 'alice');
    assert.equal(r.status, 200, wharf!.output());
    assert.equal(r.body, 'certificate page one\n');
    assert.equal((await logged('q=alice'))['cs-username'], ONE_USER);
  });

  it('many-to-one: Subject O and Issuer CN rules map to one account; a Deny mapping listed first refuses with 403.12', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'), root('useradd for the mapped accounts'))) return;
    assert.equal((await curl('/many/?q=eve', 'eve')).status, 403);
    const eve = await logged('q=eve');
    assert.deepEqual([eve['sc-status'], eve['sc-substatus'], eve['cs-username']], ['403', '12', '-']);
    assert.equal((await curl('/many/?q=bob', 'bob')).status, 200);
    assert.equal((await logged('q=bob'))['cs-username'], MANY_USER);
  });

  it('oneToOneCertificateMappingsEnabled / manyToOneCertificateMappingsEnabled="false" turn each kind off: no user, so 401.2', async (t) => {
    if (!needs(t, tool('openssl'), tool('curl'), root('useradd for the mapped accounts'))) return;
    assert.equal((await curl('/noone/?q=alice-off', 'alice')).status, 401);
    assert.equal((await curl('/nomany/?q=bob-off', 'bob')).status, 401);
    assert.equal((await curl('/nomany/?q=alice-on', 'alice')).status, 200, 'one-to-one still maps there');
    assert.equal((await curl('/one/?q=nocert', undefined)).status, 401);
    for (const q of ['alice-off', 'bob-off', 'nocert']) {
      const row = await logged(`q=${q}`);
      assert.deepEqual([row['sc-status'], row['sc-substatus'], row['cs-username']], ['401', '2', '-'], q);
    }
  });
});
