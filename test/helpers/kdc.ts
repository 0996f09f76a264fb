/**
 * A real Kerberos realm for a test: Debian's MIT KDC (krb5-kdc, krb5-admin-server, krb5-user)
 * started in a temporary folder with its own krb5.conf and kdc.conf (KRB5_CONFIG,
 * KRB5_KDC_PROFILE), on a loopback port, with an HTTP/localhost service key in a keytab and user
 * principals made by kadmin.local. Nothing of the machine's own Kerberos set-up is read or changed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tool, type Need } from './skip.js';

/** What the KDC tests need on PATH, with the Debian package of each (.ci/run installs them). */
export function kdcTools(): Need[] {
  return [tool('krb5kdc', 'krb5-kdc'), tool('kdb5_util', 'krb5-kdc'), tool('kadmin.local', 'krb5-admin-server'), tool('kinit', 'krb5-user')];
}

export interface Realm {
  readonly name: string;
  readonly port: number;
  /** The realm's krb5.conf: KRB5_CONFIG for every process that talks to it. */
  readonly krb5Conf: string;
  /** HTTP/localhost@REALM's key: KRB5_KTNAME for Wharf's main process. */
  readonly keytab: string;
  /** Environment for a Kerberos client or server of this realm. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  addUser(name: string, password: string): void;
  /** `kinit` into a new credential cache in the realm's folder; returns its KRB5CCNAME. */
  kinit(name: string, password: string): string;
  stop(): void;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free loopback port in [from, to) for the KDC (UDP and TCP on the same number). */
async function kdcPort(from: number, to: number): Promise<number> {
  for (let p = from; p < to; p++) if (await canListen(p)) return p;
  throw new Error(`no free port for the KDC in ${from}-${to}`);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): string {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * Creates the realm's database in `dir` and starts krb5kdc on the first free port of
 * [fromPort, toPort). Resolves once the KDC answers a kinit.
 */
export async function startRealm(dir: string, name: string, fromPort: number, toPort: number): Promise<Realm> {
  const port = await kdcPort(fromPort, toPort);
  const krb5Conf = join(dir, 'krb5.conf');
  const kdcConf = join(dir, 'kdc.conf');
  const keytab = join(dir, 'http.keytab');
  // rdns/canonicalize off: the service name the client asks for is HTTP/localhost, as typed.
  writeFileSync(
    krb5Conf,
    `[libdefaults]\n  default_realm = ${name}\n  dns_lookup_realm = false\n  dns_lookup_kdc = false\n  rdns = false\n  dns_canonicalize_hostname = false\n  udp_preference_limit = 1\n` +
      `[realms]\n  ${name} = {\n    kdc = 127.0.0.1:${port}\n  }\n` +
      `[domain_realm]\n  localhost = ${name}\n`,
  );
  writeFileSync(
    kdcConf,
    `[kdcdefaults]\n  kdc_listen = 127.0.0.1:${port}\n  kdc_tcp_listen = 127.0.0.1:${port}\n` +
      `[realms]\n  ${name} = {\n    database_name = ${join(dir, 'principal')}\n    key_stash_file = ${join(dir, 'stash')}\n    acl_file = ${join(dir, 'kadm5.acl')}\n    supported_enctypes = aes256-cts-hmac-sha1-96:normal\n  }\n` +
      `[logging]\n  kdc = FILE:${join(dir, 'kdc.log')}\n`,
  );
  const base: NodeJS.ProcessEnv = { ...process.env, KRB5_CONFIG: krb5Conf, KRB5_KDC_PROFILE: kdcConf };
  run('kdb5_util', ['create', '-s', '-r', name, '-P', 'master-' + process.pid], base);
  const kadmin = (q: string): string => run('kadmin.local', ['-r', name, '-q', q], base);
  kadmin('addprinc -randkey HTTP/localhost');
  kadmin(`ktadd -k ${keytab} HTTP/localhost`);
  const kdc: ChildProcess = spawn('krb5kdc', ['-n', '-r', name], { env: base, stdio: ['ignore', 'ignore', 'pipe'] });
  let kdcErr = '';
  kdc.stderr?.on('data', (b: Buffer) => (kdcErr += b.toString()));
  let caches = 0;
  const realm: Realm = {
    name,
    port,
    krb5Conf,
    keytab,
    env: (extra = {}) => ({ ...base, ...extra }),
    addUser: (user, password) => void kadmin(`addprinc -pw ${password} ${user}`),
    kinit(user, password) {
      const cache = `FILE:${join(dir, `cc-${user}-${++caches}`)}`;
      run('kinit', [user], { ...base, KRB5CCNAME: cache }, password + '\n');
      return cache;
    },
    stop: () => void kdc.kill('SIGTERM'),
  };
  // Ready when a kinit gets a ticket (the KDC binds a moment after it starts).
  realm.addUser('probe', 'probe-password');
  for (let attempt = 0; ; attempt++) {
    try {
      realm.kinit('probe', 'probe-password');
      return realm;
    } catch (err) {
      if (kdc.exitCode !== null || attempt > 50) {
        realm.stop();
        throw new Error(`krb5kdc did not answer on 127.0.0.1:${port}: ${(err as Error).message} ${kdcErr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
