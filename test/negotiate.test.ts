/**
 * Windows authentication with Negotiate, end to end: a real Kerberos realm (test/helpers/kdc.ts:
 * Debian's krb5-kdc in a temp folder), a Linux user made with useradd whose principal gets a ticket
 * from `kinit`, and `curl --negotiate` against a Wharf started with the realm's KRB5_CONFIG and the
 * HTTP/localhost keytab as KRB5_KTNAME. The W3C line names the user as IIS does (REALM\user).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { kdcTools, startRealm, type Realm } from './helpers/kdc.js';
import { needs, root, tool } from './helpers/skip.js';
import { admin, getent } from './helpers/test-users.js';
import { eventually, startWharf, tempDir, type WharfProcess } from './helpers/wharf.js';

const USER = 'wharfkrb2';

describe('Negotiate (Kerberos) end to end', () => {
  let realm: Realm | undefined;
  let wharf: WharfProcess | undefined;
  let created = false;
  const ready = (): boolean => kdcTools().every((n) => n.met) && tool('curl').met && process.getuid?.() === 0;

  before(async () => {
    if (!ready()) return;
    realm = await startRealm(tempDir('wharf-negotiate-'), 'WHARF.TEST', 25200, 25250);
    realm.addUser(USER, 'Kerb-pass1');
    realm.addUser('nobodyhere', 'Kerb-pass1');
    if (getent('passwd', USER) === undefined) {
      admin('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', USER]);
      created = true;
    }
    wharf = await startWharf({ fixture: 'negotiate', env: { KRB5_CONFIG: realm.krb5Conf, KRB5_KTNAME: `FILE:${realm.keytab}` } });
  });
  after(async () => {
    await wharf?.stop();
    realm?.stop();
    if (created) admin('userdel', [USER]);
  });

  /** curl as a user runs it after kinit (KRB5CCNAME = that ticket cache), against http://localhost. */
  async function curl(path: string, options: { cache?: string; negotiate?: boolean; header?: string }): Promise<{ status: number; headers: string; body: string }> {
    const args = ['-sS', '--max-time', '10', '-D', '-', `http://localhost:${wharf!.port}${path}`];
    if (options.negotiate !== false) args.push('--negotiate', '-u', ':');
    if (options.header !== undefined) args.push('-H', options.header);
    const env = realm!.env(options.cache !== undefined ? { KRB5CCNAME: options.cache } : { KRB5CCNAME: 'FILE:/nonexistent/no-ticket' });
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile('curl', args, { env, timeout: 15_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr }));
    });
    assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`);
    // With --negotiate curl prints the 401 head and the final one: the last head is the answer.
    const heads = r.stdout.split(/\r\n\r\n/);
    const body = heads.pop() ?? '';
    const last = heads.filter((h) => h.startsWith('HTTP/')).pop() ?? '';
    return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(last)?.[1]), headers: last, body };
  }

  it('curl --negotiate with a ticket from kinit gets 200, the mutual-authentication token, and the W3C line names REALM\\user', async (t) => {
    if (!needs(t, ...kdcTools(), tool('curl'), root('useradd for the account behind the principal'))) return;
    const cache = realm!.kinit(USER, 'Kerb-pass1');
    const r = await curl('/?who=ticket', { cache });
    assert.equal(r.status, 200, `${r.headers}\n${wharf!.output()}`);
    assert.equal(r.body, 'intranet page\n');
    assert.match(r.headers, /^WWW-Authenticate: Negotiate [A-Za-z0-9+/]+=*$/im, 'RFC 4559: the server token on the 200');
    const row = await eventually(() => wharf!.w3cRecords(1).find((x) => x['cs-uri-query'] === 'who=ticket'));
    assert.equal(row['cs-username'], `WHARF\\${USER}`);
    assert.equal(row['sc-status'], '200');
  });

  it('without a ticket: 401 with WWW-Authenticate: Negotiate; a forged token: 401.1; a principal without a Linux account: 401.1 and a log line', async (t) => {
    if (!needs(t, ...kdcTools(), tool('curl'), root('useradd for the account behind the principal'))) return;
    const none = await curl('/?who=none', { negotiate: false });
    assert.equal(none.status, 401);
    assert.match(none.headers, /^WWW-Authenticate: Negotiate\r?$/im);
    const forged = await curl('/?who=forged', { negotiate: false, header: 'Authorization: Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXagDTALBgkqhkiG9xIBAgKiggFjBIIBXw==' });
    assert.equal(forged.status, 401);
    assert.match(forged.headers, /^WWW-Authenticate: Negotiate\r?$/im);
    const stranger = await curl('/?who=stranger', { cache: realm!.kinit('nobodyhere', 'Kerb-pass1') });
    assert.equal(stranger.status, 401);
    await wharf!.waitForOutput(/nobodyhere@WHARF\.TEST has no Linux account nobodyhere/);
    const rows = await eventually(() => {
      const all = wharf!.w3cRecords(1);
      const pick = (q: string) => all.find((x) => x['cs-uri-query'] === q);
      return pick('who=none') && pick('who=forged') && pick('who=stranger') ? { none: pick('who=none')!, forged: pick('who=forged')!, stranger: pick('who=stranger')! } : undefined;
    });
    assert.deepEqual([rows.forged['sc-status'], rows.forged['sc-substatus'], rows.forged['cs-username']], ['401', '1', '-']);
    assert.deepEqual([rows.stranger['sc-status'], rows.stranger['sc-substatus']], ['401', '1']);
    assert.equal(rows.none['sc-status'], '401');
    // The server kept serving: the ticket holder still gets in.
    assert.equal((await curl('/', { cache: realm!.kinit(USER, 'Kerb-pass1') })).status, 200);
  });
});
