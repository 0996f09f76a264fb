/**
 * NegotiateAcceptor against a real KDC (test/helpers/kdc.ts): tokens come from the `kerberos`
 * module's client side with a ticket from `kinit`, as curl --negotiate makes them (SPNEGO), and the
 * account behind the principal is a Linux user made with useradd.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRealm, kdcTools, type Realm } from '../../test/helpers/kdc.js';
import { needs, root } from '../../test/helpers/skip.js';
import { admin, getent } from '../../test/helpers/test-users.js';
import { tempDir } from '../../test/helpers/wharf.js';
import { mapPrincipal, localRealmsFromEnv, MAX_TOKEN_LENGTH, NegotiateAcceptor } from './negotiate.js';

interface GssClient {
  readonly contextComplete: boolean;
  step(challenge: string): Promise<string>;
}
interface KerberosClientModule {
  readonly GSS_MECH_OID_SPNEGO: number;
  readonly GSS_C_MUTUAL_FLAG: number;
  initializeClient(service: string, options: { mechOID?: number; gssFlag?: number }): Promise<GssClient>;
}

const USER = 'wharfkrb1';
let realm: Realm | undefined;
let kerberos: KerberosClientModule;
let created = false;
const saved = { ...process.env };

describe('mapPrincipal', () => {
  it('strips the local realms and shows the realm as a NetBIOS-style domain, as IIS shows DOMAIN\\user', () => {
    assert.deepEqual(mapPrincipal('alice@EXAMPLE.COM', ['EXAMPLE.COM']), { account: 'alice', shown: 'EXAMPLE\\alice' });
    assert.deepEqual(mapPrincipal('bob@PARTNER.ORG', ['EXAMPLE.COM']), { account: 'bob@PARTNER.ORG', shown: 'PARTNER\\bob' });
    assert.deepEqual(mapPrincipal('bob@PARTNER.ORG', '*'), { account: 'bob', shown: 'PARTNER\\bob' });
    assert.deepEqual(localRealmsFromEnv(' a.com, B.ORG '), ['A.COM', 'B.ORG']);
    assert.equal(localRealmsFromEnv('*'), '*');
    assert.equal(localRealmsFromEnv(''), undefined);
  });
});

describe('NegotiateAcceptor with a real KDC', () => {
  before(async () => {
    if (!kdcTools().every((n) => n.met) || process.getuid?.() !== 0) return;
    realm = await startRealm(tempDir('wharf-negotiate-unit-'), 'NEGUNIT.TEST', 25100, 25150);
    realm.addUser(USER, 'Pa55-word');
    realm.addUser('nolinux', 'Pa55-word');
    if (getent('passwd', USER) === undefined) {
      admin('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', USER]);
      created = true;
    }
    kerberos = ((await import('kerberos' as string)) as { default: KerberosClientModule }).default;
  });
  after(() => {
    realm?.stop();
    process.env = saved;
    if (created) admin('userdel', [USER]);
  });

  /** The client's first SPNEGO token for HTTP/localhost with `user`'s ticket. */
  async function clientToken(user: string): Promise<{ client: GssClient; token: string }> {
    Object.assign(process.env, realm!.env({ KRB5CCNAME: realm!.kinit(user, 'Pa55-word'), KRB5_KTNAME: realm!.keytab }));
    const client = await kerberos.initializeClient('HTTP@localhost', { mechOID: kerberos.GSS_MECH_OID_SPNEGO, gssFlag: kerberos.GSS_C_MUTUAL_FLAG });
    return { client, token: await client.step('') };
  }

  it('accepts a ticket for HTTP/localhost: the Linux account of the principal, and a mutual-authentication token the client accepts', async (t) => {
    if (!needs(t, ...kdcTools(), root('useradd for the account behind the principal'))) return;
    const { client, token } = await clientToken(USER);
    const acceptor = new NegotiateAcceptor();
    const r = await acceptor.accept({ kind: 'negotiate', token, context: '', clientAddress: '127.0.0.1' });
    assert.ok(r.ok, JSON.stringify(r));
    const pw = getent('passwd', USER)!;
    assert.equal(r.identity.name, `NEGUNIT\\${USER}`);
    assert.equal(r.identity.provider, 'system');
    assert.equal(r.identity.uid, Number(pw[2]));
    assert.equal(r.identity.gid, Number(pw[3]));
    assert.deepEqual(r.identity.groups[0], { gid: Number(pw[3]), name: USER });
    assert.ok(r.token !== undefined && r.token.length > 0, 'the AP-REP goes back to the client');
    await client.step(r.token);
    assert.equal(client.contextComplete, true, 'the client verified the server (mutual authentication)');
    assert.equal(acceptor.pendingContexts, 0);
  });

  it('answers unknown-user for a principal without a Linux account, bad-credentials for a broken or replayed token', async (t) => {
    if (!needs(t, ...kdcTools(), root('useradd for the account behind the principal'))) return;
    const acceptor = new NegotiateAcceptor();
    const { token } = await clientToken('nolinux');
    const r = await acceptor.accept({ kind: 'negotiate', token, context: '', clientAddress: '127.0.0.1' });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'unknown-user');
    assert.match(!r.ok ? r.message : '', /nolinux@NEGUNIT\.TEST has no Linux account nolinux/);
    // The same authenticator again is a replay: GSSAPI's replay cache refuses it.
    const again = await acceptor.accept({ kind: 'negotiate', token, context: '', clientAddress: '127.0.0.1' });
    assert.equal(!again.ok && again.reason, 'bad-credentials');
    const flipped = Buffer.from(token, 'base64');
    flipped[flipped.length - 20] ^= 0xff;
    const forged = await acceptor.accept({ kind: 'negotiate', token: flipped.toString('base64'), context: '', clientAddress: '127.0.0.1' });
    assert.equal(!forged.ok && forged.reason, 'bad-credentials');
    for (const bad of ['not base64!', 'A'.repeat(MAX_TOKEN_LENGTH + 4), 'YWJj']) {
      const b = await acceptor.accept({ kind: 'negotiate', token: bad, context: '', clientAddress: '127.0.0.1' });
      assert.equal(!b.ok && b.reason, 'bad-credentials', bad.slice(0, 20));
    }
    assert.equal(acceptor.pendingContexts, 0);
  });

  it('answers unavailable, naming KRB5_KTNAME, when the keytab cannot be read', async (t) => {
    if (!needs(t, ...kdcTools(), root('useradd for the account behind the principal'))) return;
    const { token } = await clientToken(USER);
    process.env['KRB5_KTNAME'] = 'FILE:/nonexistent/wharf.keytab';
    const r = await new NegotiateAcceptor().accept({ kind: 'negotiate', token, context: '', clientAddress: '127.0.0.1' });
    assert.equal(!r.ok && r.reason, 'unavailable');
    assert.match(!r.ok ? r.message : '', /\/nonexistent\/wharf\.keytab cannot be read \(ENOENT\): set KRB5_KTNAME/);
  });
});
